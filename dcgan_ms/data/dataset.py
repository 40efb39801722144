"""The training-data pipeline, as in the tutorial, with its scaling fixed and any folder layout read.

    image files -> Decode -> Resize(64) -> CenterCrop(64) -> scale to [-1, 1] -> HWC2CHW -> shuffle -> batch

Which images: exactly those under ``--data_root``, at any depth (``find_images``): files whose
extension is one of ``IMAGE_EXTENSIONS`` in any case, hidden files and folders (names starting with
".") skipped, symbolic links followed, each real folder and file read once (so a link loop or a link
to a folder already read adds nothing). Nothing beside the folder is read. The tutorial's
``ImageFolderDataset`` reads one class per subfolder of its root, so on a flat folder it must be
pointed at the parent and filtered (counting the parent's other folders too), and it never looks
deeper than one level. So we list the files ourselves and lay the chosen ones out for it as links
in one temporary folder (``ImageFiles``): MindSpore's C++ reader and decoder still do the work in
its worker threads, as fast as before (a Python ``GeneratorDataset`` source was 1.6-8x slower on 2
cores).

Sizes and shards. ``get_dataset_size()`` is exactly the number of batches an epoch yields. With
``num_shards`` (one per device), every shard gets the same number of images, ``N // num_shards``:
the images are split by a permutation drawn from ``seed`` (the same on every device), so shards are
disjoint and together cover all but the ``N % num_shards`` left over; each shard then drops its last
partial batch, as a single device does. Devices with unequal batch counts would wait forever for
each other in the last step's all-reduce. Each epoch shuffles anew: the order is drawn when the
epoch's iterator is made, from MindSpore's dataset seed, which the training loop sets from
(--seed, epoch) (``loop.epoch_batches``), so a resumed run replays the same order.

Transparency. PNG, TIFF and BMP files can carry an alpha channel (RGBA, LA, or a palette with a
transparent colour). MindSpore's decoder drops alpha, which leaves whatever colour the transparent
pixels happen to store, usually black. Such images (found from their headers when the dataset is
made) are composited over ``background`` (``--background``, default white) with Pillow, and the
pipeline reads that copy.

Decoded once. A set that fits in ``IN_MEMORY_BYTES`` (as uint8 64x64 images) is decoded, resized and
cropped once, when the dataset is made, and kept as one array; each epoch shuffles that array with
MindSpore's own sampler (``NumpySlicesDataset``), which draws the order the reader's shuffle would
draw, and scales each batch. So training sees the same batches as when every epoch decodes the files
again, which a larger set still does. An image that cannot be decoded is then named when the dataset
is made, before training.

Why [-1, 1] and not the tutorial's [0, 1]: the Generator ends in Tanh, so its images lie in
[-1, 1]. If real images lie in [0, 1], the Discriminator can tell real from fake by brightness
alone (any negative pixel is fake), and the Generator is pushed to squeeze its outputs into half of
Tanh's range, where Tanh's gradient is smaller. DCGAN (Radford et al.) and PyTorch's example both
scale real images to [-1, 1]; so do we: x / 127.5 - 1.
"""
import os
import re
import shutil
import sys
import tempfile
import weakref

import mindspore.dataset as ds
import mindspore.dataset.vision as vision
import numpy as np
from PIL import Image, ImageColor

from ..errors import UserError
from ..models import IMAGE_SIZE

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
MAY_HAVE_ALPHA = (".png", ".bmp", ".tif", ".tiff")
BACKGROUND = "white"


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


def has_alpha(path):
    """Whether the image at ``path`` has transparent pixels to composite (reads the header only)."""
    if not path.lower().endswith(MAY_HAVE_ALPHA):
        return False
    try:
        with Image.open(path) as im:
            return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    except (OSError, ValueError):  # broken: let the decoder name it
        return False


def parse_colour(text):
    """An (r, g, b) colour from a name ("white"), "#rrggbb" or "rgb(r, g, b)"; UserError otherwise."""
    try:
        return ImageColor.getrgb(text)[:3]
    except ValueError:
        raise UserError(f"--background {text!r} is not a colour: give a name (white, black, gray), "
                        "#rrggbb or rgb(r, g, b)") from None


def composited(path, background):
    """The image at ``path`` as RGB, its transparent pixels composited over ``background`` (r, g, b)."""
    with Image.open(path) as im:
        rgba = im.convert("RGBA")
    flat = Image.new("RGB", rgba.size, background)
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat


def link(target, name):
    """A hard link (read as fast as the file itself), or a symbolic one where a hard link cannot be
    made (another file system, or a file the user does not own under protected_hardlinks)."""
    try:
        os.link(target, name)
    except OSError:
        os.symlink(target, name)


class ImageFiles:
    """The chosen images laid out for ``ImageFolderDataset``: a temporary folder ``images/`` holding one
    link per image (``link``), named by its index in ``paths`` (so MindSpore's C++ reader and decoder do the work,
    in its worker threads, and its error naming a file can be mapped back), or, for an image with
    transparency, a PNG copy composited over ``background``. The folder is removed with this object."""

    def __init__(self, paths, indices, background=BACKGROUND):
        self.paths, self.indices, background = paths, list(indices), parse_colour(background)
        self.root = tempfile.mkdtemp(prefix="dcgan_ms-images-")
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.root, True)
        folder = os.path.join(self.root, "images")
        os.mkdir(folder)
        for i in indices:
            ext = os.path.splitext(paths[i])[1].lower()
            if has_alpha(paths[i]):
                composited(paths[i], background).save(os.path.join(folder, f"{i:08d}.png"), compress_level=1)
            else:
                link(os.path.realpath(paths[i]), os.path.join(folder, f"{i:08d}{ext}"))

    def original(self, path):
        """The image file behind a path in the folder (as MindSpore names it in an error)."""
        name = os.path.splitext(os.path.basename(path))[0]
        return self.paths[int(name)] if path.startswith(self.root) and name.isdigit() else path


def shard_indices(num_images, num_shards, shard_id, seed):
    """Shard ``shard_id``'s images: N // num_shards of them, cut from a permutation drawn from
    ``seed`` (the same on every device), so shards are equal and disjoint."""
    per_shard = num_images // num_shards
    order = np.random.default_rng([seed, num_shards]).permutation(num_images)
    return sorted(order[shard_id * per_shard:(shard_id + 1) * per_shard].tolist())


# Sets up to this size (as uint8 64x64 RGB: 87,000 images, the tutorial's 70,171 faces among them)
# are decoded once and kept in memory: decoding and resizing every image again each epoch cost 200 ms
# of CPU an epoch of the sample at batch 32 on the 2-core machine, taken from the train step, against
# 87 ms kept (``python benchmarks/bench_step.py --data --batch_size 32 --data_images 10000``).
IN_MEMORY_BYTES = 1 << 30
MEMORY_VARIABLE = "DCGAN_MS_DECODED_MB"  # overrides IN_MEMORY_BYTES, in MiB (0: every set streams)
SAY_DECODING = 20_000  # from this many images the decoding takes seconds (0.3 s a 1,500 on 2 cores): say so

PIXEL_RANGES = {"-1,1": (1.0 / 127.5, -1.0),  # ours: the range of the Generator's Tanh
                "0,1": (1.0 / 255.0, 0.0)}  # the tutorial's x / 255, kept to measure what it costs


def create_dataset(root, batch_size=128, image_size=IMAGE_SIZE, shuffle=True, num_parallel_workers=2,
                   num_shards=None, shard_id=None, drop_remainder=True, pixel_range="-1,1",
                   background=BACKGROUND, seed=1, in_memory="auto"):
    """Batches of real images, float32, shape (batch_size, 3, image_size, image_size), in [-1, 1]
    (or, ``pixel_range="0,1"``, the tutorial's [0, 1]).

    ``num_shards`` / ``shard_id`` give each device of a data-parallel run its own equal share of the
    images (split by ``seed``). ``in_memory``: decode the images once and keep them (True), decode
    them every epoch (False), or "auto": keep them when they take at most ``IN_MEMORY_BYTES`` as
    uint8. Returns the dataset; ``dataset.get_dataset_size()`` is the number of batches per epoch.
    """
    paths = find_images(root)
    indices = shard_indices(len(paths), num_shards, shard_id, seed) if num_shards else list(range(len(paths)))
    if drop_remainder and len(indices) < batch_size:
        raise UserError(f"{root} holds {len(paths)} images, fewer than one batch of {batch_size}"
                        + (f" per device ({num_shards} devices)" if num_shards else "")
                        + ": lower --batch_size or add images")
    files = ImageFiles(paths, indices, background)
    fit = [vision.Resize(image_size), vision.CenterCrop(image_size)]  # uint8 HWC, image_size square
    if in_memory == "auto":
        in_memory = len(indices) * image_size * image_size * 3 <= in_memory_bytes()
    if in_memory:  # decoded once; each epoch shuffles and scales the same uint8 images
        dataset = ds.NumpySlicesDataset(decode_all(files, fit, num_parallel_workers), column_names=["image"],
                                        shuffle=shuffle)
    else:  # read and decoded anew every epoch, in MindSpore's worker threads
        dataset = image_folder(files, shuffle, num_parallel_workers)
        dataset = dataset.map(fit, input_columns="image", num_parallel_workers=num_parallel_workers)
    scale = [vision.Rescale(*PIXEL_RANGES[pixel_range]),  # [0, 255] -> [-1, 1]: x / 127.5 - 1
             vision.HWC2CHW()]
    dataset = dataset.map(scale, input_columns="image", num_parallel_workers=num_parallel_workers)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset.image_files = files  # keeps the folder alive as long as the dataset, and names broken images
    return dataset


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


def data_error(error, dataset=None):
    """One line naming the broken image, if ``error`` is MindSpore's data pipeline failing on one (or
    saying what failed, if it failed otherwise); None for any other error. ``dataset``: the dataset,
    or its ``ImageFiles``."""
    text = str(error)
    match = re.search(r"Invalid image, (.+?) decode failed", text)
    if match:
        files = dataset if isinstance(dataset, ImageFiles) else getattr(dataset, "image_files", None)
        path = files.original(match.group(1)) if files else match.group(1)
        return f"cannot decode image {path} (truncated, empty or not an image)"
    if "Dataset Pipeline Error Message" in text or "dataset pipeline" in text.lower():
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("-")]
        return f"the data pipeline failed ({lines[-1][:200] if lines else 'no message'})"
    return None
