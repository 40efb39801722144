"""Data-parallel training over several devices, on MindSpore's own stack (msrun, init, all-reduce).

The gradient all-reduce lives in the compiled step (``step.make_train_step(distributed=True)``);
this module joins the cluster, keeps BatchNorm's running statistics equal across devices, and
fingerprints the weights so ranks can be checked for agreement.
"""
import hashlib

from .errors import UserError, first_line
from .models import running_stats


def init_distributed():
    """Join the cluster msrun started; set the data-parallel context; return (rank, devices)."""
    import mindspore as ms
    from mindspore.communication import get_group_size, get_rank, init
    try:
        init()
    except (RuntimeError, ValueError) as e:
        raise UserError(f"--distributed could not join a cluster ({first_line(e)}): launch with msrun, see the README") from None
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True)
    return get_rank(), get_group_size()


def average_running_stats(nets, devices):
    """Replace every device's BatchNorm running statistics by their mean over the devices.

    Training normalises with per-device batch statistics, so each device's running averages drift
    apart a little; averaging them before every save makes all ranks hold identical networks and
    the checkpoint represent every device's data. (The mean of per-device running variances is an
    approximation of the global one, close when shards are alike.) Every rank must call this.
    """
    import mindspore as ms
    from mindspore import ops

    all_reduce = ops.AllReduce()  # sum over the world group

    @ms.jit
    def mean_over_devices(x):
        return all_reduce(x) / devices

    for p in running_stats(*nets):
        p.set_data(mean_over_devices(p.value()))


def parameter_digest(*nets, trainable=True):
    """SHA-256 of the networks' trainable parameters (or, ``trainable=False``, of their BatchNorm
    running statistics) in name order: equal digests, equal values, bit for bit."""
    params = [p for net in nets for p in net.trainable_params()] if trainable else running_stats(*nets)
    h = hashlib.sha256()
    for p in sorted(params, key=lambda p: p.name):
        h.update(p.name.encode())
        h.update(p.asnumpy().tobytes())
    return h.hexdigest()
