"""Saving and loading the networks' weights (MindSpore .ckpt files).

``save`` writes atomically: to a temporary file in the same folder, flushed to disk, then renamed
over the target, so an interrupted save never leaves a half-written checkpoint under the real name.

Parameter names. The tutorial (and this package, which keeps its code) calls
``optimizer.update_parameters_name("optim_g.")``: two Adam optimizers in one graph would otherwise
both own parameters named "learning_rate", "beta1_power", "global_step". That call renames every
parameter the optimizer reaches, the network's trainable weights included, so a checkpoint saved
after training names them "optim_g.generator.0.weight", while BatchNorm's running statistics,
which the optimizer does not see, stay "generator.1.moving_mean". A fresh network names them
"generator.0.weight". ``mindspore.load_checkpoint(path, net)`` accepts both (it strips the prefix);
our loader does the same, explicitly, in both directions.

``load_generator`` reads a Generator checkpoint (ours or one saved by the tutorial's own code) and
builds a Generator of the size the checkpoint holds, so the user need not remember nz and ngf.
Explicit sizes that do not fit are one clear error naming the expected and found shapes.
"""
import os

import mindspore as ms

from .errors import UserError, first_line
from .models import NC, Discriminator, Generator


def save(net, path, **kwargs):
    """Save ``net``'s parameters (or a list of {"name", "data"} dicts) to ``path`` atomically;
    ``kwargs`` go to ``mindspore.save_checkpoint`` (append_dict, crc_check)."""
    tmp = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.tmp.ckpt")
    try:
        ms.save_checkpoint(net, tmp, **kwargs)
        with open(tmp, "rb+") as f:  # on disk before it takes the real name, even if the power fails
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise UserError(f"could not write checkpoint {path} ({e}): check that the folder is writable "
                        "and the disk is not full") from None
    return path


def canonical_name(name):
    """'optim_g.generator.0.weight' -> 'generator.0.weight' (see the module docstring)."""
    return name.split(".", 1)[1] if name.startswith("optim_") and "." in name else name


def as_saved(net):
    """``net`` as ``save`` takes it; the averaged Generator (``ema.py``) under G's own names
    ('ema.generator.0.weight' -> 'generator.0.weight'), so that its file loads as any Generator's."""
    from .ema import PREFIX
    return [{"name": p.name.removeprefix(PREFIX), "data": p} for p in net.get_parameters()]


def read(path):
    """The checkpoint at ``path`` as a dict of canonical name -> Parameter; one clear error if unreadable."""
    if not os.path.isfile(path):
        raise UserError(f"checkpoint {path} does not exist: pass the generator.ckpt a training run wrote")
    try:
        params = ms.load_checkpoint(path)
    except Exception as e:  # MindSpore raises ValueError/RuntimeError for non-checkpoints
        raise UserError(f"{path} is not a readable MindSpore checkpoint ({first_line(e)})") from None
    return {canonical_name(k): v for k, v in params.items()}


def load_into(net, params, path):
    """Copy ``params`` (from ``read``) into ``net``, checking every name and shape first."""
    expected = {canonical_name(p.name): p for p in net.get_parameters()}
    missing = [k for k in expected if k not in params]
    if missing:
        raise UserError(f"{path} is not a checkpoint of a {type(net).__name__}: it has no parameter "
                        f"{missing[0]}")
    for name, p in expected.items():
        if tuple(params[name].shape) != tuple(p.shape):
            raise UserError(f"{path} does not fit the model: {name} has shape {tuple(params[name].shape)} in "
                            f"the checkpoint but {tuple(p.shape)} in the model; pass the sizes it was "
                            "trained with")
    for name, p in expected.items():
        p.set_data(ms.Tensor(params[name].asnumpy(), p.dtype))
    return net


def load_generator(path, nz=None, ngf=None, conv="auto"):
    """A Generator with the weights of checkpoint ``path``; nz/ngf default to the checkpoint's own.
    ``conv``: which convolution kernels it computes with (``models.Generator``); any reads any checkpoint."""
    params = read(path)
    first = params.get("generator.0.weight")
    if first is None or len(first.shape) != 4:
        raise UserError(f"{path} is not a Generator checkpoint: it has no parameter generator.0.weight "
                        "(did you pass discriminator.ckpt?)")
    ckpt_nz, ckpt_ngf = first.shape[0], first.shape[1] // 8
    return load_into(Generator(nz or ckpt_nz, ngf or ckpt_ngf, NC, conv), params, path)


def load_discriminator(path, ndf=None, conv="auto"):
    """A Discriminator with the weights of checkpoint ``path``; ndf defaults to the checkpoint's own."""
    params = read(path)
    first = params.get("discriminator.0.weight")
    if first is None or len(first.shape) != 4:
        raise UserError(f"{path} is not a Discriminator checkpoint: it has no parameter "
                        "discriminator.0.weight")
    return load_into(Discriminator(ndf or first.shape[0], NC, conv), params, path)
