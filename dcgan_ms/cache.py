"""dcgan_ms's cache folder (``$DCGAN_MS_CACHE``, default ``~/.cache/dcgan_ms``) and the one rule for what may
be loaded or run from it: only what this user owns and nobody else can write. The compiled kernels
(kernels/library.py) and the stand-in CUDA_HOME for MindSpore's GPU plugin (gpu.py) live there."""
import os
import stat
from pathlib import Path


def cache_dir():
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dcgan_ms"
    return Path(os.environ.get("DCGAN_MS_CACHE") or default)


def untrusted(path, *, plain_file=False):
    """Why ``path`` may not be loaded from, or None: another user owns it, or group or others can write
    it; with ``plain_file``, also a link or anything but a file."""
    try:
        info = os.lstat(path) if plain_file else os.stat(path)
    except OSError as e:
        return f"cannot read it ({e.strerror})"
    if plain_file and not stat.S_ISREG(info.st_mode):
        return "it is not a plain file"
    if info.st_uid != os.geteuid():
        return f"user {info.st_uid} owns it, not you ({os.geteuid()})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"group or others may write it (mode {stat.S_IMODE(info.st_mode):o})"
    return None
