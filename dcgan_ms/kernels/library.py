"""Compiling the kernels' C++ sources into one library, cached, and wrapping them as MindSpore operators.

The library is compiled once with the system's C++ compiler (``$CXX``, default g++), linked against the
libdnnl inside MindSpore for its matrix product, and cached in ``$DCGAN_MS_CACHE`` (default
``~/.cache/dcgan_ms``, made private) under a hash of the sources, the compiler (its resolved path and
version), flags, MindSpore and CPU architecture, so editing a source or upgrading either rebuilds it.
Only a folder and library this user owns and nobody else can write (nor swap, cache.untrusted_folder)
are loaded; otherwise the kernels are built in a private temporary folder for this process, with one
line saying why. The library is opened once and checked on its descriptor; MindSpore loads it through
that descriptor (/proc/self/fd/N), so the file loaded is the file checked, whatever the path holds later.
"""
import atexit
import contextlib
import hashlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import mindspore as ms
from mindspore import ops

from .. import files
from ..cache import make_cache, untrusted, untrusted_folder, untrusted_info

HERE = Path(__file__).parent
SOURCES = tuple(HERE / f"{name}.cc" for name in ("conv", "leaky_relu", "batch_norm", "normal", "sort"))
HEADER = HERE / "common.h"
FLAGS = ["-O3", "-std=c++14", "-fPIC", "-pthread", "-ffp-contract=off"]  # no fused multiply-adds:
# the kernels must round as MindSpore's separate Mul and Add kernels do
VERSION_TIMEOUT = 30  # seconds for `compiler --version`
COMPILE_TIMEOUT = 600  # seconds for the whole build (about 10 s on two cores)
WHITE_LIST = "MS_CUSTOM_AOT_WHITE_LIST"  # MindSpore loads "aot" libraries only from under this folder


class Unavailable(Exception):
    """The compiled kernels cannot be built or used here; the message says why."""


def build():
    """Path of the compiled library, compiling it on first use (a few seconds). A failure is remembered
    too, so that every layer built in the process does not run the compiler again."""
    return _built()[0]


def loaded_path():
    """The path the library is loaded by (MindSpore, ctypes): its open, checked descriptor in
    /proc/self/fd where this system has one, else the path itself."""
    return _built()[1]


def loaded_path_or_none():
    """``loaded_path()``, or None where the library cannot be built (for kernels with a NumPy fallback)."""
    try:
        return loaded_path()
    except Unavailable:
        return None


def _built():
    lib, loaded, error = _build_once()
    if error:
        raise error
    return lib, loaded


@lru_cache(maxsize=None)
def _build_once():
    """(library path, the path it is loaded by, None), or (None, None, Unavailable): the descriptor
    checked stays open for the life of the process."""
    try:
        lib = _build()
        fd = _open_checked(lib)
        return lib, f"/proc/self/fd/{fd}" if os.path.isdir("/proc/self/fd") else str(lib), None
    except Unavailable as e:
        return None, None, e


def _open_checked(lib):
    try:
        fd = os.open(lib, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise Unavailable(f"cannot open the kernels {lib} ({e.strerror})") from None
    why = untrusted_info(os.fstat(fd), plain_file=True)
    if why:
        os.close(fd)
        raise Unavailable(f"the kernels {lib} changed after they were checked ({why})")
    return fd


def _build():
    compiler = os.environ.get("CXX", "g++")
    found = shutil.which(compiler)
    if not found:
        raise Unavailable(f"no C++ compiler ({compiler}) on PATH")
    compiler_path = os.path.realpath(found)
    ms_lib = Path(ms.__file__).parent / "lib"
    if not (ms_lib / "libdnnl.so.3").exists():
        raise Unavailable(f"this MindSpore has no {ms_lib / 'libdnnl.so.3'} to take the matrix product from")
    texts = [path.read_bytes() for path in (*SOURCES, HEADER) if path.exists()]
    key = hashlib.sha256(b"\0".join([*texts, compiler_path.encode(), compiler_version(compiler_path).encode(),
                                     " ".join(FLAGS).encode(), str(ms_lib).encode(), ms.__version__.encode(),
                                     platform.machine().encode()])).hexdigest()[:16]
    folder = library_folder()
    lib = folder / f"kernels-{key}.so"
    if lib.exists() and not untrusted(lib, plain_file=True):
        return lib
    # written whole, then renamed into place: parallel workers may build it at once
    with files.written_whole(lib, mode=0o755, what=f"the kernels into the cache {folder} (set DCGAN_MS_CACHE)",
                             failure=Unavailable, install=_install_unless_trusted) as tmp:
        _compile(compiler_path, ms_lib, tmp)
    return lib


def _install_unless_trusted(tmp, lib):
    """Put the new build at ``lib`` unless a trusted one got there first (another worker's build): a library
    that another process has open is never replaced, as its /proc/self/fd path would then name a deleted
    file, which MindSpore cannot load."""
    try:
        os.link(tmp, lib)  # only where there is none
    except FileExistsError:
        if untrusted(lib, plain_file=True):
            os.replace(tmp, lib)


def compiler_version(compiler_path):
    """The first line of ``compiler --version``: part of the cache key, so an upgraded compiler rebuilds."""
    try:
        proc = subprocess.run([compiler_path, "--version"], capture_output=True, text=True, timeout=VERSION_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"the C++ compiler {compiler_path} did not answer --version in {VERSION_TIMEOUT} s") from None
    except OSError as e:
        raise Unavailable(f"the C++ compiler {compiler_path} cannot start ({e.strerror})") from None
    if proc.returncode:
        raise Unavailable(f"the C++ compiler {compiler_path} --version failed (status {proc.returncode})")
    return (proc.stdout.strip().splitlines() or [""])[0]


def library_folder():
    """The cache folder (made private, 0700) when it can be trusted; else, with one line saying why, a
    private temporary folder that lasts as long as this process."""
    try:
        folder = make_cache()
        why = untrusted_folder(folder)
    except OSError as e:
        folder, why = e.filename, f"cannot create it ({e.strerror})"
    white_list = os.environ.get(WHITE_LIST)
    if why is None and white_list and not is_within(folder, white_list):
        why = f"it is outside {WHITE_LIST}={white_list}"
    if why is None:
        return folder
    if white_list:  # MindSpore would refuse a temporary folder too
        raise Unavailable(f"the kernel cache {folder} cannot be used ({why}): set DCGAN_MS_CACHE to a folder of "
                          f"yours inside {white_list}")
    private = Path(tempfile.mkdtemp(prefix="dcgan_ms-kernels-"))
    atexit.register(shutil.rmtree, private, True)
    print(f"note: not using the kernel cache {folder} ({why}): building the kernels in {private} for this run; "
          "set DCGAN_MS_CACHE to a folder of your own to keep them", file=sys.stderr)
    return private


def is_within(path, folder):
    """Whether ``path`` is ``folder`` or below it, after resolving links (as MindSpore checks)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def _compile(compiler, ms_lib, out):
    """Compile the sources side by side (one process each), then link them with MindSpore's libdnnl;
    all within COMPILE_TIMEOUT seconds."""
    objects = [f"{out}.{source.stem}.o" for source in SOURCES]
    deadline = time.monotonic() + COMPILE_TIMEOUT
    compiles = [subprocess.Popen([compiler, *FLAGS, "-c", str(source), "-o", obj], stderr=subprocess.PIPE, text=True,
                                 start_new_session=True) for source, obj in zip(SOURCES, objects)]
    errors = [_finish(proc, deadline, compiles) for proc in compiles]
    failed = [err for proc, err in zip(compiles, errors) if proc.returncode]
    if not failed:
        link = subprocess.Popen([compiler, "-shared", "-pthread", *objects, "-o", out, f"-L{ms_lib}",
                                 "-l:libdnnl.so.3", f"-Wl,-rpath,{ms_lib}"], stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        error = _finish(link, deadline, [link])
        failed = [error] if link.returncode else []
    if failed:
        first = next((line for line in failed[0].splitlines() if "error" in line), failed[0].strip()[:200])
        source = next((s.name for s in SOURCES if s.name in first), "the kernels")
        raise Unavailable(f"compiling {source} failed: {first}")


def _finish(proc, deadline, group):
    """``proc``'s standard error once it ends; if the deadline passes first, every process of ``group``
    and what they started (each leads a session of its own) is killed and the build is Unavailable."""
    try:
        return proc.communicate(timeout=max(0.0, deadline - time.monotonic()))[1]
    except subprocess.TimeoutExpired:
        for other in group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(other.pid, signal.SIGKILL)
            other.communicate()
        raise Unavailable(f"compiling the kernels took over {COMPILE_TIMEOUT} s: the compiler seems to hang") from None


def same_as_first(first, *_):
    """The first input's shape or dtype: the output's, for kernels whose output is like their first input."""
    return first


def operator(name, *, out_shape, out_dtype=same_as_first, bprop=None):
    """The library's function ``name`` as a MindSpore "aot" custom operator (builds the library). Unless
    the user set MS_CUSTOM_AOT_WHITE_LIST, it is set to the library's folder while MindSpore checks the
    path, so that MindSpore itself refuses a library that a link has moved elsewhere."""
    lib, path = build(), loaded_path()
    unset = WHITE_LIST not in os.environ
    if unset:
        os.environ[WHITE_LIST] = str(lib.parent)
    try:
        return ops.Custom(f"{path}:{name}", out_shape=out_shape, out_dtype=out_dtype, func_type="aot", bprop=bprop)
    finally:
        if unset:
            del os.environ[WHITE_LIST]
