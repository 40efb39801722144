"""Files written whole and owned as the user's other files: fsync, rename, fsync of the folder.

``finish_file`` gives a file written under a temporary name the mode the user's umask gives new files
(MindSpore leaves what it writes read-only, 0400), puts it on disk and renames it into place, so that a
power cut leaves either the old file or the new one. ``why_not_written`` turns the OSError of a failed
write into its cause in words (permission, disk full, read-only file system), never a guess.
``written_whole`` wraps a write (a picture, a page) in both.
"""
import contextlib
import errno
import os

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


def finish_file(tmp, path, mode=None):
    """Give ``tmp`` the user's file mode (or ``mode``), put it on disk, rename it to ``path`` and put the
    folder's new entry on disk too."""
    os.chmod(tmp, user_file_mode() if mode is None else mode)
    fsync_path(tmp)
    os.replace(tmp, path)
    fsync_path(os.path.dirname(os.path.abspath(path)))


def remove_quietly(*paths):
    """Remove each of ``paths`` that exists (what a failed write left behind)."""
    for path in paths:
        try:
            os.remove(path)
        except OSError:  # gone already, or the folder refuses: nothing more to do here
            pass


CAUSES = {
    errno.EACCES: "permission denied: choose a folder you can write",
    errno.EPERM: "permission denied: choose a folder you can write",
    errno.ENOSPC: "the disk is full: free some space",
    errno.EDQUOT: "the disk quota is used up: free some space",
    errno.EROFS: "the file system is read-only: choose a folder on a writable disk",
    errno.EFBIG: "the file is larger than this process may write (ulimit -f)",
}


def why_not_written(error):
    """The cause of a failed write, in words with what to do: from the OSError's errno where it has one,
    else its own message."""
    if isinstance(error, OSError) and error.errno in CAUSES:
        return CAUSES[error.errno]
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


@contextlib.contextmanager
def written_whole(path):
    """Write ``path`` whole or not at all: yields a temporary path beside it (same extension, for writers
    that choose the format by it), then ``finish_file``s it into place. A write that fails (a full disk,
    no permission) removes the temporary file and raises UserError naming ``path`` and the cause."""
    folder, name = os.path.split(os.path.abspath(path))
    stem, extension = os.path.splitext(name)
    tmp = os.path.join(folder, f".{stem}.tmp-{os.getpid()}{extension}")
    try:
        yield tmp
        finish_file(tmp, path)
    except OSError as e:
        remove_quietly(tmp)
        raise UserError(f"could not write {path}: {why_not_written(e)}") from None
