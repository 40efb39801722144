"""Compiled CPU kernels for the DCGAN's strided convolutions (kernel 4, stride 2, padding 1).

On the CPU, MindSpore's own Conv2d and Conv2dTranspose kernels take 1.1-1.5x the time of these
for forward + backward (``python benchmarks/bench_step.py --layers``); on AVX-512 CPUs its oneDNN
runs them as reference code (about 70-100x) unless limited to AVX2, which ``use_compiled`` does
where MindSpore's are chosen (``runtime.limit_onednn_to_avx2``; a step then takes about 1.7x). ``csrc/conv4x4s2.cc`` computes the
same layers as patch extraction plus one matrix product (oneDNN's sgemm, from the libdnnl inside
MindSpore); this module compiles it once with the system's C++ compiler and exposes it as
MindSpore "aot" custom operators with their gradients, for ``models.StridedConv2d(Transpose)``.
The same library holds a one-pass LeakyReLU (``leaky_relu_operator``, for ``models.LeakyReLU``),
BatchNorm with its activation in one kernel each way (``batch_norm_operator``, for
``models.BatchNormActivation``) and the loop's normal random numbers (``standard_normal``).

- Same mathematics: the layers keep MindSpore's weights, shapes and parameter names, so checkpoints
  are interchangeable, and ``tests/test_models.py`` checks outputs and gradients against
  ``nn.Conv2d`` / ``nn.Conv2dTranspose`` in graph and PyNative mode.
- Only for ``device_target`` CPU; GPU and Ascend use MindSpore's layers, which are fast there.
- The library is cached in ``$DCGAN_MS_CACHE`` (default ``~/.cache/dcgan_ms``), named by a hash of
  the source, compiler, MindSpore and CPU architecture, so editing the source or upgrading
  MindSpore rebuilds it (and a home folder shared by x86 and ARM machines keeps one of each).
- ``choice`` (``--conv`` on the command line): "auto" uses the compiled kernels on CPU when they
  build and says in one line why not otherwise; "compiled" insists; "builtin" never uses them.
"""
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

import mindspore as ms
from mindspore import ops

from .errors import UserError
from .runtime import cpu_flags, current_device, limit_onednn_to_avx2

SOURCE = Path(__file__).parent / "csrc" / "conv4x4s2.cc"
CHOICES = ("auto", "compiled", "builtin")
BUILTIN_SLOWDOWN = "1.7x"  # MindSpore's convolutions (oneDNN limited to AVX2) against these on a Xeon with AVX-512 (README, speed)
FLAGS = ["-O3", "-std=c++14", "-shared", "-fPIC", "-pthread", "-ffp-contract=off"]  # no fused multiply-adds:
# the LeakyReLU kernels must round as MindSpore's separate Mul and Add kernels do


class Unavailable(Exception):
    """The compiled kernels cannot be built or used here; the message says why."""


def cache_dir():
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dcgan_ms"
    return Path(os.environ.get("DCGAN_MS_CACHE") or default)


def build():
    """Path of the compiled library, compiling it on first use (about a second). A failure is
    remembered too, so that every model built in the process does not run the compiler again."""
    lib, error = _build_once()
    if error:
        raise error
    return lib


@lru_cache(maxsize=None)
def _build_once():
    try:
        return _build(), None
    except Unavailable as e:
        return None, e


def _build():
    compiler = os.environ.get("CXX", "g++")
    if not shutil.which(compiler):
        raise Unavailable(f"no C++ compiler ({compiler}) on PATH")
    ms_lib = Path(ms.__file__).parent / "lib"
    if not (ms_lib / "libdnnl.so.3").exists():
        raise Unavailable(f"this MindSpore has no {ms_lib / 'libdnnl.so.3'} to take the matrix product from")
    source = SOURCE.read_bytes()
    key = hashlib.sha256(b"\0".join([source, compiler.encode(), " ".join(FLAGS).encode(), str(ms_lib).encode(),
                                     ms.__version__.encode(), platform.machine().encode()])).hexdigest()[:16]
    lib = cache_dir() / f"conv4x4s2-{key}.so"
    if lib.exists():
        return lib
    try:
        lib.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=lib.parent)  # then rename: parallel workers may build too
        os.close(fd)
    except OSError as e:
        raise Unavailable(f"cannot write to the cache {lib.parent} ({e.strerror}); set DCGAN_MS_CACHE") from None
    cmd = [compiler, *FLAGS, str(SOURCE), "-o", tmp, f"-L{ms_lib}", "-l:libdnnl.so.3", f"-Wl,-rpath,{ms_lib}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        os.unlink(tmp)
        first = next((line for line in proc.stderr.splitlines() if "error" in line), proc.stderr.strip()[:200])
        raise Unavailable(f"compiling {SOURCE.name} failed: {first}")
    os.replace(tmp, lib)
    return lib


def use_compiled(choice="auto"):
    """Whether layers built now compute with the compiled kernels (see the module's docstring). Where
    MindSpore's own convolutions are chosen on CPU, their oneDNN is limited to AVX2 code first
    (``runtime.limit_onednn_to_avx2``): on AVX-512 CPUs its default runs them as reference code."""
    if choice not in CHOICES:
        raise UserError(f"conv must be one of {', '.join(CHOICES)}, got {choice!r}")
    device = current_device()
    if choice == "builtin" or device != "CPU":
        if choice == "compiled":
            raise UserError(f"--conv compiled runs only on CPU, not on {device}: use --conv auto")
        if device == "CPU":
            limit_onednn_to_avx2()
        return False
    try:
        build()
        return True
    except Unavailable as e:
        if choice == "compiled":
            raise UserError(f"the compiled CPU convolutions are unavailable: {e}; use --conv builtin") from None
        _say_once(f"note: using MindSpore's built-in convolutions: {e}; {builtin_cost(limit_onednn_to_avx2())} "
                  "(pass --conv builtin to skip this check)")
        return False


def builtin_cost(limit):
    """What MindSpore's convolutions cost on this CPU against the compiled kernels, in words, given
    oneDNN's dispatch ``limit`` in effect (``benchmarks/bench_step.py --onednn_limit``)."""
    if "avx512f" not in cpu_flags():
        return "expect somewhat slower steps than with the compiled kernels"
    if limit is None or limit.upper().startswith(("AVX512", "ALL")):
        return (f"with ONEDNN_MAX_CPU_ISA={limit or 'unset'} MindSpore's oneDNN runs them as reference code on this "
                "AVX-512 CPU: steps take tens of times as long; unset it to let dcgan_ms limit oneDNN to AVX2")
    return f"on this AVX-512 CPU, with oneDNN limited to {limit} code, expect steps about {BUILTIN_SLOWDOWN} as long"


def standard_normal(n, key):
    """``n`` standard normal float32 numbers, a function of ``key`` (two 32-bit words) alone: from the
    compiled library's ``StandardNormal`` (3x faster than NumPy here, see csrc/conv4x4s2.cc) when it
    builds, else from NumPy's generator seeded with the key (other numbers, the same distribution)."""
    import numpy as np
    lib, _ = _build_once()
    if lib is None:
        return np.random.default_rng(list(key)).standard_normal(n, dtype=np.float32)
    out = np.empty(n, np.float32)
    _normal_function(str(lib))(out.ctypes.data, n, *key)
    return out


@lru_cache(maxsize=None)
def _normal_function(lib):
    import ctypes
    function = ctypes.CDLL(lib).StandardNormal
    function.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_uint32, ctypes.c_uint32]
    function.restype = None
    return function


@lru_cache(maxsize=None)
def _say_once(message):
    print(message, file=sys.stderr)


def _forward_shape(x, w):
    if len(x) != 4 or x[2] % 2 or x[3] % 2:
        raise ValueError(f"the compiled 4x4/2 convolution needs NCHW input of even height and width, got {x}")
    return [x[0], w[0], x[2] // 2, x[3] // 2]


def _input_grad_shape(dy, w):
    return [dy[0], w[1], dy[2] * 2, dy[3] * 2]


def _weight_grad_shape(x, dy):
    return [dy[1], x[1], 4, 4]


def _first(a, *_):
    """The first input's shape or dtype: the output's, for kernels whose output is like their first input."""
    return a


@lru_cache(maxsize=None)
def operators():
    """(conv2d, conv2d_transpose): ``conv2d(x, w)`` is ``nn.Conv2d(cin, cout, 4, 2, "pad", 1)`` with
    weight w (cout, cin, 4, 4); ``conv2d_transpose(x, w)`` is ``nn.Conv2dTranspose(cin, cout, 4, 2,
    "pad", 1)`` with weight w (cin, cout, 4, 4). Both differentiable in x and w."""
    lib = str(build())

    def custom(name, out_shape, bprop=None):
        return ops.Custom(f"{lib}:{name}", out_shape=out_shape, out_dtype=_first, func_type="aot", bprop=bprop)

    conv_forward = custom("ConvForward", _forward_shape)
    conv_input_grad = custom("ConvInputGrad", _input_grad_shape)
    conv_weight_grad = custom("ConvWeightGrad", _weight_grad_shape)

    def conv2d_bprop(x, w, out, dout):
        return conv_input_grad(dout, w), conv_weight_grad(x, dout)

    # A transposed conv is the conv's input gradient; so its own gradients are the conv's forward
    # (for x) and the conv's weight gradient with the roles of input and output swapped (for w).
    def conv2d_transpose_bprop(x, w, out, dout):
        return conv_forward(dout, w), conv_weight_grad(dout, x)

    return (custom("ConvForward", _forward_shape, conv2d_bprop),
            custom("ConvInputGrad", _input_grad_shape, conv2d_transpose_bprop))


@lru_cache(maxsize=None)
def leaky_relu_operator():
    """``leaky_relu(x, ab)``: ``ab[0] * x + ab[1] * relu(x)`` (ab: float32 [alpha, 1 - alpha]), in one
    pass each way, bit for bit what MindSpore's own ops give on that form; differentiable in x."""
    lib = str(build())
    backward = ops.Custom(f"{lib}:LeakyBackward", out_shape=_first, out_dtype=_first, func_type="aot")

    def bprop(x, ab, out, dout):
        return backward(x, ab, dout), ops.zeros_like(ab)

    return ops.Custom(f"{lib}:LeakyForward", out_shape=_first, out_dtype=_first, func_type="aot",
                      bprop=bprop)


def _batch_norm_shapes(x, gamma, *_):
    return [x, gamma, gamma, gamma, gamma]


def _batch_norm_grad_shapes(x, gamma, *_):
    return [x, gamma, gamma]


def _five(dtype, *_):
    return [dtype] * 5


def _three(dtype, *_):
    return [dtype] * 3


@lru_cache(maxsize=None)
def batch_norm_operator():
    """``batch_norm(x, gamma, beta, moving_mean, moving_var, params) -> (y, mean, var, new_moving_mean,
    new_moving_var)``: BatchNorm in training mode on NCHW x, then ReLU or LeakyReLU, with params float32
    [eps, momentum, alpha, 1 - alpha] (alpha 0: ReLU; momentum as ``ops.BatchNorm``'s, the weight of the
    batch); bit for bit MindSpore's BatchNorm and activation (MindSpore 2.10 on x86_64). Differentiable
    in x, gamma and beta."""
    lib = str(build())
    backward = ops.Custom(f"{lib}:BatchNormBackward", out_shape=_batch_norm_grad_shapes, out_dtype=_three,
                          func_type="aot")

    def bprop(x, gamma, beta, moving_mean, moving_var, params, out, dout):
        dx, dgamma, dbeta = backward(x, gamma, beta, out[1], out[2], dout[0], params)
        return dx, dgamma, dbeta, ops.zeros_like(moving_mean), ops.zeros_like(moving_var), ops.zeros_like(params)

    return ops.Custom(f"{lib}:BatchNormForward", out_shape=_batch_norm_shapes, out_dtype=_five, func_type="aot",
                      bprop=bprop)
