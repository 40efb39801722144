"""The compiled strided-convolution kernels alone (``dcgan_ms/kernels/conv.cc``), each call timed without
MindSpore around it: for A/B of a kernel change, which a whole step's timing cannot resolve.

    python benchmarks/bench_kernels.py                                  # fp32 and bf16, batch 128, ndf 64
    python benchmarks/bench_kernels.py --batch_size 32 --width 16 --against HEAD~1

The kernels are called through ctypes with MindSpore's calling convention (inputs, then the output), on
the shapes of D's four strided convolutions (G's transposed ones are the same kernels on the same
shapes): forward, input gradient and weight gradient, each the median of ``--rounds`` rounds of
``--calls`` calls. With ``--against REV`` the library built from that commit's sources (a ``git
worktree``) runs beside this checkout's, alternating call by call; a kernel whose results are not the
same bits says by how much they differ. The last column is REV's time over this checkout's (above 1:
this one is faster).
"""
import argparse
import contextlib
import ctypes
import os
import statistics
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkouts import checkout  # noqa: E402

KERNELS = ("ConvForward", "ConvInputGrad", "ConvWeightGrad")
SUFFIX = {"fp32": "", "bf16": "Bf16"}
BUILD = "from dcgan_ms.kernels import build; print(build())"


def library_path(repo):
    """The compiled library of the sources in ``repo`` (built there, in the usual cache, if needed)."""
    out = subprocess.run([sys.executable, "-c", BUILD], cwd=repo, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": repo})
    if out.returncode:
        sys.exit(f"building the kernels in {repo} failed:\n{out.stderr[-2000:]}")
    return out.stdout.strip().splitlines()[-1]


def bound_call(lib, name, arrays):
    """A no-argument function calling kernel ``name`` of ``lib`` on ``arrays`` (inputs, then the output)."""
    n = len(arrays)
    params = (ctypes.c_void_p * n)(*[a.ctypes.data for a in arrays])
    ndims = (ctypes.c_int * n)(*[a.ndim for a in arrays])
    dims = [(ctypes.c_int64 * a.ndim)(*a.shape) for a in arrays]
    shapes = (ctypes.POINTER(ctypes.c_int64) * n)(*[ctypes.cast(d, ctypes.POINTER(ctypes.c_int64)) for d in dims])
    dtypes = (ctypes.c_char_p * n)(*[b"float32"] * n)
    kernel = getattr(lib, name)

    def call():
        if kernel(n, params, ndims, shapes, dtypes, None, None):
            raise RuntimeError(f"{name} refused its arguments")
    call.keep = (params, ndims, dims, shapes, dtypes)  # the ctypes arrays live as long as the call
    return call


def cases(batch_size, width, rng):
    """(label, kernel, inputs, output) on the shapes of D's strided convolutions."""
    for c, h, o in ((3, 64, width), (width, 32, 2 * width), (2 * width, 16, 4 * width), (4 * width, 8, 8 * width)):
        x = rng.standard_normal((batch_size, c, h, h), np.float32)
        w = (0.02 * rng.standard_normal((o, c, 4, 4))).astype(np.float32)
        dy = rng.standard_normal((batch_size, o, h // 2, h // 2), np.float32)
        yield f"forward {c}->{o} at {h} px", "ConvForward", [x, w], np.empty(dy.shape, np.float32)
        yield f"input grad {c}->{o} at {h} px", "ConvInputGrad", [dy, w], np.empty(x.shape, np.float32)
        yield f"weight grad {c}->{o} at {h} px", "ConvWeightGrad", [x, dy], np.empty(w.shape, np.float32)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--width", type=int, default=64, help="ndf (and ngf): the layers' channels")
    p.add_argument("--precision", choices=tuple(SUFFIX), nargs="+", default=list(SUFFIX))
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--calls", type=int, default=3, help="calls per round")
    p.add_argument("--against", metavar="REV", default=None, help="also time the kernels of commit REV")
    args = p.parse_args()
    with checkout(args.against) if args.against else contextlib.nullcontext() as other:
        sides = {"this checkout": library_path(REPO)}
        if args.against:
            sides[args.against] = library_path(other)
        libs = {side: ctypes.CDLL(path) for side, path in sides.items()}
        print(f"batch {args.batch_size}, width {args.width}, median of {args.rounds} rounds of {args.calls} calls; "
              f"CPU: {os.cpu_count()} cores")
        header = " | ".join(f"{side} ms" for side in libs)
        for precision in args.precision:
            print(f"\n{precision}\n| kernel | {header} |" + (f" {args.against} / this |" if args.against else "")
                  + "\n|---|" + "---|" * (len(libs) + bool(args.against)))
            totals = dict.fromkeys(libs, 0.0)
            for label, kernel, inputs, output in cases(args.batch_size, args.width, np.random.default_rng(0)):
                name = kernel + SUFFIX[precision]
                found = {side: lib for side, lib in libs.items() if hasattr(lib, name)}
                calls = {side: bound_call(lib, name, inputs + [output]) for side, lib in found.items()}
                times, differs = {side: [] for side in calls}, 0.0
                for _ in range(args.rounds):
                    first = None
                    for side, call in calls.items():
                        call()  # warm: buffers and threads
                        start = time.perf_counter()
                        for _ in range(args.calls):
                            call()
                        times[side].append((time.perf_counter() - start) / args.calls)
                        if first is None:
                            first = output.copy()
                        elif not np.array_equal(first, output):
                            differs = max(differs, float(np.abs(first - output).max() / np.abs(first).max()))
                median = {side: statistics.median(t) for side, t in times.items()}
                for side, m in median.items():
                    totals[side] += m
                cells = " | ".join(f"{median[side] * 1e3:.2f}" if side in median else "-" for side in libs)
                ratio = (f" {median[args.against] / median['this checkout']:.2f} |"
                         if args.against and len(median) == 2 else (" - |" if args.against else ""))
                note = f" (results differ: {differs:.1e} of the largest)" if differs else ""
                print(f"| {label}{note} | {cells} |{ratio}", flush=True)
            cells = " | ".join(f"**{totals[side] * 1e3:.1f}**" for side in libs)
            ratio = f" **{totals[args.against] / totals['this checkout']:.2f}** |" if args.against else ""
            print(f"| all twelve | {cells} |{ratio}")


if __name__ == "__main__":
    main()
