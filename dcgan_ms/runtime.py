"""Choosing the device, seeding every random source, and what a run records of the machine (``environment``)."""
import atexit
import os
import platform
import random
import socket
import sys
import time

import mindspore as ms
import mindspore.dataset as ds
import numpy as np
from mindspore import ops

from .errors import UserError, first_line

DEVICE_TARGETS = ("CPU", "GPU", "Ascend")


def current_device():
    """The backend MindSpore runs on ("CPU", "GPU" or "Ascend")."""
    return ms.get_current_device().device_target


def select_device(device_target, device_id=None):
    """Tell MindSpore which backend to use, running nothing yet: a data-parallel run joins its cluster
    between this and ``check_device`` (on Ascend, ``communication.init`` must come before any operator)."""
    if device_target == "CPU":
        # A compiled graph runs on a MindSpore worker thread while the calling thread busy-waits for
        # it (runtime::AsyncRQueue::Wait spins), which takes a core from the kernels (docs/speed.md).
        # MindSpore's documented MS_DEV_HOST_BLOCKING_RUN=1 runs
        # it on the calling thread instead. MindSpore reads it once, at the first operator;
        # export MS_DEV_HOST_BLOCKING_RUN=0 to keep MindSpore's default.
        os.environ.setdefault("MS_DEV_HOST_BLOCKING_RUN", "1")
    try:
        ms.set_device(device_target, device_id)
    except ValueError as e:
        raise unusable(device_target, e) from None
    except RuntimeError as e:  # also when already running (training twice in one process): fine if unchanged
        if current_device() != device_target:
            raise unusable(device_target, e) from None


def check_device(device_target):
    """Run one operator: MindSpore only says a backend is missing when the first operator executes,
    with a long message; we say it in one line."""
    try:
        ops.ones((1,), ms.float32).asnumpy()
    except (RuntimeError, ValueError) as e:
        raise unusable(device_target, e) from None


def unusable(device_target, error):
    """The one line for a backend MindSpore refused: for GPU, the first stage that stops it (gpu.py)."""
    if device_target == "GPU":
        from .gpu import why_unusable
        # Once the device failed, MindSpore's teardown at exit prints the same error again as a page of
        # [ERROR] lines; the line below has said it.
        atexit.register(silence_stderr)
        return UserError(f"device target GPU is not usable here: {why_unusable(first_line(error))}")
    if device_target == "Ascend":
        return UserError(f"device target Ascend is not usable here ({first_line(error)}): install the Ascend driver "
                         "and the CANN version MindSpore 2.10 needs, source set_env.sh (README: Ascend; python -m "
                         "dcgan_ms.doctor --device_target Ascend says which is missing), or pass --device_target CPU")
    return UserError(f"device target {device_target} is not usable here ({first_line(error)})")


def silence_stderr():
    """Send what is written to standard error from now on (at exit) to /dev/null."""
    sys.stderr.flush()
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)


def set_device(device_target, device_id=None):
    """Select the backend and check that it really runs (``select_device``, then ``check_device``)."""
    select_device(device_target, device_id)
    check_device(device_target)


ONEDNN_LIMITS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")  # oneDNN's documented dispatch limit, new and old name


def environment(device_target, devices):
    """What a run records of where it ran (environment.json): versions, platform, CPU, host, devices, start."""
    model = next((line.split(":", 1)[1].strip() for line in _read_lines("/proc/cpuinfo")
                  if line.startswith("model name")), platform.processor())
    flags = sorted({"avx2", "avx512f", "avx512_bf16", "amx_bf16"} & set(cpu_flags()))
    return {"python": platform.python_version(), "mindspore": ms.__version__, "numpy": np.__version__,
            "platform": platform.platform(), "cpu": model, "cpu_flags": flags, "cores": os.cpu_count(),
            "host": socket.gethostname(), "device_target": device_target, "devices": devices,
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def _read_lines(path):
    try:
        with open(path) as f:
            return f.readlines()
    except OSError:
        return []


def cpu_flags():
    """The CPU's feature flags as Linux lists them; empty where they cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            return set(next((line.split(":", 1)[1] for line in f if line.startswith("flags")), "").split())
    except OSError:
        return set()


def limit_onednn_to_avx2():
    """Make MindSpore's bundled oneDNN dispatch AVX2 code on a CPU with AVX-512, and return the limit
    in effect (None: none). On such CPUs MindSpore 2.10's oneDNN runs its convolutions as reference
    C++ code (``jit_uni_ncsp:conv+ref`` in ONEDNN_VERBOSE's words), tens of times slower than its
    AVX2 code (``gemm:jit``). oneDNN reads the limit once, at its first primitive, so this must run
    before MindSpore's first convolution. A limit the user set (either name) is kept."""
    for name in ONEDNN_LIMITS:
        if name in os.environ:
            return os.environ[name]
    if "avx512f" not in cpu_flags():
        return None
    os.environ["ONEDNN_MAX_CPU_ISA"] = "AVX2"
    return "AVX2"


def set_seed(seed):
    """Seed MindSpore (weight init), its data pipeline (shuffling), NumPy and Python's random."""
    ms.set_seed(seed)
    ds.config.set_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
