"""The training loop: the tutorial's ``for epoch: for batch: train_step`` and nothing else.

``train_loop`` takes each epoch's batches from the training data, each step's noise from a noise
source (``noise.StepNoise``), runs ``train_step``, stops on a non-finite loss and tells its callbacks
what happened. Everything a run writes or shows is a callback (``callbacks/``), so this file holds no
file I/O; ``python -m dcgan_ms.train`` and the notebook run this same loop.
"""
import dataclasses
import enum
import math
import time

from .data import DataError


@dataclasses.dataclass
class Position:
    """Where training is: ``step`` steps done in all, the last of them in ``epoch`` (counted from 1),
    ``step_in_epoch`` of them in that epoch."""
    step: int = 0
    epoch: int = 1
    step_in_epoch: int = 0


@dataclasses.dataclass
class Losses:
    """What one step returned: G's and D's losses, the batch means of D(x) and D(G(z)), and speed."""
    g_loss: float
    d_loss: float
    d_real: float
    d_fake: float
    seconds: float = 0.0
    batch_size: int = 0


class Stop(enum.Enum):
    """Why training ended before its last step. ``saves``: the callbacks save what was done (not after a
    non-finite loss, whose step is not kept, nor an abort); ``clean``: the run ended as the user asked
    (pictures made, exit 0 or 130), not on something to fix. ``AGREED`` below: the order in which the
    ranks of a data-parallel run agree on them (``distributed.Agreement``)."""
    NON_FINITE_LOSS = ("non-finite loss", False, False)
    DATA_ERROR = ("data error", True, False)  # an image that cannot be read
    INTERRUPTED = ("interrupted", True, True)  # Ctrl-C or SIGTERM
    TIME_LIMIT = ("time limit", True, True)  # --max_minutes
    ABORTED = ("aborted", False, False)  # a second Ctrl-C: at once
    FAILED = ("failed", False, False)  # an exception (a bug, a full disk): the callbacks close their files

    def __init__(self, words, saves, clean):
        self.words, self.saves, self.clean = words, saves, clean


# The stops a rank can ask for, most pressing first: the order of the ranks' all-reduce.
AGREED = (Stop.NON_FINITE_LOSS, Stop.DATA_ERROR, Stop.INTERRUPTED, Stop.TIME_LIMIT)


class StopTraining(Exception):
    """Ends training early: ``reason`` a Stop, ``message`` what happened in words."""

    def __init__(self, reason, message=""):
        super().__init__(message or reason.words)
        self.reason, self.message = reason, message

    @property
    def save(self):
        return self.reason.saves


class Alone:
    """How a single process decides to stop: a callback's stop is taken at once; a stop found while
    fetching the next batch or checking the losses waits for ``combine``, after the step. A
    data-parallel run uses ``distributed.Agreement`` instead, which combines every rank's."""

    def __init__(self):
        self.pending = None

    def ask(self, stop):
        """A callback raised ``stop``."""
        raise stop

    def request(self, stop):
        """``stop`` was found by the loop; it takes effect at the next ``combine``."""
        self.pending = self.pending or stop

    def combine(self):
        """The stop to take after this step, or None."""
        stop, self.pending = self.pending, None
        return stop

    def clock(self):
        """Seconds, for time-based saves and --max_minutes."""
        return time.time()

    def finish(self):
        """Training ended the same way everywhere; wait until every rank is done saving."""


class Callback:
    """What the loop tells, as MindSpore's and Keras' callbacks name it; override what you need.
    A callback may raise StopTraining from any hook but ``on_train_end`` to end training."""

    def on_train_begin(self, position):
        pass

    def on_step_end(self, position, losses, real_imgs):
        """After each step: ``losses`` (a Losses), ``real_imgs`` the batch it trained on."""

    def on_epoch_end(self, position):
        """After the last step of an epoch, and after the last step of training mid-epoch."""

    def on_train_end(self, position, stop):
        """Always, last: ``stop`` is None when all steps are done, else the StopTraining that ended it."""


class CallbackList(Callback):
    """Several callbacks, told in their order. A stop that one raises after a step or an epoch goes to
    the ``agreement``: alone, it stops training at once; in a data-parallel run it is shared with the
    other ranks first (``distributed.Agreement``)."""

    def __init__(self, callbacks, agreement=None):
        self.callbacks, self.agreement = list(callbacks), agreement or Alone()

    def on_train_begin(self, position):
        for c in self.callbacks:
            c.on_train_begin(position)

    def on_step_end(self, position, losses, real_imgs):
        for c in self.callbacks:
            try:
                c.on_step_end(position, losses, real_imgs)
            except StopTraining as stop:
                self.agreement.ask(stop)

    def on_epoch_end(self, position):
        for c in self.callbacks:
            try:
                c.on_epoch_end(position)
            except StopTraining as stop:
                self.agreement.ask(stop)

    def on_train_end(self, position, stop):
        """Every callback's, even when one fails (so files are closed and signal handlers restored);
        then the first failure is raised."""
        failures = []
        for c in self.callbacks:
            try:
                c.on_train_end(position, stop)
            except Exception as e:  # noqa: PERF203 (each callback must get its turn)
                failures.append(e)
        if failures:
            raise failures[0]


def train_loop(train_step, data, *, total_steps, noise, position=None, callbacks=(), agreement=None):
    """Train until ``total_steps`` steps are done (continuing from ``position``, a resumed run's).

    ``train_step(real_imgs, z[, noise_g, noise_real, noise_fake])`` is ``step.make_train_step``'s;
    ``data`` gives each epoch's batches (``data.TrainingData``); ``noise(step, shape)`` each step's z and
    instance noise (``noise.StepNoise``). ``agreement``: how stops are decided (default ``Alone()``;
    ``distributed.Agreement`` makes every rank stop after the same step).
    Returns None, or the StopTraining that ended training early.
    """
    position, agreement = position or Position(), agreement or Alone()
    callbacks = CallbackList(callbacks, agreement)
    callbacks.on_train_begin(position)
    stop = None
    try:
        while position.step < total_steps:
            train_epoch(train_step, data.batches(position.epoch, skip=position.step_in_epoch), total_steps=total_steps,
                        position=position, noise=noise, callbacks=callbacks, agreement=agreement)
            callbacks.on_epoch_end(position)  # the end of an epoch, or of training
            position.epoch, position.step_in_epoch = position.epoch + 1, 0
    except StopTraining as raised:  # Ctrl-C, an unreadable image, a non-finite loss
        stop = raised
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once, save nothing more
        stop = StopTraining(Stop.ABORTED)
    except BaseException:  # a bug or a full disk: let the callbacks close their files, then report it
        callbacks.on_train_end(position, StopTraining(Stop.FAILED))
        raise
    callbacks.on_train_end(position, stop)
    return stop


def train_epoch(train_step, batches, *, total_steps, position, noise, callbacks, agreement):
    """The steps of one epoch (or until ``total_steps``). Each step fetches the next batch before its
    callbacks run, so that a stop found on the way (an image that cannot be decoded, a non-finite
    loss) is combined with the other ranks' right after the step that found it."""
    real_imgs = next_batch(batches, agreement)
    stop = agreement.combine()
    if stop is not None:
        raise stop
    while real_imgs is not None:
        start = time.perf_counter()
        z, instance_noise = noise(position.step, real_imgs.shape)  # a function of (seed, rank, step)
        g_loss, d_loss, d_real, d_fake = (float(v) for v in train_step(real_imgs, z, *instance_noise))
        losses = Losses(g_loss, d_loss, d_real, d_fake, time.perf_counter() - start, real_imgs.shape[0])
        if not (math.isfinite(g_loss) and math.isfinite(d_loss)):  # this step is neither logged nor saved
            agreement.request(StopTraining(Stop.NON_FINITE_LOSS, f"losses became non-finite at step "
                                           f"{position.step + 1} (G {g_loss}, D {d_loss})"))
        last = position.step + 1 >= total_steps
        upcoming = None if last else next_batch(batches, agreement)
        stop = agreement.combine()
        if stop is not None and not stop.save:
            raise stop
        position.step, position.step_in_epoch = position.step + 1, position.step_in_epoch + 1
        callbacks.on_step_end(position, losses, real_imgs)
        if stop is not None:
            raise stop
        real_imgs = upcoming


def next_batch(batches, agreement):
    """The next batch, or None at the epoch's end or when it cannot be read (the stop is requested)."""
    try:
        return next(batches)
    except StopIteration:
        return None
    except DataError as e:
        agreement.request(StopTraining(Stop.DATA_ERROR, str(e)))
        return None
