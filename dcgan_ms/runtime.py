"""Choosing the device and seeding every random source, shared by the command lines."""
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
