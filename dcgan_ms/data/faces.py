"""Where the data comes from: the tutorial's anime faces (downloaded) or the shipped sample.

faces.zip (70,171 anime faces, 96x96 JPEG, about 250 MB) is fetched with the ``download`` package from
the tutorial's URL into ``data/faces/faces.zip`` (in a checkout; an installed copy uses
``~/.local/share/dcgan_ms/faces`` and finds the sample inside the package): the transfer goes to
faces.zip.part (kept if it breaks, and continued by the next run), every read has a timeout, and a
mirror named by DCGAN_MS_FACES_URL must be https, as must every address it redirects to. The archive is
unpacked into a temporary folder beside its place and moved into place only when every member is out
whole (files only: folders of the same name are merged, never removed); then a marker file says the
set is complete, so an unpack that stopped is never taken for the data set. Offline, put
faces.zip there by hand (``--data_root`` names another folder, e.g. in a checkout the user cannot write).
"""
import contextlib
import errno
import json
import os
import shutil
import socket
import stat
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile

from ..errors import UserError, first_line
from ..files import why_not_written, written_whole
from .dataset import find_images

FACES_URL = "https://download.mindspore.cn/dataset/Faces/faces.zip"
URL_VARIABLE = "DCGAN_MS_FACES_URL"
PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DATA = os.path.join(os.path.dirname(PACKAGE), "data")  # in a checkout: data/ beside dcgan_ms/
if os.path.isdir(os.path.join(REPO_DATA, "sample")):  # a checkout: the README's data/faces and data/sample
    FACES_DIR, SAMPLE_DIR = os.path.join(REPO_DATA, "faces"), os.path.join(REPO_DATA, "sample", "faces")
else:  # installed (pip install .): the sample inside the package, the faces in the user's data folder
    SAMPLE_DIR = os.path.join(PACKAGE, "sample", "faces")
    FACES_DIR = os.path.join(os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                                             "share"), "dcgan_ms", "faces")
FACES_IMAGES = 70_171
MARKER = ".unpacked"  # written last, in the faces folder: the unpack finished (JSON: the images and bytes)
# The real archive: 70,171 JPEGs in about 250 MB, which zip cannot shrink further. Twice the members, four
# times the bytes and four bytes unpacked per byte of archive are room for any honest copy; past that an
# archive (a "zip bomb": 68 KB of zip can unpack to 64 MiB of zeros) is refused before anything is unpacked.
MAX_MEMBERS = 2 * FACES_IMAGES
MAX_UNPACKED_BYTES = 1 << 30
MAX_RATIO = 4
READ_TIMEOUT = 60.0  # seconds without a byte before a download gives up
LOOPBACK = ("localhost", "127.0.0.1", "::1")


def prepare_faces(root=FACES_DIR, url=None):
    """Return ``root`` once it holds the whole set of anime faces, unpacking faces.zip found there or
    downloading it first."""
    zip_path = os.path.join(root, "faces.zip")
    if os.path.isfile(os.path.join(root, MARKER)):
        return root
    if os.path.isfile(zip_path):  # downloaded, or put there by hand
        unpack(zip_path, root)
        return root
    images = _count_images(root)
    if images >= FACES_IMAGES:  # unpacked by hand (or by a version without the marker)
        return root
    if images:
        raise UserError(f"{root} holds {images:,} images of the {FACES_IMAGES:,} faces and no faces.zip: an unpack "
                        f"that did not finish. Delete {root} and run again (or pass that folder as --data_root alone "
                        "to train on what it holds)")
    download_faces(url or os.environ.get(URL_VARIABLE) or FACES_URL, zip_path)
    unpack(zip_path, root)
    return root


def _count_images(root):
    try:
        return len(find_images(root))
    except UserError:  # missing or empty
        return 0


def download_faces(url, zip_path):
    """faces.zip from ``url`` into ``zip_path`` with the ``download`` package, every read within
    READ_TIMEOUT; what arrived of a broken transfer stays in faces.zip.part, which the next call continues."""
    if not secure(url):
        raise UserError(f"{URL_VARIABLE}={url} is not an https address: give the mirror's https URL (plain http "
                        "is accepted only from this machine)")
    root = os.path.dirname(zip_path)
    try:
        os.makedirs(root, exist_ok=True)
        if not os.access(root, os.W_OK):
            raise PermissionError(errno.EACCES, "Permission denied", root)
    except OSError as e:
        raise _not_writable(root, e) from None
    try:
        from download import download
        with reads_time_out(READ_TIMEOUT), https_redirects_only():  # the package times out its first request only
            download(url, zip_path, kind="file", replace=True, timeout=READ_TIMEOUT)
    except Exception as e:  # offline, refused, not found, stalled, interrupted, disk full...
        part = f"; the {os.path.getsize(zip_path + '.part'):,} bytes received are kept in {zip_path}.part and the " \
               "next run continues them" if os.path.isfile(zip_path + ".part") else ""
        raise UserError(f"could not download the anime faces from {url} ({_cause(e)}){part}. Or download "
                        f"faces.zip by hand and put it at {zip_path} (it is unpacked on the next run), "
                        "or train on the shipped sample with --dataset sample") from None


def secure(url):
    """Whether faces.zip may be fetched from ``url``: https, or plain http from this machine (a test server)."""
    parsed = urllib.parse.urlparse(url)
    return parsed.scheme == "https" or parsed.scheme == "http" and parsed.hostname in LOOPBACK


class HttpsRedirectsOnly(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to an address ``secure`` accepts: a mirror's https must not end in plain http."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not secure(urllib.parse.urljoin(req.full_url, newurl)):
            raise urllib.error.URLError(f"the server redirected to {newurl}, which is not https")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


@contextlib.contextmanager
def https_redirects_only():
    """urllib's ``urlopen`` (which the ``download`` package calls) follows only ``secure`` redirects inside."""
    before = getattr(urllib.request, "_opener", None)  # what install_opener set before, None for urllib's default
    urllib.request.install_opener(urllib.request.build_opener(HttpsRedirectsOnly))
    try:
        yield
    finally:
        urllib.request.install_opener(before)


def _cause(error):
    """What went wrong in a download: the ``download`` package wraps it as "Error while fetching file ...
    Dataset fetching aborted." followed by an "Error: <cause>" line; urllib's own are "<urlopen error cause>"."""
    lines = str(error).strip().splitlines()
    cause = lines[-1][len("Error: "):] if lines and lines[-1].startswith("Error: ") else first_line(error)
    if cause.startswith("<urlopen error ") and cause.endswith(">"):
        cause = cause[len("<urlopen error "):-1]
    return cause[:200]


@contextlib.contextmanager
def reads_time_out(seconds):
    """Every socket opened inside gives up after ``seconds`` without data (Python's default timeout)."""
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(before)


def unpack(zip_path, root):
    """Unpack ``zip_path`` into ``root``: refused when it would hold more than MAX_MEMBERS members, or more
    bytes than MAX_UNPACKED_BYTES or MAX_RATIO times its own size; unpacked into a temporary folder in
    ``root`` (every member's CRC checked as it is read), its entries renamed into ``root`` and the marker
    written only once every member is out."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = archive.infolist()
            unpacked = sum(m.file_size for m in members)  # zipfile reads no member past its stated size
            bound = min(MAX_UNPACKED_BYTES, MAX_RATIO * os.path.getsize(zip_path))
            if len(members) > MAX_MEMBERS or unpacked > bound:
                raise UserError(f"{zip_path} would unpack to {len(members):,} files and {unpacked:,} bytes, more "
                                f"than faces.zip ever holds (at most {MAX_MEMBERS:,} files and "
                                f"{MAX_UNPACKED_BYTES:,} bytes, {MAX_RATIO} per byte of archive): it is not "
                                "faces.zip; delete it and download it again")
            work = tempfile.mkdtemp(prefix=".unpacking-", dir=root)
            try:
                archive.extractall(work)
                move_unpacked(work, root)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        with written_whole(os.path.join(root, MARKER)) as tmp, open(tmp, "w") as f:
            json.dump({"images": _count_images(root), "unpacked_bytes": unpacked}, f)
    except zipfile.BadZipFile as e:
        raise UserError(f"{zip_path} is incomplete or corrupt ({e}), perhaps a partial download: "
                        "delete it and download it again") from None
    except (RuntimeError, NotImplementedError) as e:  # an encrypted member; a compression zipfile lacks
        raise UserError(f"{zip_path} cannot be unpacked ({first_line(e)}): it is not the tutorial's faces.zip; "
                        "delete it and download it again") from None
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise _not_writable(root, e) from None
        raise UserError(f"could not unpack {zip_path} into {root} ({why_not_written(e)}); nothing half-unpacked "
                        "is kept: run again") from None


def move_unpacked(work, root):
    """Move what was unpacked into ``work`` into ``root``: each file into place (replacing a file of that
    name, as unpacking again does), each folder merged into a folder of that name. Nothing else in
    ``root`` is removed, and no link is followed: a link or a file where the archive has a folder (or
    anything but a file where it has a file) stops the unpack, named."""
    for folder, _, names in os.walk(work):
        into = os.path.normpath(os.path.join(root, os.path.relpath(folder, work)))
        if into != os.path.normpath(root):
            try:
                os.mkdir(into)
            except FileExistsError:
                _in_the_way(into, stat.S_ISDIR, "a folder")
        for name in names:
            target = os.path.join(into, name)
            if os.path.lexists(target):
                _in_the_way(target, stat.S_ISREG, "a file")
            os.replace(os.path.join(folder, name), target)


def _in_the_way(path, is_kind, kind):
    if not is_kind(os.lstat(path).st_mode):
        raise UserError(f"cannot unpack faces.zip: {path} is in the way (the archive has {kind} there): move it "
                        "elsewhere, or pass another --data_root")


def _not_writable(root, error):
    """The UserError for a faces folder this user cannot write (a shared or read-only checkout)."""
    return UserError(f"cannot write the faces into {root} ({why_not_written(error)}): pass --data_root DIR, a "
                     "folder of yours, with --dataset faces, to download faces.zip there (or put it there by hand)")
