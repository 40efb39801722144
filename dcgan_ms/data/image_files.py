"""The temporary folder MindSpore's reader reads a run's images from (``ImageFiles``).

``ImageFolderDataset`` reads one class per subfolder and never deeper, so the chosen images are laid
out as links in one folder, named by their index; an image with transparency becomes a PNG composited
over the background. Each folder holds a lock while its process lives, so the folders of killed runs
are recognised and removed by the next run of the same user.
"""
import fcntl
import os
import shutil
import stat
import tempfile
import time
import warnings
import weakref

from PIL import Image

from ..errors import UserError
from ..pixels import parse_colour

MAY_HAVE_ALPHA = (".png", ".bmp", ".tif", ".tiff")
BACKGROUND = "white"


# A training image is shrunk to 64x64: no honest one needs more pixels than this, and a header that claims
# more (a "decompression bomb": a small file that decodes to gigabytes) is refused before anything decodes it.
MAX_PIXELS = 40_000_000
NOT_DECODABLE = "(truncated, empty or not an image): remove or replace that file and run again"


def needs_compositing(path):
    """Whether the image at ``path`` has transparent pixels to composite, from its header alone.
    UserError naming it when the header claims more than MAX_PIXELS pixels, or when it is a JPEG whose
    header Pillow cannot read; any other unreadable file is left for MindSpore's decoder to name."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                (width, height), mode, info = im.size, im.mode, im.info
    except Image.DecompressionBombError:
        width = height = None
    except Exception:  # any header Pillow cannot read: broken
        if starts_as_jpeg(path):  # a JPEG cut inside its header kills MindSpore's decoder (SIGFPE)
            raise UserError(f"cannot decode image {path} {NOT_DECODABLE}") from None
        return False  # anything else: MindSpore's decoder names it, also while training (see dataset.py)
    if width is None or width * height > MAX_PIXELS:
        size = f"{width}x{height} pixels" if width else "more pixels than Pillow will decode"
        raise UserError(f"image {path} claims {size}, more than the {MAX_PIXELS:,} a training image may have "
                        "(they are shrunk to 64x64): remove it, or shrink it, and run again")
    return path.lower().endswith(MAY_HAVE_ALPHA) and (mode in ("RGBA", "LA", "PA", "RGBa", "La") or
                                                       "transparency" in info)


def starts_as_jpeg(path):
    try:
        with open(path, "rb") as f:
            return f.read(3) == b"\xff\xd8\xff"
    except OSError:  # unreadable: MindSpore's reader names it
        return False


def composited(path, background):
    """The image at ``path`` as RGB, its transparent pixels composited over ``background`` (r, g, b)."""
    with Image.open(path) as im:
        rgba = im.convert("RGBA")
    flat = Image.new("RGB", rgba.size, background)
    flat.paste(rgba, mask=rgba.getchannel("A"))
    return flat


def link(target, name):
    """A hard link (read as fast as the file itself), or a symbolic one where a hard link cannot be
    made (another file system, or a file the user does not own under protected_hardlinks)."""
    try:
        os.link(target, name)
    except OSError:
        os.symlink(target, name)


class ImageFiles:
    """The chosen images laid out for ``ImageFolderDataset``: a temporary folder ``images/`` holding one
    link per image (``link``), named by its index in ``paths`` (so MindSpore's C++ reader and decoder do the work,
    in its worker threads, and its error naming a file can be mapped back), or, for an image with
    transparency, a PNG copy composited over ``background``. The folder is removed with this object."""

    def __init__(self, paths, indices, background=BACKGROUND):
        self.paths, self.indices, background = paths, list(indices), parse_colour(background)
        remove_abandoned_folders()
        self.root = tempfile.mkdtemp(prefix=FOLDER_PREFIX)
        lock = os.open(os.path.join(self.root, LOCK_NAME), os.O_WRONLY | os.O_CREAT, 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX)  # held while this process lives: the folder is in use
        self._cleanup = weakref.finalize(self, remove_folder, self.root, lock)
        folder = os.path.join(self.root, "images")
        os.mkdir(folder)
        for i in indices:
            ext = os.path.splitext(paths[i])[1].lower()
            if needs_compositing(paths[i]):
                try:
                    flat = composited(paths[i], background)
                except Exception:  # Pillow raises OSError, ValueError, SyntaxError... on broken files
                    raise UserError(f"cannot decode image {paths[i]} {NOT_DECODABLE}") from None
                flat.save(os.path.join(folder, f"{i:08d}.png"), compress_level=1)
            else:
                link(os.path.realpath(paths[i]), os.path.join(folder, f"{i:08d}{ext}"))

    def original(self, path):
        """The image file behind a path in the folder (as MindSpore names it in an error)."""
        name = os.path.splitext(os.path.basename(path))[0]
        return self.paths[int(name)] if path.startswith(self.root) and name.isdigit() else path


FOLDER_PREFIX = "dcgan_ms-images-"  # ImageFiles' folders, in the temporary folder ($TMPDIR or /tmp)
LOCK_NAME = ".in-use"


def remove_folder(root, lock):
    shutil.rmtree(root, ignore_errors=True)
    os.close(lock)


def remove_abandoned_folders(temp=None):
    """Remove the ImageFiles folders that killed runs of this user left behind: those whose lock no live
    process holds (a lock is released when its process dies, however it dies). Folders without a lock
    are left for an hour, in case their process is between creating the folder and locking it."""
    temp = temp or tempfile.gettempdir()
    try:
        names = [n for n in os.listdir(temp) if n.startswith(FOLDER_PREFIX)]
    except OSError:
        return
    for name in names:
        folder = os.path.join(temp, name)
        try:
            info = os.lstat(folder)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            continue
        try:
            lock = os.open(os.path.join(folder, LOCK_NAME), os.O_RDONLY)
        except FileNotFoundError:
            if time.time() - info.st_mtime > 3600:
                shutil.rmtree(folder, ignore_errors=True)
            continue
        except OSError:
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: a live run uses it
            continue
        finally:
            os.close(lock)
        shutil.rmtree(folder, ignore_errors=True)
