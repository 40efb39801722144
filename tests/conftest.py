import csv
import os
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
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

from dcgan_ms.data import SAMPLE_DIR  # noqa: E402
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


def logged_steps(out, rank):
    """The steps rank ``rank`` of a data-parallel run in ``out`` logged (its log_rank<N>.csv)."""
    path = out / f"log_rank{rank}.csv"
    if not path.exists():
        return []
    with open(path) as f:
        return [int(row["step"]) for row in csv.DictReader(f) if row.get("img_per_s")]


def free_port():
    """A local TCP port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def flat_images(tmp_path_factory):
    """A flat folder of 24 sample images (the real set's layout)."""
    root = tmp_path_factory.mktemp("flat") / "faces"
    root.mkdir()
    for i in range(24):
        shutil.copy(os.path.join(SAMPLE_DIR, f"{i}.jpg"), root / f"{i}.jpg")
    return str(root)


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
