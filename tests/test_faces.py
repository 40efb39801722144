"""The faces download and unpack (dcgan_ms/data/faces.py) on archives and servers made here: whole ones,
broken, hostile and stalled ones. Nothing half-done is taken for the data set."""
import http.server
import os
import re
import struct
import threading
import time
import zipfile

import pytest

from conftest import free_port, run_cli
from dcgan_ms.data import faces
from dcgan_ms.data.faces import MARKER, prepare_faces
from dcgan_ms.errors import UserError


def faces_zip(path, flat_images, count=8, compression=zipfile.ZIP_STORED):
    """An archive laid out as the real one (faces/N.jpg) holding ``count`` sample images."""
    with zipfile.ZipFile(path, "w", compression) as z:
        for name in sorted(os.listdir(flat_images))[:count]:
            z.write(os.path.join(flat_images, name), f"faces/{name}")
    return path


def member_data_offset(path, index):
    """Where member ``index``'s data starts in the archive (after its local header)."""
    with zipfile.ZipFile(path) as z:
        info = z.infolist()[index]
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", f.read(4))
    return info.header_offset + 30 + name_length + extra_length


def patch_headers(path, field_offset, value):
    """Set the 2-byte field ``field_offset`` bytes into every member's local header (and the same field,
    two bytes further, in its central directory entry) to ``value``."""
    data = bytearray(open(path, "rb").read())
    with zipfile.ZipFile(path) as z:
        locals_, central = [info.header_offset for info in z.infolist()], z.start_dir
    for offset in locals_:
        struct.pack_into("<H", data, offset + field_offset, value)
    for _ in locals_:  # the central directory's entries, one after another
        struct.pack_into("<H", data, central + field_offset + 2, value)
        central += 46 + sum(struct.unpack_from("<HHH", data, central + 28))
    open(path, "wb").write(bytes(data))


@pytest.mark.slow
def test_an_archive_put_by_hand_is_unpacked_once_and_marked_complete(tmp_path, flat_images):
    root = tmp_path / "faces"
    root.mkdir()
    faces_zip(root / "faces.zip", flat_images)
    proc = run_cli("dcgan_ms.train", "--dataset", "faces", "--data_root", str(root), "--batch_size", "4",
                   "--ngf", "4", "--ndf", "4", "--max_steps", "1", "--output_dir", str(tmp_path / "run"),
                   "--no_progress")
    assert proc.returncode == 0, proc.stderr
    assert len(os.listdir(root / "faces")) == 8 and (root / MARKER).is_file()
    assert sorted(os.listdir(root)) == [MARKER, "faces", "faces.zip"]  # no temporary folder left
    (root / "faces" / "0.jpg").unlink()
    assert prepare_faces(str(root)) == str(root)  # marked complete: not unpacked again
    assert len(os.listdir(root / "faces")) == 7


def test_an_archive_that_breaks_partway_leaves_nothing_taken_for_the_set(tmp_path, flat_images):
    """A CRC error in the 6th member: before, 5 images stayed in data/faces and the next run trained on them."""
    root = tmp_path / "faces"
    root.mkdir()
    archive = faces_zip(root / "faces.zip", flat_images)
    data = bytearray(archive.read_bytes())
    data[member_data_offset(archive, 5) + 100] ^= 0xFF
    archive.write_bytes(bytes(data))
    for _ in range(2):  # and again: nothing of the first attempt is taken as the data set
        with pytest.raises(UserError, match=r"faces\.zip is incomplete or corrupt \(Bad CRC-32 for file 'faces/.*'\)"):
            prepare_faces(str(root))
        assert os.listdir(root) == ["faces.zip"]


def test_images_without_the_marker_or_the_archive_are_an_unpack_that_did_not_finish(tmp_path, flat_images):
    root = tmp_path / "faces"
    (root / "faces").mkdir(parents=True)
    for name in sorted(os.listdir(flat_images))[:5]:  # what an earlier version left when unpacking broke
        os.link(os.path.join(flat_images, name), root / "faces" / name)
    with pytest.raises(UserError, match=rf"^{re.escape(str(root))} holds 5 images of the 70,171 faces and no "
                                        r"faces\.zip: an unpack that did not finish\. Delete"):
        prepare_faces(str(root))


@pytest.mark.parametrize("field, value, says", [
    (6, 0x0001, r"cannot be unpacked \(File .* is encrypted"),  # the general purpose flag: encrypted
    (8, 99, r"cannot be unpacked \(That compression method is not supported\)"),  # method 99 (AES)
], ids=["encrypted", "unknown-compression"])
def test_an_archive_zipfile_cannot_unpack_is_named_in_one_line(tmp_path, flat_images, field, value, says):
    root = tmp_path / "faces"
    root.mkdir()
    patch_headers(faces_zip(root / "faces.zip", flat_images), field, value)
    with pytest.raises(UserError, match=rf"faces\.zip {says}.*: it is not the tutorial's faces\.zip"):
        prepare_faces(str(root))
    assert os.listdir(root) == ["faces.zip"]


def test_an_archive_that_would_unpack_past_the_bound_is_refused_before_unpacking(tmp_path, monkeypatch, flat_images):
    root = tmp_path / "faces"
    root.mkdir()
    with zipfile.ZipFile(root / "faces.zip", "w", zipfile.ZIP_DEFLATED) as z:  # 64 MiB of zeros in about 64 KB
        z.writestr("faces/0.jpg", bytes(64 << 20))
    assert os.path.getsize(root / "faces.zip") < 100_000
    with pytest.raises(UserError, match=r"would unpack to 1 files and 67,108,864 bytes, more than faces\.zip ever "
                                        r"holds .*4 per byte of archive\): it is not faces\.zip"):
        prepare_faces(str(root))
    assert os.listdir(root) == ["faces.zip"]
    faces_zip(root / "faces.zip", flat_images)  # an honest archive over the count bound
    monkeypatch.setattr(faces, "MAX_MEMBERS", 7)
    with pytest.raises(UserError, match=r"would unpack to 8 files"):
        prepare_faces(str(root))


class Server:
    """An HTTP server on 127.0.0.1 serving ``body`` at any path, in a thread; with ``stall_after``, each
    response stops sending after that many bytes (for at most ``stall_seconds``); with ``redirect``, a
    302 to that address for any path but ``/served.zip``."""

    def __init__(self, body, stall_after=None, stall_seconds=5, redirect=None):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if redirect and self.path != "/served.zip":
                    self.send_response(302)
                    self.send_header("Location", redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body[:stall_after] if stall_after is not None else body)
                    self.wfile.flush()
                    if stall_after is not None:
                        time.sleep(stall_seconds)
                except OSError:  # the client hung up
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/faces.zip"
        outer.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_download_is_unpacked_and_a_stalled_one_gives_up_keeping_its_part(tmp_path, flat_images, monkeypatch):
    body = faces_zip(tmp_path / "served.zip", flat_images).read_bytes()
    server = Server(body)
    try:
        root = tmp_path / "faces"
        assert prepare_faces(str(root), url=server.url) == str(root)
        assert len(os.listdir(root / "faces")) == 8 and (root / MARKER).is_file()
    finally:
        server.close()
    monkeypatch.setattr(faces, "READ_TIMEOUT", 1.0)
    server = Server(body, stall_after=10_000)  # the package reads 8,192 bytes first, then stalls
    try:
        root = tmp_path / "stalled"
        started = time.monotonic()
        with pytest.raises(UserError, match=r"could not download the anime faces from .* \(timed out\); the ([\d,]+) "
                                            r"bytes received are kept in .*stalled/faces\.zip\.part and the next run") \
                as error:
            prepare_faces(str(root), url=server.url)
        assert time.monotonic() - started < 30
        assert sorted(os.listdir(root)) == ["faces.zip.part"]  # named, and not unpacked
        kept = int(re.search(r"the ([\d,]+) bytes", str(error.value)).group(1).replace(",", ""))
        assert 0 < kept == os.path.getsize(root / "faces.zip.part")
    finally:
        server.close()


def test_a_mirror_must_be_https(tmp_path, monkeypatch):
    monkeypatch.setenv("DCGAN_MS_FACES_URL", "http://mirror.example/faces.zip")
    with pytest.raises(UserError, match=r"^DCGAN_MS_FACES_URL=http://mirror\.example/faces\.zip is not an https "
                                        r"address: give the mirror's https URL"):
        prepare_faces(str(tmp_path / "faces"))
    assert not (tmp_path / "faces").exists()


@pytest.mark.parametrize("redirect", ["http://mirror.example/faces.zip", "ftp://127.0.0.1/faces.zip"])
def test_a_redirect_away_from_https_is_not_followed(tmp_path, flat_images, redirect):
    """The first address passes (the test server on this machine); where it redirects must pass too."""
    server = Server(faces_zip(tmp_path / "served.zip", flat_images).read_bytes(), redirect=redirect)
    try:
        with pytest.raises(UserError, match=re.escape(f"(the server redirected to {redirect}, "
                                                      "which is not https)")):
            prepare_faces(str(tmp_path / "faces"), url=server.url)
    finally:
        server.close()
    assert not os.path.exists(tmp_path / "faces" / "faces.zip")


def test_a_redirect_to_an_accepted_address_is_followed(tmp_path, flat_images):
    server = Server(faces_zip(tmp_path / "served.zip", flat_images).read_bytes(), redirect="/served.zip")
    try:
        assert prepare_faces(str(tmp_path / "faces"), url=server.url) == str(tmp_path / "faces")
    finally:
        server.close()
    assert len(os.listdir(tmp_path / "faces" / "faces")) == 8


def test_the_unpack_merges_into_a_folder_of_the_same_name_and_never_removes_one(tmp_path, flat_images):
    root = tmp_path / "data"
    (root / "faces" / "thesis").mkdir(parents=True)
    (root / "faces" / "thesis" / "chapter1.tex").write_text("mine")
    faces_zip(root / "faces.zip", flat_images)
    prepare_faces(str(root))
    assert (root / "faces" / "thesis" / "chapter1.tex").read_text() == "mine"
    assert len([n for n in os.listdir(root / "faces") if n.endswith(".png") or n.endswith(".jpg")]) == 8
    linked, elsewhere = tmp_path / "linked", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "notes.txt").write_text("mine")
    linked.mkdir()
    (linked / "faces").symlink_to(elsewhere)  # a link where the archive has a folder: not followed
    faces_zip(linked / "faces.zip", flat_images)
    with pytest.raises(UserError, match=re.escape(f"cannot unpack faces.zip: {linked / 'faces'} is in the way (the "
                                                  "archive has a folder there): move it elsewhere")):
        prepare_faces(str(linked))
    assert os.listdir(elsewhere) == ["notes.txt"] and sorted(os.listdir(linked)) == ["faces", "faces.zip"]


def test_offline_download_says_what_to_do(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/faces.zip"  # nobody listens: the connection is refused
    proc = run_cli("dcgan_ms.train", "--dataset", "faces", "--data_root", str(tmp_path / "faces"),
                   "--output_dir", str(tmp_path / "run"), env={"DCGAN_MS_FACES_URL": url})
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: could not download the anime faces from {url}")
    assert f"put it at {tmp_path / 'faces' / 'faces.zip'}" in last and "--dataset sample" in last
    assert "Traceback" not in proc.stderr


def test_partial_faces_zip_is_not_taken_as_complete(tmp_path, flat_images):
    import zipfile
    root = tmp_path / "faces"
    root.mkdir()
    with zipfile.ZipFile(tmp_path / "full.zip", "w") as z:
        for name in sorted(os.listdir(flat_images))[:8]:
            z.write(os.path.join(flat_images, name), f"faces/{name}")
    data = (tmp_path / "full.zip").read_bytes()
    (root / "faces.zip").write_bytes(data[: len(data) // 2])  # an interrupted download
    proc = run_cli("dcgan_ms.train", "--dataset", "faces", "--data_root", str(root), "--output_dir",
                   str(tmp_path / "run"))
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {root / 'faces.zip'} is incomplete or corrupt") and "download it again" in last
    assert "Traceback" not in proc.stderr


def test_faces_where_the_user_cannot_write_say_where_else_they_may_go(tmp_path):
    """A checkout the user cannot write (a teacher's, read-only) has no room for data/faces: the error says
    to pass --data_root, for the download and for a faces.zip put there by hand."""
    import zipfile
    from dcgan_ms.data import prepare_faces
    from dcgan_ms.errors import UserError
    blocker = tmp_path / "data"
    blocker.write_text("a file where the folder would go: as unwritable for root as for anyone")
    where_else = r"pass --data_root DIR, a folder of yours, with --dataset faces, to download faces\.zip there"
    with pytest.raises(UserError, match=rf"^cannot write the faces into {re.escape(str(blocker))}/faces \(.*\): "
                                        rf"{where_else}"):
        prepare_faces(str(blocker / "faces"), url="https://127.0.0.1:9/faces.zip")
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders: the permission cases need an ordinary user (CI is one)")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    with pytest.raises(UserError, match=rf"^cannot write the faces into .*locked \(permission denied: .*\): {where_else}"):
        prepare_faces(str(locked), url="https://127.0.0.1:9/faces.zip")
    locked.chmod(0o700)
    with zipfile.ZipFile(locked / "faces.zip", "w") as z:  # put there by hand, by someone who could
        z.writestr("faces/0.jpg", b"")
    locked.chmod(0o500)
    with pytest.raises(UserError, match=rf"^cannot write the faces into .*locked \(permission denied: .*\): {where_else}"):
        prepare_faces(str(locked))
