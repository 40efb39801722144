"""Images in and out of the networks: a Generator's images for some noise, latent walks, and sets of
real and generated images as uint8 (for the SWD, ``swd.py``).

BatchNorm when generating (``bn``): "batch" normalises with the statistics of the generated batch, as
in training and in the progress grids (it needs several images, and each depends a little on the
others); "moving" uses the running averages, so each image depends on its own z only, but after a
short training those lag behind the weights and images come out washed out.
"""
import mindspore as ms
import mindspore.dataset as ds
import numpy as np
from mindspore import ops

from .data import TrainingData
from .errors import UserError
from .models import running_stats
from .pixels import TANH, ImageLook


def generate(generator, z, bn="batch"):
    """Images (N, 3, 64, 64) in [-1, 1] for noise ``z`` (N, nz, 1, 1), with BatchNorm as ``bn`` says.
    With ``bn="batch"`` the running averages are restored afterwards, so generating leaves the
    checkpointed statistics unchanged."""
    if bn == "moving":
        generator.set_train(False)
        return generator(ms.Tensor(z, ms.float32)).asnumpy()
    stats = running_stats(generator)
    saved = [p.asnumpy().copy() for p in stats]
    generator.set_train(True)
    images = generator(ms.Tensor(z, ms.float32)).asnumpy()
    for p, value in zip(stats, saved):  # in place: a compiled train step keeps updating the same memory
        ops.assign(p, ms.Tensor(value))
    return images


def interpolate(z0, z1, steps, method="slerp"):
    """``steps`` noise vectors from z0 to z1 (both ends included), shape (steps, *z0.shape).

    "linear" walks the straight line; "slerp" walks the great circle, which keeps the vectors'
    length typical of Gaussian noise (a straight line between two such vectors passes closer to
    the origin than any noise the Generator saw in training).
    """
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    t = np.linspace(0.0, 1.0, steps).reshape(-1, *([1] * z0.ndim))
    if method == "linear":
        return ((1 - t) * z0 + t * z1).astype(np.float32)
    cos = np.dot(z0.ravel(), z1.ravel()) / (np.linalg.norm(z0) * np.linalg.norm(z1))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return ((1 - t) * z0 + t * z1).astype(np.float32)
    return ((np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)).astype(np.float32)


def real_images(data_root, num, seed=0, look=ImageLook()):
    """``num`` real images as uint8 (N, 64, 64, 3), through the training pipeline as the run read them
    (``look``: background and resize), a seeded shuffle."""
    ds.config.set_seed(seed)
    data = TrainingData(data_root, batch_size=min(num, 64), drop_remainder=False, num_parallel_workers=1,
                        look=look, in_memory=False)  # reads only the `num` it needs
    batches, have = [], 0
    for (x,) in data.dataset.create_tuple_iterator(num_epochs=1, output_numpy=True):
        batches.append(look.pixel_range.to_uint8(x))
        have += len(x)
        if have >= num:
            break
    if have < num:
        raise UserError(f"{data_root} holds {have} images, fewer than --num {num}: lower --num")
    return np.concatenate(batches)[:num]


def generated_images(generator, num, *, seed=0, bn="batch", pixel_range=TANH, batch_size=64):
    """``num`` images of ``generator`` as uint8 (N, 64, 64, 3), from seeded noise, in batches."""
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, num, batch_size):
        n = min(batch_size, num - start)
        z = rng.standard_normal((max(n, 2), generator.nz, 1, 1)).astype(np.float32)
        out.append(pixel_range.to_uint8(generate(generator, z, bn))[:n])
    return np.concatenate(out)
