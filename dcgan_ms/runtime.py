"""Choosing the device and seeding every random source, shared by the command lines."""
import os
import random

import mindspore as ms
import mindspore.dataset as ds
import numpy as np
from mindspore import ops

from .errors import UserError, first_line

DEVICE_TARGETS = ("CPU", "GPU", "Ascend")


def set_device(device_target, device_id=None):
    """Select the backend and check that it really runs: MindSpore only says a backend is missing
    when the first operator executes, with a long message; we say it in one line."""
    if device_target == "CPU":
        # A compiled graph runs on a MindSpore worker thread while the calling thread busy-waits for
        # it (runtime::AsyncRQueue::Wait spins), which takes a core from the kernels: on a 2-core CPU
        # a train step takes 1.5-2x as long. MindSpore's documented MS_DEV_HOST_BLOCKING_RUN=1 runs
        # it on the calling thread instead. MindSpore reads it once, at the first operator (below);
        # export MS_DEV_HOST_BLOCKING_RUN=0 to keep MindSpore's default.
        os.environ.setdefault("MS_DEV_HOST_BLOCKING_RUN", "1")
    try:
        try:
            ms.set_device(device_target, device_id)
        except RuntimeError:  # already running (training called twice in one process): fine if unchanged
            if ms.get_context("device_target") != device_target:
                raise
        ops.ones((1,), ms.float32).asnumpy()
    except (RuntimeError, ValueError) as e:
        raise UserError(f"device target {device_target} is not usable here ({first_line(e)}): install the MindSpore "
                        "build for it (see mindspore.cn/install) or pass --device_target CPU") from None


def set_seed(seed):
    """Seed MindSpore (weight init), its data pipeline (shuffling), NumPy and Python's random."""
    ms.set_seed(seed)
    ds.config.set_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
