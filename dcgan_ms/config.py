"""The configuration of a training run: every flag of ``python -m dcgan_ms.train``, defined once.

Each field of ``TrainConfig`` is a flag with its default, help text, group and parsing
(``train.build_parser`` builds the command line from them), and whether it defines the run: on
``--resume`` the run's own flags come from its checkpoint (``resumed``); those that define it cannot
change, the others (``--epochs``, ``--device_target``, ...) may. Code and notebooks can build one
directly: ``TrainConfig(dataset="sample", ngf=16, ndf=16, batch_size=32, epochs=26)``; it checks
itself (``TrainConfig.check``), so every way in gets the command line's one-line errors.
"""
import argparse
import dataclasses
import json
import math
import os
import time
from typing import Optional

from .errors import UserError
from .pixels import PIXEL_RANGES, RESIZE, RESIZE_BEFORE_RECORDED, RESIZES, ImageLook, parse_colour


def number(kind, text):
    """``text`` as a number of ``kind``: finite (an "inf" or "nan" would never end a run, or poison it)."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive(kind):
    """A command-line parser of numbers of ``kind`` greater than 0."""
    def parse(text):
        value = number(kind, text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value
    return parse


def nonnegative(text):
    value = number(float, text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def count(text):
    """A command-line parser of whole numbers 0 or more."""
    value = number(int, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def between(low, high):
    """A command-line parser of floats in [low, high)."""
    def parse(text):
        value = number(float, text)
        if not low <= value < high:
            raise argparse.ArgumentTypeError(f"must be in [{low:g}, {high:g}), got {text}")
        return value
    return parse


def flag(default, help, *, group, defines_run=False, parser_default=..., **parsing):
    """A TrainConfig field that is a command-line flag; ``parsing`` goes to ``add_argument``, and
    ``parser_default``, where given, is the command line's default instead of the field's."""
    parsing["default"] = default if parser_default is ... else parser_default
    return dataclasses.field(default=default, metadata={"help": help, "group": group, "defines_run": defines_run,
                                                        "parsing": parsing})


@dataclasses.dataclass
class TrainConfig:
    dataset: str = flag("faces", "faces: the tutorial's 70,171 anime faces, downloaded into --data_root (default "
                        "data/faces) when absent; sample: the procedurally drawn avatars shipped in data/sample "
                        "(offline). Default: faces, unless --data_root is given alone", group="data", defines_run=True,
                        choices=("faces", "sample"), parser_default=None)  # "folder": --data_root alone
    data_root: Optional[str] = flag(None, "with --dataset faces: where the faces are or are downloaded to; alone: any "
                                    "folder of images, read at any depth (hidden files and non-images skipped)",
                                    group="data")
    pixel_range: str = flag("-1,1", "scale real images to Tanh's [-1, 1], or to the tutorial's [0, 1] (its mistake, "
                            "kept for comparison)", group="data", defines_run=True, choices=("-1,1", "0,1"))
    resize: str = flag(RESIZE, "how images are shrunk to 64 px: torchvision is Pillow's bilinear filter, which "
                       "weighs every pixel each new one covers (as torchvision and PyTorch's DCGAN example shrink "
                       "images); antialias is Pillow's sharper bicubic filter; bilinear is the tutorial's "
                       "Resize(64), which samples near each new pixel and turns fine detail into false patterns "
                       "(aliasing)", group="data", defines_run=True, choices=RESIZES)
    background: str = flag("white", "transparent pixels of RGBA, LA or palette images are composited over this "
                           "colour (a name, #rrggbb or rgb(r, g, b)); MindSpore's decoder alone would leave them "
                           "black", group="data", defines_run=True, metavar="COLOUR")
    num_workers: int = flag(2, "data pipeline worker threads", group="data", type=positive(int))
    epochs: int = flag(3, "passes over the data", group="training", type=positive(int))
    max_steps: Optional[int] = flag(None, "stop after this many steps", group="training", type=positive(int))
    max_minutes: Optional[float] = flag(None, "end training after the step that passes this many minutes of "
                                        "training, saving everything as at the end (exit 0); --resume continues it",
                                        group="training", type=positive(float))
    batch_size: int = flag(128, "images per step", group="training", defines_run=True, type=positive(int))
    lr: float = flag(2e-4, "Adam learning rate of G, and of D unless --lr_d is given", group="training",
                     defines_run=True, type=positive(float))
    lr_d: Optional[float] = flag(None, "D's own Adam learning rate (None: the same as --lr); a faster D is TTUR "
                                 "(Heusel et al. 2017)", group="training", defines_run=True, type=positive(float))
    beta1: float = flag(0.5, "Adam beta1, both networks", group="training", defines_run=True, type=between(0, 1))
    beta2: float = flag(0.999, "Adam beta2, both networks", group="training", defines_run=True, type=between(0, 1))
    instance_noise: float = flag(0.0, "std of Gaussian noise added to D's inputs, real and fake (0: off, the "
                                 "tutorial's training; the quickstart uses it, see README)", group="training",
                                 defines_run=True, type=nonnegative, metavar="SIGMA")
    instance_noise_steps: int = flag(0, "the instance noise fades linearly to 0 over this many steps (0: it stays)",
                                     group="training", defines_run=True, type=count, metavar="STEPS")
    label_smoothing: float = flag(0.0, "one-sided label smoothing: D's target for real images is 1 - EPS (0: off, "
                                  "the tutorial)", group="training", defines_run=True, type=between(0, 0.5),
                                  metavar="EPS")
    ema: float = flag(0.0, "keep a moving average of G's weights with this decay per step (e.g. 0.99); the grids, "
                      "generator.ckpt and SWD then come from the averaged G (0: off, the tutorial)", group="training",
                      defines_run=True, type=between(0, 1), metavar="DECAY")
    seed: int = flag(1, "seeds weights, shuffling, noise and the fixed noise (0 or more)", group="training",
                     defines_run=True, type=count)
    swd_every: int = flag(0, "every this many epochs (and at the end), score G by SWD against --swd_num real images "
                          "(swd.csv, third panel of losses.png); 0: off", group="training", type=count,
                          metavar="EPOCHS")
    swd_num: int = flag(256, "images per set for --swd_every", group="training", type=positive(int))
    # the tutorial's sizes, models.NZ, NGF and NDF (written out: the command line does not import MindSpore)
    nz: int = flag(100, "length of the noise vector z", group="model", defines_run=True, type=positive(int))
    ngf: int = flag(64, "Generator width (feature maps)", group="model", defines_run=True, type=positive(int))
    ndf: int = flag(64, "Discriminator width (feature maps)", group="model", defines_run=True, type=positive(int))
    device_target: str = flag("CPU", "MindSpore backend", group="run", choices=("CPU", "GPU", "Ascend"))
    device_id: Optional[int] = flag(None, "which device of the backend", group="run", type=int)
    mode: str = flag("graph", "graph: the train step compiled with ms.jit; pynative: eager, for debugging", group="run",
                     choices=("graph", "pynative"))
    output_dir: Optional[str] = flag(None, "where the run writes (default runs/<dataset>-<time>; required with "
                                     "--distributed, so that every rank agrees)", group="run")
    distributed: bool = flag(False, "data-parallel training over the devices msrun started (--batch_size is per "
                             "device)", group="run", defines_run=True, action="store_true")
    conv: str = flag("auto", "strided convolutions and LeakyReLU on CPU: dcgan_ms's compiled kernels (auto: when a "
                     "C++ compiler builds them; faster steps, 1.7x on an AVX-512 Xeon) or MindSpore's built-in ones "
                     "(with oneDNN limited to AVX2 on AVX-512 CPUs); see dcgan_ms/kernels/", group="run",
                     choices=("auto", "compiled", "builtin"))
    precision: str = flag("fp32", "the compiled CPU kernels' matrix products: fp32 (the tutorial's), or bf16: "
                          "bfloat16 operands summed in float32, faster on CPUs with avx512_bf16 or amx_bf16 (a "
                          "1.2-1.6x step on a 2-core AMD EPYC; elsewhere it says so and trains in fp32); weights, "
                          "optimizers, BatchNorm and losses stay float32", group="run", defines_run=True,
                          choices=("fp32", "bf16"))
    no_progress: bool = flag(False, "no progress bar (one line per epoch instead)", group="run", action="store_true")
    resume: Optional[str] = flag(None, "continue a run: alone, from the newest readable checkpoint in --output_dir; "
                                 "or from the checkpoints/step_*.ckpt file given", group="checkpoints and resuming",
                                 nargs="?", const="latest", metavar="CHECKPOINT")
    save_every: int = flag(0, "also write a resume checkpoint every this many steps (0: off; one is always written at "
                           "the end of each epoch)", group="checkpoints and resuming", type=count, metavar="STEPS")
    save_minutes: float = flag(10.0, "also write a resume checkpoint when this long has passed since the last (0: "
                               "off)", group="checkpoints and resuming", type=nonnegative, metavar="MINUTES")
    keep_checkpoints: int = flag(3, "keep the newest K resume checkpoints", group="checkpoints and resuming",
                                 type=positive(int), metavar="K")
    overwrite: bool = flag(False, "start a new run in an --output_dir that already holds one (its checkpoints, grids "
                           "and final files are deleted once the new run is set up)", group="checkpoints and resuming",
                           action="store_true")
    explicit: tuple = ()  # the flags given on the command line: on --resume these win over the checkpoint's

    def __post_init__(self):
        self.check()
        if self.output_dir is None and self.resume and self.resume != "latest":
            self.output_dir = os.path.dirname(os.path.dirname(os.path.abspath(self.resume)))
        if self.output_dir is None:
            self.output_dir = os.path.join("runs", f"{self.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")

    def check(self):
        """The flags that are valid alone but not together, for every way a run is made (the command line,
        code, ``dataclasses.replace`` on --resume): a UserError, one line saying what to do."""
        if self.dataset == "folder" and not self.data_root:  # recorded for a run given --data_root alone
            raise UserError("a run of a folder of images needs --data_root, that folder")
        if self.dataset == "sample" and self.data_root:
            raise UserError("--dataset sample takes no --data_root (the sample is data/sample)")
        if self.distributed and self.device_id is not None:
            raise UserError("--device_id does not go with --distributed: msrun gives each rank its own device")
        if self.distributed and self.output_dir is None:
            raise UserError("--distributed needs --output_dir (every rank must write to the same folder)")
        if self.resume == "latest" and self.output_dir is None:
            raise UserError("--resume alone needs --output_dir, the folder of the run to continue")
        if self.precision == "bf16" and self.conv == "builtin":
            raise UserError("--precision bf16 runs in the compiled kernels, which --conv builtin turns off: "
                            "use --conv auto")
        if self.precision == "bf16" and self.device_target != "CPU":
            raise UserError(f"--precision bf16 is for CPUs (dcgan_ms's compiled kernels), not {self.device_target}: "
                            "use --precision fp32")
        parse_colour(self.background)  # a UserError naming the colour

    @property
    def look(self):
        """--pixel_range, --background and --resize as one ``pixels.ImageLook``."""
        return ImageLook(PIXEL_RANGES[self.pixel_range], self.background, self.resize)

    def flags(self):
        """The flags as a dict (what config.json and resume checkpoints record)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "explicit"}


# Run-defining flags added after runs were recorded without them: the value those runs used.
BEFORE_RECORDED = {"resize": RESIZE_BEFORE_RECORDED, "precision": "fp32"}
FLAGS = tuple(f for f in dataclasses.fields(TrainConfig) if "help" in f.metadata)
# Flags that define a run: on --resume they come from the checkpoint, and giving another value is an error.
RUN_DEFINING = tuple(f.name for f in FLAGS if f.metadata["defines_run"])
_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def checked(key, value):
    """A flag's value read back from a checkpoint, parsed as the command line parses it; the parsed
    value is the one kept (an edited "8" is 8; a keep_checkpoints of 0 would have the rotation delete
    every checkpoint, an "Infinity" would never end)."""
    field = next((f for f in FLAGS if f.name == key), None)
    parsing = field.metadata["parsing"] if field else {}
    try:
        if value is None:
            if field and field.default is not None:
                raise argparse.ArgumentTypeError("it has no value")
            return None
        if parsing.get("action") == "store_true":
            if not isinstance(value, bool):
                raise argparse.ArgumentTypeError("expected true or false")
            return value
        if isinstance(value, (bool, dict, list)) or ("type" not in parsing and not isinstance(value, str)):
            raise argparse.ArgumentTypeError("not a value the command line gives")
        parsed = parsing["type"](str(value)) if "type" in parsing else value
        allowed = (*parsing.get("choices", ()), *(("folder",) if key == "dataset" else ()))  # folder: --data_root alone
        if allowed and parsed not in allowed:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(map(str, allowed))}")
    except (argparse.ArgumentTypeError, ValueError) as e:
        raise UserError(f"the run being resumed records --{key} {json.dumps(value)}, which is not valid ({e}): its "
                        "checkpoint was edited or is damaged; resume from another, or start a new run") from None
    return parsed


# What a run records besides its flags, which resuming needs: each a whole number > 0.
RECORDED_COUNTS = ("devices", "steps_per_epoch")


def checked_record(saved):
    """The config a resume checkpoint records (``saved``), its counts checked: a UserError naming what is
    missing or wrong."""
    if not isinstance(saved, dict):
        raise UserError("the run being resumed records no config (its checkpoint was edited or is damaged): resume "
                        "from another, or start a new run")
    for key in RECORDED_COUNTS:
        value = saved.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            what = "no " + key if key not in saved else f"{key} {json.dumps(value)}, not a whole number above 0"
            raise UserError(f"the run being resumed records {what} (its checkpoint was edited or is damaged): "
                            "resume from another, or start a new run")
    return saved


def resumed(config, saved):
    """``config`` with the flags of the run being resumed (``saved``, its recorded config) wherever
    the command line gave none. A run-defining flag given with another value is an error (it would
    silently be another run); others may change. --epochs alone lifts the run's --max_steps."""
    changes = {}
    saved = {**BEFORE_RECORDED, **saved}
    for key, value in saved.items():
        if key in ("resume", "overwrite", "output_dir") or key not in _FIELDS:
            continue
        if key == "data_root" and saved.get("dataset") == "sample":  # recorded for the report: the sample is
            continue                                                # the installed package's data/sample
        if key not in config.explicit:
            changes[key] = checked(key, value)
        elif key in RUN_DEFINING and getattr(config, key) != value:
            raise UserError(f"--{key} {getattr(config, key)} differs from the run being resumed ({value}): "
                            "leave it out to continue that run, or start a new one in another --output_dir")
    if "epochs" in config.explicit and "max_steps" not in config.explicit:
        changes["max_steps"] = None
    return dataclasses.replace(config, **changes)
