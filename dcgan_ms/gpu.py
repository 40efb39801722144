"""CUDA 11 for MindSpore 2.10's GPU plugin from pip's ``nvidia-*-cu11`` wheels, readied before MindSpore
is imported, and every stage that can stop it said in one line. Imports no MindSpore.

MindSpore 2.10 loads its GPU plugin when it is imported, and only when ``CUDA_HOME`` is set: it runs
``$CUDA_HOME/bin/nvcc --version`` and takes the 11.1 plugin for CUDA 11.1-11.5, the 11.6 plugin for 11.6
and later 11.x, none for anything else. ``prepare("GPU")`` keeps a ``CUDA_HOME`` the user set (its nvcc must
say 11.x); loads each CUDA library the plugin needs where the loader finds it (``LD_LIBRARY_PATH``, the
system), else from the wheels by path, globally, so the plugin finds them by name (PyTorch loads its
``nvidia-*`` wheels so); and, without a ``CUDA_HOME``, makes one in the cache whose ``bin/nvcc`` only
prints the version of the CUDA runtime just loaded, so that MindSpore picks the plugin for it. The
driver (``libcuda.so.1``) is asked its CUDA version, the devices and their compute capability.
"""
import atexit
import dataclasses
import os
import shutil
import sys
import tempfile
from pathlib import Path

from .cuda import (DRIVER, ask_driver, load, loaded_path, nvcc_version, plugin_loaded, runtime_version,
                   site_packages, version_tuple, wheel_library)
from .errors import UserError
from .files import written_whole

PIP_LINE = "pip install -r requirements-gpu.txt"
# The CUDA libraries each MindSpore 2.10 GPU plugin needs besides the driver (readelf -d
# lib/plugin/libmindspore_gpu.so.*), in an order that loads each one's dependencies first.
PLUGIN_NEEDS = {
    "11.1": ("libcudart.so.11.0", "libnvrtc.so.11.1", "libcublas.so.11", "libcufft.so.10", "libcurand.so.10",
             "libcusparse.so.11", "libcusolver.so.11", "libcudnn.so.8"),
    "11.6": ("libcudart.so.11.0", "libnvrtc.so.11.2", "libcublas.so.11", "libcufft.so.10", "libcurand.so.10",
             "libcusparse.so.11", "libcusolver.so.11", "libcudnn.so.8"),
}
WHEEL_PLUGIN = "11.6"  # the wheels hold libnvrtc.so.11.2, the 11.6 plugin's
# The GPU code MindSpore 2.10's wheel carries (its fatbins, read by tests/test_gpu.py): machine code per
# architecture (sm_XY as XY) and PTX, which the driver compiles on first use for newer GPUs.
CUDA_OPS_CODE = {"sm": (60, 61, 70, 75, 80), "ptx": (60, 86)}  # lib/plugin/gpu/libcuda_ops.so.11
NCCL_CODE = {"sm": (60,), "ptx": (60,)}  # lib/plugin/gpu11.6/libnccl.so.2: several GPUs


@dataclasses.dataclass
class CudaSetup:
    """What the GPU plugin would meet in this process, stage by stage; ``problem`` is the first stage
    that stops it (one line with what to do), None when MindSpore may try the device."""
    cuda_home: str = None  # the user's CUDA_HOME, or None
    cuda_home_version: str = None  # what its nvcc says ("12.4"), or None
    plugin: str = None  # "11.1" or "11.6": the plugin MindSpore will choose
    libraries: dict = dataclasses.field(default_factory=dict)  # soname -> the file loaded (None: not found)
    runtime_version: str = None  # the loaded libcudart's, "11.8"
    driver_version: str = None  # the CUDA version the driver supports, "12.2"
    devices: list = dataclasses.field(default_factory=list)  # (name, compute capability as "8.0")
    device_error: str = None  # why the driver found no device, or None
    problem: str = None
    notes: list = dataclasses.field(default_factory=list)


def describe(setup):
    """What ``inspect`` found, stage by stage as far as it got, in one line (doctor's)."""
    parts = [f"CUDA_HOME {setup.cuda_home} (nvcc: CUDA {setup.cuda_home_version or '?'})" if setup.cuda_home else
             "CUDA_HOME unset (dcgan_ms makes one for pip's CUDA 11 libraries)"]
    if setup.libraries:
        found = [path for path in setup.libraries.values() if path]
        pip = sum(f"{os.sep}nvidia{os.sep}" in path for path in found)
        parts.append(f"{len(found)} of the {len(setup.libraries)} CUDA libraries the {setup.plugin} plugin needs "
                     f"({pip} from pip), runtime {setup.runtime_version or '?'}")
    if setup.driver_version or setup.devices or setup.device_error:
        parts.append(f"driver: CUDA {setup.driver_version or '?'}")
        parts.append(", ".join(f"{name} ({capability})" for name, capability in setup.devices) or
                     f"no GPU ({setup.device_error})")
    return "; ".join(parts)


def plugin_for(version):
    """The plugin MindSpore 2.10 chooses for a CUDA version ("11.4" -> "11.1"), or None (as measured with
    fake nvcc versions 10.2 to 13.0 in tests/test_gpu.py)."""
    major, minor = (int(part) for part in version.split("."))
    if major != 11 or minor < 1:
        return None
    return "11.6" if minor >= 6 else "11.1"


def load_libraries(plugin, site_dirs, setup):
    """Load the libraries ``plugin`` needs: where the loader finds them first, else from the wheels."""
    for soname in PLUGIN_NEEDS[plugin]:
        handle = load(soname)
        if handle is None and wheel_library(soname, site_dirs):
            handle = load(wheel_library(soname, site_dirs))
        setup.libraries[soname] = loaded_path(handle) if handle is not None else None
        if soname.startswith("libcudart") and handle is not None:
            setup.runtime_version = runtime_version(handle, setup.libraries[soname])


def code_for(capability, code):
    """How a GPU of ``capability`` ("9.0") runs ``code``: "machine" (compiled for it), "ptx" (compiled
    by the driver on first use) or None (nothing it can run)."""
    major, minor = (int(part) for part in capability.split("."))
    wanted = major * 10 + minor
    if any(sm // 10 == major and sm <= wanted for sm in code["sm"]):
        return "machine"
    return "ptx" if any(ptx <= wanted for ptx in code["ptx"]) else None


def inspect(*, several=False, site_dirs=None):
    """Each stage MindSpore's GPU plugin goes through in this process, loading the libraries it needs on the
    way (so that a later ``import mindspore`` finds them); ``several``: a data-parallel run (NCCL)."""
    setup = CudaSetup()
    site_dirs = site_packages() if site_dirs is None else site_dirs
    setup.cuda_home = os.environ.get("CUDA_HOME") or None
    if setup.cuda_home and not is_stand_in(setup.cuda_home):
        setup.cuda_home_version = nvcc_version(setup.cuda_home)
        setup.plugin = setup.cuda_home_version and plugin_for(setup.cuda_home_version)
        if not setup.plugin:
            says = f"its bin/nvcc says CUDA {setup.cuda_home_version}" if setup.cuda_home_version else \
                "it has no bin/nvcc that says its version"
            setup.problem = (f"CUDA_HOME is {setup.cuda_home} and {says}, but MindSpore 2.10's GPU plugin needs CUDA "
                             "11.1-11.8: unset CUDA_HOME to use the CUDA 11 libraries from pip "
                             f"({PIP_LINE}), or point it to a CUDA 11.6-11.8 toolkit")
            return setup
    else:
        setup.cuda_home = None
        setup.plugin = WHEEL_PLUGIN
    load_libraries(setup.plugin, site_dirs, setup)
    missing = ", ".join(soname for soname, path in setup.libraries.items() if path is None)
    if missing and setup.cuda_home:
        setup.problem = (f"CUDA_HOME {setup.cuda_home} (CUDA {setup.cuda_home_version}) is used, but libraries "
                         f"MindSpore 2.10's GPU plugin needs are not found ({missing}): add its lib64 and cuDNN 8 to "
                         f"LD_LIBRARY_PATH, or unset CUDA_HOME and {PIP_LINE}")
    elif missing:
        setup.problem = (f"the CUDA 11 libraries MindSpore 2.10's GPU plugin needs are not installed ({missing} not "
                         f"found): {PIP_LINE}")
    if missing:
        return setup
    driver = ask_driver()
    if driver is None:
        setup.problem = (f"no NVIDIA driver: {DRIVER} is not found (the CUDA 11 libraries are): install the NVIDIA "
                         "driver for your GPU (nvidia-smi then lists it), or pass --device_target CPU")
        return setup
    setup.driver_version, setup.devices, setup.device_error = driver.version, driver.devices, driver.device_error
    if setup.driver_version and setup.runtime_version and \
            version_tuple(setup.driver_version) < version_tuple(setup.runtime_version):
        setup.problem = (f"the NVIDIA driver supports CUDA {setup.driver_version}, older than the CUDA "
                         f"{setup.runtime_version} libraries: update the driver (R520 or newer supports 11.8)")
        return setup
    for name, capability in sorted(set(setup.devices)):
        kernels = code_for(capability, CUDA_OPS_CODE)
        if kernels is None:
            setup.problem = (f"{name} is compute capability {capability}; MindSpore 2.10's CUDA kernels need 6.0 or "
                             "newer: train on another GPU or pass --device_target CPU")
            return setup
        if kernels == "ptx":
            setup.notes.append(f"{name} (compute capability {capability}) is newer than the machine code in "
                               "MindSpore 2.10's CUDA kernels: the first run compiles them for it (minutes, once; "
                               "the driver caches them)")
        if several and code_for(capability, NCCL_CODE) == "ptx":
            setup.notes.append(f"several GPUs: MindSpore 2.10's NCCL has machine code for compute capability 6.x "
                               f"only; on {name} ({capability}) the driver compiles its PTX on first use (not tried "
                               "by this project)")
    return setup


def is_stand_in(cuda_home):
    """Whether ``cuda_home`` is one that ``prepare`` made (its nvcc only says a version)."""
    return os.path.isfile(os.path.join(cuda_home, STAND_IN_MARK))


STAND_IN_MARK = "made-by-dcgan_ms"
STAND_IN_NVCC = """#!/bin/sh
# Written by dcgan_ms (dcgan_ms/gpu.py), not NVIDIA's compiler: MindSpore 2.10 chooses its GPU plugin by
# what $CUDA_HOME/bin/nvcc --version prints. This prints the version of the CUDA runtime dcgan_ms loaded:
# {runtime}
echo "nvcc: a stand-in written by dcgan_ms: it compiles nothing"
echo "Cuda compilation tools, release {version}, V{version}"
"""


def stand_in_cuda_home(setup):
    """A folder whose bin/nvcc prints the loaded CUDA runtime's version: in the cache when it is this
    user's alone, else in a private temporary folder for this process."""
    from .cache import make_cache, untrusted, untrusted_folder
    try:
        folder = make_cache() / f"cuda-{setup.runtime_version}"
        (folder / "bin").mkdir(mode=0o700, parents=True, exist_ok=True)
        trusted = not (untrusted_folder(folder.parent) or untrusted(folder) or untrusted(folder / "bin"))
    except OSError:
        trusted = False
    if not trusted:
        folder = Path(tempfile.mkdtemp(prefix="dcgan_ms-cuda-"))
        atexit.register(shutil.rmtree, folder, True)
        (folder / "bin").mkdir(mode=0o700)
    text = STAND_IN_NVCC.format(runtime=setup.libraries["libcudart.so.11.0"], version=setup.runtime_version)
    nvcc = folder / "bin" / "nvcc"
    if not nvcc.is_file() or nvcc.is_symlink() or nvcc.read_text() != text:
        with written_whole(str(nvcc), mode=0o700) as tmp, open(tmp, "w") as f:  # workers may write it at once
            f.write(text)
    (folder / STAND_IN_MARK).touch()
    return str(folder)


def ready(*, several=False):
    """``inspect``, and where nothing stops the plugin, the environment MindSpore reads at import: the
    stand-in CUDA_HOME when the user set none, and the wheels' folders on LD_LIBRARY_PATH after the
    user's, for child processes (MindSpore's own checks run ldd; msrun's workers)."""
    setup = inspect(several=several)
    if setup.problem or setup.cuda_home:
        return setup
    os.environ["CUDA_HOME"] = stand_in_cuda_home(setup)
    wheels = [os.path.dirname(path) for path in setup.libraries.values() if f"{os.sep}nvidia{os.sep}" in path]
    os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(
        dict.fromkeys([*filter(None, os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep)), *wheels]))
    return setup


def prepare(device_target, *, several=False):
    """Ready MindSpore's GPU plugin before ``import mindspore`` (nothing for another target). Returns the
    notes worth a line (a first-run compile); raises UserError at the first stage that stops the plugin.
    A device the driver cannot find is left to MindSpore, whose error ``why_unusable`` then words."""
    if device_target != "GPU" or plugin_loaded():
        return []
    if "mindspore" in sys.modules:
        raise UserError("MindSpore was imported before dcgan_ms could ready its GPU plugin: call "
                        "dcgan_ms.gpu.prepare(\"GPU\") before importing mindspore (in the notebook: set DEVICE = "
                        "\"GPU\" in the first cell, restart the kernel and run the cells in order)")
    setup = ready(several=several)
    if setup.problem:
        raise UserError(f"device target GPU is not usable here: {setup.problem}")
    return setup.notes


def why_unusable(error_line):
    """The one line for a GPU MindSpore could not use (its error's first line ``error_line``): the first
    stage that stops it, as ``inspect`` finds it in this process."""
    setup = inspect()
    if setup.problem:
        return setup.problem
    if setup.device_error:
        return (f"no GPU found: the NVIDIA driver (CUDA {setup.driver_version}) and the CUDA 11 libraries loaded, "
                f"then the driver said \"{setup.device_error}\" and MindSpore \"{error_line}\": check that "
                "nvidia-smi lists a GPU and that CUDA_VISIBLE_DEVICES names it, or pass --device_target CPU")
    if not plugin_loaded():
        return ("MindSpore was imported before dcgan_ms could ready its GPU plugin: call dcgan_ms.gpu.prepare(\"GPU\") "
                "before importing mindspore")
    return f"MindSpore cannot use the GPU: {error_line}"
