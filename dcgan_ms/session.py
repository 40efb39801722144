"""Setting up a training run: ``setup(config)`` builds the Session that ``training.train`` runs.

    setup(config)        device, cluster (``--distributed``), resume state, data, networks,
                         optimizers, train_step, starting point and fixed noise: a Session

On a rank of a data-parallel run the device is chosen, the cluster joined and only then the first
operator run (MindSpore's documented order, needed on Ascend); a rank that cannot start stops every
rank with one line (``distributed.agree_to_start``).
"""
import dataclasses
import math
import os
import sys
from typing import Optional

import numpy as np

from . import config as config_module
from . import resume, run_folder
from .checkpoint import restore
from .config import TrainConfig
from .errors import UserError
from .kernels import noise_source
from .distributed import Ranks
from .loop import Alone, Position
from .models import NC

GRID_SIZE = 64  # images in each progress grid (8 x 8)
NOISE_GENERATORS = {"compiled": "compiled kernels' generator", "numpy": "NumPy generator (no C++ compiler)"}


@dataclasses.dataclass(kw_only=True)
class Session:
    """Everything ``train_loop`` and the callbacks need, built by ``setup``."""
    config: TrainConfig
    ranks: Ranks  # this process among the run's: its rank, the devices, whether it writes
    data_root: str
    data: object  # data.TrainingData: this rank's batches
    total_steps: int
    generator: object
    discriminator: object
    optimizers: tuple
    train_step: object
    average: object  # ema.WeightAverage of G (--ema), or None
    fixed_noise: np.ndarray
    position: Position
    record: dict  # config.json: the flags, the data folder, the step counts
    agreement: Alone  # how the ranks agree to stop: ranks.agreement()
    resumed_from: Optional[str] = None

    @property
    def steps_per_epoch(self):
        return self.data.steps_per_epoch

    @property
    def cells(self):
        """What a resume checkpoint holds: G, D, both optimizers, and G's average (--ema)."""
        return networks_and_optimizers(self.generator, self.discriminator, self.optimizers, self.average)

    @property
    def networks(self):
        """G, D and G's average (--ema): the networks whose BatchNorm statistics ranks average before saving."""
        return (self.generator, self.discriminator) + ((self.average.ema,) if self.average else ())

    @property
    def shown_generator(self):
        """The Generator whose images the run shows and saves: G, or its moving average (--ema)."""
        return self.average.ema if self.average else self.generator


def networks_and_optimizers(generator, discriminator, optimizers, average):
    """The cells whose parameters a resume checkpoint holds (``Session.cells``)."""
    return (generator, discriminator, *optimizers) + ((average,) if average else ())


def resolve_data_root(config):
    """The folder of training images for the config (downloading the faces if needed)."""
    from .data import FACES_DIR, SAMPLE_DIR, prepare_faces
    if config.dataset == "sample":
        return SAMPLE_DIR
    if config.dataset == "faces":
        return prepare_faces(config.data_root or FACES_DIR)
    return config.data_root


def read_resume_state(config):
    """(config, state): with --resume, the checkpoint and the run's own flags; else (config, None).
    A new run refuses a folder that holds a run's checkpoints unless --overwrite."""
    out = config.output_dir
    run_folder.refuse_shared(out)
    if not config.resume:
        if run_folder.state_paths(out) and not config.overwrite:
            raise UserError(f"{out} already holds a training run (resume checkpoints in {out}/checkpoints): pass "
                            "--resume to continue it, --overwrite to start over, or another --output_dir")
        return config, None
    state = (resume.latest_state(out, warn=lambda m: print(m, file=sys.stderr)) if config.resume == "latest"
             else resume.read_state(config.resume))
    state["config"] = config_module.checked_record(state["config"])
    return config_module.resumed(config, state["config"]), state


def build_networks(config, devices=1):
    """G, D, their Adam optimizers, G's moving average (--ema, else None) and the (jitted) train
    step, as the tutorial builds them; then the networks are rewritten with the faster layers that the
    device and ``--conv`` allow (``layers.speed_up``)."""
    from .ema import WeightAverage
    from .layers import speed_up
    from .models import Discriminator, Generator
    from .step import make_optimizers, make_train_step
    generator = Generator(config.nz, config.ngf, NC)
    discriminator = Discriminator(config.ndf, NC)
    speed_up(generator, config.conv, config.precision)
    speed_up(discriminator, config.conv, config.precision)
    generator.set_train()
    discriminator.set_train()
    optimizers = make_optimizers(generator, discriminator, lr=config.lr, beta1=config.beta1, beta2=config.beta2,
                                 lr_d=config.lr_d)
    average = (WeightAverage(generator, speed_up(Generator(config.nz, config.ngf, NC), config.conv), config.ema)
               if config.ema else None)  # G's average only draws: float32
    train_step = make_train_step(generator, discriminator, *optimizers, jit=config.mode == "graph",
                                 instance_noise=config.instance_noise, label_smoothing=config.label_smoothing,
                                 average=average, devices=devices)
    return generator, discriminator, optimizers, average, train_step


def starting_point(config, state, steps_per_epoch, cells):
    """(position, fixed noise): a new run's, or the checkpoint's, whose weights and optimizer states
    are copied into ``cells``."""
    if state is None:
        noise = np.random.default_rng(config.seed).standard_normal((GRID_SIZE, config.nz, 1, 1)).astype(np.float32)
        return Position(), noise
    restore(cells, state["params"], source=state["path"], into="this run")
    if state["config"]["steps_per_epoch"] != steps_per_epoch:
        print(f"warning: the data set changed since the checkpoint ({state['config']['steps_per_epoch']} -> "
              f"{steps_per_epoch} steps per epoch): continuing on the images there now", file=sys.stderr)
    drew, draws = state["config"].get("noise"), noise_source()  # None: a checkpoint from before it was recorded
    if drew and drew != draws:
        print(f"warning: the run drew its noise with the {NOISE_GENERATORS[drew]}, this host draws it with the "
              f"{NOISE_GENERATORS[draws]}: the run goes on with other random numbers (the same distribution), "
              "not exactly as it would have", file=sys.stderr)
    position = Position(state["step"], max(state["epoch"], 1), state["step_in_epoch"])
    if position.step_in_epoch >= steps_per_epoch:  # it stopped at an epoch's end
        position.epoch, position.step_in_epoch = position.epoch + 1, 0
    return position, state["fixed_noise"]


def setup(config, data_root=None):
    """Build the Session of ``config`` (a TrainConfig); ``data_root`` overrides the config's data."""
    from .runtime import set_device
    if config.distributed:
        return setup_rank(config, data_root)
    config, state = read_resume_state(config)  # first: a resumed run's own flags decide everything below
    set_device(config.device_target, config.device_id)
    return replacing_the_old_run(build_session(config, state, data_root, ranks=Ranks()))


def replacing_the_old_run(session):
    """With --overwrite, the old run's resume checkpoints, epoch grids and final files are deleted here,
    once this run is set up (on every rank): a new run that fails at setup leaves the old one whole, and
    one that succeeds leaves nothing of the old run to be taken for its own (its report's timeline shows
    every grid in samples/)."""
    if session.ranks.writes and session.config.overwrite and session.resumed_from is None:
        run_folder.remove_old_run(run_folder.old_run_files(session.config.output_dir), "--overwrite")
    return session


def setup_rank(config, data_root):
    """``setup`` on one rank of a data-parallel run: the device chosen, the cluster joined, then the
    first operator (MindSpore's documented order, needed on Ascend). A rank that cannot start (its
    node lacks the checkpoint, an image it cannot decode) stops every rank with one line, where the
    others would otherwise wait for the cluster's time-out."""
    from .distributed import agree_to_start, require_msrun
    from .runtime import check_device, select_device
    require_msrun()
    failure, state = None, None
    try:
        config, state = read_resume_state(config)
    except UserError as e:
        failure = e
    select_device(config.device_target)
    ranks = Ranks.joined()
    check_device(config.device_target)
    session = None
    if failure is None:
        try:
            session = build_session(config, state, data_root, ranks=ranks)
        except UserError as e:
            failure = e
    agree_to_start(ranks.rank, ranks.devices, failure, state["step"] if state else None)
    return replacing_the_old_run(session)


def build_session(config, state, data_root, *, ranks):
    """The Session of ``config`` on a device already chosen, for this process among ``ranks``: data,
    networks, step, starting point."""
    from .data import TrainingData
    from .runtime import set_seed
    devices = ranks.devices
    if state and devices != state["config"]["devices"]:
        raise UserError(f"the run in {config.output_dir} trained on {state['config']['devices']} device(s), this one "
                        f"has {devices}: resume it with the same number of devices")
    data_root = data_root or resolve_data_root(config)
    run_folder.prepare(config.output_dir)
    if ranks.writes:  # before this run writes anything there
        run_folder.lock(config.output_dir)
    set_seed(config.seed)  # the same on every rank: same initial weights
    data = TrainingData(data_root, batch_size=config.batch_size, num_parallel_workers=config.num_workers,
                        look=config.look, seed=config.seed, **ranks.shard())
    steps_per_epoch = data.steps_per_epoch
    total_steps = min(config.epochs * steps_per_epoch, config.max_steps or math.inf)
    generator, discriminator, optimizers, average, train_step = build_networks(config, devices)
    position, fixed_noise = starting_point(config, state, steps_per_epoch,
                                           networks_and_optimizers(generator, discriminator, optimizers, average))
    record = {**config.flags(), "data_root": os.path.abspath(data_root), "devices": devices,
              "global_batch_size": config.batch_size * devices, "steps_per_epoch": steps_per_epoch,
              "total_steps": total_steps, "noise": noise_source()}
    session = Session(config=config, ranks=ranks, data_root=data_root, data=data, total_steps=total_steps,
                      generator=generator, discriminator=discriminator, optimizers=optimizers, train_step=train_step,
                      average=average, fixed_noise=fixed_noise, position=position, record=record,
                      agreement=ranks.agreement(), resumed_from=state["path"] if state else None)
    if ranks.writes:
        write_run_files(session)
    return session


def write_run_files(session):
    """fixed_noise.npy and config.json, and the opening lines on stderr."""
    c, out = session.config, session.config.output_dir
    run_folder.write_start(out, record=session.record, fixed_noise=session.fixed_noise)
    devices = session.ranks.devices
    many = devices > 1
    print(f"training on {c.device_target} ({c.mode} mode{f', {devices} devices' if many else ''}): "
          f"{session.data_root}, {session.steps_per_epoch} steps of {c.batch_size}{' per device' if many else ''} "
          f"per epoch, {session.total_steps} steps; writing to {out}", file=sys.stderr)
    if session.resumed_from:
        print(f"resuming from {session.resumed_from}: step {session.position.step}, epoch {session.position.epoch}",
              file=sys.stderr)
