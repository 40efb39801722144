"""Scoring a Generator against real images, one way for every caller: the SWD (``swd.py``) and diversity.

``Scorer(data_root, num=, seed=, look=)`` holds ``num`` real images, read once through the training
pipeline as the run read its images (``pixels.ImageLook``); ``score(generator)`` draws as many images
from seeded noise and returns the SWD x1e3, per pyramid level and in the mean, and the diversity.
``python -m dcgan_ms.evaluate``, report.html's final scores (``report_page.py``) and the SWD a run
tracks (``callbacks.SWDTracker``) all score with it.
"""
from .images import generated_images, real_images
from .pixels import ImageLook
from .swd import diversity, swd

FINAL_IMAGES = 256  # images a side for report.html's final SWD and diversity (fewer when the set is smaller)


class Scorer:
    """Scores Generators against the same ``num`` real images of ``data_root`` (drawn with ``seed``)."""

    def __init__(self, data_root, *, num, seed, look=ImageLook()):
        self.data_root, self.num, self.seed, self.look = data_root, num, seed, look
        self._real = None

    @property
    def real(self):
        """The real images as uint8 (num, 64, 64, 3), read on first use."""
        if self._real is None:
            self._real = real_images(self.data_root, self.num, self.seed, self.look)
        return self._real

    def score(self, generator, *, bn="batch", with_diversity=True):
        """{"num", "swd_x1e3" (the mean), "swd_x1e3_per_level" ({"64": ..., "32": ..., "16": ...}) and,
        ``with_diversity``, "diversity"} of ``generator``'s images from noise seeded with the seed."""
        fake = generated_images(generator, self.num, seed=self.seed, bn=bn, pixel_range=self.look.pixel_range)
        result = swd(self.real, fake, self.seed)
        scores = {"num": self.num, "swd_x1e3": result["mean"],
                  "swd_x1e3_per_level": {str(k): v for k, v in result["levels"].items()}}
        if with_diversity:
            scores["diversity"] = diversity(self.real, fake)
        return scores
