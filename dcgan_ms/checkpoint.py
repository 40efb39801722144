"""Saving and loading the networks' weights (MindSpore .ckpt files).

``save`` writes atomically (a temporary file, on disk, renamed), so an interrupted save never leaves a
half-written checkpoint under the real name. ``restore`` copies parameters into cells after checking
every name and shape. Names: the tutorial's ``optimizer.update_parameters_name("optim_g.")`` renames
the trainable weights the optimizer reaches, so a trained network's file says "optim_g.generator.0.weight"
where a fresh network says "generator.0.weight"; ``canonical_name`` strips the prefix, as
``mindspore.load_checkpoint(path, net)`` does. ``load_generator`` builds a Generator of the size the
checkpoint holds (ours or the tutorial's own), so the user need not remember nz and ngf.
"""
import binascii
import contextlib
import logging
import os

import mindspore as ms
import numpy as np

from . import files
from .errors import UserError, first_line
from .layers import speed_up
from .models import NC, Discriminator, Generator


def save(net, path, **kwargs):
    """Save ``net``'s parameters (or a list of {"name", "data"} dicts) to ``path`` whole (``files.written_whole``);
    ``kwargs`` go to ``mindspore.save_checkpoint`` (append_dict, crc_check). A failed save leaves no
    temporary file (ours or MindSpore's own) and says why."""
    with files.written_whole(path, what=f"checkpoint {path}", catch=(OSError, RuntimeError)) as tmp, \
            mindspore_logs_silenced():  # its CRITICAL line on failure would stand before ours
        ms.save_checkpoint(net, tmp, **kwargs)
    return path


@contextlib.contextmanager
def mindspore_logs_silenced():
    """Mute MindSpore's Python log (its logger is internal: if that changes, nothing is muted)."""
    try:
        from mindspore.log import _get_logger
        logger = _get_logger()
        level = logger.level
    except (ImportError, AttributeError):
        yield
        return
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


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
    why = damage(path)
    if why:
        raise UserError(f"{path} is damaged ({why}): use another checkpoint")
    try:
        with mindspore_logs_silenced():  # it warns of a file without a CRC (the tutorial's own)
            params = ms.load_checkpoint(path, crc_check=True)
    except Exception as e:  # MindSpore raises ValueError/RuntimeError for non-checkpoints
        raise UserError(f"{path} is not a readable MindSpore checkpoint ({first_line(e)})") from None
    return {canonical_name(k): v for k, v in params.items()}


def damage(path):
    """What is wrong with the checkpoint at ``path`` that MindSpore would not say, or None: its CRC does not
    match (MindSpore's own message then speaks of permissions), or a tensor's data does not fill its shape
    (MindSpore loads 4 bytes for a (100, 512, 4, 4) weight as zeros). A file that does not parse is left
    for MindSpore to name."""
    from google.protobuf.message import DecodeError
    from mindspore.train.checkpoint_pb2 import Checkpoint
    from mindspore.train.serialization import tensor_to_ms_type
    with open(path, "rb") as f:
        content = f.read()
    if content[-17:-10] == b"crc_num":  # MindSpore's CRC trailer
        content, crc = content[:-17], int.from_bytes(content[-10:], "big")
        if binascii.crc32(content) != crc:
            return "its CRC does not match its contents"
    proto = Checkpoint()
    try:
        proto.ParseFromString(content)
    except DecodeError:
        return None
    held, needed = {}, {}
    for value in proto.value:  # a large tensor may be split over several values of one tag
        tensor = value.tensor
        if not value.HasField("tensor") or tensor.tensor_type not in tensor_to_ms_type or \
                tensor.tensor_type in ("str", "Int4", "BFloat16"):  # text, and types NumPy has no size for
            continue
        held[value.tag] = held.get(value.tag, 0) + len(tensor.tensor_content)
        dims = [] if list(tensor.dims) == [0] else list(tensor.dims)  # [0]: a scalar
        itemsize = np.dtype(ms.dtype_to_nptype(tensor_to_ms_type[tensor.tensor_type])).itemsize
        needed[value.tag] = int(np.prod(dims, dtype=np.int64)) * itemsize
    wrong = next((tag for tag, size in needed.items() if held[tag] != size), None)
    return f"{wrong} holds {held[wrong]:,} bytes where its shape needs {needed[wrong]:,}" if wrong else None


def restore(cells, params, *, source, into, hint="", rename=None):
    """Copy ``params`` (name -> tensor) into the parameters of ``cells`` with the same names (``rename``
    maps a cell's parameter name to the checkpoint's), checking every name and shape first, so that a
    mismatch changes nothing. ``source`` and ``into`` name the two in an error, ``hint`` says what to do."""
    targets = {}
    for cell in cells:
        for p in cell.get_parameters():
            targets.setdefault(rename(p.name) if rename else p.name, p)
    for name, p in targets.items():
        if name not in params:
            raise UserError(f"{source} does not fit {into}: it has no parameter {name}")
        if tuple(params[name].shape) != tuple(p.shape):
            raise UserError(f"{source} does not fit {into}: {name} has shape {tuple(params[name].shape)} in the "
                            f"checkpoint but {tuple(p.shape)} in {into}{hint}")
    for name, p in targets.items():
        p.set_data(ms.Tensor(params[name].asnumpy(), p.dtype))


def load_into(net, params, path):
    """``net`` with ``params`` (from ``read``) copied in."""
    restore([net], params, source=path, into="the model", hint="; pass the sizes it was trained with",
            rename=canonical_name)
    return net


def load_generator(path, nz=None, ngf=None, conv="auto"):
    """A Generator with the weights of checkpoint ``path``; nz/ngf default to the checkpoint's own.
    ``conv``: which faster layers it computes with (``layers.speed_up``; None: the tutorial's own layers,
    as export wants them); any reads any checkpoint."""
    params = read(path)
    first = params.get("generator.0.weight")
    if first is None or len(first.shape) != 4:
        raise UserError(f"{path} is not a Generator checkpoint: it has no parameter generator.0.weight "
                        "(did you pass discriminator.ckpt?)")
    ckpt_nz, ckpt_ngf = first.shape[0], first.shape[1] // 8
    return load_into(rewritten(Generator(nz or ckpt_nz, ngf or ckpt_ngf, NC), conv), params, path)


def load_discriminator(path, ndf=None, conv="auto"):
    """A Discriminator with the weights of checkpoint ``path``; ndf defaults to the checkpoint's own;
    ``conv`` as for ``load_generator``."""
    params = read(path)
    first = params.get("discriminator.0.weight")
    if first is None or len(first.shape) != 4:
        raise UserError(f"{path} is not a Discriminator checkpoint: it has no parameter "
                        "discriminator.0.weight")
    return load_into(rewritten(Discriminator(ndf or first.shape[0], NC), conv), params, path)


def rewritten(net, conv):
    """``net`` with the faster layers for ``conv`` (``layers.speed_up``), or as built when ``conv`` is None."""
    return net if conv is None else speed_up(net, conv)
