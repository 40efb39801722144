"""Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018, "Progressive Growing
of GANs", section 5): how far generated images are from real ones, without a pretrained network.

For each set: a Laplacian pyramid (64, 32 and 16 pixels); at every level 7x7 neighbourhoods at
random positions (128 per image, at most 32,768 per level) as 147-dim descriptors, each colour
channel normalised over the set; between the two sets' descriptors, the mean over random unit
directions of the 1-D Wasserstein distance of their projections. Reported per level (x 1e3, as in
the paper) and averaged: two halves of one set score near 0; blur, noise or collapse raise it.
"""
import os
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from .kernels import sort_rows

NHOOD, PER_IMAGE, MIN_SIZE = 7, 128, 16
DIR_REPEATS, DIRS_PER_REPEAT = 4, 128
MAX_DESCRIPTORS = 1 << 15  # per level and set: sorting the projections is the cost; this bounds it
STD_FLOOR = 1e-2  # in units of pixel intensity [0, 1]: see _descriptors
_KERNEL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x, stride=1):
    """Separable 5-tap binomial blur of (N, C, H, W) with reflected borders, at every ``stride``-th row
    and column (``stride`` 2: the blurred image's even pixels alone, without working out the others)."""
    for axis in (2, 3):
        pad = [(0, 0)] * 4
        pad[axis] = (2, 2)
        p = np.pad(x, pad, mode="reflect")
        n = x.shape[axis]
        x = sum(w * (p[:, :, i:i + n:stride] if axis == 2 else p[:, :, :, i:i + n:stride])
                for i, w in enumerate(_KERNEL))
    return x


def _down(x):
    return _blur(x, stride=2)


def _up(x, shape):
    up = np.zeros(shape, x.dtype)
    up[:, :, ::2, ::2] = x * 4.0  # zeros between samples carry no energy: scale by 4 to keep it
    return _blur(up)


def laplacian_pyramid(images, min_size=MIN_SIZE):
    """Levels from fine to coarse for (N, C, H, W) float images, down to ``min_size`` pixels."""
    levels, current = [], images
    while current.shape[-1] > min_size:
        smaller = _down(current)
        levels.append(current - _up(smaller, current.shape))
        current = smaller
    levels.append(current)
    return levels


def _positions(rng, shape):
    """Where one set's descriptors are taken at a pyramid level of ``shape`` (N, C, H, W): PER_IMAGE
    random 7x7 neighbourhoods per image and, past MAX_DESCRIPTORS, the subset kept. They depend on
    the shape alone, never on the pixels, so each set's side of the SWD can be worked out apart."""
    n, _, h, w = shape
    ys = rng.integers(0, h - NHOOD + 1, (n, PER_IMAGE))
    xs = rng.integers(0, w - NHOOD + 1, (n, PER_IMAGE))
    keep = rng.choice(n * PER_IMAGE, MAX_DESCRIPTORS, replace=False) if n * PER_IMAGE > MAX_DESCRIPTORS else None
    return ys, xs, keep


def _descriptors(level, ys, xs, keep):
    n, c, h, w = level.shape
    offsets = np.arange(NHOOD)
    rows = (ys[..., None, None] + offsets[:, None])  # (n, k, 7, 1)
    cols = (xs[..., None, None] + offsets[None, :])  # (n, k, 1, 7)
    idx = np.arange(n)[:, None, None, None]
    patches = level.transpose(0, 2, 3, 1)[idx, rows, cols]  # (n, k, 7, 7, c)
    desc = patches.reshape(-1, NHOOD * NHOOD * c)
    if keep is not None:
        desc = desc[keep]
    values = desc.reshape(-1, c)
    # Each channel's mean and spread over the set, from its values laid out in one row: NumPy sums a row
    # pairwise (a column of a million float32 values it would add one by one, 1e-3 off, and slower).
    channels = np.ascontiguousarray(values.T)
    mean = channels.mean(axis=1)
    centred = channels - mean[:, None]
    std = np.sqrt(np.mean(centred * centred, axis=1))
    # Divide by the channel's spread, but never by less than STD_FLOOR: a nearly flat set (an
    # untrained Generator's coarse level) would otherwise have its rounding noise blown up to unit
    # variance, and the distance would depend on the last bits of the convolutions.
    return ((values - mean) / np.maximum(std, STD_FLOOR)).reshape(len(desc), -1).astype(np.float32, copy=False)


def _directions(rng, dim):
    """DIR_REPEATS sets of DIRS_PER_REPEAT random unit directions in ``dim`` dimensions, as columns."""
    all_dirs = []
    for _ in range(DIR_REPEATS):
        dirs = rng.standard_normal((dim, DIRS_PER_REPEAT)).astype(np.float32)
        all_dirs.append(dirs / np.linalg.norm(dirs, axis=0, keepdims=True))
    return all_dirs


class Side(NamedTuple):
    """One set's half of the SWD (``side``): per level size, the sorted projections of its descriptors,
    one (DIRS_PER_REPEAT, descriptors) array per repeat; what ``between`` needs to match it."""
    num: int
    seed: int
    first: bool
    levels: dict


def _pool():
    return ThreadPoolExecutor(max_workers=min(DIR_REPEATS, os.cpu_count() or 1))


def side(images, seed=0, *, first):
    """The half of ``swd`` that depends on one set of uint8 (N, H, W, 3) images alone: its Laplacian
    pyramid, descriptors and their projections on the random directions, each sorted (a compiled radix
    sort, ``kernels.sort_rows``, else NumPy's, both without the GIL). The random draws are made first, in
    their order; then the levels' descriptors, and the repeats' projections, are worked out on threads.
    ``first``: the set is the SWD's first (the two sets' positions are drawn in turn from one seed)."""
    rng = np.random.default_rng(seed)
    pyramid, draws = laplacian_pyramid(_as_float(images)), []
    for level in pyramid:
        positions = [_positions(rng, level.shape) for _ in range(2)]  # the first set's, then the second's
        draws.append((positions[0 if first else 1], _directions(rng, NHOOD * NHOOD * level.shape[1])))

    def descriptors(level_and_draws):
        level, (positions, _) = level_and_draws
        return _descriptors(level, *positions)

    def sorted_projections(desc_and_dirs):
        desc, dirs = desc_and_dirs
        return sort_rows(np.ascontiguousarray(dirs.T) @ desc.T)  # rows: one direction each

    with _pool() as pool:
        descs = list(pool.map(descriptors, zip(pyramid, draws)))
        tasks = [(desc, dirs) for desc, (_, all_dirs) in zip(descs, draws) for dirs in all_dirs]
        projections = list(pool.map(sorted_projections, tasks))
    levels = {int(level.shape[-1]): projections[i * DIR_REPEATS:(i + 1) * DIR_REPEATS]
              for i, level in enumerate(pyramid)}
    return Side(len(images), seed, first, levels)


def between(a, b):
    """SWD x 1e3 between two ``side``s (the first set's and the second's, of as many images, one seed):
    per level, the mean over the directions of the 1-D Wasserstein distance between the sorted
    projections; ``{"levels": {size: swd}, "mean": swd}``."""
    if a.num != b.num:
        raise ValueError(f"both sets need the same number of images, got {a.num} and {b.num}")
    if (a.seed, a.first, b.first) != (b.seed, True, False):
        raise ValueError("between(a, b) needs the first set's side and the second's, drawn with one seed")

    def distance(pair):
        return np.abs(pair[0] - pair[1]).mean()

    with _pool() as pool:
        levels = {size: 1e3 * float(np.mean(list(pool.map(distance, zip(a.levels[size], b.levels[size])))))
                  for size in a.levels}
    return {"levels": levels, "mean": float(np.mean(list(levels.values())))}


def _as_float(images):
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [0, 1]."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 images of shape (N, H, W, 3), got {images.dtype} {images.shape}")
    return images.transpose(0, 3, 1, 2).astype(np.float32) / 255.0


def swd(images_a, images_b, seed=0):
    """SWD x 1e3 between two sets of uint8 (N, H, W, 3) images: ``{"levels": {size: swd}, "mean": swd}``.

    The sets must be the same size (so their descriptor sets are too).
    """
    if len(images_a) != len(images_b):
        raise ValueError(f"both sets need the same number of images, got {len(images_a)} and {len(images_b)}")
    return between(side(images_a, seed, first=True), side(images_b, seed, first=False))


def diversity(real, fake, size=16, num=512):
    """How distinct a Generator's images are from one another, against real images: the median
    distance from each image to its nearest neighbour in its own set (at ``size`` pixels, the
    first ``num`` images of each set), generated over real. About 1: as varied as the real set;
    near 0: many near-duplicates (mode collapse), which the SWD sees only in part."""
    def median_nn(images):
        x = _as_float(images[:num])
        n = len(x)
        x = x.reshape(n, 3, size, x.shape[2] // size, size, x.shape[3] // size).mean(axis=(3, 5)).reshape(n, -1)
        sq = (x * x).sum(axis=1)
        d2 = sq[:, None] + sq[None, :] - 2 * x @ x.T
        np.fill_diagonal(d2, np.inf)
        return float(np.median(np.sqrt(np.maximum(d2.min(axis=1), 0))))
    return median_nn(fake) / median_nn(real)
