"""Wall time per step of a 2-worker msrun run, this checkout against another commit (A/B rounds).

    python benchmarks/distributed_step_cost.py --against REV [--rounds 2] [--short 40] [--long 240]

Each side runs ``scripts/run_distributed.sh 2`` at the quickstart's size (the sample, batch 32 per
device, ngf = ndf = 16, instance noise, EMA) for ``--short`` and for ``--long`` steps; the
difference of the two wall times over the difference of the steps is the time of a step with
everything around it (the data, the callbacks, the ranks' agreement), start-up and compilation
cancelled. REV is checked out with ``git worktree`` into a temporary folder. Rounds alternate the
sides; the ratio is taken within each round.
"""
import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from checkouts import checkout

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = ["--dataset", "sample", "--batch_size", "32", "--ngf", "16", "--ndf", "16", "--lr", "4e-4",
         "--instance_noise", "0.15", "--ema", "0.99", "--epochs", "1000", "--save_minutes", "0", "--no_progress"]


def wall_seconds(checkout, steps, out):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
           "MASTER_PORT": str(port), "LOG_DIR": f"{out}-logs"}
    start = time.perf_counter()
    subprocess.run(["bash", "scripts/run_distributed.sh", "2", *FLAGS, "--max_steps", str(steps), "--output_dir", out],
                   cwd=checkout, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--against", required=True, help="the commit to compare with (e.g. the one before a change)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--short", type=int, default=40)
    p.add_argument("--long", type=int, default=240)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp, checkout(args.against) as other:
        sides = {"this checkout": REPO, args.against: other}
        per_step = {name: [] for name in sides}
        for r in range(args.rounds):
            for side, (name, folder) in enumerate(sides.items()):
                short = wall_seconds(folder, args.short, f"{tmp}/{r}-{side}-short")
                long = wall_seconds(folder, args.long, f"{tmp}/{r}-{side}-long")
                per_step[name].append((long - short) / (args.long - args.short))
                print(f"round {r + 1}, {name}: {per_step[name][-1] * 1e3:.1f} ms a step", flush=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}")
    mine, theirs = per_step["this checkout"], per_step[args.against]
    ratios = [a / b for a, b in zip(mine, theirs)]
    print(f"2 msrun workers, quickstart size, steps {args.short} to {args.long}: this checkout "
          f"{statistics.median(mine) * 1e3:.1f} ms a step, {args.against} {statistics.median(theirs) * 1e3:.1f} "
          f"ms (medians); per round {', '.join(f'{r:.3f}' for r in ratios)} (this / that)")


if __name__ == "__main__":
    main()
