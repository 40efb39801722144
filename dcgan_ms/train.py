"""Train a DCGAN on anime faces: ``python -m dcgan_ms.train --help``.

    python -m dcgan_ms.train --device_target GPU            # the tutorial: real faces, downloaded
    python -m dcgan_ms.train --dataset sample --epochs 5    # the shipped sample, offline, on CPU

A run writes into its output folder (default ``runs/<dataset>-<date-time>``):

    config.json              the flags of the run
    fixed_noise.npy          the noise batch behind every progress grid, drawn once from --seed
    log.csv                  one row per step: g_loss, d_loss, D(x), D(G(z)), img/s
    samples/epoch_NNN.png    G(fixed noise) after each epoch (and after the last step)
    losses.png               losses and D's outputs against the step
    progress.gif             the fixed-noise grids over the epochs
    generator.ckpt, discriminator.ckpt   the weights, saved after every epoch and at the end
    checkpoints/step_NNNNNNN.ckpt        resume checkpoints: weights, optimizer states, step, noise
                                         generator, config (see dcgan_ms/resume.py); the newest
                                         --keep_checkpoints are kept

Resume checkpoints are written at the end of every epoch, every --save_every steps and every
--save_minutes minutes, and when training stops early. A run that was killed, crashed or
interrupted continues where its newest readable checkpoint left it, with the same step counter,
log and noise draws (a damaged checkpoint is named and the one before it used):

    python -m dcgan_ms.train --resume --output_dir runs/faces-20261123-101500
    python -m dcgan_ms.train --resume runs/faces-20261123-101500/checkpoints/step_0001500.ckpt

The flags that define the run (data, model sizes, batch size, optimizer, seed) come from the
checkpoint; --epochs and --max_steps may be raised to train further. Ctrl-C stops training at the
end of the current step after saving, and so does SIGTERM (a second one aborts at once, keeping the
last checkpoint).

Data-parallel training on several devices (``--distributed``), launched by MindSpore's msrun,
which starts one process per device (see the README for single- and multi-node lines):

    msrun --worker_num=8 --local_worker_num=8 --master_port=8118 --log_dir=runs/msrun_logs \
          --join=True dcgan_ms/train.py --distributed --device_target Ascend --output_dir runs/dist8

Every device starts from the same weights (same --seed), reads its own shard of the images, draws
its own noise z, and applies the all-reduced mean gradients, so the weights stay identical.
``--batch_size`` is per device: the global batch is batch_size x devices. BatchNorm statistics
are per device (as in MindSpore models' DCGAN): each device normalises its own batch, which needs
no extra communication and equals single-device training with that batch size; synchronised
BatchNorm would make the statistics those of the global batch at the cost of an all-reduce per
BatchNorm layer in every forward pass. Only rank 0 writes checkpoints, grids, plots and the GIF;
every rank writes its own ``log_rank<N>.csv`` and ``rank_<N>.json`` (final parameter digest and the
digests of the images it read, to check that ranks agree and shards are disjoint).
"""
if __name__ == "__main__" and not __package__:  # launched by path (msrun runs scripts, not modules)
    import os as _os
    import sys as _sys
    _sys.path.insert(0, _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))))
    __package__ = "dcgan_ms"

import argparse
import csv
import hashlib
import itertools
import json
import math
import os
import re
import signal
import sys
import time

import numpy as np

from .errors import UserError, cli
from .models import NC, NDF, NGF, NZ

GRID_SIZE = 64  # images in each progress grid (8 x 8)


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value
    return parse


def _nonnegative(text):
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _beta(text):
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def build_parser():
    p = argparse.ArgumentParser(prog="python -m dcgan_ms.train", description="Train the MindSpore tutorial's "
                                "DCGAN on anime faces (or any folder of images).",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=("faces", "sample"), default=None,
                   help="faces: the tutorial's 70,171 anime faces, downloaded into --data_root (default "
                        "data/faces) when absent; sample: the procedurally drawn avatars shipped in "
                        "data/sample (offline). Default: faces, unless --data_root is given alone")
    g.add_argument("--data_root", default=None,
                   help="with --dataset faces: where the faces are or are downloaded to; alone: any folder "
                        "of images (flat, or one level of subfolders)")
    g.add_argument("--pixel_range", choices=("-1,1", "0,1"), default="-1,1",
                   help="scale real images to Tanh's [-1, 1], or to the tutorial's [0, 1] (its mistake, kept "
                        "for comparison)")
    g.add_argument("--num_workers", type=_positive(int), default=2, help="data pipeline worker threads")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=_positive(int), default=3, help="passes over the data")
    g.add_argument("--max_steps", type=_positive(int), default=None, help="stop after this many steps")
    g.add_argument("--batch_size", type=_positive(int), default=128, help="images per step")
    g.add_argument("--lr", type=_positive(float), default=2e-4, help="Adam learning rate, both networks")
    g.add_argument("--beta1", type=_beta, default=0.5, help="Adam beta1, both networks")
    g.add_argument("--instance_noise", type=_nonnegative, default=0.0, metavar="SIGMA",
                   help="std of Gaussian noise added to D's inputs, real and fake (0: off, the tutorial's "
                        "training; the quickstart uses 0.1, see README)")
    g.add_argument("--seed", type=int, default=1, help="seeds weights, shuffling, noise and the fixed noise")
    g.add_argument("--swd_every", type=int, default=0, metavar="EPOCHS",
                   help="every this many epochs (and at the end), score G by SWD against --swd_num real images "
                        "(swd.csv, third panel of losses.png); 0: off")
    g.add_argument("--swd_num", type=_positive(int), default=256, help="images per set for --swd_every")
    g = p.add_argument_group("model")
    g.add_argument("--nz", type=_positive(int), default=NZ, help="length of the noise vector z")
    g.add_argument("--ngf", type=_positive(int), default=NGF, help="Generator width (feature maps)")
    g.add_argument("--ndf", type=_positive(int), default=NDF, help="Discriminator width (feature maps)")
    g = p.add_argument_group("run")
    g.add_argument("--device_target", choices=("CPU", "GPU", "Ascend"), default="CPU",
                   help="MindSpore backend")
    g.add_argument("--device_id", type=int, default=None, help="which device of the backend")
    g.add_argument("--mode", choices=("graph", "pynative"), default="graph",
                   help="graph: the train step compiled with ms.jit; pynative: eager, for debugging")
    g.add_argument("--output_dir", default=None, help="where the run writes (default runs/<dataset>-<time>; "
                   "required with --distributed, so that every rank agrees)")
    g.add_argument("--distributed", action="store_true",
                   help="data-parallel training over the devices msrun started (--batch_size is per device)")
    g.add_argument("--conv", choices=("auto", "compiled", "builtin"), default="auto",
                   help="strided convolutions on CPU: dcgan_ms's compiled kernels (auto: when a C++ compiler "
                   "builds them; about 1.2x faster steps) or MindSpore's built-in ones; see dcgan_ms/cpu_conv.py")
    g.add_argument("--no_progress", action="store_true", help="no progress bar (one line per epoch instead)")
    g = p.add_argument_group("checkpoints and resuming")
    g.add_argument("--resume", nargs="?", const="latest", default=None, metavar="CHECKPOINT",
                   help="continue a run: alone, from the newest readable checkpoint in --output_dir; or from "
                        "the checkpoints/step_*.ckpt file given")
    g.add_argument("--save_every", type=int, default=0, metavar="STEPS",
                   help="also write a resume checkpoint every this many steps (0: off; one is always written at "
                        "the end of each epoch)")
    g.add_argument("--save_minutes", type=_nonnegative, default=10.0, metavar="MINUTES",
                   help="also write a resume checkpoint when this long has passed since the last (0: off; "
                        "ignored with --distributed, where all ranks must save at the same step: use "
                        "--save_every)")
    g.add_argument("--keep_checkpoints", type=_positive(int), default=3, metavar="K",
                   help="keep the newest K resume checkpoints")
    g.add_argument("--overwrite", action="store_true",
                   help="start a new run in an --output_dir that already holds one (its checkpoints are deleted)")
    return p


# Flags that define a run: on --resume they come from the checkpoint, and giving another value is an error.
RUN_DEFINING = ("dataset", "pixel_range", "batch_size", "lr", "beta1", "instance_noise", "seed", "nz", "ngf", "ndf",
                "distributed")


def explicit_flags(argv):
    """The destinations of the flags given on the command line (not left at their defaults)."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def parse_args(argv=None):
    args = build_parser().parse_args(argv)
    args.explicit = sorted(explicit_flags(argv))
    if args.dataset is None:
        args.dataset = "folder" if args.data_root else "faces"
    if args.dataset == "sample" and args.data_root:
        build_parser().error("--dataset sample takes no --data_root (the sample is data/sample)")
    if args.distributed and args.output_dir is None:
        build_parser().error("--distributed needs --output_dir (every rank must write to the same folder)")
    for flag in ("swd_every", "save_every"):
        if getattr(args, flag) < 0:
            build_parser().error(f"argument --{flag}: must be 0 or more, got {getattr(args, flag)}")
    if args.resume and args.output_dir is None:
        if args.resume == "latest":
            build_parser().error("--resume alone needs --output_dir, the folder of the run to continue")
        args.output_dir = os.path.dirname(os.path.dirname(os.path.abspath(args.resume)))
    if args.output_dir is None:
        args.output_dir = os.path.join("runs", f"{args.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
    return args


def resolve_data_root(args):
    """The folder of training images for the flags given (downloading the faces if needed)."""
    from .data import FACES_DIR, SAMPLE_DIR, prepare_faces
    if args.dataset == "sample":
        return SAMPLE_DIR
    if args.dataset == "faces":
        return prepare_faces(args.data_root or FACES_DIR)
    return args.data_root


def prepare_output(output_dir):
    try:
        os.makedirs(os.path.join(output_dir, "samples"), exist_ok=True)
        probe = os.path.join(output_dir, ".write_test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise UserError(f"cannot write to output folder {output_dir} ({e.strerror or e}): "
                        "pass a writable --output_dir") from None


LOG_FIELDS = ("step", "epoch", "g_loss", "d_loss", "d_real", "d_fake", "img_per_s")
DIGESTS_KEPT = 4096  # image digests a rank records in rank_<N>.json


def _data_error(error):
    """One line naming the broken image, if ``error`` is MindSpore's data pipeline failing on one."""
    text = str(error)
    match = re.search(r"Invalid image, (.+?) decode failed", text)
    if match:
        return f"cannot decode image {match.group(1)} (truncated, empty or not an image)"
    if "Dataset Pipeline Error Message" in text or "dataset pipeline" in text.lower():
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("-")]
        return f"the data pipeline failed ({lines[-1][:200] if lines else 'no message'})"
    return None


def _epoch_seed(seed, epoch):
    """The data pipeline's shuffling seed for ``epoch``: a new order every epoch, the same on every
    rank and in a resumed run."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0] % (2 ** 31))


def step_rng(seed, rank, step):
    """The random generator of one step on one device, for its z and instance noise: a function of
    (seed, rank, step) alone, so every device draws its own noise and a resumed run draws exactly
    what the uninterrupted run would have, with no generator state to save."""
    return np.random.default_rng([seed, rank, step])


def _resumed_args(args, state):
    """``args`` with the flags of the checkpoint's run wherever the command line gave none. A
    run-defining flag given with another value is an error (it would silently be another run);
    others (--epochs, --max_steps, --device_target, ...) may change. --epochs alone lifts the run's
    --max_steps."""
    config = state["config"]
    for key, value in config.items():
        if key in ("resume", "overwrite", "output_dir") or not hasattr(args, key):
            continue
        if key not in args.explicit:
            setattr(args, key, value)
        elif key in RUN_DEFINING and getattr(args, key) != value:
            raise UserError(f"--{key} {getattr(args, key)} differs from the run being resumed ({value}): "
                            "leave it out to continue that run, or start a new one in another --output_dir")
    if "epochs" in args.explicit and "max_steps" not in args.explicit:
        args.max_steps = None
    return args


def _keep_rows(path, last_step):
    """Rewrite the CSV log at ``path`` (atomically) keeping only whole rows up to ``last_step``: the
    rows a killed run wrote after its last checkpoint are done again, so they must not stay twice."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    header, step = rows[0], rows[0].index("step")
    kept = [r for r in rows[1:] if len(r) == len(header) and all(r) and r[step].isdigit() and int(r[step]) <= last_step]
    with open(path + ".tmp", "w", newline="") as f:
        csv.writer(f).writerows([header] + kept)
    os.replace(path + ".tmp", path)


def train(args, data_root=None):
    """Run training as the flags in ``args`` say; return a dict describing what was done."""
    import mindspore as ms
    import mindspore.dataset as ds
    from tqdm import tqdm

    from . import checkpoint, plots, resume
    from .data import create_dataset
    from .distributed import average_running_stats, init_distributed, parameter_digest
    from .generate import generate
    from .models import Discriminator, Generator
    from .runtime import set_device, set_seed
    from .step import make_optimizers, make_train_step

    out = args.output_dir
    state = None
    if args.resume:  # read first: the run's own flags decide everything below
        state = (resume.latest_state(out, warn=lambda m: print(m, file=sys.stderr)) if args.resume == "latest"
                 else resume.read_state(args.resume))
        args = _resumed_args(args, state)
    elif resume.state_paths(out) and not args.overwrite:
        raise UserError(f"{out} already holds a training run (resume checkpoints in {out}/checkpoints): pass "
                        "--resume to continue it, --overwrite to start over, or another --output_dir")

    set_device(args.device_target, args.device_id)
    rank, world = init_distributed() if args.distributed else (0, 1)
    lead = rank == 0  # only the lead rank writes checkpoints and pictures
    if state and world != state["config"]["devices"]:
        raise UserError(f"the run in {out} trained on {state['config']['devices']} device(s), this one has {world}: "
                        "resume it with the same number of devices")
    data_root = data_root or resolve_data_root(args)
    prepare_output(out)
    if lead and args.overwrite and not state:
        for old in resume.state_paths(out):
            os.remove(old)
    set_seed(args.seed)  # the same on every rank: same initial weights
    dataset = create_dataset(data_root, args.batch_size, num_parallel_workers=args.num_workers,
                             pixel_range=args.pixel_range,
                             num_shards=world if args.distributed else None,
                             shard_id=rank if args.distributed else None)
    steps_per_epoch = dataset.get_dataset_size()
    total_steps = args.epochs * steps_per_epoch
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps)
    epochs = math.ceil(total_steps / steps_per_epoch)

    generator, discriminator = Generator(args.nz, args.ngf, NC, args.conv), Discriminator(args.ndf, NC, args.conv)
    generator.set_train()
    discriminator.set_train()
    optimizer_g, optimizer_d = make_optimizers(generator, discriminator, args.lr, args.beta1)
    train_step = make_train_step(generator, discriminator, optimizer_g, optimizer_d, jit=args.mode == "graph",
                                 instance_noise=args.instance_noise, distributed=args.distributed)
    cells = (generator, discriminator, optimizer_g, optimizer_d)

    config = {**{k: v for k, v in vars(args).items() if k != "explicit"}, "data_root": os.path.abspath(data_root),
              "devices": world, "global_batch_size": args.batch_size * world, "steps_per_epoch": steps_per_epoch,
              "total_steps": total_steps}
    if state:
        resume.restore(cells, state)
        fixed_noise = state["fixed_noise"]
        step, epoch, done_in_epoch = state["step"], state["epoch"], state["step_in_epoch"]
        if state["config"]["steps_per_epoch"] != steps_per_epoch:
            print(f"warning: the data set changed since the checkpoint ({state['config']['steps_per_epoch']} -> "
                  f"{steps_per_epoch} steps per epoch): continuing on the images there now", file=sys.stderr)
        if done_in_epoch >= steps_per_epoch:
            epoch, done_in_epoch = epoch + 1, 0
        else:
            epoch = max(epoch, 1)
    else:
        fixed_noise = np.random.default_rng(args.seed).standard_normal((GRID_SIZE, args.nz, 1, 1)).astype(np.float32)
        step, epoch, done_in_epoch = 0, 1, 0
    first_step = step
    if lead:
        np.save(os.path.join(out, "fixed_noise.npy"), fixed_noise)
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        print(f"training on {args.device_target} ({args.mode} mode{f', {world} devices' if world > 1 else ''}): "
              f"{data_root}, {steps_per_epoch} steps of {args.batch_size}{' per device' if world > 1 else ''} "
              f"per epoch, {total_steps} steps; writing to {out}", file=sys.stderr)
        if state:
            print(f"resuming from {state['path']}: step {step}, epoch {epoch}", file=sys.stderr)
    if step >= total_steps:
        if lead:
            print(f"the run in {out} is complete ({step} of {total_steps} steps): pass a larger --epochs or "
                  "--max_steps to train it further", file=sys.stderr)
        return {"output_dir": out, "steps": step, "epochs": epoch - 1, "seconds": 0.0, "rank": rank, "devices": world}

    log_path = os.path.join(out, f"log_rank{rank}.csv" if args.distributed else "log.csv")
    swd_path, swd_real = os.path.join(out, "swd.csv"), None
    if state:  # drop what a killed run logged after its checkpoint: those steps are done again
        _keep_rows(log_path, step)
        if lead:
            _keep_rows(swd_path, step)
    elif lead and os.path.exists(swd_path):  # a new run in a used folder starts a new score log, as log.csv
        os.remove(swd_path)
    finished_epochs = epoch - 1
    grids = [p for e in range(1, finished_epochs + 1)
             if os.path.exists(p := os.path.join(out, "samples", f"epoch_{e:03d}.png"))]
    written = []  # the artifacts this rank wrote (rank 0 only, by design)

    def track_swd(epoch):
        """SWD of G now against real images (the same ones every time), appended to swd.csv."""
        nonlocal swd_real
        from .evaluate import generated_images, real_images
        from .swd import swd
        t0 = time.perf_counter()
        if swd_real is None:
            swd_real = real_images(data_root, args.swd_num, args.seed)
        result = swd(swd_real, generated_images(generator, args.swd_num, args.seed, "batch", args.pixel_range),
                     args.seed)
        seconds = time.perf_counter() - t0
        new = not os.path.exists(swd_path)
        with open(swd_path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["epoch", "step", "swd_mean"] + [f"swd_{k}px" for k in result["levels"]] + ["seconds"])
            w.writerow([epoch, step, f"{result['mean']:.4g}"] + [f"{v:.4g}" for v in result["levels"].values()]
                       + [f"{seconds:.2f}"])
        tqdm.write(f"epoch {epoch}: SWD x1e3 {result['mean']:.1f} ({seconds:.1f} s)", file=sys.stderr)

    saved = {"step": step, "time": time.time()}  # the last resume checkpoint

    def save_state(epoch, done_in_epoch):
        """The resume checkpoint of the steps done so far (the caller has averaged BatchNorm's
        running statistics over the devices: ranks must all call this at the same step)."""
        if not log_file.closed:
            log_file.flush()
        if lead:
            written.append(resume.save_state(out, cells, fixed_noise, args.keep_checkpoints, step=step, epoch=epoch,
                                             step_in_epoch=done_in_epoch, config=config))
        saved.update(step=step, time=time.time())

    def save_progress(epoch, done_in_epoch):
        """Grid, weights and resume checkpoint, at the end of an epoch or of training."""
        if world > 1:
            average_running_stats((generator, discriminator), world)
        if lead:
            if args.swd_every and (epoch % args.swd_every == 0 or step >= total_steps):
                track_swd(epoch)
            images = generate(generator, fixed_noise, bn="batch")  # as in training; running stats untouched
            path = plots.save_grid(images, os.path.join(out, "samples", f"epoch_{epoch:03d}.png"), nrow=8)
            grids[:] = [g for g in grids if g != path] + [path]
            written.append(path)
            written.extend([checkpoint.save(generator, os.path.join(out, "generator.ckpt")),
                            checkpoint.save(discriminator, os.path.join(out, "discriminator.ckpt"))])
        save_state(epoch, done_in_epoch)

    def due():
        if args.save_every and step % args.save_every == 0:
            return True
        return bool(args.save_minutes) and world == 1 and time.time() - saved["time"] >= 60 * args.save_minutes

    stop = {"asked": False}

    def ask_to_stop(signum, frame):
        """Ctrl-C or SIGTERM (what schedulers send before a kill): finish the step, save, stop; a
        second one aborts. SIGTERM too, because a Ctrl-C that arrives while MindSpore runs a graph
        reaches Python as SIGTERM (its runtime's own SIGINT handler sends it)."""
        if stop["asked"]:
            raise KeyboardInterrupt
        stop["asked"] = True

    previous_handler = signal.signal(signal.SIGINT, ask_to_stop)
    previous_term = signal.signal(signal.SIGTERM, ask_to_stop)
    digests = []  # of the images this rank read (distributed runs only)
    data_error, bad_loss, aborted = None, None, False
    quiet = args.no_progress or not lead
    bar = tqdm(total=total_steps, initial=step, unit="step", disable=quiet, dynamic_ncols=True)
    started = time.time()
    log_file = open(log_path, "a" if state else "w", newline="")  # a new run starts a new log
    log = csv.writer(log_file)
    if log_file.tell() == 0:
        log.writerow(LOG_FIELDS)
    try:
        while step < total_steps and not (stop["asked"] or bad_loss):
            ds.config.set_seed(_epoch_seed(args.seed, epoch))  # read when the iterator is made
            batches = itertools.islice(dataset.create_tuple_iterator(num_epochs=1), done_in_epoch, None)
            for (real_imgs,) in batches:
                t0 = time.perf_counter()
                rng = step_rng(args.seed, rank, step)
                z = ms.Tensor(rng.standard_normal((args.batch_size, args.nz, 1, 1), dtype=np.float32))
                noise = ((ms.Tensor(rng.standard_normal((3, *real_imgs.shape), dtype=np.float32)),)
                         if args.instance_noise else ())
                g_loss, d_loss, d_real, d_fake = (float(v) for v in train_step(real_imgs, z, *noise))
                speed = args.batch_size / (time.perf_counter() - t0)
                if not (math.isfinite(g_loss) and math.isfinite(d_loss)):
                    bad_loss = (step + 1, g_loss, d_loss)  # nothing of this step is logged or saved
                    break
                step, done_in_epoch = step + 1, done_in_epoch + 1
                log.writerow([step, epoch, f"{g_loss:.6g}", f"{d_loss:.6g}", f"{d_real:.6g}",
                              f"{d_fake:.6g}", f"{speed:.4g}"])
                log_file.flush()
                if args.distributed and len(digests) < DIGESTS_KEPT:
                    digests += [hashlib.sha1(img.tobytes()).hexdigest()[:16] for img in real_imgs.asnumpy()]
                bar.set_postfix_str(f"epoch {epoch}/{epochs} Loss_D {d_loss:.3f} Loss_G {g_loss:.3f} "
                                    f"D(x) {d_real:.2f} D(G(z)) {d_fake:.2f} {speed * world:.1f} img/s")
                bar.update()
                if step >= total_steps or stop["asked"]:
                    break
                if done_in_epoch < steps_per_epoch and due():
                    if world > 1:
                        average_running_stats((generator, discriminator), world)
                    save_state(epoch, done_in_epoch)
            if bad_loss or stop["asked"] and done_in_epoch < steps_per_epoch:
                break
            save_progress(epoch, done_in_epoch)  # the end of an epoch (or of training)
            if args.no_progress and lead:
                print(f"epoch {epoch}/{epochs} step {step}/{total_steps} Loss_D {d_loss:.3f} "
                      f"Loss_G {g_loss:.3f}", file=sys.stderr)
            epoch, done_in_epoch = epoch + 1, 0
    except KeyboardInterrupt:  # the second Ctrl-C or SIGTERM
        aborted = True
    except RuntimeError as e:  # the data pipeline stops on the first image it cannot decode
        data_error = _data_error(e)
        if data_error is None:
            raise
    finally:
        log_file.close()
        signal.signal(signal.SIGINT, previous_handler)
        signal.signal(signal.SIGTERM, previous_term)
    bar.close()
    if aborted:
        raise UserError(f"aborted at step {step} without saving; the newest checkpoint in {out}/checkpoints is "
                        f"from step {saved['step']}: continue with --resume --output_dir {out}")
    if (stop["asked"] or data_error) and step > saved["step"]:
        print(f"{'interrupted' if stop['asked'] else 'stopped'} at step {step}: saving checkpoints and pictures",
              file=sys.stderr)
        save_progress(epoch, done_in_epoch)
    if data_error:
        raise UserError(f"{data_error}: remove or replace that file and continue with --resume --output_dir {out}"
                        + (f" (the checkpoints hold the {step} steps done)" if step else ""))
    if bad_loss:
        kept = (f"the newest checkpoint in {out}/checkpoints, from step {saved['step']}, is kept" if saved["step"]
                else "no checkpoint had been written yet")
        raise UserError(f"losses became non-finite at step {bad_loss[0]} (G {bad_loss[1]}, D {bad_loss[2]}); "
                        f"training stopped and {kept}: try a lower --lr")
    elapsed = time.time() - started
    if step > first_step and lead:
        swd_log = plots.read_log(swd_path) if os.path.exists(swd_path) else None
        written.append(plots.plot_losses(plots.read_log(log_path), os.path.join(out, "losses.png"), swd_log))
        written.append(plots.make_gif(grids, os.path.join(out, "progress.gif")))
    if args.distributed:
        with open(os.path.join(out, f"rank_{rank}.json"), "w") as f:
            json.dump({"rank": rank, "devices": world, "steps": step,
                       "parameter_digest": parameter_digest(generator, discriminator),
                       "running_stats_digest": parameter_digest(generator, discriminator, trainable=False),
                       "artifacts_written": sorted({os.path.relpath(p, out) for p in written}),
                       "image_digests": digests[:DIGESTS_KEPT]}, f, indent=1)
    if lead:
        done = step - first_step
        print(f"{'stopped' if stop['asked'] else 'done'}: {done} steps in {elapsed:.0f} s "
              f"({done * args.batch_size * world / max(elapsed, 1e-9):.1f} img/s over {world} device(s)), "
              f"{step} in all; outputs in {out}", file=sys.stderr)
    if stop["asked"]:
        sys.exit(130)
    return {"output_dir": out, "steps": step, "epochs": epoch if done_in_epoch else epoch - 1,
            "seconds": elapsed, "rank": rank, "devices": world}


@cli
def main(argv=None):
    train(parse_args(argv))


if __name__ == "__main__":
    main()
