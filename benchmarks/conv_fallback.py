"""What training costs without a C++ compiler: ``python -m dcgan_ms.train --conv builtin`` against
``--conv auto`` (the compiled kernels where they build), through the command line, in alternating rounds.

    python benchmarks/conv_fallback.py                                  # the quickstart's size
    python benchmarks/conv_fallback.py --batch_size 128 --ngf 64 --steps 12 --skip 4   # the tutorial's
    python benchmarks/conv_fallback.py --reference                      # and --conv builtin with no oneDNN limit

Each run trains ``--steps`` steps on the shipped sample; the step time is the median of the per-step
times in its log.csv after the first ``--skip`` (graph compilation). ``--conv builtin`` runs with the
oneDNN limit dcgan_ms sets on AVX-512 CPUs (``runtime.limit_onednn_to_avx2``); ``--reference`` adds
it with ONEDNN_MAX_CPU_ISA=ALL, as it was before that limit (slow: seconds a step).
"""
import argparse
import csv
import os
import platform
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def step_seconds(args, conv, out, env):
    cmd = [sys.executable, "-m", "dcgan_ms.train", "--dataset", "sample", "--batch_size", str(args.batch_size),
           "--ngf", str(args.ngf), "--ndf", str(args.ngf), "--lr", "4e-4", "--instance_noise", "0.15", "--ema", "0.99",
           "--epochs", "1000", "--max_steps", str(args.steps), "--conv", conv, "--output_dir", out, "--no_progress"]
    subprocess.run(cmd, cwd=REPO, env={**os.environ, **env}, check=True, capture_output=True)
    with open(os.path.join(out, "log.csv")) as f:
        rows = list(csv.DictReader(f))[args.skip:]
    return statistics.median(args.batch_size / float(r["img_per_s"]) for r in rows)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--ngf", type=int, default=16, help="and ndf")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--skip", type=int, default=10, help="first steps left out (compilation)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--reference", action="store_true", help="also --conv builtin with ONEDNN_MAX_CPU_ISA=ALL")
    args = p.parse_args()
    unset = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")}
    os.environ.clear()
    os.environ.update(unset)
    sides = {"--conv auto": ("auto", {}), "--conv builtin": ("builtin", {})}
    if args.reference:
        sides["--conv builtin, ONEDNN_MAX_CPU_ISA=ALL"] = ("builtin", {"ONEDNN_MAX_CPU_ISA": "ALL"})
    times = {name: [] for name in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for i, (name, (conv, env)) in enumerate(sides.items()):
                times[name].append(step_seconds(args, conv, f"{tmp}/{r}-{i}", env))
                print(f"round {r + 1}: {name}: {times[name][-1]:.3f} s a step", flush=True)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    print(f"\n{platform.machine()}, {cpu}, {os.cpu_count()} cores; batch {args.batch_size}, ngf = ndf = {args.ngf}, "
          f"median step of steps {args.skip + 1}-{args.steps}, median of {args.rounds} rounds:")
    auto = statistics.median(times["--conv auto"])
    print("| run | s a step | / --conv auto |\n|---|---|---|")
    for name, t in times.items():
        print(f"| {name} | {statistics.median(t):.3f} | {statistics.median(t) / auto:.2f}x |")


if __name__ == "__main__":
    main()
