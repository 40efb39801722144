"""How good a training recipe is within a time budget: the real CLI, several seeds, SWD of each.

    python benchmarks/recipe.py --recipe quickstart                      # the README's quickstart, seeds 1-3
    python benchmarks/recipe.py --recipe before --recipe quickstart      # several, A B A B ... by seed
    python benchmarks/twemoji.py && python benchmarks/recipe.py --recipe quickstart --recipe before \
        --data_root data/twemoji                                      # another image set
    python benchmarks/recipe.py --name mine -- --ngf 32 --ndf 16 --batch_size 64 --epochs 40
    python benchmarks/recipe.py --recipe quickstart --recipe quickstart-bf16 --steps 1600   # equal steps

For each recipe and seed: ``python -m dcgan_ms.train`` with the recipe's flags and ``--seed``, timed
from process start to exit (wall time, the whole run a user waits for: start-up, compile, steps,
per-epoch grids and checkpoints); then ``python -m dcgan_ms.evaluate`` on its generator.ckpt: SWD x1e3
against 1,024 real images of the same set (`--num`; mean and per level: 64, 32, 16 px) and the diversity of
the generated images (``dcgan_ms.swd.diversity``: about 1 as varied as the real images, near 0
collapsed). The report gives every run, then per recipe the mean and spread (min-max) over seeds,
and says whether every run kept within ``--budget`` seconds. Runs alternate between recipes seed by
seed, so a machine that speeds up or slows down touches all alike; the machine is shared and its
speed drifts, so read times as noisy. ``--steps N`` stops every recipe at N steps instead of its time
limit: quality at equal steps. Results are also written as JSON (``--out``).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

RECIPES = {
    # the quickstart before the recipe work: 1,196 steps, which took 2 min 27 s in the change that set them
    "before": "--ngf 16 --ndf 16 --batch_size 32 --epochs 26 --instance_noise 0.1",
    # the same flags, as many steps as the budget buys at today's speed
    "before-longer": "--ngf 16 --ndf 16 --batch_size 32 --epochs 52 --instance_noise 0.1",
    # the README's quickstart: twice the learning rate, more instance noise, G's weights averaged
    "quickstart": "--ngf 16 --ndf 16 --batch_size 32 --epochs 52 --lr 4e-4 --instance_noise 0.15 --ema 0.99 "
                  "--max_minutes 2.3",
}
# the quickstart with its convolutions' products in bfloat16 (on a CPU with bf16 instructions)
RECIPES["quickstart-bf16"] = RECIPES["quickstart"] + " --precision bf16"


def run(cmd):
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start, proc.stdout


def steps_on_the_sample(flags):
    """How many steps the recipe trains on the sample (its --epochs count passes over the sample)."""
    from dcgan_ms.data import SAMPLE_DIR
    from dcgan_ms.train import parse_args
    config = parse_args([*flags, "--dataset", "sample"])
    per_epoch = len(os.listdir(SAMPLE_DIR)) // config.batch_size
    return min(config.epochs * per_epoch, config.max_steps or float("inf"))


def at_steps(flags, steps):
    """``flags`` stopping at ``steps`` steps, any time limit lifted (the last flag wins)."""
    if "--max_minutes" in flags:
        i = flags.index("--max_minutes")
        flags = flags[:i] + flags[i + 2:]
    return [*flags, "--epochs", str(10 ** 6), "--max_steps", str(steps)]


def one_run(name, flags, seed, data, out_root, num=1024):
    out = os.path.join(out_root, f"{name}-seed{seed}")
    data_flags = ["--data_root", data] if data else ["--dataset", "sample"]
    if data:  # the same number of steps as on the sample, whatever the size of this set (the last flag wins)
        flags = [*flags, "--epochs", str(10 ** 6), "--max_steps", str(steps_on_the_sample(flags))]
    seconds, _ = run([sys.executable, "-m", "dcgan_ms.train", *data_flags, *flags, "--seed", str(seed),
                      "--output_dir", out, "--overwrite", "--no_progress"])
    ckpt = os.path.join(out, "generator.ckpt")
    run([sys.executable, "-m", "dcgan_ms.evaluate", "--ckpt", ckpt, "--num", str(num),
         *(["--data_root", data] if data else [])])
    report = json.load(open(os.path.join(out, "swd.json")))
    with open(os.path.join(out, "log.csv")) as f:
        steps = sum(1 for _ in f) - 1  # the steps done (a --max_minutes run may stop before its last)
    levels = report["swd_x1e3"]["per_level"]
    return {"recipe": name, "seed": seed, "seconds": seconds, "steps": steps, "swd": report["swd_x1e3"]["mean"],
            "levels": levels, "diversity": report["diversity"], "output_dir": out}


def spread(values, fmt="{:.1f}"):
    return f"{fmt.format(statistics.mean(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def summary(results, budget):
    for name in dict.fromkeys(r["recipe"] for r in results):
        rows = [r for r in results if r["recipe"] == name]
        levels = {k: statistics.mean(r["levels"][k] for r in rows) for k in rows[0]["levels"]}
        within = all(r["seconds"] <= budget for r in rows)
        print(f"{name}: SWD x1e3 mean {spread([r['swd'] for r in rows])} over seeds "
              f"{', '.join(str(r['seed']) for r in rows)}; per level "
              f"{' / '.join(f'{k}px {v:.1f}' for k, v in levels.items())}; diversity "
              f"{spread([r['diversity'] for r in rows], '{:.2f}')}; wall {spread([r['seconds'] for r in rows])} s, "
              f"{spread([r['steps'] for r in rows], '{:.0f}')} steps; {'all within' if within else 'NOT all within'} the {budget:.0f} s budget")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipe", action="append", choices=sorted(RECIPES), help="a named recipe (repeatable)")
    p.add_argument("--name", default="custom", help="the name of the recipe given after --")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--budget", type=float, default=150.0, help="wall seconds a run may take")
    p.add_argument("--data_root", default=None, help="train and evaluate on this folder (default: the sample) for "
                   "as many steps as the recipe trains on the sample")
    p.add_argument("--num", type=int, default=1024, help="real and generated images per SWD")
    p.add_argument("--steps", type=int, default=None, help="stop every recipe at this many steps (equal steps), "
                   "not at its --max_minutes")
    p.add_argument("--runs_dir", default=None, help="keep the runs here (default: a temporary folder)")
    p.add_argument("--out", default=None, help="write every result as JSON here")
    p.add_argument("flags", nargs="*", help="after --: the train flags of a recipe of your own")
    args = p.parse_args()
    recipes = {name: RECIPES[name].split() for name in args.recipe or []}
    if args.flags:
        recipes[args.name] = args.flags
    if not recipes:
        p.error("name a --recipe or give train flags after --")
    if args.steps:
        recipes = {name: at_steps(flags, args.steps) for name, flags in recipes.items()}
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"data: {args.data_root or 'the sample'}", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for name, flags in recipes.items():
                r = one_run(name, flags, seed, args.data_root, args.runs_dir or tmp, args.num)
                results.append(r)
                print(f"  {name} seed {seed}: {r['seconds']:.1f} s, {r['steps']} steps, SWD {r['swd']:.1f} "
                      f"({' / '.join(f'{v:.1f}' for v in r['levels'].values())}), diversity {r['diversity']:.2f}",
                      flush=True)
    summary(results, args.budget)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": platform.machine(), "cpus": os.cpu_count(), "recipes": recipes,
                       "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
