"""This machine's CUDA, asked without MindSpore: libraries found where the loader or pip's wheels put them,
loaded for the whole process, the CUDA runtime's version and the driver's, the devices and their
compute capability (through the driver's libcuda.so.1, with ctypes). gpu.py decides with it what
MindSpore's GPU plugin will meet."""
import ctypes
import dataclasses
import importlib.metadata
import os
import re
import subprocess
import sys

NVCC_TIMEOUT = 30  # seconds for `$CUDA_HOME/bin/nvcc --version`
# Where each library lies in the wheels of requirements-gpu.txt: site-packages/nvidia/<folder>/lib
WHEEL_FOLDERS = {"libcudart.so.11.0": "cuda_runtime", "libnvrtc.so.11.2": "cuda_nvrtc", "libcublas.so.11": "cublas",
                 "libcufft.so.10": "cufft", "libcurand.so.10": "curand", "libcusparse.so.11": "cusparse",
                 "libcusolver.so.11": "cusolver", "libcudnn.so.8": "cudnn"}
DRIVER = "libcuda.so.1"
CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 75, 76


def version_text(number):
    """CUDA's version integers (11080) as "11.8"."""
    return f"{number // 1000}.{number % 1000 // 10}"


def nvcc_version(cuda_home):
    """The release ``$CUDA_HOME/bin/nvcc --version`` prints ("11.8"), or None when it cannot say."""
    try:
        out = subprocess.run([os.path.join(cuda_home, "bin", "nvcc"), "--version"], capture_output=True, text=True,
                             timeout=NVCC_TIMEOUT).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"release (\d+)\.(\d+)", out)
    return f"{found[1]}.{found[2]}" if found else None


def wheel_library(soname, site_dirs):
    """The path of ``soname`` in the nvidia-*-cu11 wheels under one of ``site_dirs``, or None."""
    folder = WHEEL_FOLDERS.get(soname)
    for site in site_dirs if folder else ():
        path = os.path.join(site, "nvidia", folder, "lib", soname)
        if os.path.isfile(path):
            return path
    return None


def load(name):
    """dlopen ``name`` (a soname the loader looks up, or a path) for the whole process; None if it fails."""
    try:
        return ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return None


class LinkMap(ctypes.Structure):
    _fields_ = [("l_addr", ctypes.c_void_p), ("l_name", ctypes.c_char_p)]  # glibc's struct link_map, its start


def loaded_path(handle):
    """The file the loader chose for a loaded library (dlinfo's RTLD_DI_LINKMAP, 2)."""
    link_map = ctypes.POINTER(LinkMap)()
    if ctypes.CDLL(None).dlinfo(ctypes.c_void_p(handle._handle), 2, ctypes.byref(link_map)) != 0:
        return "?"
    return link_map.contents.l_name.decode(errors="replace")


def runtime_version(handle, path):
    """The CUDA runtime's version ("11.8"): its own answer where the driver lets it answer
    (cudaRuntimeGetVersion fails without a device), else its file's name (libcudart.so.11.8.89, as
    MindSpore's own check reads it), else the version of the pip wheel it came from."""
    number = ctypes.c_int()
    if handle.cudaRuntimeGetVersion(ctypes.byref(number)) == 0 and number.value:
        return version_text(number.value)
    found = re.search(r"libcudart\.so\.(\d+)\.(\d+)\.", os.path.basename(os.path.realpath(path)))
    if found:
        return f"{found[1]}.{found[2]}"
    if f"{os.sep}nvidia{os.sep}cuda_runtime{os.sep}" in path:
        site = path.split(f"{os.sep}nvidia{os.sep}cuda_runtime{os.sep}")[0]
        for dist in importlib.metadata.distributions(path=[site]):
            if dist.metadata["Name"] == "nvidia-cuda-runtime-cu11":
                return ".".join(dist.version.split(".")[:2])
    return None


@dataclasses.dataclass
class Driver:
    """What the NVIDIA driver says: the CUDA version it supports ("12.2"), its devices as (name, compute
    capability "8.0"), and why it found none (None when it did)."""
    version: str = None
    devices: list = dataclasses.field(default_factory=list)
    device_error: str = None


def ask_driver():
    """The driver (libcuda.so.1), asked its CUDA version, its devices and their compute capability; None
    when there is no driver."""
    cuda = load(DRIVER)
    if cuda is None:
        return None
    driver = Driver()
    number = ctypes.c_int()
    if cuda.cuDriverGetVersion(ctypes.byref(number)) == 0:
        driver.version = version_text(number.value)
    status = cuda.cuInit(0)
    if status:
        name = ctypes.c_char_p()
        cuda.cuGetErrorString(status, ctypes.byref(name))
        driver.device_error = f"{(name.value or b'').decode() or 'error'} (cuInit {status})"
        return driver
    count, device, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    cuda.cuDeviceGetCount(ctypes.byref(count))
    for index in range(count.value):
        cuda.cuDeviceGet(ctypes.byref(device), index)
        cuda.cuDeviceGetAttribute(ctypes.byref(major), CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device)
        cuda.cuDeviceGetAttribute(ctypes.byref(minor), CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device)
        name = ctypes.create_string_buffer(256)
        cuda.cuDeviceGetName(name, len(name), device)
        driver.devices.append((name.value.decode(errors="replace"), f"{major.value}.{minor.value}"))
    if not count.value:
        driver.device_error = "the driver lists no device"
    return driver


def site_packages():
    """The folders Python imports packages from: where pip put the nvidia-*-cu11 wheels."""
    return [path for path in sys.path if path and os.path.isdir(os.path.join(path, "nvidia"))]


def version_tuple(text):
    return tuple(int(part) for part in text.split("."))


def plugin_loaded():
    """Whether MindSpore's GPU plugin is mapped into this process."""
    try:
        with open("/proc/self/maps") as f:
            return "libmindspore_gpu.so" in f.read()
    except OSError:
        return False
