"""pip install . makes an installed copy that works without the checkout: the console commands, the
compiled kernels' sources, the shipped sample, requirements.txt's dependencies and, as the extra "gpu",
requirements-gpu.txt's."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow


def left_out(folder, names):
    """What a copy of the checkout leaves out: git's and a developer's own files, and downloaded data."""
    skipped = {".git", ".venv", "runs", "build", "__pycache__"} | {n for n in names if n.endswith(".egg-info")}
    if os.path.samefile(folder, os.path.join(REPO, "data")):
        skipped |= {"faces", "twemoji"}
    return skipped & set(names)


def listing(folder):
    return sorted(os.path.relpath(os.path.join(d, name), folder) for d, dirs, files in os.walk(folder)
                  for name in dirs + files)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The package pip installs from a read-only copy of the checkout (a classroom's shared one), into
    a folder of its own (offline: no dependency is fetched, the build uses this environment's
    setuptools). The build writes nothing into the checkout (setup.py): checked by its listing, which
    holds for root too, whom read-only folders do not stop."""
    root = tmp_path_factory.mktemp("install")
    shutil.copytree(REPO, root / "src", ignore=left_out)
    before = listing(root / "src")
    subprocess.run(["chmod", "-R", "a-w", str(root / "src")], check=True)
    try:
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                               "--no-index", "--target", str(root / "site"), str(root / "src")], capture_output=True,
                              text=True, timeout=600)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(root / "src")], check=True)  # pytest can remove it
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert listing(root / "src") == before  # no build/, no dcgan_ms.egg-info
    return root / "site"


def run_installed(installed, command, *args, cwd):
    env = {**os.environ, "PYTHONPATH": str(installed)}  # the installed copy, not the checkout
    return subprocess.run([str(installed / "bin" / command), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_the_console_command_trains_on_the_sample_inside_the_installed_package(installed, tmp_path):
    proc = run_installed(installed, "dcgan-train", "--dataset", "sample", "--ngf", "4", "--ndf", "4", "--nz", "8",
                         "--batch_size", "8", "--max_steps", "2", "--output_dir", "run", "--no_progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"training on CPU (graph mode): {installed}/dcgan_ms/sample/faces" in proc.stderr
    assert (tmp_path / "run" / "generator.ckpt").is_file() and (tmp_path / "run" / "report.html").is_file()
    assert "note: using MindSpore's built-in convolutions" not in proc.stderr  # its kernels built from its sources
    proc = run_installed(installed, "dcgan-generate", "--ckpt", "run/generator.ckpt", "--num", "4", "--out", "g.png",
                         cwd=tmp_path)
    assert proc.returncode == 0 and (tmp_path / "g.png").is_file(), proc.stderr[-2000:]


def test_every_command_and_the_launcher_are_installed_with_requirements_txts_dependencies(installed):
    assert sorted(os.listdir(installed / "bin")) == ["dcgan-doctor", "dcgan-evaluate", "dcgan-export", "dcgan-generate",
                                                    "dcgan-report", "dcgan-train", "run_distributed.sh"]
    metadata = next(installed.glob("dcgan_ms-*.dist-info")) / "METADATA"
    requires = [line.split(": ", 1)[1] for line in metadata.read_text().splitlines()
                if line.startswith("Requires-Dist")]
    def listed(name):
        return [line.split("#")[0].strip() for line in open(os.path.join(REPO, name)) if line.split("#")[0].strip()]
    base = [r for r in requires if "extra ==" not in r]
    gpu = [r.split(";")[0].strip() for r in requires if r.replace(" ", "").endswith('extra=="gpu"')]
    assert sorted(base) == sorted(listed("requirements.txt"))  # (setuptools versions differ in the order they write)
    assert sorted(gpu) == sorted(listed("requirements-gpu.txt"))  # pip install ".[gpu]"
    assert len(base) + len(gpu) == len(requires)
