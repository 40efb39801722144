"""Training throughput with 1 and with N msrun workers on this machine, same per-device batch.

    python benchmarks/distributed_scaling.py [--workers 2] [--steps 40] [--batch_size 32] [--ngf 16]

Runs ``python -m dcgan_ms.train`` once on one device and once under ``msrun`` with N workers on the
shipped sample, then reads the per-step logs and reports images per second (median over the steps
after the first 5, which include graph compilation), for one device and summed over all devices.
On a machine with fewer cores than workers x threads, the workers compete for the same cores.
"""
import argparse
import csv
import os
import platform
import socket
import subprocess
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def median_img_per_s(log_path, skip=5):
    with open(log_path) as f:
        speeds = [float(r["img_per_s"]) for r in csv.DictReader(f)]
    return float(np.median(speeds[skip:]))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch_size", type=int, default=32, help="per device")
    p.add_argument("--ngf", type=int, default=16)
    args = p.parse_args()
    common = ["--dataset", "sample", "--batch_size", str(args.batch_size), "--ngf", str(args.ngf),
              "--ndf", str(args.ngf), "--max_steps", str(args.steps), "--epochs", "1000", "--no_progress"]
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "dcgan_ms.train", *common, "--output_dir", f"{tmp}/one"],
                       cwd=REPO, check=True, env=env, capture_output=True)
        one = median_img_per_s(f"{tmp}/one/log.csv")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        subprocess.run([os.path.join(os.path.dirname(sys.executable), "msrun"), f"--worker_num={args.workers}",
                        f"--local_worker_num={args.workers}", f"--master_port={port}", f"--log_dir={tmp}/logs",
                        "--join=True", "python", "-m", "dcgan_ms.train", "--distributed", *common, "--output_dir", f"{tmp}/dist"],
                       cwd=REPO, check=True, env=env, capture_output=True)
        per_rank = [median_img_per_s(f"{tmp}/dist/log_rank{r}.csv") for r in range(args.workers)]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}")
    print(f"batch {args.batch_size} per device, ngf = ndf = {args.ngf}, {args.steps} steps, median after step 5")
    print(f"1 device:            {one:8.1f} img/s")
    print(f"{args.workers} devices (msrun): {sum(per_rank):8.1f} img/s in all "
          f"({', '.join(f'{s:.1f}' for s in per_rank)} per device); speed-up {sum(per_rank) / one:.2f}x")


if __name__ == "__main__":
    main()
