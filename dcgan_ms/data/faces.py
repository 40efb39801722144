"""Where the data comes from: the tutorial's anime faces (downloaded) or the shipped sample.

faces.zip (70,171 anime faces, 96x96 JPEG, about 250 MB) is fetched with the ``download``
package from the tutorial's URL and unpacked into ``data/faces`` (giving ``data/faces/faces/*.jpg``).
Offline, download it by hand and put it at ``data/faces/faces.zip``: it is unpacked on the next run. In a
checkout the user cannot write, ``--data_root`` names another folder for both.
The environment variable DCGAN_MS_FACES_URL replaces the URL (a mirror, or a test server).
"""
import errno
import os
import zipfile

from ..errors import UserError, first_line
from ..files import why_not_written
from .dataset import find_images

FACES_URL = "https://download.mindspore.cn/dataset/Faces/faces.zip"
REPO_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "data")
FACES_DIR = os.path.join(REPO_DATA, "faces")
SAMPLE_DIR = os.path.join(REPO_DATA, "sample", "faces")


def _has_images(root):
    try:
        find_images(root)
        return True
    except UserError:
        return False


def _unzip(zip_path, root):
    try:
        with zipfile.ZipFile(zip_path) as z:
            bad = z.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"bad CRC for {bad}")
            z.extractall(root)
    except zipfile.BadZipFile as e:
        raise UserError(f"{zip_path} is incomplete or corrupt ({e}), perhaps a partial download: "
                        "delete it and download it again") from None
    except OSError as e:
        raise _not_writable(root, e) from None


def _not_writable(root, error):
    """The UserError for a faces folder this user cannot write (a shared or read-only checkout)."""
    return UserError(f"cannot write the faces into {root} ({why_not_written(error)}): pass --data_root DIR, a "
                     "folder of yours, with --dataset faces, to download faces.zip there (or put it there by hand)")


def prepare_faces(root=FACES_DIR, url=None):
    """Return ``root`` once it holds the anime faces, downloading and unpacking them if absent."""
    if _has_images(root):
        return root
    zip_path = os.path.join(root, "faces.zip")
    if os.path.isfile(zip_path):  # put there by hand
        _unzip(zip_path, root)
        return root
    url = url or os.environ.get("DCGAN_MS_FACES_URL", FACES_URL)
    try:
        os.makedirs(root, exist_ok=True)
        if not os.access(root, os.W_OK):
            raise PermissionError(errno.EACCES, "Permission denied", root)
    except OSError as e:
        raise _not_writable(root, e) from None
    try:
        from download import download
        download(url, root, kind="zip", replace=True, timeout=30.0)
    except Exception as e:  # offline, refused, not found, interrupted, disk full...
        raise UserError(f"could not download the anime faces from {url} ({first_line(e)}). Download faces.zip "
                        f"by hand and put it at {zip_path} (it is unpacked on the next run), "
                        "or train on the shipped sample with --dataset sample") from None
    if not _has_images(root):
        raise UserError(f"downloaded {url} into {root} but found no images there: delete {root} and retry")
    return root
