"""Whether layers compute with the compiled kernels (``--conv auto|compiled|builtin``).

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
