"""The training loop: the tutorial's ``for epoch: for batch: train_step`` and nothing else.

``train_loop`` draws the noise of each step, runs ``train_step``, stops on a non-finite loss and
tells its callbacks (``dcgan_ms/callbacks.py``) what happened: a step ended, an epoch ended,
training ended. Everything a run writes or shows (the log, the progress bar, the grids,
checkpoints, Ctrl-C handling) is a callback, so this file holds no file I/O and reads in one
screen. ``python -m dcgan_ms.train`` runs this same loop with the full set of callbacks
(``dcgan_ms/session.py`` builds them).
"""
import dataclasses
import itertools
import math
import time
from concurrent.futures import ThreadPoolExecutor

import mindspore as ms
import mindspore.dataset as ds
import numpy as np

from .cpu_conv import standard_normal
from .data.dataset import data_error
from .models import NZ


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


class StopTraining(Exception):
    """Ends training early. ``reason``: "interrupted" (Ctrl-C or SIGTERM), "time limit"
    (--max_minutes), "data error" (an image that cannot be read), "non-finite loss", "aborted" (a
    second Ctrl-C). ``save``: whether the callbacks save what was done (never after a non-finite
    loss, whose step is not kept)."""

    def __init__(self, reason, message="", save=True):
        super().__init__(message or reason)
        self.reason, self.message, self.save = reason, message, save


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


def train_loop(train_step, dataset, total_steps, nz=NZ, seed=1, instance_noise=0.0, rank=0, position=None,
               callbacks=(), instance_noise_steps=0, agreement=None):
    """Train until ``total_steps`` steps are done (continuing from ``position``, a resumed run's).

    ``train_step(real_imgs, z[, noise_g, noise_real, noise_fake])`` is ``step.make_train_step``'s;
    ``dataset`` yields batches of real images. ``instance_noise_steps``: the instance noise fades
    linearly to nothing over that many steps (0: it never fades). ``agreement``: how stops are decided
    (default ``Alone()``; ``distributed.Agreement`` makes every rank stop after the same step).
    Returns None, or the StopTraining that ended training early.
    """
    position, noise_of = position or Position(), StepNoise(nz, seed, rank, instance_noise, instance_noise_steps)
    agreement = agreement or Alone()
    callbacks = CallbackList(callbacks, agreement)
    callbacks.on_train_begin(position)
    stop = None
    try:
        while position.step < total_steps:
            train_epoch(train_step, epoch_batches(dataset, seed, position), total_steps=total_steps,
                        position=position, noise_of=noise_of, callbacks=callbacks, agreement=agreement)
            callbacks.on_epoch_end(position)  # the end of an epoch, or of training
            position.epoch, position.step_in_epoch = position.epoch + 1, 0
    except StopTraining as raised:  # Ctrl-C, an unreadable image, a non-finite loss
        stop = raised
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once, save nothing more
        stop = StopTraining("aborted", save=False)
    except BaseException:  # a bug or a full disk: let the callbacks close their files, then report it
        callbacks.on_train_end(position, StopTraining("failed", save=False))
        raise
    callbacks.on_train_end(position, stop)
    return stop


def train_epoch(train_step, batches, *, total_steps, position, noise_of, callbacks, agreement):
    """The steps of one epoch (or until ``total_steps``). Each step fetches the next batch before its
    callbacks run, so that a stop found on the way (an image that cannot be decoded, a non-finite
    loss) is combined with the other ranks' right after the step that found it."""
    real_imgs = next_batch(batches, agreement)
    stop = agreement.combine()
    if stop is not None:
        raise stop
    while real_imgs is not None:
        start = time.perf_counter()
        z, noise = noise_of(position.step, real_imgs.shape)  # a function of (seed, rank, step)
        g_loss, d_loss, d_real, d_fake = (float(v) for v in train_step(real_imgs, z, *noise))
        losses = Losses(g_loss, d_loss, d_real, d_fake, time.perf_counter() - start, real_imgs.shape[0])
        if not (math.isfinite(g_loss) and math.isfinite(d_loss)):  # this step is neither logged nor saved
            agreement.request(StopTraining("non-finite loss", f"losses became non-finite at step {position.step + 1} "
                                           f"(G {g_loss}, D {d_loss})", save=False))
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
    except StopTraining as stop:
        agreement.request(stop)
        return None


class StepNoise:
    """``noise_of(step, shape)``: the noise z of one step, and its three instance-noise batches (none
    when ``instance_noise`` is 0): standard normals, times ``instance_noise`` for the instance noise,
    a function of (seed, rank, step) alone (``step_key``), so every device draws its own and a resumed
    run draws what the uninterrupted one would have. They come from ``cpu_conv.standard_normal``
    (compiled, 3x NumPy's speed: three batches of instance noise from NumPy cost a tenth of a
    quickstart step), and the next step's are drawn on a helper thread while this step trains. With
    ``fade_steps`` the instance noise is scaled by ``fade(step)`` too, from 1 at step 0 down to 0 at
    ``fade_steps`` (annealed instance noise, Sonderby et al. 2016), and is zeros from then on."""

    def __init__(self, nz, seed, rank, instance_noise, fade_steps=0):
        self.nz, self.seed, self.rank, self.instance_noise = nz, seed, rank, instance_noise
        self.fade_steps = fade_steps
        self.helper, self.next, self.arrays = ThreadPoolExecutor(1), None, None

    def fade(self, step):
        return max(0.0, 1.0 - step / self.fade_steps) if self.fade_steps else 1.0

    def draw(self, step, shape):
        scale = self.fade(step) if self.instance_noise else 0.0
        z_size, noise_size = shape[0] * self.nz, 3 * math.prod(shape) if scale else 0
        numbers = standard_normal(z_size + noise_size, step_key(self.seed, self.rank, step))
        z = numbers[:z_size].reshape(shape[0], self.nz, 1, 1)
        if not self.instance_noise:
            return z, ()
        if not scale:  # faded out: the step still takes the inputs
            return z, np.zeros((3, *shape), np.float32)
        noise = numbers[z_size:].reshape(3, *shape)
        if scale != 1.0:
            noise *= np.float32(scale)
        noise *= np.float32(self.instance_noise)  # float32 products, as the step computed them before
        return z, noise

    def __call__(self, step, shape):
        shape = tuple(shape)
        drawn_for, drawing = self.next or (None, None)
        self.arrays = drawing.result() if drawn_for == (step, shape) else self.draw(step, shape)  # kept alive:
        self.next = ((step + 1, shape), self.helper.submit(self.draw, step + 1, shape))  # the tensors share it
        z, noise = self.arrays
        return ms.from_numpy(z), tuple(ms.from_numpy(n) for n in noise)


def step_key(seed, rank, step):
    """The key of one step's random numbers on one device (two 32-bit words): a function of (seed,
    rank, step) alone, so there is no generator state to save for resuming."""
    return tuple(int(k) for k in np.random.SeedSequence([seed, rank, step]).generate_state(2))


def epoch_seed(seed, epoch):
    """The data pipeline's shuffling seed for ``epoch``: a new order every epoch, the same on every
    rank and in a resumed run."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0] % (2 ** 31))


def epoch_batches(dataset, seed, position):
    """The batches of ``position.epoch`` still to do: shuffled by (seed, epoch), the first
    ``position.step_in_epoch`` (done before a resume) skipped. An image the pipeline cannot decode
    raises StopTraining("data error") naming it. When this epoch's batches run out, the next epoch's
    pipeline is started at once (``prepare_next_epoch``)."""
    prepared, dataset.next_epoch = getattr(dataset, "next_epoch", None), None
    if prepared and prepared[0] == (seed, position.epoch) and position.step_in_epoch == 0:
        batches = itertools.chain([prepared[1]], prepared[2])
    else:
        batches = epoch_iterator(dataset, seed, position.epoch)
    try:
        for (real_imgs,) in itertools.islice(batches, position.step_in_epoch, None):
            yield real_imgs
        prepare_next_epoch(dataset, seed, position.epoch + 1)
    except RuntimeError as e:  # MindSpore's pipeline stops on the first image it cannot decode
        message = data_error(e, dataset)
        if message is None:
            raise
        raise StopTraining("data error", message) from None


def epoch_iterator(dataset, seed, epoch):
    """A new iterator over ``dataset``, shuffled by (seed, epoch): the same order every time."""
    ds.config.set_seed(epoch_seed(seed, epoch))  # read when the iterator is made
    return dataset.create_tuple_iterator(num_epochs=1)


def prepare_next_epoch(dataset, seed, epoch):
    """Start ``epoch``'s pipeline now and keep its first batch on the dataset: MindSpore starts a
    pipeline at the first batch asked for and then fills its queue, which on two cores slowed the
    step beside it by 35 ms; started here, it fills while the epoch-end callbacks (grid,
    checkpoints) leave a core free. ``epoch_batches`` takes it up (same seed, same order)."""
    batches = epoch_iterator(dataset, seed, epoch)
    dataset.next_epoch = ((seed, epoch), next(batches), batches)
