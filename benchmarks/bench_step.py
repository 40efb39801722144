"""The DCGAN train step, MindSpore (this package) against PyTorch, measured in one run.

    pip install -r benchmarks/requirements.txt          # adds torch==2.13.0 (CPU), benchmark only
    python benchmarks/bench_step.py                     # full step, A/B/A/B, batch 128, ngf = ndf = 64
    python benchmarks/bench_step.py --tutorial_layers   # ... and the step with the tutorial's layers
    python benchmarks/bench_step.py --bf16              # ... and both in bf16: --precision bf16, autocast
    MS_DEV_HOST_BLOCKING_RUN=0 python benchmarks/bench_step.py   # with MindSpore's default dispatch
    python benchmarks/bench_step.py --layers            # forward and forward+backward of each layer type
    python benchmarks/bench_step.py --data              # the data pipeline alone, img/s
    python benchmarks/bench_step.py --memory            # peak RSS of a batch-128 training run
    python benchmarks/bench_step.py --onednn_limit      # the step with and without ONEDNN_MAX_CPU_ISA=AVX2

Both steps are the same mathematics: the tutorial's architecture and initialisation, BCE loss,
Adam(2e-4, 0.5) for each network, G's step then D's step on the same G(z); the PyTorch one is
``benchmarks/torch_dcgan.py``, structured as pytorch/examples' dcgan. After warm-up the two are timed
in alternating rounds (A B A B ...), so a change in the machine's load hits both; the report gives
the median img/s of each, the ratio, and the machine. Figures on a shared machine are noisy.

With ``--bf16`` both frameworks are also timed in mixed precision: dcgan_ms with ``--precision bf16``
(its compiled convolutions multiply bfloat16 operands, summing in float32) and PyTorch under its
one-line ``torch.autocast("cpu", dtype=torch.bfloat16)``; each is compared with PyTorch in the same
precision. The CPU's bfloat16 instructions (avx512_bf16, amx_bf16) are named with the machine.

The MindSpore rows: dcgan_ms as it trains (on CPU with its compiled convolution kernels,
``dcgan_ms/kernels/``, when they build), the same with MindSpore's built-in convolutions, and
with ``--tutorial_layers`` the tutorial's layers throughout. All run with ``set_device("CPU")``,
which sets MS_DEV_HOST_BLOCKING_RUN=1 (``dcgan_ms/runtime.py``); MindSpore reads it once per
process, so its effect is measured by a second run with MS_DEV_HOST_BLOCKING_RUN=0.
"""
import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dcgan_ms  # noqa: E402,F401  (quiets MindSpore's logs before it is imported)


def machine():
    cpu = "unknown CPU"
    if os.path.exists("/proc/cpuinfo"):
        names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
        cpu = names[0] if names else cpu
    import mindspore as ms
    try:
        import torch
        torch_version = torch.__version__
    except ImportError:
        torch_version = "not installed"
    from dcgan_ms import kernels
    try:
        built = f"compiled convolutions {kernels.build().name}"
    except kernels.Unavailable as e:
        built = f"no compiled convolutions ({e})"
    from dcgan_ms.runtime import cpu_flags
    bf16 = [flag for flag in kernels.BF16_FLAGS if flag in cpu_flags()]
    cpu += f" ({', '.join(bf16) if bf16 else 'no bfloat16 instructions'})"
    return (f"{platform.machine()}, {cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, "
            f"MindSpore {ms.__version__}, PyTorch {torch_version}; "
            f"MS_DEV_HOST_BLOCKING_RUN={os.environ.get('MS_DEV_HOST_BLOCKING_RUN', 'unset')}; {built}")


def mindspore_step(args, conv="auto", precision="fp32"):
    """dcgan_ms's train step on networks rewritten for ``conv`` and ``precision`` (``layers.speed_up``);
    with ``conv=None`` the tutorial's networks as built (MindSpore's own layers throughout), so that
    what the faster forms save is measured in the same run."""
    import mindspore as ms
    from dcgan_ms import kernels
    from dcgan_ms.layers import speed_up
    from dcgan_ms.models import Discriminator, Generator
    from dcgan_ms.step import make_optimizers, make_train_step
    ms.set_seed(0)
    g, d = Generator(args.nz, args.ngf), Discriminator(args.ndf)
    if conv is None:
        kernels.use_compiled("builtin")  # oneDNN limited to AVX2, as for every run on MindSpore's convolutions
    else:
        speed_up(g, conv, precision)
        speed_up(d, conv, precision)
    g.set_train()
    d.set_train()
    step = make_train_step(g, d, *make_optimizers(g, d))
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.uniform(-1, 1, (args.batch_size, 3, 64, 64)).astype(np.float32))
    z = ms.Tensor(rng.standard_normal((args.batch_size, args.nz, 1, 1)).astype(np.float32))
    return lambda: [float(v) for v in step(x, z)]


def torch_step(args, precision="fp32"):
    import torch
    from torch_dcgan import make_train_step
    step, _, _ = make_train_step(args.nz, args.ngf, args.ndf, precision=precision)
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.uniform(-1, 1, (args.batch_size, 3, 64, 64)).astype(np.float32))
    z = torch.tensor(rng.standard_normal((args.batch_size, args.nz, 1, 1)).astype(np.float32))
    return lambda: step(x, z)


def timed(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def bench_steps(args):
    from dcgan_ms import kernels
    steps = {"MindSpore (dcgan_ms, graph mode)": mindspore_step(args)}
    if kernels.use_compiled("auto") and not args.no_builtin:
        steps["MindSpore, dcgan_ms with MindSpore's convolutions (graph mode)"] = mindspore_step(args, "builtin")
    if args.tutorial_layers:
        steps["MindSpore, the tutorial's layers (graph mode)"] = mindspore_step(args, None)
    steps["PyTorch (eager)"] = torch_step(args)
    if args.bf16:
        steps["MindSpore (dcgan_ms --precision bf16, graph mode)"] = mindspore_step(args, precision="bf16")
        steps["PyTorch bf16 (eager, autocast)"] = torch_step(args, "bf16")
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    times = {name: [] for name in steps}
    for r in range(args.rounds):
        for name, step in steps.items():
            times[name].append(timed(step, args.steps))
        print(f"round {r + 1}: " + ", ".join(f"{name.split(' (')[0]} {t[-1]:.3f} s/step" for name, t in times.items()),
              flush=True)
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"\ntrain step, batch {args.batch_size}, ngf {args.ngf}, ndf {args.ndf}, median of {args.rounds} rounds "
          f"of {args.steps} steps:")
    print("| framework | s/step | img/s | img/s / PyTorch's in the same precision |\n|---|---|---|---|")
    for name, m in median.items():
        torch_median = median["PyTorch bf16 (eager, autocast)" if "bf16" in name else "PyTorch (eager)"]
        print(f"| {name} | {m:.3f} | {args.batch_size / m:.1f} | {torch_median / m:.2f}x |")


def bench_onednn_limit(args):
    """MindSpore's step with and without oneDNN's dispatch limit (ONEDNN_MAX_CPU_ISA=AVX2), for the
    compiled and the built-in convolutions. oneDNN reads the limit once per process, so each
    measurement is a process of its own (``--conv``), the two settings alternating round by round."""
    from dcgan_ms import kernels
    settings = {"no limit (ALL)": "ALL", "AVX2 limit": "AVX2"}
    convs = ["auto"] + ([] if args.no_builtin else ["builtin"])
    skipped = {("builtin", "no limit (ALL)")} if args.skip_reference else set()
    times = {(conv, name): [] for conv in convs for name in settings if (conv, name) not in skipped}
    for r in range(args.rounds):
        for conv, name in times:
            cmd = [sys.executable, os.path.abspath(__file__), "--conv", conv, "--batch_size", str(args.batch_size),
                   "--nz", str(args.nz), "--ngf", str(args.ngf), "--ndf", str(args.ndf), "--warmup",
                   str(args.warmup), "--steps", str(args.steps), "--rounds", "1"]
            proc = subprocess.run(cmd, env={**os.environ, "ONEDNN_MAX_CPU_ISA": settings[name]}, capture_output=True,
                                  text=True, check=True)
            times[conv, name].append(float(proc.stdout.split()[-1]))
            print(f"round {r + 1}: --conv {conv}, {name}: {times[conv, name][-1]:.3f} s/step", flush=True)
    print(f"\ntrain step, batch {args.batch_size}, ngf {args.ngf}, ndf {args.ndf}, median of {args.rounds} rounds "
          f"of {args.steps} steps, one process each:")
    print("| convolutions | " + " | ".join(settings) + " | limit / no limit |\n|---|---|---|---|")
    for conv in convs:
        m = [statistics.median(times[conv, name]) if (conv, name) in times else None for name in settings]
        cells = " | ".join("not run" if t is None else f"{t:.3f} s" for t in m)
        ratio = "" if None in m else f"{m[1] / m[0]:.2f}x"
        print(f"| --conv {conv} | {cells} | {ratio} |")
    if ("builtin", "AVX2 limit") in times and kernels.use_compiled("auto"):  # auto trains without the limit
        ratio = statistics.median(times["builtin", "AVX2 limit"]) / statistics.median(times["auto", "no limit (ALL)"])
        print(f"without a compiler (MindSpore's convolutions, AVX2 limit) against the compiled kernels as they train "
              f"(no limit): {ratio:.2f}x the time a step")


def one_step_time(args):
    """The median s/step of dcgan_ms's step with ``--conv``, alone, printed last (for ``--onednn_limit``)."""
    step = mindspore_step(args, args.conv)
    for _ in range(args.warmup):
        step()
    print(statistics.median(timed(step, args.steps) for _ in range(max(args.rounds, 1))))


def _mindspore_layer_fns(layer, weights):
    """Jitted forward, and forward + gradients w.r.t. the input and weights, of sum(layer(x)).
    (Named functions: MindSpore's graph mode cannot parse lambdas.)"""
    import mindspore as ms

    def forward(x):
        return layer(x).sum()

    return ms.jit(forward), ms.jit(ms.value_and_grad(forward, 0, weights if weights else None))


def bench_layers(args):
    """Forward, and forward + backward (input and weight gradients), of each layer type."""
    import mindspore as ms
    import torch
    from mindspore import nn as mnn
    from torch import nn as tnn

    from dcgan_ms import kernels
    from dcgan_ms.layers import (BatchNormActivation, LeakyReLU, StridedConv2d, StridedConv2dTranspose,
                                 WholeKernelConv2d, WholeKernelConv2dTranspose)
    b, g, d = args.batch_size, args.ngf, args.ndf
    compiled = kernels.use_compiled("auto")
    cases = [  # name, input shape, MindSpore layer, PyTorch layer
        ("G ConvT nz->8g 1->4", (b, args.nz, 1, 1), mnn.Conv2dTranspose(args.nz, g * 8, 4, 1, "valid"),
         tnn.ConvTranspose2d(args.nz, g * 8, 4, 1, 0, bias=False)),
        ("  the same as dcgan_ms computes it (matmul)", (b, args.nz, 1, 1),
         WholeKernelConv2dTranspose(args.nz, g * 8, 4),
         tnn.ConvTranspose2d(args.nz, g * 8, 4, 1, 0, bias=False)),
        ("G ConvT 8g->4g 4->8", (b, g * 8, 4, 4), mnn.Conv2dTranspose(g * 8, g * 4, 4, 2, "pad", 1),
         tnn.ConvTranspose2d(g * 8, g * 4, 4, 2, 1, bias=False)),
        ("G ConvT 4g->2g 8->16", (b, g * 4, 8, 8), mnn.Conv2dTranspose(g * 4, g * 2, 4, 2, "pad", 1),
         tnn.ConvTranspose2d(g * 4, g * 2, 4, 2, 1, bias=False)),
        ("G ConvT 2g->g 16->32", (b, g * 2, 16, 16), mnn.Conv2dTranspose(g * 2, g, 4, 2, "pad", 1),
         tnn.ConvTranspose2d(g * 2, g, 4, 2, 1, bias=False)),
        ("G ConvT g->3 32->64", (b, g, 32, 32), mnn.Conv2dTranspose(g, 3, 4, 2, "pad", 1),
         tnn.ConvTranspose2d(g, 3, 4, 2, 1, bias=False)),
        ("D Conv 3->d 64->32", (b, 3, 64, 64), mnn.Conv2d(3, d, 4, 2, "pad", 1), tnn.Conv2d(3, d, 4, 2, 1, bias=False)),
        ("D Conv d->2d 32->16", (b, d, 32, 32), mnn.Conv2d(d, d * 2, 4, 2, "pad", 1),
         tnn.Conv2d(d, d * 2, 4, 2, 1, bias=False)),
        ("D Conv 2d->4d 16->8", (b, d * 2, 16, 16), mnn.Conv2d(d * 2, d * 4, 4, 2, "pad", 1),
         tnn.Conv2d(d * 2, d * 4, 4, 2, 1, bias=False)),
        ("D Conv 4d->8d 8->4", (b, d * 4, 8, 8), mnn.Conv2d(d * 4, d * 8, 4, 2, "pad", 1),
         tnn.Conv2d(d * 4, d * 8, 4, 2, 1, bias=False)),
        ("D Conv 8d->1 4->1", (b, d * 8, 4, 4), mnn.Conv2d(d * 8, 1, 4, 1, "valid"), tnn.Conv2d(d * 8, 1, 4, 1, 0, bias=False)),
        ("  the same as dcgan_ms computes it (matmul)", (b, d * 8, 4, 4), WholeKernelConv2d(d * 8, 1, 4),
         tnn.Conv2d(d * 8, 1, 4, 1, 0, bias=False)),
        ("BatchNorm2d + LeakyReLU(0.2) 2d @16x16", (b, d * 2, 16, 16),
         mnn.SequentialCell(mnn.BatchNorm2d(d * 2), LeakyReLU(0.2, compiled)),
         tnn.Sequential(tnn.BatchNorm2d(d * 2), tnn.LeakyReLU(0.2))),
        ("BatchNorm2d + ReLU g @32x32", (b, g, 32, 32), mnn.SequentialCell(mnn.BatchNorm2d(g), mnn.ReLU()),
         tnn.Sequential(tnn.BatchNorm2d(g), tnn.ReLU())),
        ("LeakyReLU(0.2) d @32x32", (b, d, 32, 32), mnn.LeakyReLU(0.2), tnn.LeakyReLU(0.2)),
        ("  the same as dcgan_ms computes it (0.2x + 0.8relu(x))", (b, d, 32, 32), LeakyReLU(0.2),
         tnn.LeakyReLU(0.2)),
        ("ReLU g @32x32", (b, g, 32, 32), mnn.ReLU(), tnn.ReLU()),
        ("Tanh 3 @64x64", (b, 3, 64, 64), mnn.Tanh(), tnn.Tanh()),
    ]
    if compiled:  # after each strided layer, the same as dcgan_ms computes it on this CPU
        for i in range(len(cases) - 1, -1, -1):
            name, shape, m_layer, t_layer = cases[i]
            if isinstance(m_layer, (mnn.Conv2d, mnn.Conv2dTranspose)) and m_layer.stride == (2, 2):
                cls = StridedConv2d if isinstance(m_layer, mnn.Conv2d) else StridedConv2dTranspose
                cases.insert(i + 1, ("  the same as dcgan_ms computes it (compiled kernel)", shape,
                                     cls(m_layer.in_channels, m_layer.out_channels, compiled=True), t_layer))
                if args.no_builtin:  # the compiled row alone, under the layer's name
                    cases[i + 1] = (f"{name} (compiled kernel)",) + cases[i + 1][1:]
                    del cases[i]
            elif isinstance(m_layer, LeakyReLU):
                cases.insert(i + 1, ("  the same, one pass each way (compiled kernel)", shape, LeakyReLU(0.2, True),
                                     t_layer))
            elif name.startswith("BatchNorm2d"):
                alpha = 0.2 if "Leaky" in name else 0
                cases.insert(i + 1, ("  the same, one kernel each way (compiled)", shape,
                                     BatchNormActivation(shape[1], alpha), t_layer))
    print(f"| layer (batch {b}) | MindSpore fwd | MindSpore fwd+bwd | PyTorch fwd | PyTorch fwd+bwd | bwd ratio MS/PT |")
    print("|---|---|---|---|---|---|")
    for name, shape, m_layer, t_layer in cases:
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        m_layer.set_train()
        mx = ms.Tensor(x)
        weights = m_layer.trainable_params()
        fwd, both = _mindspore_layer_fns(m_layer, weights)
        tx = torch.tensor(x, requires_grad=True)

        def t_fwd():
            with torch.no_grad():
                t_layer(tx).sum().item()

        def t_both():
            t_layer.zero_grad()
            t_layer(tx).sum().backward()

        for fn in (lambda: fwd(mx).asnumpy(), lambda: both(mx)[0].asnumpy(), t_fwd, t_both):
            fn()  # warm-up and compile
        res = [statistics.median(timed(fn, 2) for _ in range(args.rounds))
               for fn in (lambda: fwd(mx).asnumpy(), lambda: both(mx)[0].asnumpy(), t_fwd, t_both)]
        print(f"| {name} | {res[0]:.3f} s | {res[1]:.3f} s | {res[2]:.3f} s | {res[3]:.3f} s | "
              f"{res[1] / res[3]:.2f} |", flush=True)


def bench_data(args):
    """The pipeline alone, both ways: images decoded every epoch (as a set larger than
    ``IN_MEMORY_BYTES`` is), and decoded once and kept (as a smaller set is): img/s, and the CPU
    time (all threads) an epoch of the set costs, which on a small machine the train step competes with."""
    from dcgan_ms.data import SAMPLE_DIR, create_dataset
    for in_memory, how in ((False, "decoded every epoch"), (True, "decoded once, kept in memory")):
        made = time.perf_counter()
        dataset = create_dataset(args.data_root or SAMPLE_DIR, args.batch_size, num_parallel_workers=args.num_workers,
                                 in_memory=in_memory)
        made = time.perf_counter() - made
        epoch_images = dataset.steps_per_epoch * args.batch_size
        it = dataset.dataset.repeat().create_tuple_iterator(num_epochs=1, output_numpy=True)
        next(it)
        n, t0, cpu0 = 0, time.perf_counter(), time.process_time()
        while n < args.data_images:
            n += len(next(it)[0])
        ips, cpu = n / (time.perf_counter() - t0), (time.process_time() - cpu0) / n * epoch_images
        print(f"data pipeline, {how} (decode, resize, crop, scale, HWC2CHW, batch {args.batch_size}, "
              f"{args.num_workers} workers): {ips:.0f} img/s over {n} images; {cpu * 1000:.0f} ms of CPU an epoch "
              f"of {epoch_images} images; {made:.2f} s to make the dataset")


def bench_memory(args):
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([sys.executable, "-m", "dcgan_ms.train", "--dataset", "sample", "--batch_size",
                               str(args.batch_size), "--max_steps", "3", "--output_dir", tmp, "--no_progress"],
                              cwd=REPO, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stderr)
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # ru_maxrss is in KiB on Linux
    print(f"peak resident memory of `python -m dcgan_ms.train --batch_size {args.batch_size} --max_steps 3`: "
          f"{peak_mib:.0f} MiB ({peak_mib * 2**20 / 1e9:.2f} GB)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--layers", action="store_true", help="per-layer breakdown instead of the full step")
    p.add_argument("--data", action="store_true", help="data pipeline throughput instead of the full step")
    p.add_argument("--memory", action="store_true", help="peak RSS of a short training run")
    p.add_argument("--tutorial_layers", action="store_true",
                   help="also time the step with MindSpore's own layers where dcgan_ms uses faster forms")
    p.add_argument("--bf16", action="store_true", help="also time both in bf16 (dcgan_ms --precision bf16, "
                   "PyTorch autocast)")
    p.add_argument("--no_builtin", action="store_true",
                   help="leave out MindSpore's own strided convolutions (on a CPU where they are very slow)")
    p.add_argument("--onednn_limit", action="store_true",
                   help="the step with and without ONEDNN_MAX_CPU_ISA=AVX2, compiled and built-in convolutions")
    p.add_argument("--skip_reference", action="store_true",
                   help="with --onednn_limit, leave out the built-in convolutions without the limit (on AVX-512 "
                        "oneDNN's reference code: minutes a step at batch 128)")
    p.add_argument("--conv", choices=("auto", "compiled", "builtin"), default=None,
                   help="time dcgan_ms's step alone with these convolutions (one process of --onednn_limit)")
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--nz", type=int, default=100)
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--warmup", type=int, default=2, help="untimed steps of each framework first")
    p.add_argument("--rounds", type=int, default=3, help="alternating timed rounds")
    p.add_argument("--steps", type=int, default=2, help="steps per round")
    p.add_argument("--data_root", default=None, help="images for --data (default: the sample)")
    p.add_argument("--data_images", type=int, default=5000, help="images to read with --data")
    p.add_argument("--num_workers", type=int, default=2, help="pipeline workers for --data")
    args = p.parse_args()
    from dcgan_ms.runtime import set_device
    set_device("CPU")  # as training does: before MindSpore runs its first operator
    print(machine())
    if args.onednn_limit:
        bench_onednn_limit(args)
    elif args.conv:
        one_step_time(args)
    elif args.layers:
        bench_layers(args)
    elif args.data:
        bench_data(args)
    elif args.memory:
        bench_memory(args)
    else:
        bench_steps(args)


if __name__ == "__main__":
    main()
