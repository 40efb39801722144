"""dcgan_ms's cache folder (``$DCGAN_MS_CACHE``, default ``~/.cache/dcgan_ms``) and the one rule for what may
be loaded or run from it: only what this user owns and nobody else can write, in a folder that no other
account can swap (every folder above it this user's or root's, and writable by no one else unless
sticky). The compiled kernels (kernels/library.py) and the stand-in CUDA_HOME for MindSpore's GPU plugin
(gpu.py) live there."""
import os
import stat
from pathlib import Path

from .files import others_may_write


def cache_dir():
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dcgan_ms"
    return Path(os.environ.get("DCGAN_MS_CACHE") or default)


def make_cache():
    """The cache folder, made private (0700) where it is missing, parents as the umask makes them."""
    folder = cache_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def untrusted(path, *, plain_file=False):
    """Why ``path`` may not be loaded from, or None: another user owns it, or group or others can write
    it; with ``plain_file``, also a link or anything but a file."""
    try:
        info = os.lstat(path) if plain_file else os.stat(path)
    except OSError as e:
        return f"cannot read it ({e.strerror})"
    return untrusted_info(info, plain_file=plain_file)


def untrusted_info(info, *, plain_file=False):
    """``untrusted`` for an os.stat result (of an open descriptor, say)."""
    if plain_file and not stat.S_ISREG(info.st_mode):
        return "it is not a plain file"
    if info.st_uid != os.geteuid():
        return f"user {info.st_uid} owns it, not you ({os.geteuid()})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"group or others may write it (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def untrusted_folder(folder):
    """``untrusted(folder)``, then every folder above it, as written and as its links resolve: each must
    be this user's or root's and writable by no other account unless sticky (as /tmp is), or another
    account could rename the folder away and put one of its own in its place."""
    why = untrusted(folder)
    if why:
        return why
    above = {*Path(os.path.abspath(folder)).parents, *Path(os.path.realpath(folder)).parents}
    for parent in sorted(above, key=lambda p: len(p.parts), reverse=True):
        try:
            info = os.stat(parent)
        except OSError as e:
            return f"cannot read {parent} above it ({e.strerror})"
        if info.st_uid not in (0, os.geteuid()):
            return f"{parent} above it is user {info.st_uid}'s"
        if others_may_write(info):
            return f"other accounts may write {parent} above it (mode {stat.S_IMODE(info.st_mode):o}, not sticky)"
    return None
