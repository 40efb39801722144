"""The training images of one device, as batches, epoch by epoch: the loop's one source of data.

Each epoch's order is drawn from (seed, epoch), the same on every rank and in a resumed run, which
skips the batches it had done. Shards (one per device) are equal and disjoint. When an epoch's batches
run out, the next epoch's pipeline is started at once, so that it fills its queue while the epoch-end
callbacks leave a core free. An image that cannot be decoded is named by a ``DataError``.
"""
import itertools

import mindspore.dataset as ds
import numpy as np

from ..errors import UserError
from ..pixels import ImageLook
from .dataset import data_error, find_images, image_pipeline, shard_indices
from .image_files import ImageFiles


class DataError(UserError):
    """An image of the set cannot be read; the message names it."""


class TrainingData:
    """Batches of the images under ``root`` (float32 (batch_size, 3, 64, 64)) as ``look`` says (pixel
    range, background, the filter that shrinks them to 64 px: ``pixels.ImageLook``);
    ``num_shards`` / ``shard_id``: this device's share of them, split by ``seed``. ``dataset`` is
    MindSpore's pipeline, ``steps_per_epoch`` the number of batches an epoch yields."""

    def __init__(self, root, *, batch_size=128, seed=1, look=ImageLook(), num_parallel_workers=2, num_shards=None,
                 shard_id=None, in_memory="auto", shuffle=True, drop_remainder=True):
        paths = find_images(root)
        indices = shard_indices(len(paths), num_shards, shard_id, seed) if num_shards else list(range(len(paths)))
        if drop_remainder and len(indices) < batch_size:
            raise UserError(f"{root} holds {len(paths)} images, fewer than one batch of {batch_size}"
                            + (f" per device ({num_shards} devices)" if num_shards else "")
                            + ": lower --batch_size or add images")
        self.num_images = len(paths)  # in the whole set, every device's share
        self.files = ImageFiles(paths, indices, look.background)  # the linked folder lives as long as this object
        self.dataset = image_pipeline(self.files, batch_size=batch_size, pixel_range=look.pixel_range,
                                      resize=look.resize, shuffle=shuffle, num_parallel_workers=num_parallel_workers,
                                      drop_remainder=drop_remainder, in_memory=in_memory)
        self.steps_per_epoch = self.dataset.get_dataset_size()
        self.seed, self.prepared = seed, None

    def batches(self, epoch, skip=0):
        """The batches of ``epoch`` (counted from 1), the first ``skip`` left out (done before a resume)."""
        prepared, self.prepared = self.prepared, None
        if prepared and prepared[0] == epoch and skip == 0:
            batches = itertools.chain([prepared[1]], prepared[2])
        else:
            batches = self.iterator(epoch)
        try:
            for (real_imgs,) in itertools.islice(batches, skip, None):
                yield real_imgs
            self.prepare(epoch + 1)
        except RuntimeError as e:  # MindSpore's pipeline stops on the first image it cannot decode
            message = data_error(e, self.files)
            if message is None:
                raise
            raise DataError(message) from None

    def iterator(self, epoch):
        """A new iterator over the pipeline, shuffled by (seed, epoch): the same order every time."""
        ds.config.set_seed(epoch_seed(self.seed, epoch))  # MindSpore reads its dataset seed when the iterator is made
        return self.dataset.create_tuple_iterator(num_epochs=1)

    def prepare(self, epoch):
        """Start ``epoch``'s pipeline now and keep its first batch for ``batches`` (MindSpore starts a
        pipeline at the first batch asked for and then fills its queue, taking a core from the step)."""
        batches = self.iterator(epoch)
        self.prepared = (epoch, next(batches), batches)


def epoch_seed(seed, epoch):
    """The shuffling seed of ``epoch``: a new order every epoch, the same on every rank and in a resumed run."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0] % (2 ** 31))


def create_dataset(root, batch_size=128, **options):
    """The tutorial's name for it: ``TrainingData(root, batch_size=batch_size, **options)``."""
    return TrainingData(root, batch_size=batch_size, **options)
