"""Data-parallel training over several devices, on MindSpore's own stack (msrun, init, all-reduce).

``Ranks`` is the processes of a run, one or msrun's, and what differs between them. The gradient
all-reduce lives in the compiled step (``step.make_train_step(devices=N)``, through ``gradient_mean``).
This module joins the cluster, makes the ranks agree (``Agreement``: stops, the clock, the start),
keeps BatchNorm's running statistics equal across devices, and fingerprints the weights so ranks can
be checked for agreement.
"""
import dataclasses
import functools
import hashlib
import os
import time

import numpy as np

from .errors import UserError, first_line
from .loop import AGREED, Alone, Stop, StopTraining
from .models import running_stats
from .run_folder import log_name

MSRUN_VARIABLES = ("MS_ROLE", "MS_SCHED_HOST", "MS_SCHED_PORT", "MS_WORKER_NUM")  # what msrun gives each worker


@dataclasses.dataclass(frozen=True)
class Ranks:
    """The processes that train this run: one (``Ranks()``), or the ranks msrun started (``Ranks.joined()``;
    ``parallel`` even on one device). Rank 0 ``writes`` the checkpoints, pictures and the page; the
    others train their shard, log and agree."""
    rank: int = 0
    devices: int = 1
    parallel: bool = False

    @classmethod
    def joined(cls):
        """This process's place among msrun's ranks, having joined the cluster (``init_distributed``)."""
        rank, devices = init_distributed()
        return cls(rank, devices, parallel=True)

    @property
    def writes(self):
        return self.rank == 0

    def shard(self):
        """TrainingData's keywords for this rank's share of the images."""
        return {"num_shards": self.devices, "shard_id": self.rank} if self.parallel else {}

    def log_name(self):
        return log_name(self.rank if self.parallel else None)

    def agreement(self):
        """How the ranks decide to stop together (``Agreement``), or alone (``loop.Alone``)."""
        return Agreement(self.rank, self.devices) if self.parallel else Alone()

    def before_save(self, networks):
        """What every rank does before a save: BatchNorm's running statistics averaged (None alone)."""
        return functools.partial(average_running_stats, networks, self.devices) if self.parallel else None


def require_msrun(environ=os.environ):
    """UserError unless this process was started by msrun (another launcher, such as Ascend's rank-table
    scripts, would put every rank on the same device)."""
    missing = [name for name in MSRUN_VARIABLES if name not in environ]
    if missing:
        raise UserError(f"--distributed runs under MindSpore's msrun, which sets {', '.join(missing)} for each "
                        "worker: launch with scripts/run_distributed.sh DEVICES_PER_NODE ... (rank-table files and "
                        "other launchers are not supported)")


def init_distributed():
    """Join the cluster msrun started; return (rank, devices). Call it after ``runtime.select_device``
    and before any operator runs (on Ascend, ``communication.init`` must come first)."""
    from mindspore.communication import get_group_size, get_rank, init
    try:
        init()
    except (RuntimeError, ValueError) as e:
        raise UserError(f"--distributed could not join a cluster ({first_line(e)}): launch with msrun, see the "
                        "README") from None
    return get_rank(), get_group_size()


def gradient_mean(parameters, devices):
    """A cell that replaces each gradient of ``parameters`` by its mean over the ``devices`` (an
    all-reduce sum, then / devices), said explicitly rather than read from the auto-parallel context."""
    from mindspore import nn
    return nn.DistributedGradReducer(parameters, mean=True, degree=devices)


@functools.lru_cache(maxsize=None)
def _summed():
    """A compiled all-reduce sum over every device, made once per process (a new jitted function per
    call would compile again at every save)."""
    import mindspore as ms
    from mindspore import ops

    all_reduce = ops.AllReduce()  # sum over the world group; MindSpore's CPU kernel has no other op

    @ms.jit
    def summed(x):
        return all_reduce(x)

    return summed


def sum_over_devices(array):
    """The element-wise sum of a float32 array over every device (every rank must call it)."""
    import mindspore as ms
    return _summed()(ms.Tensor(np.asarray(array, np.float32))).asnumpy()


def average_running_stats(nets, devices):
    """Replace every device's BatchNorm running statistics of ``nets`` by their mean over the devices.

    Training normalises with per-device batch statistics, so each device's running averages drift
    apart a little; averaging them before every save makes all ranks hold identical networks and
    the checkpoint represent every device's data. (The mean of per-device running variances is an
    approximation of the global one, close when shards are alike.) Every rank must call this.
    """
    import mindspore as ms
    for p in running_stats(*nets):
        p.set_data(ms.Tensor(sum_over_devices(p.asnumpy()) / np.float32(devices)))


def parameter_digest(*nets, trainable=True):
    """SHA-256 of the networks' trainable parameters (or, ``trainable=False``, of their BatchNorm
    running statistics) in name order: equal digests, equal values, bit for bit."""
    params = [p for net in nets for p in net.trainable_params()] if trainable else running_stats(*nets)
    h = hashlib.sha256()
    for p in sorted(params, key=lambda p: p.name):
        h.update(p.name.encode())
        h.update(p.asnumpy().tobytes())
    return h.hexdigest()


# What other ranks are told of a stop one rank asked for, most pressing first.
TOLD_ELSEWHERE = {Stop.NON_FINITE_LOSS: "losses became non-finite on rank {rank}",
                  Stop.DATA_ERROR: "rank {rank} could not decode an image of its shard (its log names the file)",
                  Stop.INTERRUPTED: "",
                  Stop.TIME_LIMIT: "stopped at the time limit"}


class Agreement(Alone):
    """What the ranks of a data-parallel run decide together, combined by one small all-reduce a step.

    A stop that one rank asks for (Ctrl-C or SIGTERM, an image of its shard it cannot decode, a
    non-finite loss, the time limit) is requested, not taken; ``combine`` adds every rank's requests
    and rank 0's clock, so every rank stops after the same step with the same reason, and
    time-based saves and --max_minutes read a clock that is the same on every rank.
    """

    def __init__(self, rank, devices):
        super().__init__()
        self.rank, self.devices, self.requested = rank, devices, {}
        self.started, self.agreed_seconds = time.monotonic(), 0.0

    def ask(self, stop):
        self.request(stop)

    def request(self, stop):
        self.requested.setdefault(stop.reason, stop)

    def combine(self):
        """Every rank's requests and rank 0's clock, summed over the devices: the agreed stop or None."""
        word = np.zeros(2 * len(AGREED) + 1, np.float32)
        for i, reason in enumerate(AGREED):
            if reason in self.requested:
                word[2 * i:2 * i + 2] = 1, self.rank  # how many ranks ask, and the sum of their ranks
        word[-1] = time.monotonic() - self.started if self.rank == 0 else 0.0
        total = sum_over_devices(word)
        self.agreed_seconds = float(total[-1])
        for i, reason in enumerate(AGREED):
            if total[2 * i]:
                return self.requested.get(reason) or self.elsewhere(reason, int(total[2 * i]), int(total[2 * i + 1]))
        return None

    def elsewhere(self, reason, ranks, rank_sum):
        """The stop another rank asked for, as this rank reports it."""
        who = str(rank_sum) if ranks == 1 else f"{ranks} ranks"
        return StopTraining(reason, TOLD_ELSEWHERE[reason].format(rank=who))

    def clock(self):
        return self.agreed_seconds

    def finish(self):
        """A barrier: msrun kills every worker once one exits with an error (an agreed stop exits 2 or
        130), so no rank may exit while rank 0 still writes."""
        sum_over_devices(np.zeros(1, np.float32))


def agree_to_start(rank, devices, failure, resume_step):
    """Every rank says whether its setup failed and which checkpoint step it resumes from (None: a new
    run); a failure anywhere, or ranks resuming from different steps, is a UserError on every rank
    (rather than the others waiting for the cluster's time-out)."""
    word = np.zeros(2 * devices, np.float32)
    word[rank] = failure is not None
    word[devices + rank] = -1 if resume_step is None else resume_step
    total = sum_over_devices(word)
    if failure is not None:
        raise failure
    failed = [r for r in range(devices) if total[r]]
    if failed:
        raise UserError(f"rank(s) {', '.join(map(str, failed))} could not start (their logs say why): fix that and "
                        "launch again")
    steps = total[devices:]
    if len(set(steps.tolist())) > 1:
        seen = ", ".join(f"rank {r}: {'no checkpoint' if s < 0 else f'step {int(s)}'}" for r, s in enumerate(steps))
        raise UserError(f"the ranks do not see the same resume checkpoint ({seen}): every node must read the same "
                        "--output_dir (a shared file system), or copy its checkpoints/ to every node")
