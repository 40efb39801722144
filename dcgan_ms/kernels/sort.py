"""Rows of float32 numbers sorted in place (``sort.cc``: a radix sort), for the SWD's projections."""
import ctypes
from functools import lru_cache

import numpy as np

from .library import loaded_path_or_none


def sort_rows(x):
    """``x`` (a C-ordered 2-D float32 array) with each row sorted, in place; returns ``x``. The same
    values as ``np.sort(x, axis=1)``: from the compiled library when it builds, else NumPy's sort."""
    lib = loaded_path_or_none()
    if lib is None or x.dtype != np.float32 or x.ndim != 2 or not x.flags.c_contiguous:
        x.sort(axis=1)
        return x
    _sort_function(lib)(x.ctypes.data, x.shape[0], x.shape[1])
    return x


@lru_cache(maxsize=None)
def _sort_function(lib):
    function = ctypes.CDLL(lib).SortRows
    function.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64]
    function.restype = None
    return function
