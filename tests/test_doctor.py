"""python -m dcgan_ms.doctor: ready on this machine, and each check that can fail made to fail."""
import json
import os
import stat
import sys

import pytest

from conftest import run_cli
from dcgan_ms import ascend, doctor, same_as_cpu

NAMES = ["python", "mindspore", "gpu", "ascend", "kernels", "msrun", "data", "folders", "disk"]
VENV_BIN = os.path.dirname(sys.executable)


def statuses(stdout):
    """name -> status of the doctor's lines, and its last line."""
    lines = stdout.strip().splitlines()
    return {line.split()[1]: line.split()[0] for line in lines[:-1]}, lines[-1]


@pytest.mark.slow
def test_this_machine_is_ready_and_a_few_steps_train(tmp_path):
    proc = run_cli("dcgan_ms.doctor", "--output_dir", str(tmp_path / "runs"),
                   env={"PATH": VENV_BIN + os.pathsep + os.environ["PATH"]})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found, last = statuses(proc.stdout)
    assert list(found) == NAMES + ["training"]
    assert found["training"] == found["msrun"] == found["data"] == found["folders"] == "ok", proc.stdout
    assert last == "ready: python -m dcgan_ms.train --device_target CPU will run here"
    assert os.listdir(tmp_path / "runs") == []  # the tiny run's folder is removed


def test_no_compiler_is_a_note_naming_the_fallback_and_msrun_off_path_another(tmp_path):
    proc = run_cli("dcgan_ms.doctor", "--output_dir", str(tmp_path), "--no_training",
                   env={"CXX": "no-such-c++", "DCGAN_MS_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout + proc.stderr  # training still works, on the fallback
    found, last = statuses(proc.stdout)
    assert found["kernels"] == "note" and found["msrun"] == "note" and last.startswith("ready: ")
    kernels = next(line for line in proc.stdout.splitlines() if line.split()[1] == "kernels")
    assert "no C++ compiler (no-such-c++) on PATH" in kernels and "MindSpore's convolutions" in kernels


def test_a_device_this_machine_cannot_run_fails_and_is_named_first_to_fix(tmp_path):
    proc = run_cli("dcgan_ms.doctor", "--device_target", "Ascend", "--output_dir", str(tmp_path), "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["ready"] is False and report["device_target"] == "Ascend"
    ascend = next(c for c in report["checks"] if c["name"] == "ascend")
    assert ascend["status"] == "FAIL" and "CANN" in ascend["fix"]
    assert [c["name"] for c in report["checks"]] == NAMES  # no training steps on a device that fails


def test_a_build_without_the_plugins_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(doctor, "plugin_folder", lambda: str(tmp_path))  # a CPU-only build's empty plugin folder
    assert doctor.check_gpu("CPU").status == "note"
    gpu, ascend = doctor.check_gpu("GPU"), doctor.check_ascend("Ascend")
    assert (gpu.status, gpu.found) == ("FAIL", "this MindSpore has no GPU plugin") and "requirements.txt" in gpu.fix
    assert (ascend.status, ascend.found) == ("FAIL", "this MindSpore has no Ascend plugin")


def test_an_output_folder_the_user_cannot_write_fails(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders: the permission case needs an ordinary user (CI is one)")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(stat.S_IRUSR | stat.S_IXUSR)
    proc = run_cli("dcgan_ms.doctor", "--output_dir", str(shared / "runs"), "--no_training")
    assert proc.returncode == 1
    found, last = statuses(proc.stdout)
    assert found["folders"] == "FAIL"
    assert last == "not ready: fix first: folders: pass --output_dir, a folder of yours"


def test_an_unsupported_python_old_numpy_rule_and_a_full_disk_fail(monkeypatch, tmp_path):
    import numpy as np
    monkeypatch.setattr(doctor, "PYTHONS", ())
    assert doctor.check_python().status == "FAIL"
    monkeypatch.setattr(np, "__version__", "2.0.0")
    mindspore = doctor.check_mindspore()
    assert mindspore.status == "FAIL" and 'numpy<2' in mindspore.fix
    monkeypatch.setattr(doctor, "FREE_DISK_NEEDED", 1 << 60)
    assert doctor.check_disk(str(tmp_path)).status == "FAIL"
    checks = doctor.run_checks(output_dir=str(tmp_path))
    assert [c.name for c in checks] == ["python", "mindspore"]  # nothing more is checked past a broken install


def test_the_faces_are_told_apart_absent_half_unpacked_and_complete(tmp_path, monkeypatch):
    import dcgan_ms.data
    from dcgan_ms.data import faces
    monkeypatch.setattr(dcgan_ms.data, "FACES_DIR", str(tmp_path / "faces"))  # where doctor looks
    assert "not here yet" in doctor.check_data().found
    (tmp_path / "faces").mkdir()
    (tmp_path / "faces" / "1.jpg").write_bytes(b"part of a set")
    assert "no complete set" in doctor.check_data().found
    (tmp_path / "faces" / faces.MARKER).write_text("{}")
    assert "the anime faces unpacked in" in doctor.check_data().found


def test_ascend_is_checked_against_the_cann_versions_the_installed_mindspore_takes(tmp_path, monkeypatch):
    """MindSpore 2.10's own check (run_check/_check_version.py) lists the CANN versions it takes; doctor reads
    the toolkit's version as it does and says which step is missing: CANN, its version, set_env.sh."""
    from mindspore.run_check._check_version import AscendEnvChecker
    supported = AscendEnvChecker(None).version
    assert ascend.cann_versions_supported() == supported and supported
    monkeypatch.setattr(doctor.glob, "glob", lambda pattern: [pattern])  # a plugin and one /dev/davinci device
    for name in ("ASCEND_HOME_PATH", "ASCEND_OPP_PATH", "LD_LIBRARY_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ASCEND_HOME_PATH", str(tmp_path / "none"))
    assert "install the Ascend driver and CANN" in doctor.check_ascend("Ascend").fix
    (tmp_path / "compiler").mkdir()
    (tmp_path / "compiler" / "version.info").write_text("Version=7.0.0\n")
    monkeypatch.setenv("ASCEND_HOME_PATH", str(tmp_path))
    old = doctor.check_ascend("Ascend")
    assert old.status == "FAIL" and old.fix.startswith("CANN 7.0 is not one MindSpore 2.10 takes")
    (tmp_path / "compiler" / "version.info").write_text(f"Version={supported[-1]}.RC1\n")
    unsourced = doctor.check_ascend("Ascend")
    assert unsourced.status == "FAIL" and unsourced.fix.startswith("source /usr/local/Ascend/ascend-toolkit/set_env.sh")
    assert "set_env.sh not sourced (ASCEND_OPP_PATH, LD_LIBRARY_PATH unset)" in unsourced.found
    monkeypatch.setenv("ASCEND_OPP_PATH", str(tmp_path / "opp"))
    monkeypatch.setenv("LD_LIBRARY_PATH", str(tmp_path / "lib64"))
    ready = doctor.check_ascend("Ascend")
    assert ready.status == "ok" and f"CANN {supported[-1]} (MindSpore 2.10 takes" in ready.found, ready


@pytest.mark.slow
def test_the_device_check_compares_the_tiny_run_with_the_same_steps_on_the_cpu(tmp_path):
    """What doctor --device_target GPU (or Ascend) does after its tiny run, tried where both sides are the
    CPU: the same flags in two processes give the same losses (the premise: same weights, batches and
    noise), and a loss moved past the tolerance is named."""
    from dcgan_ms.run_folder import read_log
    flags = [f"--{name}" if value is True else f"--{name}={value}" for name, value in same_as_cpu.TINY_RUN.items()]
    proc = run_cli("dcgan_ms.train", *flags, "--device_target=CPU", f"--output_dir={tmp_path / 'device'}")
    assert proc.returncode == 0, proc.stderr
    log = read_log(str(tmp_path / "device"))
    assert len(log["g_loss"]) == same_as_cpu.TINY_RUN["max_steps"]
    assert same_as_cpu.differs_from_cpu(log, str(tmp_path / "cpu")) is None
    reference = read_log(str(tmp_path / "cpu"))
    expected = log["d_fake"][1]
    log["d_fake"][1] = expected + 1.5 * same_as_cpu.SAME_AS_CPU * max(1.0, abs(expected))
    assert same_as_cpu.first_difference(log, reference) == \
        f"step 2's d_fake is {log['d_fake'][1]:.5f} against {expected:.5f} on the CPU"
    log["d_fake"][1] = expected + 0.5 * same_as_cpu.SAME_AS_CPU * max(1.0, abs(expected))
    assert same_as_cpu.first_difference(log, reference) is None
