"""Saving and loading the networks' weights (MindSpore .ckpt files).

``save`` writes atomically: to a temporary file in the same folder, then renamed over the target,
so an interrupted save never leaves a half-written checkpoint under the real name.

``load_generator`` reads a Generator checkpoint (ours or one saved by the tutorial's own code:
the parameter names are the same) and builds a Generator of the size the checkpoint holds, so the
user need not remember nz and ngf. Explicit sizes that do not fit are one clear error naming the
expected and found shapes.
"""
import os

import mindspore as ms

from .errors import UserError
from .models import NC, Discriminator, Generator


def save(net, path):
    """Save ``net``'s parameters to ``path`` atomically."""
    tmp = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.tmp.ckpt")
    try:
        ms.save_checkpoint(net, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise UserError(f"could not write checkpoint {path} ({e}): check that the folder is writable "
                        "and the disk is not full") from None
    return path


def read(path):
    """The checkpoint at ``path`` as a dict of name -> Parameter; one clear error if unreadable."""
    if not os.path.isfile(path):
        raise UserError(f"checkpoint {path} does not exist: pass the generator.ckpt a training run wrote")
    try:
        return ms.load_checkpoint(path)
    except Exception as e:  # MindSpore raises ValueError/RuntimeError for non-checkpoints
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise UserError(f"{path} is not a readable MindSpore checkpoint ({reason})") from None


def _load_into(net, params, path):
    expected = {p.name: tuple(p.shape) for p in net.get_parameters()}
    found = {k: tuple(v.shape) for k, v in params.items() if k in expected}
    missing = [k for k in expected if k not in found]
    if missing:
        raise UserError(f"{path} is not a checkpoint of a {type(net).__name__}: it has no parameter "
                        f"{missing[0]} (expected names like {next(iter(expected))})")
    for name, shape in expected.items():
        if found[name] != shape:
            raise UserError(f"{path} does not fit the model: {name} has shape {found[name]} in the "
                            f"checkpoint but {shape} in the model; pass the sizes it was trained with")
    ms.load_param_into_net(net, {k: params[k] for k in expected}, strict_load=True)
    return net


def load_generator(path, nz=None, ngf=None):
    """A Generator with the weights of checkpoint ``path``; nz/ngf default to the checkpoint's own."""
    params = read(path)
    first = params.get("generator.0.weight")
    if first is None or len(first.shape) != 4:
        raise UserError(f"{path} is not a Generator checkpoint: it has no parameter generator.0.weight "
                        "(did you pass discriminator.ckpt?)")
    ckpt_nz, ckpt_ngf = first.shape[0], first.shape[1] // 8
    return _load_into(Generator(nz or ckpt_nz, ngf or ckpt_ngf, NC), params, path)


def load_discriminator(path, ndf=None):
    """A Discriminator with the weights of checkpoint ``path``; ndf defaults to the checkpoint's own."""
    params = read(path)
    first = params.get("discriminator.0.weight")
    if first is None or len(first.shape) != 4:
        raise UserError(f"{path} is not a Discriminator checkpoint: it has no parameter "
                        "discriminator.0.weight")
    return _load_into(Discriminator(ndf or first.shape[0], NC), params, path)
