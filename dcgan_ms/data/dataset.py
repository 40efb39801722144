"""The image pipeline, as in the tutorial, reading any folder layout: files -> batches of scaled images.

    image files -> Decode -> Resize(64, --resize) -> CenterCrop(64) -> scale (``pixels.py``) -> HWC2CHW
                -> shuffle -> batch

``find_images`` lists the images at any depth; ``ImageFiles`` (``image_files.py``) lays them out as
links in one temporary folder, so that MindSpore's C++ reader and decoder do the work in its worker
threads; images with transparency are composited over ``--background`` first. A set that fits in
``in_memory_bytes()`` is decoded once and kept as one array. ``training_data.TrainingData`` owns the
result and gives its batches epoch by epoch; docs/design.md says why each step is as it is.
"""
import filecmp
import glob
import os
import re
import sys

import mindspore.dataset as ds
import mindspore.dataset.vision as vision
import numpy as np

from ..errors import UserError
from ..models import IMAGE_SIZE
from ..pixels import RESIZE, TANH

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")

# --resize (pixels.RESIZES): MindSpore's C++ filters, or for "torchvision" Pillow's own bilinear filter,
# which MindSpore's Resize applies to PIL images.
RESIZE_FILTERS = {"antialias": vision.Inter.PILCUBIC, "bilinear": vision.Inter.LINEAR,
                  "torchvision": vision.Inter.BILINEAR}


def fit_transforms(resize, image_size):
    """Resize(image_size) with the ``resize`` filter and CenterCrop(image_size), uint8 HWC in and out."""
    fit = [vision.Resize(image_size, RESIZE_FILTERS[resize]), vision.CenterCrop(image_size)]
    return [vision.ToPIL(), *fit, vision.ToNumpy()] if resize == "torchvision" else fit


def _walk(root):
    """Every non-hidden file below ``root`` (links followed, each real folder once), sorted by path."""
    seen_dirs, found = set(), []
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen_dirs:  # a link to a folder already read, or a loop
            dirs[:] = []
            continue
        seen_dirs.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(folder, f) for f in files if not f.startswith(".")]
    return sorted(found)


def find_images(root):
    """The image files under ``root`` (any depth), sorted, each real file once. UserError when
    ``root`` is missing or holds no image."""
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise UserError(f"data folder {root} does not exist: pass --data_root with a folder of images, "
                        "or --dataset sample to use the shipped sample")
    images, seen = [], set()
    for path in _walk(root):
        real = os.path.realpath(path)
        if path.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(real) and real not in seen:
            seen.add(real)
            images.append(path)
    if not images:
        raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {root} or its subfolders: "
                        "point --data_root at a folder of images")
    return images


def shard_indices(num_images, num_shards, shard_id, seed):
    """Shard ``shard_id``'s images: N // num_shards of them, cut from a permutation drawn from
    ``seed`` (the same on every device), so shards are equal and disjoint."""
    per_shard = num_images // num_shards
    order = np.random.default_rng([seed, num_shards]).permutation(num_images)
    return sorted(order[shard_id * per_shard:(shard_id + 1) * per_shard].tolist())


# Sets up to this size (as uint8 64x64 RGB: 87,000 images, the tutorial's 70,171 faces among them) are
# decoded once and kept: decoding every epoch takes CPU from the train step (docs/speed.md).
IN_MEMORY_BYTES = 1 << 30
MEMORY_VARIABLE = "DCGAN_MS_DECODED_MB"  # overrides IN_MEMORY_BYTES, in MiB (0: every set streams)
SAY_DECODING = 20_000  # from this many images the decoding takes seconds: say so


def image_pipeline(files, *, batch_size, pixel_range=TANH, resize=RESIZE, shuffle=True, num_parallel_workers=2,
                   drop_remainder=True, in_memory="auto", image_size=IMAGE_SIZE):
    """MindSpore's pipeline over ``files`` (an ImageFiles): batches of float32 images (N, 3, size, size) in
    ``pixel_range``, shrunk with the ``resize`` filter (``RESIZE_FILTERS``). ``in_memory``: decode the images
    once and keep them (True), decode them every epoch (False), or "auto": keep them when they take at most
    ``in_memory_bytes()`` as uint8."""
    fit = fit_transforms(resize, image_size)  # uint8 HWC, square
    if in_memory == "auto":
        in_memory = len(files.indices) * image_size * image_size * 3 <= in_memory_bytes()
    if in_memory:  # decoded once; each epoch shuffles and scales the same uint8 images
        dataset = ds.NumpySlicesDataset(decode_all(files, fit, num_parallel_workers), column_names=["image"],
                                        shuffle=shuffle)
    else:  # read and decoded anew every epoch, in MindSpore's worker threads
        dataset = image_folder(files, shuffle, num_parallel_workers)
        dataset = dataset.map(fit, input_columns="image", num_parallel_workers=num_parallel_workers)
    scale = [vision.Rescale(pixel_range.rescale, pixel_range.low), vision.HWC2CHW()]  # [0, 255] -> the range
    dataset = dataset.map(scale, input_columns="image", num_parallel_workers=num_parallel_workers)
    return dataset.batch(batch_size, drop_remainder=drop_remainder)


def in_memory_bytes():
    """The largest set kept decoded: IN_MEMORY_BYTES, or $DCGAN_MS_DECODED_MB MiB where it is set."""
    text = os.environ.get(MEMORY_VARIABLE)
    if text is None:
        return IN_MEMORY_BYTES
    try:
        return int(float(text) * (1 << 20))
    except ValueError:
        raise UserError(f"{MEMORY_VARIABLE}={text} is not a number of MiB: unset it or give one (0 streams "
                        "every set)") from None


def image_folder(files, shuffle, num_parallel_workers):
    """MindSpore's reader and decoder on the linked images: one "image" column, uint8 HWC."""
    dataset = ds.ImageFolderDataset(files.root, num_parallel_workers=num_parallel_workers, shuffle=shuffle,
                                    extensions=[e for e in IMAGE_EXTENSIONS], class_indexing={"images": 0},
                                    decode=True)
    return dataset.project("image")


def decode_all(files, fit, num_parallel_workers):
    """Every image of ``files`` decoded and fitted (``fit``: resize and centre-crop), in the order the
    reader lists them, as one uint8 array (N, H, W, 3). UserError naming an image that cannot be
    decoded. Shuffling that array with MindSpore's sampler draws the same order as shuffling the
    reader itself (same seed, same number of rows): a run trains on the same batches either way."""
    if len(files.indices) >= SAY_DECODING:
        print(f"decoding the {len(files.indices):,} images once, to keep them in memory", file=sys.stderr)
    dataset = image_folder(files, False, num_parallel_workers)
    dataset = dataset.map(fit, input_columns="image", num_parallel_workers=num_parallel_workers).batch(256)
    try:
        return np.concatenate([batch for (batch,) in dataset.create_tuple_iterator(num_epochs=1, output_numpy=True)])
    except RuntimeError as e:
        message = data_error(e, files)
        if message is None:
            raise
        raise UserError(f"{message}: remove or replace that file and run again") from None


def remove_decoder_copy(images):
    """MindSpore's decoder copies an image it cannot decode to ./abnormal_image.<ext> in the working
    folder (the user's, perhaps a checkout): remove that copy, and only a byte-for-byte copy of one of
    ``images`` (the one named, or another broken one its worker threads met at the same time)."""
    for copy in glob.glob("abnormal_image.*"):
        try:
            size = os.path.getsize(copy)
            if any(_same_size(path, size) and filecmp.cmp(copy, path, shallow=False) for path in images):
                os.remove(copy)
        except OSError:  # unreadable, or not ours to remove: leave it
            pass


def _same_size(path, size):
    try:
        return os.path.getsize(path) == size
    except OSError:
        return False


def data_error(error, files):
    """One line naming the broken image (mapped back through ``files``, an ImageFiles), if ``error`` is
    MindSpore's data pipeline failing on one (or saying what failed, if it failed otherwise); None for
    any other error."""
    text = str(error)
    match = re.search(r"Invalid image, (.+?) decode failed", text)
    if match:
        broken = files.original(match.group(1))
        remove_decoder_copy([files.paths[i] for i in files.indices])
        return f"cannot decode image {broken} (truncated, empty or not an image)"
    if "Dataset Pipeline Error Message" in text or "dataset pipeline" in text.lower():
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("-")]
        return f"the data pipeline failed ({lines[-1][:200] if lines else 'no message'})"
    return None
