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

Beside the times: each kernel's rate in GFLOP/s, and the rate of oneDNN's matrix product itself on this
CPU (MindSpore's libdnnl, one single-threaded product per core at once, on the 8 px layer's forward
shape), the ceiling the kernels' products work against. With ``--torch``, PyTorch's own convolutions
(its oneDNN's convolution primitives; for bf16, on bfloat16 tensors, no conversion timed) on the same
shapes: whether the primitives PyTorch's autocast runs would be faster than these kernels. They are timed
after each kernel's rounds, not between them: PyTorch's threads spin for a while after each call, and
the kernels called beside them ran up to 1.8x slower (as they do after the CPU has idled a moment).
"""
import argparse
import contextlib
import ctypes
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

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


def to_bf16_bits(a):
    """float32 -> bfloat16 bits (uint16), truncated: operands for a rate, not results."""
    return (np.ascontiguousarray(a, np.float32).view(np.uint32) >> 16).astype(np.uint16)


def product_rate(precision, size=512, calls=2, rounds=5):
    """GFLOP/s of oneDNN's matrix product (MindSpore's libdnnl, as the kernels call it: single-threaded,
    one product per core at the same time) on size x size x 8 size, the best of ``rounds``."""
    M, N, K = size, size, 8 * size
    import mindspore as ms
    lib = ctypes.CDLL(os.path.join(os.path.dirname(ms.__file__), "lib", "libdnnl.so.3"))
    product = lib.dnnl_sgemm if precision == "fp32" else lib.dnnl_gemm_bf16bf16f32
    dim, ptr = ctypes.c_int64, ctypes.c_void_p
    product.argtypes = [ctypes.c_char, ctypes.c_char, dim, dim, dim, ctypes.c_float, ptr, dim, ptr, dim,
                        ctypes.c_float, ptr, dim]
    cores = len(os.sched_getaffinity(0))  # as many as the kernels' threads
    rng = np.random.default_rng(0)
    operands = [[rng.standard_normal(shape, np.float32) for shape in ((M, K), (K, N))] for _ in range(cores)]
    if precision == "bf16":
        operands = [[to_bf16_bits(a) for a in pair] for pair in operands]
    outputs = [np.empty((M, N), np.float32) for _ in range(cores)]

    def run(i):
        a, b = operands[i]
        for _ in range(calls):
            product(b"N", b"N", M, N, K, 1.0, a.ctypes.data, K, b.ctypes.data, N, 0.0, outputs[i].ctypes.data, N)

    with ThreadPoolExecutor(cores) as pool:
        list(pool.map(run, range(cores)))  # warm
        best = float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            list(pool.map(run, range(cores)))
            best = min(best, time.perf_counter() - start)
    return cores * calls * 2 * M * N * K / best / 1e9


def torch_call(kernel, inputs, precision):
    """A no-argument function running PyTorch's own convolution (stride 2, padding 1) for ``kernel``."""
    import torch
    dtype = torch.float32 if precision == "fp32" else torch.bfloat16
    a, b = (torch.from_numpy(x).to(dtype) for x in inputs)
    geometry = ([2, 2], [1, 1], [1, 1], False, [0, 0], 1)  # stride, padding, dilation, transposed, out pad, groups
    backward = torch.ops.aten.convolution_backward
    if kernel == "ConvForward":  # x, w -> y
        return lambda: torch.ops.aten.convolution(a, b, None, *geometry)
    if kernel == "ConvInputGrad":  # dy, w -> dx
        x = torch.empty(a.shape[0], b.shape[1], a.shape[2] * 2, a.shape[3] * 2, dtype=dtype)
        return lambda: backward(a, x, b, None, *geometry, [True, False, False])[0]
    w = torch.empty(b.shape[1], a.shape[1], 4, 4, dtype=dtype)  # x, dy -> dw
    return lambda: backward(b, a, w, None, *geometry, [False, True, False])[1]


def timed_round(call, calls):
    """Seconds per call of ``calls`` calls, after one to warm buffers and threads."""
    call()
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def cases(batch_size, width, rng):
    """(label, kernel, inputs, output, flop) on the shapes of D's strided convolutions; each of the three
    kernels of a layer is the same multiply-adds, 2 N O (H/2) (W/2) C 16 flop."""
    for c, h, o in ((3, 64, width), (width, 32, 2 * width), (2 * width, 16, 4 * width), (4 * width, 8, 8 * width)):
        flop = 2.0 * batch_size * o * (h // 2) ** 2 * c * 16
        x = rng.standard_normal((batch_size, c, h, h), np.float32)
        w = (0.02 * rng.standard_normal((o, c, 4, 4))).astype(np.float32)
        dy = rng.standard_normal((batch_size, o, h // 2, h // 2), np.float32)
        yield f"forward {c}->{o} at {h} px", "ConvForward", [x, w], np.empty(dy.shape, np.float32), flop
        yield f"input grad {c}->{o} at {h} px", "ConvInputGrad", [dy, w], np.empty(x.shape, np.float32), flop
        yield f"weight grad {c}->{o} at {h} px", "ConvWeightGrad", [x, dy], np.empty(w.shape, np.float32), flop


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--width", type=int, default=64, help="ndf (and ngf): the layers' channels")
    p.add_argument("--precision", choices=tuple(SUFFIX), nargs="+", default=list(SUFFIX))
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--calls", type=int, default=3, help="calls per round")
    p.add_argument("--against", metavar="REV", default=None, help="also time the kernels of commit REV")
    p.add_argument("--torch", action="store_true", help="also time PyTorch's own convolutions on the same shapes")
    p.add_argument("--product_size", type=int, default=512, help="oneDNN's product timed for the reference rate: "
                   "size x size x 8 size (a CPU without bf16 instructions takes minutes on bf16's at 512)")
    args = p.parse_args()
    if args.torch:
        try:
            import torch
        except ImportError:
            sys.exit("--torch needs PyTorch: pip install -r benchmarks/requirements.txt")
        torch.set_num_threads(os.cpu_count())
    with checkout(args.against) if args.against else contextlib.nullcontext() as other:
        sides = {"this checkout": library_path(REPO)}
        if args.against:
            sides[args.against] = library_path(other)
        libs = {side: ctypes.CDLL(path) for side, path in sides.items()}
        print(f"batch {args.batch_size}, width {args.width}, median of {args.rounds} rounds of {args.calls} calls; "
              f"CPU: {os.cpu_count()} cores")
        columns = list(libs) + ["PyTorch"] * args.torch
        header = " | ".join(f"{side} ms" for side in columns)
        for precision in args.precision:
            print(f"\n{precision}: oneDNN's product on this CPU {product_rate(precision, args.product_size):.0f} GFLOP/s"
                  f"\n| kernel | {header} | GFLOP/s |" + (f" {args.against} / this |" if args.against else "")
                  + "\n|---|" + "---|" * (len(columns) + 1 + bool(args.against)))
            totals, total_flop = dict.fromkeys(columns, 0.0), 0.0
            for label, kernel, inputs, output, flop in cases(args.batch_size, args.width, np.random.default_rng(0)):
                name = kernel + SUFFIX[precision]
                found = {side: lib for side, lib in libs.items() if hasattr(lib, name)}
                calls = {side: bound_call(lib, name, inputs + [output]) for side, lib in found.items()}
                times, differs = {side: [] for side in calls}, 0.0
                for _ in range(args.rounds):
                    first = None
                    for side, call in calls.items():
                        times[side].append(timed_round(call, args.calls))
                        if first is None:
                            first = output.copy()
                        elif not np.array_equal(first, output):
                            differs = max(differs, float(np.abs(first - output).max() / np.abs(first).max()))
                if args.torch:  # after the kernels, not between their calls: its threads spin after each call
                    run = torch_call(kernel, inputs, precision)
                    times["PyTorch"] = [timed_round(run, args.calls) for _ in range(args.rounds)]
                    tolerance = 1e-4 if precision == "fp32" else 2e-2  # bfloat16 rounds its own way
                    off = float(np.abs(run().float().numpy() - output).max() / np.abs(output).max())
                    if off > tolerance:
                        sys.exit(f"PyTorch's {label} is not the kernel's ({off:.1e} of the largest): not timed alike")
                median = {side: statistics.median(t) for side, t in times.items()}
                for side, m in median.items():
                    totals[side] += m
                total_flop += flop
                cells = " | ".join(f"{median[side] * 1e3:.2f}" if side in median else "-" for side in columns)
                cells += f" | {flop / median['this checkout'] / 1e9:.0f}"
                ratio = (f" {median[args.against] / median['this checkout']:.2f} |"
                         if args.against in median and "this checkout" in median else (" - |" if args.against else ""))
                note = f" (results differ: {differs:.1e} of the largest)" if differs else ""
                print(f"| {label}{note} | {cells} |{ratio}", flush=True)
            cells = " | ".join(f"**{totals[side] * 1e3:.1f}**" for side in columns)
            cells += f" | **{total_flop / totals['this checkout'] / 1e9:.0f}**"
            ratio = f" **{totals[args.against] / totals['this checkout']:.2f}** |" if args.against else ""
            print(f"| all twelve | {cells} |{ratio}")


if __name__ == "__main__":
    main()
