"""Scoring a Generator against real images, one way for every caller: the SWD (``swd.py``) and diversity.

``Scorer(data_root, num=, seed=, look=)`` holds ``num`` real images, read once through the training
pipeline as the run read its images (``pixels.ImageLook``), and their half of the SWD (``swd.side``:
about 200 MB of sorted projections at 256 images); ``score(generator)`` draws as many images from
seeded noise and returns the SWD x1e3, per pyramid level and in the mean, and the diversity.
``python -m dcgan_ms.evaluate``, report.html's final scores (``callbacks.FinalScores``,
``report_page.py``) and the SWD a run tracks (``callbacks.SWDTracker``) all score with it.
"""
import threading
from concurrent.futures import Future

from .errors import UserError
from .images import generated_images, real_images
from .pixels import ImageLook
from .swd import between, diversity, side

FINAL_IMAGES = 256  # images a side for report.html's final SWD and diversity (fewer when the set is smaller)


def _later(work, *args, **kwargs):
    """A Future of ``work(*args, **kwargs)``, done on a thread of its own: a daemon, so that a run that
    stops early does not wait at exit for a score it will not use."""
    future = Future()

    def run():
        try:
            future.set_result(work(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 (handed to whoever asks for the result)
            future.set_exception(e)

    threading.Thread(target=run, name="dcgan_ms-scoring", daemon=True).start()
    return future


def _failed(error):
    """A Future that raises ``error``: for the score that needs what could not be had."""
    future = Future()
    future.set_exception(error)
    return future


class Scorer:
    """Scores Generators against the same ``num`` real images of ``data_root`` (drawn with ``seed``).

    The real images' half of the SWD (``swd.side``) is worked out once, on a thread, from ``prepare()``
    (a run calls it when training begins) or the first score; ``score_later`` leaves the generated
    images' half to a thread too, so that a run's last files are written meanwhile."""

    def __init__(self, data_root, *, num, seed, look=ImageLook()):
        self.data_root, self.num, self.seed, self.look = data_root, num, seed, look
        self._real = self._real_side = None

    @property
    def real(self):
        """The real images as uint8 (num, 64, 64, 3), read on first use."""
        if self._real is None:
            self._real = real_images(self.data_root, self.num, self.seed, self.look)
        return self._real

    def prepare(self):
        """Read the real images (here: MindSpore's dataset seed is global, the training pipeline's
        thread must not race it) and start their half of the SWD on a thread."""
        if self._real_side is None:
            try:
                self._real_side = _later(side, self.real, self.seed, first=True)
            except (UserError, RuntimeError) as e:  # raised by the score that needs them
                self._real_side = _failed(e)

    def score(self, generator, *, bn="batch", with_diversity=True):
        """{"num", "swd_x1e3" (the mean), "swd_x1e3_per_level" ({"64": ..., "32": ..., "16": ...}) and,
        ``with_diversity``, "diversity"} of ``generator``'s images from noise seeded with the seed."""
        return self.score_later(generator, bn=bn, with_diversity=with_diversity).result()

    def score_later(self, generator, *, bn="batch", with_diversity=True):
        """``score``'s result as a Future: the images are generated now, the rest is done on a thread; what
        goes wrong (a UserError, MindSpore's RuntimeError) is raised by its ``result()``."""
        self.prepare()
        try:
            fake = generated_images(generator, self.num, seed=self.seed, bn=bn, pixel_range=self.look.pixel_range)
        except RuntimeError as e:
            return _failed(e)
        return _later(self._scores, fake, with_diversity)

    def _scores(self, fake, with_diversity):
        result = between(self._real_side.result(), side(fake, self.seed, first=False))
        scores = {"num": self.num, "swd_x1e3": result["mean"],
                  "swd_x1e3_per_level": {str(k): v for k, v in result["levels"].items()}}
        if with_diversity:
            scores["diversity"] = diversity(self.real, fake)
        return scores
