"""How a run's images look (``ImageLook``): the range they are scaled to, Tanh's [-1, 1] or the tutorial's
[0, 1]; the filter they are shrunk with (``RESIZES``); the colour transparent pixels are composited over.

The Generator ends in Tanh, so its images lie in [-1, 1]. The tutorial scales real images to [0, 1]:
then the Discriminator tells real from fake by any negative pixel, and the Generator is pushed into
half of Tanh's range. DCGAN and PyTorch's example scale to [-1, 1], and so do we; ``--pixel_range 0,1``
keeps the tutorial's choice, to measure what it costs.
"""
import dataclasses

import numpy as np
from PIL import ImageColor

from .errors import UserError

# How images are shrunk to 64 px (--resize; data/dataset.py applies it). The tutorial's Resize(64) is
# "bilinear": each new pixel is interpolated from the 2x2 old pixels nearest its centre, so shrinking
# 96 -> 64 skips detail and fine lines and stripes come out as coarser, false patterns (aliasing).
# "torchvision", the default, is Pillow's bilinear filter, which weighs every old pixel a new one covers:
# what torchvision's Resize, and so PyTorch's DCGAN example, gives; run through MindSpore's PIL
# transforms, it matches Pillow to the bit. With the tutorial's filter D wins more easily on the sharper
# pixels and G collapses more often (docs/recipe.md, learning as PyTorch does). "antialias" is Pillow's
# bicubic filter (MindSpore's Inter.PILCUBIC, in its C++ transforms), between the two in sharpness.
RESIZES = ("antialias", "bilinear", "torchvision")
RESIZE = "torchvision"
RESIZE_BEFORE_RECORDED = "bilinear"  # what runs recorded before --resize existed used


@dataclasses.dataclass(frozen=True)
class PixelRange:
    """Images in [low, low + 255 / to_255]: uint8 pixels p are read as ``p * rescale + low``."""
    flag: str  # as --pixel_range and config.json spell it
    low: float
    rescale: float  # from [0, 255]
    to_255: float  # back to [0, 255]: (x - low) * to_255

    def to_uint8(self, images):
        """(N, 3, H, W) float images in this range -> (N, H, W, 3) uint8."""
        images = np.asarray(images, dtype=np.float32).transpose(0, 2, 3, 1)
        return np.clip((images - self.low) * self.to_255 + 0.5, 0, 255).astype(np.uint8)


TANH = PixelRange("-1,1", low=-1.0, rescale=1.0 / 127.5, to_255=127.5)  # ours: the range of the Generator's Tanh
TUTORIAL = PixelRange("0,1", low=0.0, rescale=1.0 / 255.0, to_255=255.0)  # the tutorial's x / 255
PIXEL_RANGES = {r.flag: r for r in (TANH, TUTORIAL)}


@dataclasses.dataclass(frozen=True)
class ImageLook:
    """How a run reads and shows its images (--pixel_range, --background, --resize): the training data,
    the real images it is scored against and the Generator's pictures all take this one value."""
    pixel_range: PixelRange = TANH
    background: str = "white"
    resize: str = RESIZE

    @classmethod
    def of_run(cls, recorded):
        """The look a run recorded in its config.json (a dict), with what runs recorded before a flag
        existed used: the one place that reads it back."""
        return cls(PIXEL_RANGES[recorded.get("pixel_range", TANH.flag)], recorded.get("background", "white"),
                   recorded.get("resize", RESIZE_BEFORE_RECORDED))


def parse_colour(text):
    """An (r, g, b) colour from a name ("white"), "#rrggbb" or "rgb(r, g, b)" (``--background``); UserError
    otherwise."""
    try:
        return ImageColor.getrgb(text)[:3]
    except ValueError:
        raise UserError(f"--background {text!r} is not a colour: give a name (white, black, gray), "
                        "#rrggbb or rgb(r, g, b)") from None
