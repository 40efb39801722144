"""The SWD's time (``dcgan_ms.swd.swd``), as report.html and evaluate score: 256 images a side from the
sample, alternating with commit REV when given, each in its own process.

    python benchmarks/bench_swd.py                      # this checkout
    python benchmarks/bench_swd.py --against 189a4a4    # and another commit, A B A B ...

Prints each round's seconds, the medians and whether both sides gave the same numbers.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkouts import checkout  # noqa: E402

TIMED = """
import json, sys, time
from dcgan_ms.data import SAMPLE_DIR
from dcgan_ms.images import real_images
from dcgan_ms.swd import swd
images = real_images(SAMPLE_DIR, 2 * {num}, seed=0)
swd(images[:8], images[8:16])  # the kernels built, the threads started
start = time.perf_counter()
result = swd(images[:{num}], images[{num}:], 3)
print(json.dumps({{"seconds": time.perf_counter() - start, "mean": result["mean"]}}))
"""


def timed(repo, num):
    done = subprocess.run([sys.executable, "-c", TIMED.format(num=num)], cwd=repo, env=dict(os.environ, PYTHONPATH=repo),
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--against", default=None, help="another commit, timed in alternation")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--num", type=int, default=256, help="images a side")
    args = p.parse_args()
    sides = {"this checkout": REPO}
    with checkout(args.against) if args.against else open(os.devnull) as other:
        if args.against:
            sides[args.against] = other
        runs = {name: [] for name in sides}
        for i in range(args.rounds):
            for name, repo in sides.items():
                runs[name].append(timed(repo, args.num))
                print(f"round {i + 1} {name}: {runs[name][-1]['seconds']:.2f} s (SWD {runs[name][-1]['mean']:.4f})")
    for name, results in runs.items():
        print(f"{name}: median {statistics.median(r['seconds'] for r in results):.2f} s")
    means = {r["mean"] for results in runs.values() for r in results}
    print("the same SWD on every run" if len(means) == 1 else f"SWDs differ: {sorted(means)}")


if __name__ == "__main__":
    main()
