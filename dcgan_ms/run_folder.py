"""A run's folder (``--output_dir``): every name a training run writes there, its lock, and reading back.

    config.json  environment.json  fixed_noise.npy  log.csv (log_rank<N>.csv)  swd.csv  rank_<N>.json
    generator.ckpt  discriminator.ckpt  progress.gif  losses.png  report.html
    samples/epoch_NNN.png  checkpoints/step_NNNNNNN.ckpt  .lock

The writers (session.py, the callbacks, resume.py, report_page.py) take their names from here, and what
``--overwrite`` removes (``old_run_files``) is derived from the same names. Whole files are written
through ``files.written_whole``; readers return None for a file that is missing or unreadable.
"""
import csv
import errno
import fcntl
import glob
import json
import os
import re
import socket
import tempfile

from .errors import UserError
from .files import shared_folder, why_not_written, written_whole

CONFIG = "config.json"  # the run's flags, data folder and step counts
ENVIRONMENT = "environment.json"  # where each session of the run trained
FIXED_NOISE = "fixed_noise.npy"
SWD_LOG = "swd.csv"
GENERATOR = "generator.ckpt"
DISCRIMINATOR = "discriminator.ckpt"
GIF = "progress.gif"
LOSSES = "losses.png"
REPORT = "report.html"
LOCK = ".lock"  # held by the training run that writes in the folder
SAMPLES = "samples"
CHECKPOINTS = "checkpoints"
# What a run writes at its end, which --overwrite removes with its checkpoints and grids; its log,
# swd.csv and config a new run writes anew from its start.
FINAL_FILES = (GENERATOR, DISCRIMINATOR, GIF, LOSSES, REPORT)
LOG_FIELDS = ("step", "epoch", "g_loss", "d_loss", "d_real", "d_fake", "img_per_s")
_STEP_NAME = re.compile(r"^step_(\d+)\.ckpt$")


def log_name(rank=None):
    """log.csv, or log_rank<N>.csv on a rank of a data-parallel run."""
    return "log.csv" if rank is None else f"log_rank{rank}.csv"


def rank_summary_name(rank):
    return f"rank_{rank}.json"


def grid_path(output_dir, epoch):
    return os.path.join(output_dir, SAMPLES, f"epoch_{epoch:03d}.png")


def grid_paths(output_dir):
    """The epoch grids in ``output_dir``, in epoch order."""
    return sorted(glob.glob(os.path.join(glob.escape(output_dir), SAMPLES, "epoch_*.png")))


def checkpoint_path(output_dir, step):
    return os.path.join(output_dir, CHECKPOINTS, f"step_{step:07d}.ckpt")


def state_paths(output_dir):
    """The run's resume checkpoints, newest (highest step) first."""
    folder = os.path.join(output_dir, CHECKPOINTS)
    if not os.path.isdir(folder):
        return []
    found = [(int(m.group(1)), name) for name in os.listdir(folder) if (m := _STEP_NAME.match(name))]
    return [os.path.join(folder, name) for _, name in sorted(found, reverse=True)]


def checkpoint_step(path):
    """The step in a resume checkpoint's name."""
    return int(_STEP_NAME.match(os.path.basename(path)).group(1))


def old_run_files(output_dir):
    """What --overwrite removes of an earlier run: its resume checkpoints, epoch grids and final files."""
    finals = (os.path.join(output_dir, name) for name in FINAL_FILES)
    return state_paths(output_dir) + grid_paths(output_dir) + [path for path in finals if os.path.exists(path)]


def prepare(output_dir):
    """Make the output folder (and samples/), refuse it if it is not this user's alone (another account
    could plant links there for the run to write through), and check that it takes a file, under a name
    of this process's own (every rank of a data-parallel run checks at once)."""
    try:
        os.makedirs(os.path.join(output_dir, SAMPLES), exist_ok=True)
        refuse_shared(output_dir)
        with tempfile.NamedTemporaryFile(dir=output_dir, prefix=".write_test."):
            pass
    except OSError as e:
        raise UserError(f"cannot write to output folder {output_dir} ({e.strerror or e}): "
                        "pass a writable --output_dir") from None


def refuse_shared(output_dir):
    """A UserError if the run's folder (or its samples/ or checkpoints/) exists and is not this user's
    alone: another account could plant links there for the run to write through, or checkpoints for it
    to resume from."""
    for folder in (output_dir, os.path.join(output_dir, SAMPLES), os.path.join(output_dir, CHECKPOINTS)):
        why = shared_folder(folder) if os.path.isdir(folder) else None
        if why:
            raise UserError(f"the run's folder {folder} is not yours alone ({why}): pass an --output_dir of your "
                            "own, which only you can write")


_HELD = {}  # real path of a run folder -> this process's open, locked descriptor of its lock file


def lock(output_dir):
    """Hold the run folder's lock for as long as this process lives (taking it again is a no-op): a second
    trainer in the same folder would rotate the first one's checkpoints away, so it is refused, naming
    the first. The lock dies with its process, however it dies: a killed run's lock is no obstacle."""
    key = os.path.realpath(output_dir)
    if key in _HELD:
        return
    path = os.path.join(output_dir, LOCK)
    try:  # never through a link: a planted one would have the run write into another file
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as e:  # a link: ELOOP, which why_not_written names
        raise UserError(f"cannot open the run folder's lock {path}: {why_not_written(e)}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):  # ENOLCK: a file system without locks
            os.close(fd)
            raise UserError(f"the file system of {output_dir} cannot lock files ({e.strerror}): pass an --output_dir "
                            "on a local disk") from None
        owner = os.read(fd, 200).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise UserError(f"{output_dir} is in use by another training run ({owner}): wait for it to end, or pass "
                        "another --output_dir") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"process {os.getpid()} on {socket.gethostname()}".encode())
    _HELD[key] = fd


def write_json(path, value, indent=2):
    with written_whole(path) as tmp, open(tmp, "w") as f:
        json.dump(value, f, indent=indent)


def write_start(output_dir, *, record, fixed_noise):
    """config.json (``record``) and fixed_noise.npy, as a run writes them when it starts."""
    import numpy as np
    with written_whole(os.path.join(output_dir, FIXED_NOISE)) as tmp:
        np.save(tmp, fixed_noise)
    write_json(os.path.join(output_dir, CONFIG), record)


def record_environment(output_dir, environment):
    """Add ``environment`` (``runtime.environment()``) to environment.json: a resumed run adds its own
    session to the list, so the report shows every machine the run trained on."""
    path = os.path.join(output_dir, ENVIRONMENT)
    sessions = read_json(path)
    write_json(path, (sessions if isinstance(sessions, list) else []) + [environment], indent=1)


def read_json(path):
    """The JSON in ``path``; None when it is missing or not JSON."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_config(run):
    return read_json(os.path.join(run, CONFIG))


def read_log(run):
    """The run's log (log.csv, or rank 0's of a data-parallel run) as column -> list of floats (the steps
    that logged a speed); None when there is none, ValueError naming what is malformed."""
    for name in (log_name(), log_name(0)):
        path = os.path.join(run, name)
        if os.path.isfile(path):
            return read_columns(path, LOG_FIELDS, needed="img_per_s")
    return None


def read_columns(path, fields, *, needed=None):
    """The CSV file ``path``'s columns ``fields`` as lists of floats, read row by row into the columns
    alone (a long log costs its numbers, not a dict per row); rows with no ``needed`` value are left out.
    ValueError naming the first missing column or value that is not a number."""
    name = os.path.basename(path)
    with open(path, newline="") as f:
        rows = csv.reader(f)
        header = next(rows, [])
        missing = [field for field in fields if field not in header]
        if missing:
            raise ValueError(f"{name} has no {missing[0]} column")
        where = [(field, header.index(field)) for field in fields]
        columns = {field: [] for field in fields}
        skip_at = header.index(needed) if needed else None
        for line, row in enumerate(rows, start=2):
            if skip_at is not None and (len(row) <= skip_at or not row[skip_at]):
                continue
            for field, at in where:
                try:
                    columns[field].append(float(row[at]))
                except (IndexError, ValueError):
                    raise ValueError(f"{name} line {line}: {field} {row[at] if at < len(row) else 'missing'!r} "
                                     "is not a number") from None
    return columns


def remove_old_run(paths, why):
    """Remove each of ``paths`` (``old_run_files``); a UserError naming the one that cannot be removed
    (``why``: what removes it)."""
    for path in paths:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise UserError(f"{why} could not remove the old run's {path}: {why_not_written(e)}") from None
