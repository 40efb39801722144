"""Files written whole and owned as the user's other files: the one way the package writes a file.

``written_whole(path)`` yields a path in a private folder made beside ``path`` (``mkdtemp``: 0700, a
new name), where the writer (json, Pillow, matplotlib, MindSpore's checkpoint and export, the
compiler) writes; ``finish_file`` then gives it the mode the user's umask gives new files (MindSpore
leaves what it writes read-only, 0400), puts it on disk and renames it into place, so that a power
cut leaves either the old file or the new one, and the folder goes with whatever else the writer left
there. ``why_not_written`` turns the OSError of a failed write into its cause in words;
``shared_folder`` says why a folder another account could swap things in is no place to write.
"""
import contextlib
import errno
import os
import shutil
import stat
import tempfile

from .errors import UserError


def user_file_mode():
    """The mode a new file of this process gets (0o666 less the umask), read without changing the umask."""
    try:
        with open("/proc/self/status") as f:
            mask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):  # not Linux: read it by setting it back at once
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def fsync_path(path):
    """Put ``path`` (a file or a folder) on disk. A read-only descriptor is enough for fsync on Linux,
    so this works on the read-only files MindSpore writes."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if os.path.isdir(path) else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def finish_file(tmp, path, mode=None, install=os.replace):
    """Give ``tmp`` the user's file mode (or ``mode``) and put it on disk, both through one descriptor
    opened without following links, then rename it to ``path`` (``install(tmp, path)``) and put the
    folder's new entry on disk."""
    fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        os.fchmod(fd, user_file_mode() if mode is None else mode)
        os.fsync(fd)
    finally:
        os.close(fd)
    install(tmp, path)
    fsync_path(os.path.dirname(os.path.abspath(path)))


def _private_group(gid):
    """Whether group ``gid`` is this user's own (named as the user, no other member), as the groups that
    ``useradd`` makes each user are: a folder it may write is still the user's alone (umask 002)."""
    import grp
    import pwd
    try:
        name, group = pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(gid)
    except KeyError:
        return False
    return gid == os.getegid() and group.gr_name == name and set(group.gr_mem) <= {name}


def others_may_write(info):
    """Whether an account other than this user (or root) may add, remove or rename entries of the folder
    ``info`` (an os.stat result) describes: writable by others, or by a shared group, and not sticky."""
    if info.st_mode & stat.S_ISVTX:
        return False
    return bool(info.st_mode & stat.S_IWOTH or info.st_mode & stat.S_IWGRP and not _private_group(info.st_gid))


def shared_folder(folder):
    """Why ``folder`` (which exists) is no place for this user's files, or None: another account owns it,
    or others may add, remove or rename its entries (a planted link would have our writes land elsewhere)."""
    info = os.stat(folder)
    if info.st_uid != os.geteuid():
        return f"user {info.st_uid} owns it, not you ({os.geteuid()})"
    if others_may_write(info):
        return f"other accounts may write it (mode {stat.S_IMODE(info.st_mode):o}, no sticky bit)"
    return None


def open_to_write(path, *, append):
    """``path`` opened for text writing (appending, or from empty) without following a link; made with
    the user's file mode."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if append else os.O_TRUNC)
    return os.fdopen(os.open(path, flags, 0o666), "a" if append else "w", newline="")


CAUSES = {
    errno.EACCES: "permission denied: choose a folder you can write",
    errno.EPERM: "permission denied: choose a folder you can write",
    errno.ENOSPC: "the disk is full: free some space",
    errno.EDQUOT: "the disk quota is used up: free some space",
    errno.EROFS: "the file system is read-only: choose a folder on a writable disk",
    errno.EFBIG: "the file is larger than this process may write (ulimit -f)",
    errno.ELOOP: "it is a symbolic link, which no run makes: remove it",
}


def why_not_written(error):
    """The cause of a failed write, in words with what to do: from the OSError's errno where it has one,
    else its own message."""
    if isinstance(error, OSError) and error.errno in CAUSES:
        return CAUSES[error.errno]
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


@contextlib.contextmanager
def written_whole(path, *, mode=None, what=None, failure=UserError, catch=(OSError,), install=os.replace):
    """Write ``path`` whole or not at all (its folder made if need be): yields the path to write,
    ``path``'s own name in a private folder beside it (for writers that choose the format by the
    extension, or write files of their own beside it), then ``finish_file``s it into place with
    ``mode`` (default: the user's file mode). A write that fails with one of ``catch`` removes the
    folder and raises ``failure`` (UserError) as "could not write WHAT: the cause" (``what``: ``path``).
    ``install(tmp, path)`` puts the file in place (default: os.replace)."""
    folder, name = os.path.split(os.path.abspath(path))
    work = None
    try:
        os.makedirs(folder, exist_ok=True)
        work = tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=folder)
        tmp = os.path.join(work, name)
        yield tmp
        finish_file(tmp, path, mode, install)
    except catch as e:
        raise failure(f"could not write {what or path}: {why_not_written(e)}") from None
    finally:
        if work:
            shutil.rmtree(work, ignore_errors=True)
