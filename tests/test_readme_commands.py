"""Every command line of README.md (README_CN.md has the same ones: test_readme.py), run as written at a
small size: tiny networks and a few steps appended (the last flag wins), from a folder of the test's own
(the README's relative paths land there). A README that drifts from the code fails here.

Commands that cannot run on this machine are still checked as far as they can be: the launcher lines for
Ascend nodes have their training flags parsed. Installing and running the suite are what CI does."""
import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import REPO, free_port, readme_commands, run_cli

pytestmark = pytest.mark.slow

SMALL = ["--ngf", "4", "--ndf", "4", "--nz", "8", "--batch_size", "8"]
NOT_RUN_HERE = {  # command prefixes -> why the test does not run them
    "python3 -m venv": "CI makes the virtual environment and installs requirements.txt (.ci/run)",
    "pip install": "CI installs the requirements (.ci/run)",
    "python -m pytest": "this is the suite",
}


def run_readme_command(line, cwd, resumes):
    """Run one README command in ``cwd`` at a small size; return (CompletedProcess, what it must give)."""
    words = shlex.split(line)
    env_words = [w for w in words if re.match(r"^[A-Z_]+=", w)]
    words = words[len(env_words):]
    if words[:3] == ["python", "-m", "dcgan_ms.train"]:
        flags = words[3:]
        if "--device_target" in flags and flags[flags.index("--device_target") + 1] != "CPU":
            return run_cli("dcgan_ms.train", *flags, cwd=cwd), "device not usable"
        if "--resume" in flags:  # a few more steps each time: the run is resumed, not found complete
            resumes.append(1)
            extra = ["--max_steps", str(3 + len(resumes))]
        else:
            extra = [*SMALL, "--max_steps", "3"]
        return run_cli("dcgan_ms.train", *flags, *extra, cwd=cwd), "ok"
    if words[:3] == ["python", "-m", "dcgan_ms.evaluate"]:
        return run_cli("dcgan_ms.evaluate", *words[3:], "--num", "32", cwd=cwd), "ok"
    if words[:2] == ["python", "-m"] and words[2] in ("dcgan_ms.generate", "dcgan_ms.export", "dcgan_ms.doctor",
                                                            "dcgan_ms.report"):
        return run_cli(*words[2:], cwd=cwd), "ok"
    if words[0] == "scripts/run_distributed.sh":
        if env_words or "Ascend" in words:  # other nodes' addresses, Ascend devices: the flags must parse
            code = "import sys; from dcgan_ms.train import parse_args; parse_args(sys.argv[1:])"
            proc = subprocess.run([sys.executable, "-c", code, *words[2:]], cwd=cwd, capture_output=True, text=True,
                                  timeout=120)
            script = open(os.path.join(REPO, words[0])).read()
            assert all(w.split("=")[0] in script for w in env_words), env_words
            return proc, "ok"
        env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               "MASTER_PORT": str(free_port())}
        proc = subprocess.run(["bash", os.path.join(REPO, words[0]), *words[1:], *SMALL, "--max_steps", "2"], cwd=cwd,
                              env=env, capture_output=True, text=True, timeout=600)
        return proc, "ok"
    raise AssertionError(f"README.md has a command this test does not know how to run: {line}")


def test_every_readme_command_runs_as_written_at_a_small_size(tmp_path):
    lines = readme_commands("README.md")
    ran, resumes = [], []
    for line in lines:
        if any(line.startswith(prefix) for prefix in NOT_RUN_HERE):
            continue
        if line.startswith("pip install jupyter && jupyter notebook "):  # test_notebook.py executes the notebooks
            assert os.path.isfile(os.path.join(REPO, line.split()[-1])), line
            continue
        # The README names a checkpoint of the quickstart's full run: take the newest of this small one.
        checkpoints = tmp_path / "runs" / "quickstart" / "checkpoints"
        line = re.sub(r"runs/quickstart/checkpoints/step_\d+\.ckpt",
                      lambda _: f"runs/quickstart/checkpoints/{sorted(os.listdir(checkpoints))[-1]}", line)
        proc, expected = run_readme_command(line, tmp_path, resumes)
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
        if expected == "device not usable":
            assert proc.returncode == 2 and re.match(r"error: device target \w+ is not usable here", last), (line, last)
        else:
            assert proc.returncode == 0, (line, proc.stdout[-2000:] + proc.stderr[-3000:])
        ran.append(line)
    assert len(ran) >= 10, ran
    # What they made: the quickstart run, resumed three times, then scored and exported; the generated
    # pictures; the two-process run.
    quickstart = tmp_path / "runs" / "quickstart"
    for name in ("generated.png", "walk.png", "walk.gif", "swd.json", "generator.mindir", "log.csv", "report.html"):
        assert (quickstart / name).is_file(), name
    with open(quickstart / "log.csv") as f:
        assert sum(1 for _ in f) - 1 == 3 + len(resumes) == 6
    assert (tmp_path / "runs" / "dist-cpu" / "generator.ckpt").is_file()
