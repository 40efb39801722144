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
which starts one process per device; the script builds the msrun line and turns Ctrl-C into a
graceful stop of every worker (see the README for multi-node lines and what each kind of stop does):

    scripts/run_distributed.sh 8 --device_target Ascend --output_dir runs/dist8

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
import sys

from .config import TrainConfig
from .data.dataset import parse_colour
from .errors import UserError, cli

DEFAULTS = TrainConfig(output_dir="")  # the flags' defaults are the config's


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


def _in(low, high):
    """A parser of floats in [low, high)."""
    def parse(text):
        value = float(text)
        if not low <= value < high:
            raise argparse.ArgumentTypeError(f"must be in [{low:g}, {high:g}), got {text}")
        return value
    return parse


def build_parser():
    p = argparse.ArgumentParser(prog="python -m dcgan_ms.train", description="Train the MindSpore tutorial's "
                                "DCGAN on anime faces (or any folder of images).",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _data_and_training_flags(p)
    _model_and_run_flags(p)
    return p


def _data_and_training_flags(p):
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=("faces", "sample"), default=None,
                   help="faces: the tutorial's 70,171 anime faces, downloaded into --data_root (default "
                        "data/faces) when absent; sample: the procedurally drawn avatars shipped in "
                        "data/sample (offline). Default: faces, unless --data_root is given alone")
    g.add_argument("--data_root", default=DEFAULTS.data_root,
                   help="with --dataset faces: where the faces are or are downloaded to; alone: any folder "
                        "of images, read at any depth (hidden files and non-images skipped)")
    g.add_argument("--pixel_range", choices=("-1,1", "0,1"), default=DEFAULTS.pixel_range,
                   help="scale real images to Tanh's [-1, 1], or to the tutorial's [0, 1] (its mistake, kept "
                        "for comparison)")
    g.add_argument("--background", default=DEFAULTS.background, metavar="COLOUR",
                   help="transparent pixels of RGBA, LA or palette images are composited over this colour (a "
                        "name, #rrggbb or rgb(r, g, b)); MindSpore's decoder alone would leave them black")
    g.add_argument("--num_workers", type=_positive(int), default=DEFAULTS.num_workers,
                   help="data pipeline worker threads")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=_positive(int), default=DEFAULTS.epochs, help="passes over the data")
    g.add_argument("--max_steps", type=_positive(int), default=DEFAULTS.max_steps, help="stop after this many steps")
    g.add_argument("--max_minutes", type=_positive(float), default=DEFAULTS.max_minutes,
                   help="end training after the step that passes this many minutes of training, saving everything "
                        "as at the end (exit 0); --resume continues it")
    g.add_argument("--batch_size", type=_positive(int), default=DEFAULTS.batch_size, help="images per step")
    g.add_argument("--lr", type=_positive(float), default=DEFAULTS.lr,
                   help="Adam learning rate of G, and of D unless --lr_d is given")
    g.add_argument("--lr_d", type=_positive(float), default=DEFAULTS.lr_d,
                   help="D's own Adam learning rate (None: the same as --lr); a faster D is TTUR (Heusel et al. 2017)")
    g.add_argument("--beta1", type=_in(0, 1), default=DEFAULTS.beta1, help="Adam beta1, both networks")
    g.add_argument("--beta2", type=_in(0, 1), default=DEFAULTS.beta2, help="Adam beta2, both networks")
    g.add_argument("--instance_noise", type=_nonnegative, default=DEFAULTS.instance_noise, metavar="SIGMA",
                   help="std of Gaussian noise added to D's inputs, real and fake (0: off, the tutorial's "
                        "training; the quickstart uses it, see README)")
    g.add_argument("--instance_noise_steps", type=int, default=DEFAULTS.instance_noise_steps,
                   metavar="STEPS", help="the instance noise fades linearly to 0 over this many steps (0: it stays)")
    g.add_argument("--label_smoothing", type=_in(0, 0.5), default=DEFAULTS.label_smoothing, metavar="EPS",
                   help="one-sided label smoothing: D's target for real images is 1 - EPS (0: off, the tutorial)")
    g.add_argument("--ema", type=_in(0, 1), default=DEFAULTS.ema, metavar="DECAY",
                   help="keep a moving average of G's weights with this decay per step (e.g. 0.99); the grids, "
                        "generator.ckpt and SWD then come from the averaged G (0: off, the tutorial)")
    g.add_argument("--seed", type=int, default=DEFAULTS.seed,
                   help="seeds weights, shuffling, noise and the fixed noise")
    g.add_argument("--swd_every", type=int, default=DEFAULTS.swd_every, metavar="EPOCHS",
                   help="every this many epochs (and at the end), score G by SWD against --swd_num real images "
                        "(swd.csv, third panel of losses.png); 0: off")
    g.add_argument("--swd_num", type=_positive(int), default=DEFAULTS.swd_num, help="images per set for --swd_every")


def _model_and_run_flags(p):
    g = p.add_argument_group("model")
    g.add_argument("--nz", type=_positive(int), default=DEFAULTS.nz, help="length of the noise vector z")
    g.add_argument("--ngf", type=_positive(int), default=DEFAULTS.ngf, help="Generator width (feature maps)")
    g.add_argument("--ndf", type=_positive(int), default=DEFAULTS.ndf, help="Discriminator width (feature maps)")
    g = p.add_argument_group("run")
    g.add_argument("--device_target", choices=("CPU", "GPU", "Ascend"), default=DEFAULTS.device_target,
                   help="MindSpore backend")
    g.add_argument("--device_id", type=int, default=DEFAULTS.device_id, help="which device of the backend")
    g.add_argument("--mode", choices=("graph", "pynative"), default=DEFAULTS.mode,
                   help="graph: the train step compiled with ms.jit; pynative: eager, for debugging")
    g.add_argument("--output_dir", default=None, help="where the run writes (default runs/<dataset>-<time>; "
                   "required with --distributed, so that every rank agrees)")
    g.add_argument("--distributed", action="store_true",
                   help="data-parallel training over the devices msrun started (--batch_size is per device)")
    g.add_argument("--conv", choices=("auto", "compiled", "builtin"), default=DEFAULTS.conv,
                   help="strided convolutions and LeakyReLU on CPU: dcgan_ms's compiled kernels (auto: when a C++ "
                   "compiler builds them; faster steps, 1.7x on an AVX-512 Xeon) or MindSpore's built-in ones (with "
                   "oneDNN limited to AVX2 on AVX-512 CPUs); see dcgan_ms/cpu_conv.py")
    g.add_argument("--no_progress", action="store_true", help="no progress bar (one line per epoch instead)")
    g = p.add_argument_group("checkpoints and resuming")
    g.add_argument("--resume", nargs="?", const="latest", default=None, metavar="CHECKPOINT",
                   help="continue a run: alone, from the newest readable checkpoint in --output_dir; or from "
                        "the checkpoints/step_*.ckpt file given")
    g.add_argument("--save_every", type=int, default=DEFAULTS.save_every, metavar="STEPS",
                   help="also write a resume checkpoint every this many steps (0: off; one is always written at "
                        "the end of each epoch)")
    g.add_argument("--save_minutes", type=_nonnegative, default=DEFAULTS.save_minutes, metavar="MINUTES",
                   help="also write a resume checkpoint when this long has passed since the last (0: off)")
    g.add_argument("--keep_checkpoints", type=_positive(int), default=DEFAULTS.keep_checkpoints, metavar="K",
                   help="keep the newest K resume checkpoints")
    g.add_argument("--overwrite", action="store_true",
                   help="start a new run in an --output_dir that already holds one (its checkpoints are deleted)")


def explicit_flags(argv):
    """The destinations of the flags given on the command line (not left at their defaults)."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def parse_args(argv=None):
    """The command line as a TrainConfig."""
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    if args["dataset"] is None:
        args["dataset"] = "folder" if args["data_root"] else "faces"
    if args["dataset"] == "sample" and args["data_root"]:
        parser.error("--dataset sample takes no --data_root (the sample is data/sample)")
    if args["distributed"] and args["device_id"] is not None:
        parser.error("--device_id does not go with --distributed: msrun gives each rank its own device")
    if args["distributed"] and args["output_dir"] is None:
        parser.error("--distributed needs --output_dir (every rank must write to the same folder)")
    for flag in ("swd_every", "save_every", "instance_noise_steps"):
        if args[flag] < 0:
            parser.error(f"argument --{flag}: must be 0 or more, got {args[flag]}")
    if args["resume"] == "latest" and args["output_dir"] is None:
        parser.error("--resume alone needs --output_dir, the folder of the run to continue")
    try:
        parse_colour(args["background"])
    except UserError as e:
        parser.error(str(e))
    return TrainConfig(**args, explicit=tuple(sorted(explicit_flags(argv))))


@cli
def main(argv=None):
    from .session import train
    if train(parse_args(argv))["interrupted"]:  # Ctrl-C or SIGTERM: everything was saved
        sys.exit(130)


if __name__ == "__main__":
    main()
