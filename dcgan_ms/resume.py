"""Resume checkpoints: everything needed to continue a training run exactly where it stopped.

A run keeps them in ``<output_dir>/checkpoints/step_<step>.ckpt``, one MindSpore checkpoint each: G's and
D's weights and BatchNorm statistics, both Adam optimizers' state (optim_g.* / optim_d.*), G's average
(--ema), the fixed noise, where the run was (step, epoch, step_in_epoch) and its flags (config, JSON).
Randomness needs no saved state: each epoch's order and each step's noise are functions of the seed
(``data.training_data.epoch_seed``, ``noise.step_key``). Files are written atomically with MindSpore's CRC
(``checkpoint.save``); ``save_state`` keeps the newest ``keep``; ``latest_state`` returns the newest that
reads back whole, naming each damaged one it skips.
"""
import json
import os

import mindspore as ms

from . import checkpoint
from .errors import UserError, first_line
from .run_folder import CHECKPOINTS, checkpoint_path, checkpoint_step, state_paths

_SCALARS = ("step", "epoch", "step_in_epoch")
_JSON = ("config",)


def newest_step(output_dir):
    """The step of the run's newest resume checkpoint (by its name), 0 if there is none."""
    paths = state_paths(output_dir)
    return checkpoint_step(paths[0]) if paths else 0


def save_state(output_dir, cells, fixed_noise, keep, **scalars_and_json):
    """Write ``checkpoints/step_<step>.ckpt`` holding every parameter of ``cells`` (networks and
    optimizers), the fixed noise, and ``step``, ``epoch``, ``step_in_epoch`` and ``config``;
    then delete all but the newest ``keep`` checkpoints. Returns the path written."""
    params = {}
    for cell in cells:
        for p in cell.get_parameters():
            params.setdefault(p.name, p)
    save_obj = [{"name": name, "data": p} for name, p in params.items()]
    save_obj.append({"name": "fixed_noise", "data": ms.Tensor(fixed_noise)})
    append = {k: int(scalars_and_json[k]) for k in _SCALARS}
    append.update({k: json.dumps(scalars_and_json[k]) for k in _JSON})
    path = checkpoint_path(output_dir, append["step"])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    path = checkpoint.save(save_obj, path,
                           append_dict=append, crc_check=True)
    for old in state_paths(output_dir)[keep:]:
        os.remove(old)
    return path


def read_state(path):
    """The checkpoint at ``path`` as a dict: "params" (name -> Parameter), "fixed_noise" (array),
    and the scalars and JSON values saved with it. UserError if it is missing, damaged or not one."""
    if not os.path.isfile(path):
        raise UserError(f"resume checkpoint {path} does not exist: pass --resume alone for the newest one in "
                        "--output_dir, or a checkpoints/step_*.ckpt file")
    why = checkpoint.damage(path)
    if why:
        raise UserError(f"resume checkpoint {path} is damaged or truncated ({why})")
    try:
        with checkpoint.mindspore_logs_silenced():  # it logs an ERROR line of its own before raising
            params = ms.load_checkpoint(path, crc_check=True)
    except Exception as e:  # ValueError / RuntimeError for a damaged or foreign file
        raise UserError(f"resume checkpoint {path} is damaged or truncated ({first_line(e)})") from None
    missing = [k for k in (*_SCALARS, *_JSON, "fixed_noise") if k not in params]
    if missing:
        raise UserError(f"{path} is not a resume checkpoint (it has no {missing[0]}): resume needs a "
                        "checkpoints/step_*.ckpt file that training wrote")
    state = {k: int(params.pop(k).asnumpy()) for k in _SCALARS}
    state.update({k: json.loads(params.pop(k)) for k in _JSON})
    state["fixed_noise"] = params.pop("fixed_noise").asnumpy()
    state["params"] = params
    state["path"] = path
    return state


def latest_state(output_dir, warn=print):
    """The newest resume checkpoint in ``output_dir`` that reads back whole; each damaged one is
    named through ``warn`` and skipped. UserError if there is none."""
    paths = state_paths(output_dir)
    for path in paths:
        try:
            return read_state(path)
        except UserError as e:
            warn(f"warning: {e}; falling back to the previous checkpoint")
    if paths:
        raise UserError(f"no readable resume checkpoint in {os.path.join(output_dir, CHECKPOINTS)} "
                        f"({len(paths)} damaged): start a new run")
    raise UserError(f"no resume checkpoint in {os.path.join(output_dir, CHECKPOINTS)}: pass the "
                    "--output_dir of a run to continue, or start a new run without --resume")
