"""The training-data pipeline, as in the tutorial, with its scaling fixed.

    ImageFolderDataset -> Resize(64) -> CenterCrop(64) -> scale to [-1, 1] -> HWC2CHW -> shuffle -> batch

Why [-1, 1] and not the tutorial's [0, 1]: the Generator ends in Tanh, so its images lie in
[-1, 1]. If real images lie in [0, 1], the Discriminator can tell real from fake by brightness
alone (any negative pixel is fake), and the Generator is pushed to squeeze its outputs into half of
Tanh's range, where Tanh's gradient is smaller. DCGAN (Radford et al.) and PyTorch's example both
scale real images to [-1, 1]; so do we: x / 127.5 - 1.

Two folder layouts are accepted:
- a folder of images (``faces/0.jpg, faces/1.jpg, ...``), as faces.zip and ``data/sample`` hold;
- a folder of subfolders of images (``faces/faces/0.jpg``, or one subfolder per class).
ImageFolderDataset alone finds no image in the first layout, because it reads one class per
subfolder; we read a flat folder as the only class of its parent.
"""
import os

import mindspore.dataset as ds
import mindspore.dataset.vision as vision

from ..errors import UserError
from ..models import IMAGE_SIZE

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
# ImageFolderDataset matches extensions case-sensitively.
_EXTENSIONS = [e for ext in IMAGE_EXTENSIONS for e in (ext, ext.upper())]


def _count_images(folder):
    with os.scandir(folder) as entries:
        return sum(1 for e in entries if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS))


def find_images(root):
    """Return ``(dataset_dir, class_indexing, num_images)`` for ImageFolderDataset on ``root``.

    Raises UserError when ``root`` is missing or holds no image in either layout.
    """
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise UserError(f"data folder {root} does not exist: pass --data_root with a folder of images, "
                        "or --dataset sample to use the shipped sample")
    flat = _count_images(root)
    if flat:
        return os.path.dirname(root), {os.path.basename(root): 0}, flat
    subdirs = sorted(e.path for e in os.scandir(root) if e.is_dir())
    nested = sum(_count_images(d) for d in subdirs)
    if nested:
        return root, None, nested
    raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {root} or its subfolders: "
                    "point --data_root at a folder of images")


PIXEL_RANGES = {"-1,1": (1.0 / 127.5, -1.0),  # ours: the range of the Generator's Tanh
                "0,1": (1.0 / 255.0, 0.0)}  # the tutorial's x / 255, kept to measure what it costs


def create_dataset(root, batch_size=128, image_size=IMAGE_SIZE, shuffle=True, num_parallel_workers=2,
                   num_shards=None, shard_id=None, drop_remainder=True, pixel_range="-1,1"):
    """Batches of real images, float32, shape (batch_size, 3, image_size, image_size), in [-1, 1]
    (or, ``pixel_range="0,1"``, the tutorial's [0, 1]).

    ``num_shards`` / ``shard_id`` give each device of a data-parallel run its own share of the
    images. Returns the dataset; ``dataset.get_dataset_size()`` is the number of batches per epoch.
    """
    dataset_dir, class_indexing, num_images = find_images(root)
    per_shard = num_images // (num_shards or 1)
    if drop_remainder and per_shard < batch_size:
        raise UserError(f"{root} holds {num_images} images, fewer than one batch of {batch_size}"
                        + (f" per device ({num_shards} devices)" if num_shards else "")
                        + ": lower --batch_size or add images")
    dataset = ds.ImageFolderDataset(dataset_dir, num_parallel_workers=num_parallel_workers,
                                    shuffle=shuffle, extensions=_EXTENSIONS,
                                    class_indexing=class_indexing, decode=True,
                                    num_shards=num_shards, shard_id=shard_id)
    dataset = dataset.project("image")
    transforms = [
        vision.Resize(image_size),
        vision.CenterCrop(image_size),
        vision.Rescale(*PIXEL_RANGES[pixel_range]),  # [0, 255] -> [-1, 1]: x / 127.5 - 1
        vision.HWC2CHW(),
    ]
    dataset = dataset.map(transforms, input_columns="image", num_parallel_workers=num_parallel_workers)
    return dataset.batch(batch_size, drop_remainder=drop_remainder)
