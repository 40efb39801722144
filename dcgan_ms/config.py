"""The configuration of a training run, as one explicit record.

``TrainConfig`` holds every flag of ``python -m dcgan_ms.train`` with the same name and default
(``train.build_parser`` reads its defaults from here), so code and notebooks can build one
directly: ``TrainConfig(dataset="sample", ngf=16, ndf=16, batch_size=32, epochs=26)``.

On ``--resume`` the run's own flags come from its checkpoint (``resumed``): those that define the
run (``RUN_DEFINING``) cannot change, the others (``--epochs``, ``--device_target``, ...) may.
"""
import dataclasses
import os
import time
from typing import Optional

from .errors import UserError
from .models import NDF, NGF, NZ


@dataclasses.dataclass
class TrainConfig:
    # data
    dataset: str = "faces"  # "faces", "sample", or "folder" (any --data_root)
    data_root: Optional[str] = None
    pixel_range: str = "-1,1"
    background: str = "white"  # what transparent pixels of RGBA/LA/palette images are composited over
    num_workers: int = 2
    # training
    epochs: int = 3
    max_steps: Optional[int] = None
    max_minutes: Optional[float] = None  # end training (saving all) after this long; --resume continues
    batch_size: int = 128
    lr: float = 2e-4
    lr_d: Optional[float] = None  # D's learning rate when it differs from G's (TTUR); None: --lr
    beta1: float = 0.5
    beta2: float = 0.999
    instance_noise: float = 0.0
    instance_noise_steps: int = 0  # the noise fades linearly to 0 over this many steps; 0: constant
    label_smoothing: float = 0.0  # D's target for real images is 1 - this (one-sided)
    ema: float = 0.0  # decay of the moving average of G's weights that the run shows and saves; 0: none
    seed: int = 1
    swd_every: int = 0
    swd_num: int = 256
    # model
    nz: int = NZ
    ngf: int = NGF
    ndf: int = NDF
    # run
    device_target: str = "CPU"
    device_id: Optional[int] = None
    mode: str = "graph"
    output_dir: Optional[str] = None
    distributed: bool = False
    conv: str = "auto"
    no_progress: bool = False
    # checkpoints and resuming
    resume: Optional[str] = None  # "latest" or the path of a resume checkpoint
    save_every: int = 0
    save_minutes: float = 10.0
    keep_checkpoints: int = 3
    overwrite: bool = False
    # the flags given on the command line: on --resume these win over the checkpoint's
    explicit: tuple = ()

    def __post_init__(self):
        if self.output_dir is None and self.resume and self.resume != "latest":
            self.output_dir = os.path.dirname(os.path.dirname(os.path.abspath(self.resume)))
        if self.output_dir is None:
            self.output_dir = os.path.join("runs", f"{self.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")

    def flags(self):
        """The flags as a dict (what config.json and resume checkpoints record)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "explicit"}


# Flags that define a run: on --resume they come from the checkpoint, and giving another value is an error.
RUN_DEFINING = ("dataset", "pixel_range", "background", "batch_size", "lr", "lr_d", "beta1", "beta2", "instance_noise",
                "instance_noise_steps", "label_smoothing", "ema", "seed", "nz", "ngf", "ndf", "distributed")
_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def resumed(config, saved):
    """``config`` with the flags of the run being resumed (``saved``, its recorded config) wherever
    the command line gave none. A run-defining flag given with another value is an error (it would
    silently be another run); others may change. --epochs alone lifts the run's --max_steps."""
    changes = {}
    for key, value in saved.items():
        if key in ("resume", "overwrite", "output_dir") or key not in _FIELDS:
            continue
        if key not in config.explicit:
            changes[key] = value
        elif key in RUN_DEFINING and getattr(config, key) != value:
            raise UserError(f"--{key} {getattr(config, key)} differs from the run being resumed ({value}): "
                            "leave it out to continue that run, or start a new one in another --output_dir")
    if "epochs" in config.explicit and "max_steps" not in config.explicit:
        changes["max_steps"] = None
    return dataclasses.replace(config, **changes)
