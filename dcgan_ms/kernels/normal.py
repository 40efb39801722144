"""Standard normal numbers as a pure function of a key (``normal.cc``), for the loop's noise."""
import ctypes
from functools import lru_cache

import numpy as np

from .library import loaded_path_or_none


def standard_normal(n, key):
    """``n`` standard normal float32 numbers, a function of ``key`` (two 32-bit words) alone: from the
    compiled library when it builds, else from NumPy's generator seeded with the key (other numbers,
    the same distribution)."""
    lib = loaded_path_or_none()
    if lib is None:
        return np.random.default_rng(list(key)).standard_normal(n, dtype=np.float32)
    out = np.empty(n, np.float32)
    _normal_function(lib)(out.ctypes.data, n, *key)
    return out


def noise_source():
    """Which generator ``standard_normal`` draws with here: "compiled" (normal.cc), or "numpy" where the
    library cannot be built. Their numbers differ, so a run records it and a resumed run compares."""
    lib = loaded_path_or_none()
    return "numpy" if lib is None else "compiled"


@lru_cache(maxsize=None)
def _normal_function(lib):
    function = ctypes.CDLL(lib).StandardNormal
    function.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_uint32, ctypes.c_uint32]
    function.restype = None
    return function
