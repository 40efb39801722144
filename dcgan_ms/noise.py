"""The noise of every training step: z, and the instance noise D sees (``--instance_noise``).

Both are a function of (seed, rank, step) alone (``step_key``): every device draws its own, a resumed
run draws what the uninterrupted one would have, and there is no generator state to save. They come
from the compiled ``kernels.standard_normal`` (NumPy's generator where it cannot be built), and the
next step's are drawn on a helper thread while this step trains.
"""
import math
from concurrent.futures import ThreadPoolExecutor

import mindspore as ms
import numpy as np

from .kernels import standard_normal


class StepNoise:
    """``noise(step, shape)``: the z of one step, (N, nz, 1, 1), and its three instance-noise batches
    shaped like the images (none when ``instance_noise`` is 0), standard normals times
    ``instance_noise``. With ``fade_steps`` the instance noise is also scaled by ``fade(step)``, from 1
    at step 0 down to 0 at ``fade_steps`` (annealed instance noise, Sonderby et al. 2016), then zeros."""

    def __init__(self, *, nz, seed, rank=0, instance_noise=0.0, fade_steps=0):
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
        noise *= np.float32(self.instance_noise)  # float32 products, in this order: the runs' numbers depend on it
        return z, noise

    def __call__(self, step, shape):
        shape = tuple(shape)
        drawn_for, drawing = self.next or (None, None)
        self.arrays = drawing.result() if drawn_for == (step, shape) else self.draw(step, shape)  # kept alive:
        self.next = ((step + 1, shape), self.helper.submit(self.draw, step + 1, shape))  # the tensors share it
        z, noise = self.arrays
        return ms.from_numpy(z), tuple(ms.from_numpy(n) for n in noise)


def step_key(seed, rank, step):
    """The key of one step's random numbers on one device (two 32-bit words)."""
    return tuple(int(k) for k in np.random.SeedSequence([seed, rank, step]).generate_state(2))
