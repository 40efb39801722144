"""Does this checkout train exactly as commit REV does? A fixed-seed quickstart-size run at each, with
``--conv auto`` and ``--conv builtin``; generator.ckpt, discriminator.ckpt and log.csv's loss columns
compared to the bit (a refactor must change none of them).

    python benchmarks/same_training.py --against 52ffb0b
    python benchmarks/same_training.py --against 52ffb0b --steps 120 --conv auto

Each run is its own process (``python -m dcgan_ms.train`` in that checkout); prints one line per file
and exits 1 when any differs.
"""
import argparse
import csv
import hashlib
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkouts import checkout  # noqa: E402

QUICKSTART = ["--dataset", "sample", "--ngf", "16", "--ndf", "16", "--batch_size", "32", "--lr", "4e-4",
              "--instance_noise", "0.15", "--ema", "0.99", "--seed", "7", "--no_progress"]
LOSS_COLUMNS = ("step", "epoch", "g_loss", "d_loss", "d_real", "d_fake")


def run(repo, out, *, steps, conv):
    """Train ``steps`` steps with the checkout at ``repo`` into ``out``; the fingerprints of what it wrote."""
    env = dict(os.environ, PYTHONPATH=repo)
    command = [sys.executable, "-m", "dcgan_ms.train", *QUICKSTART, "--conv", conv, "--max_steps", str(steps),
               "--epochs", "100", "--output_dir", out]
    done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"training in {repo} failed:\n{done.stderr[-2000:]}")
    prints = {name: hashlib.sha256(open(os.path.join(out, name), "rb").read()).hexdigest()
              for name in ("generator.ckpt", "discriminator.ckpt")}
    with open(os.path.join(out, "log.csv"), newline="") as f:
        losses = [[row[k] for k in LOSS_COLUMNS] for row in csv.DictReader(f)]
    prints["log.csv losses"] = hashlib.sha256(repr(losses).encode()).hexdigest()
    return prints


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--against", required=True, help="the commit to compare with")
    p.add_argument("--steps", type=int, default=100, help="steps of each run (the sample: 46 an epoch)")
    p.add_argument("--conv", nargs="+", default=["auto", "builtin"])
    args = p.parse_args()
    differ = 0
    with checkout(args.against) as other, tempfile.TemporaryDirectory() as tmp:
        for conv in args.conv:
            here = run(REPO, os.path.join(tmp, f"here-{conv}"), steps=args.steps, conv=conv)
            there = run(other, os.path.join(tmp, f"there-{conv}"), steps=args.steps, conv=conv)
            for name in here:
                same = here[name] == there[name]
                differ += not same
                print(f"--conv {conv:7} {name:18} {'same' if same else 'DIFFERENT'} ({here[name][:12]} / "
                      f"{there[name][:12]})")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
