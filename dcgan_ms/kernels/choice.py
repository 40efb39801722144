"""Whether layers compute with the compiled kernels (``--conv auto|compiled|builtin``), and in which
precision their matrix products run (``--precision fp32|bf16``, ``matmul_precision``).

"auto" uses them on CPU when they build and says in one line why not otherwise; "compiled" insists;
"builtin" never uses them. GPU and Ascend always use MindSpore's layers, which are fast there. Where
MindSpore's convolutions run on CPU, its oneDNN is first limited to AVX2 code: on AVX-512 CPUs its
default runs them as reference code, tens of times slower (``docs/speed.md``).
"""
import sys
from functools import lru_cache

from ..errors import UserError
from ..runtime import cpu_flags, current_device, limit_onednn_to_avx2
from .library import Unavailable, build

CHOICES = ("auto", "compiled", "builtin")
PRECISIONS = ("fp32", "bf16")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo's names of the instructions that multiply bfloat16
BUILTIN_SLOWDOWN = "1.7x"  # MindSpore's convolutions (oneDNN limited to AVX2) against these on a Xeon with AVX-512


def use_compiled(choice="auto"):
    """Whether layers built now should compute with the compiled kernels (see the module's docstring)."""
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


def matmul_precision(precision, compiled):
    """The precision the compiled kernels' matrix products run in when ``precision`` is asked for and
    the layers use the compiled kernels (``compiled``, from ``use_compiled``). "bf16" needs them and a
    CPU with bfloat16 instructions (``BF16_FLAGS``): elsewhere oneDNN emulates bfloat16, slower than
    float32, so the products stay "fp32" and one line says so. Other devices refuse it: MindSpore's own
    mixed precision there is not wired in (and could not be tested here)."""
    if precision not in PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return "fp32"
    device = current_device()
    if device != "CPU":
        raise UserError(f"--precision bf16 is for CPUs (dcgan_ms's compiled kernels), not {device}: use --precision "
                        "fp32")
    if not compiled:
        _say_once("note: --precision bf16 runs in the compiled kernels, which are not in use: training in fp32")
        return "fp32"
    if not any(flag in cpu_flags() for flag in BF16_FLAGS):
        _say_once(f"note: this CPU has no bfloat16 instructions ({' or '.join(BF16_FLAGS)}), where --precision bf16 "
                  "would be slower than fp32: training in fp32")
        return "fp32"
    return "bf16"


def builtin_cost(limit):
    """What MindSpore's convolutions cost on this CPU against the compiled kernels, in words, given
    oneDNN's dispatch ``limit`` in effect (``benchmarks/bench_step.py --onednn_limit``)."""
    if "avx512f" not in cpu_flags():
        return "expect somewhat slower steps than with the compiled kernels"
    if limit is None or limit.upper().startswith(("AVX512", "ALL")):
        return (f"with ONEDNN_MAX_CPU_ISA={limit or 'unset'} MindSpore's oneDNN runs them as reference code on this "
                "AVX-512 CPU: steps take tens of times as long; unset it to let dcgan_ms limit oneDNN to AVX2")
    return f"on this AVX-512 CPU, with oneDNN limited to {limit} code, expect steps about {BUILTIN_SLOWDOWN} as long"


@lru_cache(maxsize=None)
def _say_once(message):
    print(message, file=sys.stderr)
