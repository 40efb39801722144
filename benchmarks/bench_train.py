"""Whole training runs as a user feels them: ``python -m dcgan_ms.train`` against a plain PyTorch script
doing the same work (``torch_train.py``), wall time from process start to exit, in alternating rounds.

    pip install -r benchmarks/requirements.txt
    python benchmarks/bench_train.py                          # both sizes, 2 rounds each (about 30 min)
    python benchmarks/bench_train.py --size quickstart --epochs 6 --rounds 3
    python benchmarks/bench_train.py --size tutorial --breakdown
    python benchmarks/bench_train.py --size quickstart --epochs 3 --rounds 0 --breakdown   # the breakdown alone
    python benchmarks/bench_train.py --size quickstart --against REV   # and dcgan_ms at another commit
    python benchmarks/bench_train.py --precision bf16         # both in bf16: --precision bf16 against autocast
    python benchmarks/bench_train.py --size quickstart --epochs 3 --rounds 0 --end 3 --against REV   # the end, A/B

Sizes:
- quickstart: the README's quickstart (the shipped sample, batch 32, ngf = ndf = 16, instance noise
  0.1, 26 epochs = 1,196 steps; --epochs shortens it);
- tutorial: the tutorial's sizes (batch 128, ngf = ndf = 64), 30 steps on 4,000 avatars drawn by
  ``dcgan_ms.data.synth`` (so the 30 steps stay within one epoch).
Both sides write a log row per step and, per epoch, a fixed-noise grid and G's and D's weights
(dcgan_ms also a resume checkpoint: that is part of what it does). Each side runs in its own process,
A B A B ...; the report gives each run's wall time, the medians and the speed ratio (PyTorch's time /
dcgan_ms's: above 1, dcgan_ms is faster). ``--breakdown`` adds one dcgan_ms run in this process with
every callback timed: where its time goes (start-up and setup, first step with graph compile,
steps, the rest of the loop incl. data, each callback). ``--against REV`` adds a third side, the same
command at commit REV (a ``git worktree``), for A/B of a change. ``--precision bf16`` runs dcgan_ms
with ``--precision bf16`` and PyTorch under ``torch.autocast("cpu", dtype=torch.bfloat16)``
(``torch_dcgan.py``). ``--end N``: N rounds (alternating with REV) of the command alone, timed from the
end of its last step to the process's exit (``END_PROBE``): what the user waits for once training is
done. Figures on a shared machine are noisy.
"""
import os

CLEAN_ENV = dict(os.environ)  # before MindSpore is imported here: it sets LD_LIBRARY_PATH, which slows torch

import argparse  # noqa: E402
import collections  # noqa: E402
import contextlib  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, REPO)
from checkouts import checkout  # noqa: E402

SIZES = {"quickstart": dict(batch_size=32, ngf=16, ndf=16, instance_noise=0.1, epochs=26),
         "tutorial": dict(batch_size=128, ngf=64, ndf=64, instance_noise=0.0, epochs=1, max_steps=30)}


def flags(size, epochs=None):
    f = dict(SIZES[size])
    if epochs:
        f["epochs"] = epochs
    return [arg for k, v in f.items() for arg in (f"--{k}", str(v))]


def timed(cmd, cwd=REPO):
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=CLEAN_ENV)
    seconds = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return seconds


def data_for(size, tmp):
    if size == "quickstart":
        from dcgan_ms.data import SAMPLE_DIR
        return SAMPLE_DIR
    from dcgan_ms.data.synth import make_avatars
    root = os.path.join(tmp, "avatars4000")
    make_avatars(root, 4000, seed=1, progress=False)
    return root


def compare(size, rounds, epochs, tmp, against=None, precision="fp32"):
    """PyTorch's time over dcgan_ms's in each round (and, with ``against`` = (rev, folder), dcgan_ms at rev)."""
    data = data_for(size, tmp)
    same = ["--precision", precision] if precision != "fp32" else []  # older checkouts (--against) lack the flag
    ours = [sys.executable, "-m", "dcgan_ms.train", "--data_root", data, "--no_progress", "--overwrite",
            "--output_dir", os.path.join(tmp, "ms"), *flags(size, epochs), *same]
    theirs = [sys.executable, os.path.join(HERE, "torch_train.py"), "--data_root", data,
              "--output_dir", os.path.join(tmp, "torch"), *flags(size, epochs), *same]
    times = collections.defaultdict(list)
    if rounds == 0:  # --breakdown alone
        return data
    for r in range(rounds):
        times["dcgan_ms"].append(timed(ours))
        times["pytorch"].append(timed(theirs))
        line = f"  round {r + 1}: dcgan_ms {times['dcgan_ms'][-1]:.1f} s, PyTorch {times['pytorch'][-1]:.1f} s"
        if against:
            times[against[0]].append(timed(ours, cwd=against[1]))
            line += f", dcgan_ms at {against[0]} {times[against[0]][-1]:.1f} s"
        print(line, flush=True)
    ms, pt = statistics.median(times["dcgan_ms"]), statistics.median(times["pytorch"])
    ratios = [p / m for m, p in zip(times["dcgan_ms"], times["pytorch"])]
    print(f"{size}, {precision}: dcgan_ms {ms:.1f} s, PyTorch {pt:.1f} s (medians of {rounds}); speed ratio "
          f"{statistics.median(ratios):.2f}x (per round {', '.join(f'{x:.2f}' for x in ratios)})", flush=True)
    if against:
        ab = [o / m for m, o in zip(times["dcgan_ms"], times[against[0]])]
        print(f"{size}: dcgan_ms at {against[0]} {statistics.median(times[against[0]]):.1f} s; its time / this "
              f"checkout's {statistics.median(ab):.3f} (per round {', '.join(f'{x:.3f}' for x in ab)})", flush=True)
    return data


class Timed:
    """Wraps a callback and adds the seconds spent in each of its hooks to ``totals``."""

    def __init__(self, callback, totals):
        self.callback, self.totals = callback, totals

    def __getattr__(self, hook):
        method = getattr(self.callback, hook)

        def call(*args):
            start = time.perf_counter()
            try:
                return method(*args)
            finally:
                self.totals[f"{type(self.callback).__name__}.{hook}"] += time.perf_counter() - start
        return call


class StepClock:
    """Times the steps (as the loop measures them) and the intervals between them. Put last: an
    interval then holds the step, the data fetch, the loop and the other callbacks' on_step_end, and
    not their epoch-end work (the clock restarts after it)."""

    def __init__(self):
        self.steps, self.last_end, self.between = [], None, 0.0

    def on_train_begin(self, position):
        self.last_end = time.perf_counter()

    def on_step_end(self, position, losses, real_imgs):
        now = time.perf_counter()
        self.steps.append(losses.seconds)
        self.between += now - self.last_end - losses.seconds
        self.last_end = now

    def on_epoch_end(self, position):
        self.last_end = time.perf_counter()

    def on_train_end(self, position, stop):
        pass


# The CLI, run as ``python -m dcgan_ms.train``, printing when its last step ended (the loop's
# callbacks are told right after each step): the parent times the rest, to the process's exit.
END_PROBE = """
import runpy, sys, time
from dcgan_ms import loop
told = loop.CallbackList.on_step_end
ends = []
def on_step_end(self, *args):
    ends.append(time.time())
    return told(self, *args)
loop.CallbackList.on_step_end = on_step_end
closing = loop.CallbackList.on_train_end
def on_train_end(self, *args):
    print("LAST_STEP_ENDED", ends[-1], flush=True)
    return closing(self, *args)
loop.CallbackList.on_train_end = on_train_end
sys.argv = ["dcgan_ms.train"] + sys.argv[1:]
runpy.run_module("dcgan_ms.train", run_name="__main__")
"""


def last_step_to_exit(rounds, size, epochs, data, tmp, against=None):
    """Seconds from the end of the last step to the exit of ``python -m dcgan_ms.train``, per round."""
    sides = {"this checkout": REPO, **({against[0]: against[1]} if against else {})}
    times = collections.defaultdict(list)
    for r in range(rounds):
        for name, repo in sides.items():
            proc = subprocess.run([sys.executable, "-c", END_PROBE, "--data_root", data, "--no_progress",
                                   "--overwrite", "--output_dir", os.path.join(tmp, "ms_end"), *flags(size, epochs)],
                                  cwd=repo, capture_output=True, text=True, env=CLEAN_ENV)
            exited = time.time()
            if proc.returncode:
                sys.exit(f"the end probe failed at {name}:\n{proc.stderr[-3000:]}")
            ended = float(proc.stdout.split("LAST_STEP_ENDED")[1].split()[0])
            times[name].append(exited - ended)
            print(f"  round {r + 1}, {name}: last step to exit {times[name][-1]:.2f} s", flush=True)
    for name, seconds in times.items():
        print(f"{size}: from the last step to exit, {name}: median {statistics.median(seconds):.2f} s "
              f"({', '.join(f'{x:.2f}' for x in seconds)})", flush=True)


def import_seconds():
    """Wall time of a process that starts Python and imports the package (MindSpore included)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import dcgan_ms.session"], cwd=REPO, env=CLEAN_ENV, check=True,
                   capture_output=True)
    return time.perf_counter() - start


def breakdown(size, epochs, data, tmp, precision="fp32"):
    from dcgan_ms import session, train, training
    started = time.perf_counter()  # MindSpore is imported already: import_seconds() measures that
    config = train.parse_args(["--data_root", data, "--no_progress", "--overwrite", "--output_dir",
                               os.path.join(tmp, "ms_breakdown"), *flags(size, epochs), "--precision", precision])
    s = session.setup(config)
    setup_done = time.perf_counter()
    totals, clock = collections.defaultdict(float), StepClock()
    callbacks = [Timed(c, totals) for c in training.standard_callbacks(s)] + [clock]  # last: see StepClock
    from dcgan_ms.loop import train_loop
    train_loop(s.train_step, s.data, total_steps=s.total_steps, noise=training.step_noise(s), position=s.position,
               callbacks=callbacks)
    end = time.perf_counter()
    inside = sum(v for k, v in totals.items() if k.endswith("on_step_end"))
    print(f"{size}, dcgan_ms in one process: {end - started:.1f} s in all")
    print(f"  start-up: python and import (its own process): {import_seconds():.1f} s")
    print(f"  device, data, networks (setup):         {setup_done - started:.1f} s")
    print(f"  first step (includes graph compile):    {clock.steps[0]:.2f} s")
    print(f"  other {len(clock.steps) - 1} steps:                   {sum(clock.steps[1:]):.1f} s "
          f"(median {statistics.median(clock.steps[1:]):.3f} s)")
    print(f"  between steps (data, loop), callbacks' on_step_end excluded: {clock.between - inside:.1f} s")
    for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        if seconds >= 0.05:
            print(f"  {name}: {seconds:.2f} s")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", choices=("quickstart", "tutorial", "both"), default="both")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--epochs", type=int, default=None, help="quickstart: fewer epochs than its 26")
    p.add_argument("--breakdown", action="store_true", help="and one timed dcgan_ms run in this process")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: dcgan_ms --precision bf16 against PyTorch's autocast")
    p.add_argument("--against", metavar="REV", help="also time dcgan_ms at this commit (A/B of a change)")
    p.add_argument("--end", type=int, default=0, metavar="N",
                   help="N rounds timing the command from its last step to its exit")
    args = p.parse_args()
    import platform
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, (checkout(args.against) if args.against
                                                else contextlib.nullcontext()) as other:
        for size in (("quickstart", "tutorial") if args.size == "both" else (args.size,)):
            epochs = args.epochs if size == "quickstart" else None
            data = compare(size, args.rounds, epochs, tmp, against=(args.against, other) if other else None,
                           precision=args.precision)
            if args.end:
                last_step_to_exit(args.end, size, epochs, data, tmp, against=(args.against, other) if other else None)
            if args.breakdown:
                breakdown(size, epochs, data, tmp, args.precision)


if __name__ == "__main__":
    main()
