"""--device_target GPU on a machine without one: every stage MindSpore 2.10's GPU plugin goes through,
tried as machines with GPUs meet it, each with its own true line (dcgan_ms/gpu.py).

Three kinds of test: (1) fake CUDA libraries and a fake driver (tests/fake_cuda.c, built with gcc under
each library's name) stand in for machines this one is not: CUDA_HOME 13, no libraries, no driver, an
old driver, no GPU, an H100; (2) with pip's real CUDA 11 wheels (requirements-gpu.txt) and the driver's
user-space library from Debian's libcuda1 package, unpacked in a temporary folder (never installed),
MindSpore itself loads its GPU plugin and gets as far as "no CUDA-capable device"; (3) what this module
says of the installed MindSpore (which plugin for which nvcc, the GPU code its wheel carries) is
measured against the installed MindSpore. CI installs requirements-gpu.txt; without it (2) is skipped.
"""
import importlib.util
import json
import os
import re
import shutil
import struct
import subprocess
import sys

import pytest

from conftest import REPO, run_cli
from dcgan_ms import cuda, gpu
from dcgan_ms.errors import first_line

FAKE_SOURCE = os.path.join(REPO, "tests", "fake_cuda.c")
SPEC = importlib.util.find_spec("mindspore")
MINDSPORE = SPEC.submodule_search_locations[0] if SPEC else None
WHEELS = cuda.wheel_library("libcudart.so.11.0", cuda.site_packages())
needs_wheels = pytest.mark.skipif(not WHEELS, reason="pip's CUDA 11 wheels are not installed: pip install -r "
                                  "requirements-gpu.txt (CI does)")
needs_gcc = pytest.mark.skipif(not shutil.which("gcc"), reason="the fake CUDA libraries are built with gcc")


def nvcc(folder, says):
    """A CUDA_HOME in ``folder`` whose bin/nvcc prints ``says`` (None: no nvcc at all)."""
    os.makedirs(os.path.join(folder, "bin"), exist_ok=True)
    if says is not None:
        path = os.path.join(folder, "bin", "nvcc")
        with open(path, "w") as f:
            f.write(f"#!/bin/sh\necho 'nvcc: NVIDIA (R) Cuda compiler driver'\necho '{says}'\n")
        os.chmod(path, 0o755)
    return str(folder)


@pytest.fixture(scope="module")
def fake_cuda(tmp_path_factory):
    """Fake CUDA 11 wheels (site/nvidia/<folder>/lib/<soname>) and a fake driver (driver/libcuda.so.1)."""
    if not shutil.which("gcc"):
        pytest.skip("the fake CUDA libraries are built with gcc")
    root = tmp_path_factory.mktemp("fake-cuda")
    built = root / "fake.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", FAKE_SOURCE, "-o", str(built)], check=True)
    libraries = {soname: root / "site" / "nvidia" / folder / "lib" / soname for soname, folder in
                 cuda.WHEEL_FOLDERS.items()}
    libraries[cuda.DRIVER] = root / "driver" / cuda.DRIVER
    for soname, path in libraries.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["gcc", "-shared", "-fPIC", "-O1", FAKE_SOURCE, f"-Wl,-soname,{soname}", "-o", str(path)],
                       check=True)
    return root


def inspect(site=None, *, several=False, env=None, ready=False):
    """gpu.inspect (or gpu.ready) in a process of its own, as a dict, with ``env`` over this one's
    (libraries loaded stay loaded: each case needs a fresh process). ``site``: where the wheels are."""
    code = (f"import dataclasses, json, os; from dcgan_ms import gpu\n"
            f"setup = gpu.{'ready' if ready else 'inspect'}(several={several}"
            f"{'' if ready else f', site_dirs={[str(site)] if site else []!r}'})\n"
            "print(json.dumps({**dataclasses.asdict(setup), 'CUDA_HOME': os.environ.get('CUDA_HOME'), "
            "'LD_LIBRARY_PATH': os.environ.get('LD_LIBRARY_PATH')}))")
    full = {name: value for name, value in os.environ.items() if name not in ("CUDA_HOME", "LD_LIBRARY_PATH")}
    full.update(env or {})
    proc = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


# --- (1) stage by stage, on fake libraries --------------------------------------------------------

def test_a_cuda_home_of_cuda_12_or_13_or_without_nvcc_says_what_it_must_be(tmp_path):
    for says, words in (("Cuda compilation tools, release 13.0, V13.0.88", "its bin/nvcc says CUDA 13.0"),
                        ("Cuda compilation tools, release 12.4, V12.4.131", "its bin/nvcc says CUDA 12.4"),
                        (None, "it has no bin/nvcc that says its version")):
        home = nvcc(tmp_path / (says or "none")[:40].replace(" ", "_"), says)
        setup = inspect(env={"CUDA_HOME": home})
        assert setup["problem"].startswith(f"CUDA_HOME is {home} and {words}, but MindSpore 2.10's GPU plugin needs "
                                           "CUDA 11.1-11.8: unset CUDA_HOME"), setup
        assert gpu.PIP_LINE in setup["problem"] and setup["libraries"] == {}  # nothing loaded past it


@needs_gcc
def test_without_the_cuda_11_libraries_the_line_is_the_pip_line(tmp_path):
    setup = inspect(tmp_path)  # no wheels there, none on the loader's path
    assert setup["problem"].startswith("the CUDA 11 libraries MindSpore 2.10's GPU plugin needs are not installed (")
    assert setup["problem"].endswith(f" not found): {gpu.PIP_LINE}")
    assert all(soname in setup["problem"] for soname in gpu.PLUGIN_NEEDS["11.6"])


def test_without_the_driver_the_line_names_libcuda(fake_cuda):
    setup = inspect(fake_cuda / "site")
    assert all(path.startswith(str(fake_cuda / "site")) for path in setup["libraries"].values()), setup
    assert setup["runtime_version"] == "11.8"
    assert setup["problem"].startswith("no NVIDIA driver: libcuda.so.1 is not found (the CUDA 11 libraries are)")


def test_a_driver_older_than_the_runtime_is_refused(fake_cuda):
    setup = inspect(fake_cuda / "site", env={"LD_LIBRARY_PATH": str(fake_cuda / "driver"), "FAKE_CUDA_DRIVER": "11040",
                                             "FAKE_CUDA_GPUS": "NVIDIA A100=8.0"})
    assert setup["problem"] == ("the NVIDIA driver supports CUDA 11.4, older than the CUDA 11.8 libraries: update the "
                                "driver (R520 or newer supports 11.8)")


def test_no_gpu_is_left_to_mindspore_and_worded_from_the_driver(fake_cuda):
    setup = inspect(fake_cuda / "site", env={"LD_LIBRARY_PATH": str(fake_cuda / "driver")})
    assert setup["problem"] is None and setup["driver_version"] == "12.2"
    assert setup["device_error"] == "no CUDA-capable device is detected (cuInit 100)"


def test_gpus_with_and_without_machine_code_in_mindspores_kernels(fake_cuda):
    env = {"LD_LIBRARY_PATH": str(fake_cuda / "driver")}
    a100 = inspect(fake_cuda / "site", several=True, env={**env, "FAKE_CUDA_GPUS": "NVIDIA A100=8.0;NVIDIA A10=8.6"})
    assert a100["problem"] is None and a100["devices"] == [["NVIDIA A100", "8.0"], ["NVIDIA A10", "8.6"]]
    assert all("NCCL" in note for note in a100["notes"]) and len(a100["notes"]) == 2  # NCCL: sm_60 code only
    h100 = inspect(fake_cuda / "site", env={**env, "FAKE_CUDA_GPUS": "NVIDIA H100=9.0"})
    assert h100["problem"] is None and h100["notes"] == [
        "NVIDIA H100 (compute capability 9.0) is newer than the machine code in MindSpore 2.10's CUDA kernels: the "
        "first run compiles them for it (minutes, once; the driver caches them)"]
    maxwell = inspect(fake_cuda / "site", env={**env, "FAKE_CUDA_GPUS": "Tesla M40=5.2"})
    assert maxwell["problem"].startswith("Tesla M40 is compute capability 5.2; MindSpore 2.10's CUDA kernels need 6.0")


def test_the_users_cuda_home_and_library_path_win_over_the_wheels(fake_cuda, tmp_path):
    home = nvcc(tmp_path / "cuda-11.8", "Cuda compilation tools, release 11.8, V11.8.89")
    own = tmp_path / "own-libs"
    shutil.copytree(fake_cuda / "site" / "nvidia" / "cudnn" / "lib", own)  # the user's own cuDNN
    env = {"CUDA_HOME": home, "LD_LIBRARY_PATH": f"{own}:{fake_cuda / 'driver'}", "FAKE_CUDA_GPUS": "NVIDIA A100=8.0"}
    setup = inspect(fake_cuda / "site", env=env)
    assert setup["problem"] is None and setup["cuda_home"] == home and setup["plugin"] == "11.6"
    assert setup["libraries"]["libcudnn.so.8"] == str(own / "libcudnn.so.8")
    assert setup["libraries"]["libcublas.so.11"].startswith(str(fake_cuda / "site"))
    # their CUDA_HOME without the libraries it needs: what to add, or how to use pip's instead
    missing = inspect(tmp_path / "nowhere", env=env)
    assert missing["problem"].startswith(f"CUDA_HOME {home} (CUDA 11.8) is used, but libraries MindSpore 2.10's GPU "
                                         "plugin needs are not found (libcudart.so.11.0, ")
    assert missing["problem"].endswith(f"add its lib64 and cuDNN 8 to LD_LIBRARY_PATH, or unset CUDA_HOME and "
                                       f"{gpu.PIP_LINE}")


def test_ready_makes_a_cuda_home_whose_nvcc_says_the_runtimes_version(fake_cuda, tmp_path):
    """The stand-in is found through sys.path as pip's wheels are; what MindSpore runs says 11.8 because the
    runtime loaded says so (FAKE_CUDA_RUNTIME), not because it is written in."""
    env = {"PYTHONPATH": f"{fake_cuda / 'site'}:{os.environ['PYTHONPATH']}", "DCGAN_MS_CACHE": str(tmp_path / "cache"),
           "LD_LIBRARY_PATH": str(fake_cuda / "driver"), "FAKE_CUDA_GPUS": "NVIDIA A100=8.0",
           "FAKE_CUDA_RUNTIME": "11070"}
    setup = inspect(env=env, ready=True)
    assert setup["problem"] is None and setup["runtime_version"] == "11.7"
    home = setup["CUDA_HOME"]
    assert home == str(tmp_path / "cache" / "cuda-11.7") and gpu.is_stand_in(home)
    assert cuda.nvcc_version(home) == "11.7" and gpu.plugin_for("11.7") == "11.6"
    assert setup["LD_LIBRARY_PATH"].split(":")[0] == str(fake_cuda / "driver")  # the user's first, then the wheels
    assert str(fake_cuda / "site" / "nvidia" / "cudnn" / "lib") in setup["LD_LIBRARY_PATH"].split(":")
    # a child (an msrun worker) inherits it and readies the same way
    again = inspect(env={**env, "CUDA_HOME": home, "LD_LIBRARY_PATH": setup["LD_LIBRARY_PATH"]}, ready=True)
    assert again["problem"] is None and again["CUDA_HOME"] == home and again["cuda_home"] is None
    # a cache others can write is not where a program MindSpore runs may live
    os.chmod(tmp_path / "cache", 0o777)
    shared = inspect(env=env, ready=True)
    assert shared["problem"] is None and not shared["CUDA_HOME"].startswith(str(tmp_path / "cache"))
    os.chmod(tmp_path / "cache", 0o700)


def test_the_command_lines_say_each_stage_in_one_line(fake_cuda, tmp_path):
    env = {"PYTHONPATH": f"{fake_cuda / 'site'}:{os.environ['PYTHONPATH']}", "DCGAN_MS_CACHE": str(tmp_path / "c")}
    train = ("dcgan_ms.train", "--dataset", "sample", "--max_steps", "1", "--device_target", "GPU", "--output_dir",
             str(tmp_path / "run"))
    for extra, line in (({}, "no NVIDIA driver: libcuda.so.1 is not found"),
                        ({"CUDA_HOME": nvcc(tmp_path / "c13", "Cuda compilation tools, release 13.0, V13.0.88")},
                         f"CUDA_HOME is {tmp_path / 'c13'} and its bin/nvcc says CUDA 13.0")):
        for command in (train, ("dcgan_ms.generate", "--ckpt", "x.ckpt", "--device_target", "GPU")):
            proc = run_cli(*command, env={**env, **extra})
            assert proc.returncode == 2, proc.stderr
            assert proc.stderr.startswith(f"error: device target GPU is not usable here: {line}"), proc.stderr
            assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "run").exists()  # nothing written before the device works


@pytest.mark.slow
def test_doctor_never_says_ok_where_mindspore_would_refuse(fake_cuda, tmp_path):
    env = {"PYTHONPATH": f"{fake_cuda / 'site'}:{os.environ['PYTHONPATH']}", "DCGAN_MS_CACHE": str(tmp_path / "c")}
    cases = (({}, "no NVIDIA driver"),
             ({"CUDA_HOME": nvcc(tmp_path / "c13", "Cuda compilation tools, release 13.0, V13.0.88")}, "CUDA 13.0"),
             ({"LD_LIBRARY_PATH": str(fake_cuda / "driver")}, "check that nvidia-smi lists a GPU"),
             ({"LD_LIBRARY_PATH": str(fake_cuda / "driver"), "FAKE_CUDA_DRIVER": "11020",
               "FAKE_CUDA_GPUS": "NVIDIA T4=7.5"}, "the NVIDIA driver supports CUDA 11.2"))
    for extra, words in cases:
        proc = run_cli("dcgan_ms.doctor", "--device_target", "GPU", "--output_dir", str(tmp_path / "runs"), "--json",
                       env={**env, **extra})
        report = json.loads(proc.stdout)
        check = next(c for c in report["checks"] if c["name"] == "gpu")
        assert proc.returncode == 1 and not report["ready"] and check["status"] == "FAIL", proc.stdout
        assert words in check["fix"], check
        assert "training" not in [c["name"] for c in report["checks"]]


def test_first_line_skips_mindspores_rules_and_headings():
    message = ("\n----------------------------------------------------\n- Cuda error:\n"
               "----------------------------------------------------\n"
               "The cudaGetLastError[100], no CUDA-capable device is detected\n\n"
               "----------------------------------------------------\n- C++ Call Stack: (For framework developers)\n")
    assert first_line(RuntimeError(message)) == "The cudaGetLastError[100], no CUDA-capable device is detected"
    assert first_line(RuntimeError("\n-----\n")) == "RuntimeError"


def test_how_each_gpu_runs_the_code_the_wheel_carries():
    assert [gpu.code_for(cc, gpu.CUDA_OPS_CODE) for cc in ("5.2", "6.0", "7.5", "8.0", "8.6", "8.9", "9.0", "12.0")] \
        == [None, "machine", "machine", "machine", "machine", "machine", "ptx", "ptx"]
    assert [gpu.code_for(cc, gpu.NCCL_CODE) for cc in ("6.1", "7.0", "9.0")] == ["machine", "ptx", "ptx"]


# --- (2) MindSpore itself, with pip's real CUDA 11 wheels ------------------------------------------

@pytest.fixture(scope="module")
def debian_driver(tmp_path_factory):
    """The NVIDIA driver's user-space library (libcuda.so.1) from Debian's non-free libcuda1 package, unpacked
    into a temporary folder, never installed: apt-get download with lists of its own, as any account."""
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        pytest.skip("Debian's apt-get and dpkg-deb fetch the driver's library")
    system = "/etc/apt/sources.list.d/debian.sources"  # the machine's own Debian archive, its non-free part
    if not os.path.isfile(system):
        pytest.skip(f"no {system} to find Debian's archive in")
    root = tmp_path_factory.mktemp("libcuda1")
    for folder in ("lists/partial", "cache/archives/partial", "sources"):
        (root / folder).mkdir(parents=True)
    text = open(system).read()
    (root / "sources" / "non-free.sources").write_text(re.sub(r"(?m)^Components:.*$", "Components: non-free", text))
    options = ["-o", "Dir::Etc::sourcelist=/dev/null", "-o", f"Dir::Etc::sourceparts={root / 'sources'}",
               "-o", f"Dir::State::Lists={root / 'lists'}", "-o", f"Dir::Cache={root / 'cache'}",
               "-o", "Debug::NoLocking=1"]
    for step in (["update"], ["download", "libcuda1"]):
        proc = subprocess.run(["apt-get", "-q", *options, *step], cwd=root, capture_output=True, text=True, timeout=300)
        if proc.returncode:
            pytest.skip(f"Debian's libcuda1 could not be fetched: {first_line(proc.stderr)}")
    deb = next(root.glob("libcuda1_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root / "x")], check=True)
    return str(next((root / "x").rglob("libcuda.so.1")).parent)


@needs_wheels
@pytest.mark.slow
def test_training_on_gpu_gets_as_far_as_mindspores_own_device_error(debian_driver, tmp_path):
    """CUDA 11 from pip, the driver's library, no GPU: MindSpore loads its 11.6 plugin and its first operator
    fails with "no CUDA-capable device"; the user reads one line, and nothing is written."""
    env = {"LD_LIBRARY_PATH": debian_driver, "DCGAN_MS_CACHE": str(tmp_path / "cache")}
    proc = run_cli("dcgan_ms.train", "--dataset", "sample", "--max_steps", "1", "--device_target", "GPU",
                   "--output_dir", str(tmp_path / "run"), env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: device target GPU is not usable here: no GPU found: the NVIDIA driver (CUDA 12.2) and the CUDA 11 "
        "libraries loaded, then the driver said \"no CUDA-capable device is detected (cuInit 100)\" and MindSpore "
        "\"The cudaGetLastError[100], no CUDA-capable device is detected\": check that nvidia-smi lists a GPU and "
        "that CUDA_VISIBLE_DEVICES names it, or pass --device_target CPU"]
    assert not (tmp_path / "run").exists()
    # without the driver's library: the stage before
    proc = run_cli("dcgan_ms.train", "--dataset", "sample", "--device_target", "GPU", "--output_dir",
                   str(tmp_path / "run"), env={"DCGAN_MS_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: device target GPU is not usable here: no NVIDIA driver: libcuda.so.1")


@needs_wheels
@pytest.mark.slow
def test_mindspore_chose_the_plugin_that_gpu_py_says_for_each_nvcc_version(debian_driver, tmp_path):
    """plugin_for against the installed MindSpore: which plugin it maps for what nvcc says."""
    libraries = ":".join(os.path.dirname(cuda.wheel_library(soname, cuda.site_packages()))
                         for soname in gpu.PLUGIN_NEEDS["11.6"])
    code = ("import mindspore\nprint([line.rsplit('.so.', 1)[1].strip() for line in open('/proc/self/maps') "
            "if 'libmindspore_gpu.so.' in line][:1])")
    for version in ("10.2", "11.0", "11.4", "11.6", "11.8", "12.0", "13.0"):
        home = nvcc(tmp_path / version, f"Cuda compilation tools, release {version}, V{version}.1")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "CUDA_HOME": home, "LD_LIBRARY_PATH": f"{libraries}:{debian_driver}",
                                   "GLOG_v": "2"})
        loaded = json.loads(proc.stdout.strip().splitlines()[-1].replace("'", '"'))
        if gpu.plugin_for(version) == "11.1":  # chosen, and it cannot load: no wheel has its libnvrtc.so.11.1
            assert loaded == [] and "but dlopen file_name failed" in proc.stderr, (version, proc.stderr[-2000:])
        elif gpu.plugin_for(version):
            assert loaded == [gpu.plugin_for(version)], (version, proc.stderr[-2000:])
        else:
            assert loaded == [] and "can not find suitable gpu plugin" in proc.stderr, (version, proc.stderr[-2000:])


# --- (3) the GPU code MindSpore's wheel carries ---------------------------------------------------

def fatbin_code(path):
    """The architectures of machine code (sm) and PTX in a library's CUDA fat binaries: each fatbin
    (magic 0xBA55ED50) holds entries whose kind is 1 for PTX and 2 for machine code, and whose arch is
    at offset 28 of the entry's header."""
    data = open(path, "rb").read()
    code = {"sm": set(), "ptx": set()}
    for found in re.finditer(rb"\x50\xed\x55\xba", data):
        start = found.start()
        header, size = struct.unpack_from("<H", data, start + 6)[0], struct.unpack_from("<Q", data, start + 8)[0]
        entry, end = start + header, start + header + size
        while entry < end:
            kind, _, entry_header, entry_size = struct.unpack_from("<HHIQ", data, entry)
            code["ptx" if kind == 1 else "sm"].add(struct.unpack_from("<I", data, entry + 28)[0])
            entry += entry_header + entry_size
    return {name: tuple(sorted(archs)) for name, archs in code.items()}


@pytest.mark.slow
@pytest.mark.skipif(not MINDSPORE, reason="MindSpore is not installed")
def test_the_gpu_code_gpu_py_names_is_what_the_installed_wheel_carries():
    plugin = os.path.join(MINDSPORE, "lib", "plugin")
    assert fatbin_code(os.path.join(plugin, "gpu", "libcuda_ops.so.11")) == gpu.CUDA_OPS_CODE
    assert fatbin_code(os.path.join(plugin, "gpu11.6", "libnccl.so.2")) == gpu.NCCL_CODE
