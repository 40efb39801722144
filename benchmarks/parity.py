"""Does dcgan_ms learn as well as PyTorch at equal steps? Both trained the same way on one folder, scored alike.

    python benchmarks/parity.py                                   # the sample, seeds 1-3
    python benchmarks/openmoji.py && python benchmarks/parity.py --data_root data/openmoji
    python benchmarks/parity.py --same_pixels --runs_dir R        # both read the same 64 px images
    python benchmarks/parity.py --runs_dir R --reuse -- --resize bilinear   # another dcgan_ms, PyTorch's runs kept
    python benchmarks/parity.py --torch_inputs torch dcgan_ms      # also PyTorch on dcgan_ms's inputs
    python benchmarks/parity.py --summarize a.json b.json         # the summary of earlier runs' --out files

For each seed, alternately: ``benchmarks/torch_train.py`` (pytorch/examples' DCGAN, ``torch_dcgan.py``:
images read with Pillow, resized with its antialiasing bilinear filter) and ``python -m dcgan_ms.train``,
with the same settings (default: the quickstart's sizes without its extras, ``--ngf 16 --ndf 16
--batch_size 32 --instance_noise 0.1``, 2,392 steps); flags after ``--`` go to dcgan_ms only. Each
side's final G then draws ``--num`` images (BatchNorm on batches of 64), scored by this project's SWD
(x1e3; 64 / 32 / 16 px levels) and diversity against the same ``--num`` real images
(``dcgan_ms.images.real_images``), once for each ``--resize`` filter of the real images: the fine
level depends on it. ``--same_pixels`` first resizes the folder to 64 px PNGs as the PyTorch side
does, so both train on the same pixels. ``--torch_inputs dcgan_ms`` adds (or with ``torch`` left out, puts in
place of the plain PyTorch side) PyTorch trained on dcgan_ms's own inputs, seed for seed: its initial
weights, batches, z and instance noise (``torch_train.py --inputs dcgan_ms``): if that side learns as
PyTorch does, dcgan_ms's arithmetic is not what differs. ``--torch_adam mindspore`` gives the PyTorch
sides MindSpore's Adam (``torch_dcgan.MindSporeAdam``: epsilon before the bias correction), the one
difference of the two steps. ``--runs_dir`` keeps the runs (one folder per side, flags and
seed); with ``--reuse`` finished ones are scored again instead of trained.

The verdict follows issue #35's target: dcgan_ms's mean SWD no worse than PyTorch's mean plus its
spread (its worst seed's distance above its mean), and its mean diversity no lower than PyTorch's
mean minus its spread. Beside it, a permutation test: how often the seeds, split at random into two
groups, differ by as much as the two sides do (p near 0: more than luck of the seeds). PyTorch's CPU runs are not bit-reproducible: the same seed scores differently
run to run, so read the spread. Needs torch (benchmarks/requirements.txt).
"""
import os

CLEAN_ENV = dict(os.environ)  # before MindSpore is imported here: it sets LD_LIBRARY_PATH, which slows torch

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

SETTINGS = {"ngf": 16, "ndf": 16, "batch_size": 32, "instance_noise": 0.1}
STEPS = 2392  # the quickstart's 52 epochs of the 1,500-image sample at batch 32


def run(cmd):
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=CLEAN_ENV)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def settings_flags(settings):
    return [x for k, v in settings.items() for x in (f"--{k}", str(v))]


def train_torch(data_root, seed, steps, num, out, reuse=False, input_flags=()):
    if not (reuse and done(out, steps)):
        run([sys.executable, os.path.join(HERE, "torch_train.py"), "--data_root", data_root, "--output_dir", out,
             *settings_flags(SETTINGS), "--epochs", str(10 ** 6), "--max_steps", str(steps), "--seed", str(seed),
             "--samples", str(num), *input_flags])
    return np.load(os.path.join(out, "samples.npy"))[:num]


def train_dcgan_ms(data_root, seed, steps, num, out, extra_flags, reuse=False):
    from dcgan_ms.checkpoint import load_generator
    from dcgan_ms.images import generated_images
    if not (reuse and done(out, steps)):
        run([sys.executable, "-m", "dcgan_ms.train", "--data_root", data_root, "--output_dir", out,
             *settings_flags(SETTINGS), "--epochs", str(10 ** 6), "--max_steps", str(steps), "--seed", str(seed),
             "--overwrite", "--no_progress", *extra_flags])
    return generated_images(load_generator(os.path.join(out, "generator.ckpt")), num, seed=seed)


def done(out, steps):
    """Whether ``out`` holds a finished run of ``steps`` steps (its log.csv has them all)."""
    try:
        with open(os.path.join(out, "log.csv")) as f:
            return sum(1 for _ in f) - 1 == steps
    except OSError:
        return False


def same_pixels(data_root, out):
    """The folder's images resized to 64 px PNGs as the PyTorch side reads them (Pillow, antialiased)."""
    sys.path.insert(0, HERE)
    from PIL import Image
    from torch_train import load_images
    os.makedirs(out, exist_ok=True)
    for i, image in enumerate(load_images(data_root).numpy()):
        Image.fromarray(((image.transpose(1, 2, 0) + 1) * 127.5 + 0.5).clip(0, 255).astype(np.uint8)).save(
            os.path.join(out, f"{i:05d}.png"))
    return out


def late_g_loss(folder):
    """G's mean loss over the second half of a run's steps (its log.csv), or None without a log: how far
    D is ahead as training settles, higher before a collapse (docs/recipe.md)."""
    try:
        with open(os.path.join(folder, "log.csv")) as f:
            losses = [float(row["g_loss"]) for row in csv.DictReader(f)]
    except (OSError, KeyError, ValueError):
        return None
    return statistics.mean(losses[len(losses) // 2:]) if losses else None


def run_folder(runs, side, seed):
    return os.path.join(runs, f"{side.replace(' ', '_').replace(chr(39), '')}-seed{seed}")


def chance_of_a_gap(a, b, draws=20000, seed=0):
    """How often seeds split at random into groups of len(a) and len(b) have means at least as far apart
    as ``a``'s and ``b``'s (a two-sided permutation test): near 0, the two sides differ by more than the
    seeds' luck; well above 0.05, the seeds cannot tell them apart."""
    pooled, gap = np.array(a + b, float), abs(statistics.mean(a) - statistics.mean(b))
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.tile(pooled, (draws, 1)), axis=1)
    gaps = np.abs(shuffled[:, :len(a)].mean(axis=1) - shuffled[:, len(a):].mean(axis=1))
    return float(np.mean(gaps >= gap - 1e-12))


def summary(rows, reference):
    lines, means, values = [f"against real images resized with {reference}:"], {}, {}
    for side in dict.fromkeys(r["side"] for r in rows):
        mine = [r for r in rows if r["side"] == side]
        scores = [r["scores"][reference] for r in mine]
        swd, div = [s["swd"] for s in scores], [s["diversity"] for s in scores]
        coarse = [s["levels"][min(s["levels"], key=int)] for s in scores]  # the 16 px level: colours and layout
        late = [r["late_g_loss"] for r in mine if r.get("late_g_loss") is not None]
        values[side] = (swd, div, coarse, late if len(late) == len(mine) else [])
        levels = {k: statistics.mean(s["levels"][k] for s in scores) for k in scores[0]["levels"]}
        means[side] = (statistics.mean(swd), max(swd) - statistics.mean(swd), statistics.mean(div),
                       statistics.mean(div) - min(div))
        lines.append(f"  {side}: SWD x1e3 mean {statistics.mean(swd):.1f} ({min(swd):.1f}-{max(swd):.1f}), per level "
                     f"{' / '.join(f'{v:.1f}' for v in levels.values())}; diversity {statistics.mean(div):.2f} "
                     f"({min(div):.2f}-{max(div):.2f})" + (f"; G's loss over the second half "
                                                          f"{statistics.mean(values[side][3]):.3f}" if values[side][3] else ""))
    if "torch" in means and len(means) > 1:
        t_swd, t_up, t_div, t_down = means["torch"]
        for side, (m_swd, _, m_div, _) in means.items():
            if side != "torch":
                ok = m_swd <= t_swd + t_up and m_div >= t_div - t_down
                lines.append(f"  {side}: target (SWD <= {t_swd + t_up:.1f}, diversity >= {t_div - t_down:.2f}) "
                             f"{'met' if ok else 'NOT met'}")
                if min(len(values[side][0]), len(values["torch"][0])) >= 3:
                    p_values = [chance_of_a_gap(mine, theirs) if mine and theirs else None
                                for mine, theirs in zip(values[side], values["torch"])]
                    lines.append(f"  {side} - torch: SWD {m_swd - t_swd:+.1f}, diversity {m_div - t_div:+.2f}; seeds "
                                 f"split at random differ as much: SWD p = {p_values[0]:.2f}, diversity p = "
                                 f"{p_values[1]:.2f}, 16 px level p = {p_values[2]:.2f}"
                                 + (f", G's late loss p = {p_values[3]:.2f}" if p_values[3] is not None else ""))
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data_root", default=os.path.join(REPO, "data", "sample"))
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--steps", type=int, default=STEPS)
    p.add_argument("--num", type=int, default=512, help="real and generated images per score")
    p.add_argument("--only", choices=("torch", "dcgan_ms"), default=None, help="train one side only")
    p.add_argument("--torch_inputs", choices=("torch", "dcgan_ms"), nargs="+", default=["torch"],
                   help="the PyTorch side's weights, batches and noise: its own, dcgan_ms's (same seed), or both")
    p.add_argument("--torch_adam", choices=("pytorch", "mindspore"), default="pytorch",
                   help="the PyTorch side's Adam: its own, or with MindSpore's placement of epsilon")
    p.add_argument("--same_pixels", action="store_true", help="both train on the folder resized to 64 px by Pillow")
    p.add_argument("--runs_dir", default=None, help="keep the runs here (default: a temporary folder)")
    p.add_argument("--reuse", action="store_true", help="with --runs_dir: take the finished runs found there (same "
                   "side, flags, seed and steps) instead of training them again, e.g. to score both sides anew")
    p.add_argument("--out", default=None, help="write every result as JSON here")
    p.add_argument("--summarize", nargs="+", metavar="JSON", help="print the summary of these --out files "
                   "together (seeds run at different times), training and scoring nothing; with --runs_dir, "
                   "G's late loss from the runs' logs too")
    p.add_argument("flags", nargs="*", help="after --: more train flags for dcgan_ms")
    args = p.parse_args()
    if args.summarize:
        rows = {(row["side"], row["seed"]): row for path in args.summarize  # a side's seed twice: the later file's
                for row in json.load(open(path))["results"]}
        rows = list(rows.values())
        for row in rows:
            if args.runs_dir:
                row["late_g_loss"] = late_g_loss(run_folder(args.runs_dir, row["side"], row["seed"]))
        for resize in rows[0]["scores"]:
            if all(resize in row["scores"] for row in rows):  # files scored before a filter existed lack it
                print(summary(rows, resize))
        return
    from dcgan_ms.images import real_images
    from dcgan_ms.pixels import RESIZE, RESIZES, ImageLook
    from dcgan_ms.swd import diversity, swd
    references = {resize: real_images(args.data_root, args.num, seed=0, look=ImageLook(resize=resize))
                  for resize in RESIZES}
    name = "dcgan_ms" + "".join(f" {flag}" for flag in args.flags)
    resize = args.flags[args.flags.index("--resize") + 1] if "--resize" in args.flags else RESIZE
    torch_sides = {"torch": ("torch", ()),
                   "dcgan_ms": ("torch on dcgan_ms's inputs", ("--inputs", "dcgan_ms", "--resize", resize))}
    if args.torch_adam == "mindspore":
        torch_sides = {k: (f"{side} with MindSpore's Adam", (*flags, "--adam", "mindspore"))
                       for k, (side, flags) in torch_sides.items()}
    print(f"machine: {platform.machine()} {platform.processor()}, {os.cpu_count()} CPUs; data: {args.data_root}; "
          f"{args.steps} steps of {' '.join(settings_flags(SETTINGS))}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs_dir or tmp
        train_root = same_pixels(args.data_root, os.path.join(tmp, "pixels")) if args.same_pixels else args.data_root
        for seed in args.seeds:
            sides = [torch_sides[inputs] for inputs in args.torch_inputs] + [(name, None)]
            for side, input_flags in sides:
                if args.only not in (None, "torch" if input_flags is not None else "dcgan_ms"):
                    continue
                start = time.perf_counter()
                folder = run_folder(runs, side, seed)
                if input_flags is not None:
                    fake = train_torch(train_root, seed, args.steps, args.num, folder, args.reuse, input_flags)
                else:
                    fake = train_dcgan_ms(train_root, seed, args.steps, args.num, folder, args.flags, args.reuse)
                scores = {}
                for resize, real in references.items():
                    score = swd(real, fake, 0)
                    scores[resize] = {"swd": score["mean"], "levels": {str(k): v for k, v in score["levels"].items()},
                                      "diversity": diversity(real, fake)}
                rows.append({"side": side, "seed": seed, "scores": scores, "late_g_loss": late_g_loss(folder),
                             "seconds": time.perf_counter() - start})
                print(f"  {rows[-1]['side']} seed {seed}: " + "; ".join(
                    f"vs {resize} SWD {sc['swd']:.1f} ({' / '.join(f'{v:.1f}' for v in sc['levels'].values())}), "
                    f"diversity {sc['diversity']:.2f}" for resize, sc in scores.items()), flush=True)
    for resize in (RESIZE, *(r for r in RESIZES if r != RESIZE)):
        print(summary(rows, resize))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": platform.machine(), "data_root": args.data_root, "steps": args.steps,
                       "settings": SETTINGS, "dcgan_ms_flags": args.flags, "same_pixels": args.same_pixels,
                       "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
