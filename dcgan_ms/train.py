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

Ctrl-C stops training after saving the checkpoints and pictures of the steps done so far.

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
import json
import math
import os
import re
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
    g.add_argument("--no_progress", action="store_true", help="no progress bar (one line per epoch instead)")
    return p


def parse_args(argv=None):
    args = build_parser().parse_args(argv)
    if args.dataset is None:
        args.dataset = "folder" if args.data_root else "faces"
    if args.dataset == "sample" and args.data_root:
        build_parser().error("--dataset sample takes no --data_root (the sample is data/sample)")
    if args.distributed and args.output_dir is None:
        build_parser().error("--distributed needs --output_dir (every rank must write to the same folder)")
    if args.swd_every < 0:
        build_parser().error(f"argument --swd_every: must be 0 or more, got {args.swd_every}")
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


def train(args, data_root=None):
    """Run training as the flags in ``args`` say; return a dict describing what was done."""
    import mindspore as ms
    from tqdm import tqdm

    from . import checkpoint, plots
    from .data import create_dataset
    from .distributed import average_running_stats, init_distributed, parameter_digest
    from .generate import generate
    from .models import Discriminator, Generator
    from .runtime import set_device, set_seed
    from .step import make_optimizers, make_train_step

    set_device(args.device_target, args.device_id)
    rank, world = init_distributed() if args.distributed else (0, 1)
    lead = rank == 0  # only the lead rank writes checkpoints and pictures
    data_root = data_root or resolve_data_root(args)
    prepare_output(args.output_dir)
    set_seed(args.seed)  # the same on every rank: same initial weights, same shuffling order
    dataset = create_dataset(data_root, args.batch_size, num_parallel_workers=args.num_workers,
                             pixel_range=args.pixel_range,
                             num_shards=world if args.distributed else None,
                             shard_id=rank if args.distributed else None)
    steps_per_epoch = dataset.get_dataset_size()
    total_steps = args.epochs * steps_per_epoch
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps)
    epochs = math.ceil(total_steps / steps_per_epoch)

    generator, discriminator = Generator(args.nz, args.ngf, NC), Discriminator(args.ndf, NC)
    generator.set_train()
    discriminator.set_train()
    if world > 1:
        ms.set_seed(args.seed + rank)  # after the weights: each rank its own instance noise
    optimizer_g, optimizer_d = make_optimizers(generator, discriminator, args.lr, args.beta1)
    train_step = make_train_step(generator, discriminator, optimizer_g, optimizer_d, jit=args.mode == "graph",
                                 instance_noise=args.instance_noise, distributed=args.distributed)

    out = args.output_dir
    fixed_noise = np.random.default_rng(args.seed).standard_normal((GRID_SIZE, args.nz, 1, 1)).astype(np.float32)
    z_rng = np.random.default_rng([args.seed, rank]) if world > 1 else np.random.default_rng(args.seed + 1)
    if lead:
        np.save(os.path.join(out, "fixed_noise.npy"), fixed_noise)
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump({**vars(args), "data_root": os.path.abspath(data_root), "devices": world,
                       "global_batch_size": args.batch_size * world, "steps_per_epoch": steps_per_epoch,
                       "total_steps": total_steps}, f, indent=2)
        print(f"training on {args.device_target} ({args.mode} mode{f', {world} devices' if world > 1 else ''}): "
              f"{data_root}, {steps_per_epoch} steps of {args.batch_size}{' per device' if world > 1 else ''} "
              f"per epoch, {total_steps} steps; writing to {out}", file=sys.stderr)

    data_error = None
    grids, written = [], []  # written: the artifacts this rank wrote (rank 0 only, by design)
    swd_path, swd_real = os.path.join(out, "swd.csv"), None
    if lead and os.path.exists(swd_path):  # a new run in a used folder starts a new score log, as log.csv
        os.remove(swd_path)

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

    def save_progress(epoch):
        if world > 1:
            average_running_stats((generator, discriminator), world)
        if not lead:
            return
        if args.swd_every and (epoch % args.swd_every == 0 or step >= total_steps):
            track_swd(epoch)
        images = generate(generator, fixed_noise, bn="batch")  # as in training; running stats untouched
        grids.append(plots.save_grid(images, os.path.join(out, "samples", f"epoch_{epoch:03d}.png"), nrow=8))
        written.extend([grids[-1], checkpoint.save(generator, os.path.join(out, "generator.ckpt")),
                        checkpoint.save(discriminator, os.path.join(out, "discriminator.ckpt"))])

    log_path = os.path.join(out, f"log_rank{rank}.csv" if args.distributed else "log.csv")
    digests = []  # of the images this rank read (distributed runs only)
    step, epoch, interrupted, bad_loss = 0, 0, False, None
    quiet = args.no_progress or not lead
    bar = tqdm(total=total_steps, unit="step", disable=quiet, dynamic_ncols=True)
    started = time.time()
    with open(log_path, "w", newline="") as log_file:
        log = csv.writer(log_file)
        log.writerow(LOG_FIELDS)
        try:
            for epoch in range(1, epochs + 1):
                for (real_imgs,) in dataset.create_tuple_iterator(num_epochs=1):
                    t0 = time.perf_counter()
                    z = ms.Tensor(z_rng.standard_normal((args.batch_size, args.nz, 1, 1)).astype(np.float32))
                    g_loss, d_loss, d_real, d_fake = (float(v) for v in train_step(real_imgs, z))
                    speed = args.batch_size / (time.perf_counter() - t0)
                    step += 1
                    log.writerow([step, epoch, f"{g_loss:.6g}", f"{d_loss:.6g}", f"{d_real:.6g}",
                                  f"{d_fake:.6g}", f"{speed:.4g}"])
                    if args.distributed and len(digests) < DIGESTS_KEPT:
                        digests += [hashlib.sha1(img.tobytes()).hexdigest()[:16] for img in real_imgs.asnumpy()]
                    if not (math.isfinite(g_loss) and math.isfinite(d_loss)):
                        bad_loss = (step, g_loss, d_loss)
                        break
                    bar.set_postfix_str(f"epoch {epoch}/{epochs} Loss_D {d_loss:.3f} Loss_G {g_loss:.3f} "
                                        f"D(x) {d_real:.2f} D(G(z)) {d_fake:.2f} {speed * world:.1f} img/s")
                    bar.update()
                    if step >= total_steps:
                        break
                if bad_loss:
                    break
                log_file.flush()
                save_progress(epoch)
                if args.no_progress and lead:
                    print(f"epoch {epoch}/{epochs} step {step}/{total_steps} Loss_D {d_loss:.3f} "
                          f"Loss_G {g_loss:.3f}", file=sys.stderr)
                if step >= total_steps:
                    break
        except KeyboardInterrupt:
            interrupted = True
        except RuntimeError as e:  # the data pipeline stops on the first image it cannot decode
            data_error = _data_error(e)
            if data_error is None:
                raise
    bar.close()
    if (interrupted or data_error) and step:
        print(f"{'interrupted' if interrupted else 'stopped'} at step {step}: saving checkpoints and pictures",
              file=sys.stderr)
        save_progress(epoch)
    if data_error:
        raise UserError(f"{data_error}: remove or replace that file and run again"
                        + (f"; the checkpoints in {out} hold the {step} steps done" if step else ""))
    if bad_loss:
        raise UserError(f"losses became non-finite at step {bad_loss[0]} (G {bad_loss[1]}, D {bad_loss[2]}); "
                        f"training stopped, the checkpoints in {out} are from the end of the last good "
                        "epoch: try a lower --lr")
    elapsed = time.time() - started
    if step and lead:
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
        print(f"{'stopped' if interrupted else 'done'}: {step} steps in {elapsed:.0f} s "
              f"({step * args.batch_size * world / max(elapsed, 1e-9):.1f} img/s over {world} device(s)); "
              f"outputs in {out}", file=sys.stderr)
    if interrupted:
        sys.exit(130)
    return {"output_dir": out, "steps": step, "epochs": epoch, "seconds": elapsed, "rank": rank, "devices": world}


@cli
def main(argv=None):
    train(parse_args(argv))


if __name__ == "__main__":
    main()
