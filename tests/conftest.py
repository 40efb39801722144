import csv
import os
import pathlib
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # pytest.ini puts it on sys.path (pythonpath)
# The suite's working folder: what MindSpore or a command writes into the current folder lands here, not in
# the checkout (which may be read-only: CI tests a copy its account cannot write); its own kernel cache,
# not the user's ~/.cache; subprocesses find the package through PYTHONPATH, as from any folder.
WORK = tempfile.mkdtemp(prefix="dcgan_ms-tests-")
os.environ["DCGAN_MS_CACHE"] = os.path.join(WORK, "kernel-cache")
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))


def pytest_configure(config):
    os.chdir(WORK)  # here, once pytest has found the tests (testpaths are read from the folder it started in)


def pytest_unconfigure(config):
    shutil.rmtree(WORK, ignore_errors=True)

from dcgan_ms.data import SAMPLE_DIR, TrainingData  # noqa: E402
from dcgan_ms.loop import Callback  # noqa: E402
from dcgan_ms.noise import StepNoise  # noqa: E402
from dcgan_ms.runtime import ONEDNN_LIMITS  # noqa: E402


def pytest_sessionstart(session):
    """oneDNN reads its dispatch limit once per process, at its first primitive. Building a model
    with MindSpore's convolutions sets ONEDNN_MAX_CPU_ISA on AVX-512 CPUs (runtime.limit_onednn_to_avx2);
    start oneDNN here, as a user's process starts it, so that which test builds one first cannot
    change how this process computes."""
    import mindspore as ms
    import numpy as np
    from mindspore import nn
    from dcgan_ms.runtime import set_device
    set_device("CPU")
    nn.Conv2d(1, 1, 2)(ms.Tensor(np.zeros((1, 1, 4, 4), np.float32))).asnumpy()


@pytest.fixture(autouse=True)
def onednn_limit_stays_in_its_test():
    """... and the limit a test sets does not reach the processes later tests start."""
    before = {name: os.environ.get(name) for name in ONEDNN_LIMITS}
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def run_cli(*args, env=None, timeout=600, cwd=WORK):
    """Run ``python -m <args>`` from ``cwd`` (the suite's working folder), as a user would; return the
    CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def readme_commands(name):
    """The lines of a README's shell code blocks, without their trailing comments."""
    text = open(os.path.join(REPO, name), encoding="utf-8").read()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    return [re.sub(r"\s+#.*$", "", line).rstrip() for block in blocks for line in block.splitlines() if line.strip()]


def logged_steps(out, rank):
    """The steps rank ``rank`` of a data-parallel run in ``out`` logged (its log_rank<N>.csv)."""
    path = out / f"log_rank{rank}.csv"
    if not path.exists():
        return []
    with open(path) as f:
        return [int(row["step"]) for row in csv.DictReader(f) if row.get("img_per_s")]


def grid_tiles(picture, size=64, padding=2):
    """The images of a grid dcgan_ms drew (plots.image_grid: ``size`` px images, ``padding`` px apart), as a
    uint8 array (N, size, size, 3), row by row; ``picture`` is a path or a PIL image."""
    image = np.asarray(picture if isinstance(picture, Image.Image) else Image.open(picture).convert("RGB"))
    rows, cols = ((n - padding) // (size + padding) for n in image.shape[:2])
    assert (rows * (size + padding) + padding, cols * (size + padding) + padding) == image.shape[:2], image.shape
    step = size + padding
    return np.stack([image[padding + r * step:padding + r * step + size, padding + c * step:padding + c * step + size]
                     for r in range(rows) for c in range(cols)])


def assert_drawn_images(tiles):
    """Each tile is a picture, not a flat fill (a blank or NaN-black image), and no two are the same."""
    flat = tiles.reshape(len(tiles), -1).astype(np.float32)
    assert (flat.std(axis=1) > 2).all(), f"flat tiles: {np.flatnonzero(flat.std(axis=1) <= 2).tolist()}"
    assert len({tile.tobytes() for tile in tiles}) == len(tiles), "some tiles are the same image"


def assert_drawn_plot(path):
    """A matplotlib figure with something on it: between 1% and 60% of its pixels not white."""
    image = np.asarray(Image.open(path).convert("RGB"))
    inked = (image.min(axis=2) < 200).mean()
    assert 0.01 < inked < 0.6, f"{path}: {inked:.1%} of the pixels inked"


def free_port():
    """A local TCP port nobody listens on, for msrun's scheduler. It is taken from below the kernel's
    ephemeral range (net.ipv4.ip_local_port_range), so no socket the system numbers itself (every outgoing
    connection, every bind to port 0) can take it between this check and msrun's bind; within the
    suite, each call gives another port."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_start = int(f.read().split()[0])
    candidates = list(range(max(1024, ephemeral_start - 8000), ephemeral_start))
    random.Random(os.getpid()).shuffle(candidates)
    for port in candidates:
        if port in _ports_given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_given.add(port)
        return port
    raise RuntimeError(f"no free port below {ephemeral_start}")


_ports_given = set()


def copy_sample_images(folder, count, first=0):
    """``folder`` (made if missing) with ``count`` of the shipped sample's images, ``first``.jpg onwards,
    under their own names; returns the folder as a Path."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(first, first + count):
        shutil.copy(os.path.join(SAMPLE_DIR, f"{i}.jpg"), folder / f"{i}.jpg")
    return folder


@pytest.fixture(scope="session")
def flat_images(tmp_path_factory):
    """A flat folder of 24 sample images (the real set's layout)."""
    return str(copy_sample_images(tmp_path_factory.mktemp("flat") / "faces", 24))


@pytest.fixture(scope="session")
def nested_images(tmp_path_factory):
    """A folder with two subfolders of 10 images each (the ImageFolderDataset layout)."""
    root = tmp_path_factory.mktemp("nested")
    for k, sub in enumerate(("a", "b")):
        (root / sub).mkdir()
        for i in range(10):
            shutil.copy(os.path.join(SAMPLE_DIR, f"{10 * k + i}.jpg"), root / sub / f"{i}.jpg")
    return str(root)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, flat_images):
    """A real 2-step training run through the command line, on a tiny model."""
    out = str(tmp_path_factory.mktemp("run") / "tiny")
    proc = run_cli("dcgan_ms.train", "--data_root", flat_images, "--batch_size", "8", "--ngf", "8", "--ndf", "8",
                   "--nz", "16", "--max_steps", "2", "--epochs", "5", "--swd_every", "1", "--swd_num", "16",
                   "--output_dir", out, "--no_progress")
    assert proc.returncode == 0, proc.stderr
    return out, proc


# The training loop with a stand-in step (test_loop.py, test_agreement.py).
class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_train_begin(self, position):
        self.events.append(("begin", position.step))

    def on_step_end(self, position, losses, real_imgs):
        self.events.append(("step", position.step, position.epoch, position.step_in_epoch, tuple(real_imgs.shape)))

    def on_epoch_end(self, position):
        self.events.append(("epoch", position.step, position.epoch))

    def on_train_end(self, position, stop):
        self.events.append(("end", position.step, stop.reason.words if stop else None))


class FakeStep:
    """Stands in for make_train_step's step: records z, returns losses (non-finite from step ``bad_at``)."""

    def __init__(self, bad_at=None):
        self.z, self.noise, self.bad_at = [], [], bad_at

    def __call__(self, real_imgs, z, *noise):
        self.z.append(z.asnumpy())
        self.noise.append([n.asnumpy() for n in noise])
        bad = self.bad_at is not None and len(self.z) >= self.bad_at
        return (float("nan") if bad else 0.7, 0.6, 0.5, 0.4)


@pytest.fixture(scope="module")
def dataset(flat_images):
    return TrainingData(flat_images, batch_size=8, num_parallel_workers=1)  # 24 images: 3 steps an epoch


def noise(seed=1, **options):
    return StepNoise(nz=4, seed=seed, **options)
