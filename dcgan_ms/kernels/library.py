"""Compiling the kernels' C++ sources into one library, cached, and wrapping them as MindSpore operators.

The library is compiled once with the system's C++ compiler (``$CXX``, default g++), linked against the
libdnnl inside MindSpore for its matrix product, and cached in ``$DCGAN_MS_CACHE`` (default
``~/.cache/dcgan_ms``) under a hash of the sources, compiler, flags, MindSpore and CPU architecture, so
editing a source or upgrading MindSpore rebuilds it and one home folder can serve x86 and ARM machines.
"""
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import mindspore as ms
from mindspore import ops

HERE = Path(__file__).parent
SOURCES = tuple(HERE / f"{name}.cc" for name in ("conv", "leaky_relu", "batch_norm", "normal"))
HEADER = HERE / "common.h"
FLAGS = ["-O3", "-std=c++14", "-fPIC", "-pthread", "-ffp-contract=off"]  # no fused multiply-adds:
# the kernels must round as MindSpore's separate Mul and Add kernels do


class Unavailable(Exception):
    """The compiled kernels cannot be built or used here; the message says why."""


def cache_dir():
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dcgan_ms"
    return Path(os.environ.get("DCGAN_MS_CACHE") or default)


def build():
    """Path of the compiled library, compiling it on first use (a few seconds). A failure is remembered
    too, so that every layer built in the process does not run the compiler again."""
    lib, error = _build_once()
    if error:
        raise error
    return lib


@lru_cache(maxsize=None)
def _build_once():
    try:
        return _build(), None
    except Unavailable as e:
        return None, e


def _build():
    compiler = os.environ.get("CXX", "g++")
    if not shutil.which(compiler):
        raise Unavailable(f"no C++ compiler ({compiler}) on PATH")
    ms_lib = Path(ms.__file__).parent / "lib"
    if not (ms_lib / "libdnnl.so.3").exists():
        raise Unavailable(f"this MindSpore has no {ms_lib / 'libdnnl.so.3'} to take the matrix product from")
    texts = [path.read_bytes() for path in (*SOURCES, HEADER) if path.exists()]
    key = hashlib.sha256(b"\0".join([*texts, compiler.encode(), " ".join(FLAGS).encode(), str(ms_lib).encode(),
                                     ms.__version__.encode(), platform.machine().encode()])).hexdigest()[:16]
    lib = cache_dir() / f"kernels-{key}.so"
    if lib.exists():
        return lib
    try:
        lib.parent.mkdir(parents=True, exist_ok=True)
        work = tempfile.mkdtemp(dir=lib.parent)  # then rename: parallel workers may build too
    except OSError as e:
        raise Unavailable(f"cannot write to the cache {lib.parent} ({e.strerror}); set DCGAN_MS_CACHE") from None
    try:
        _compile(compiler, ms_lib, os.path.join(work, "kernels.so"))
        os.replace(os.path.join(work, "kernels.so"), lib)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return lib


def _compile(compiler, ms_lib, out):
    """Compile the sources side by side (one process each), then link them with MindSpore's libdnnl."""
    objects = [f"{out}.{source.stem}.o" for source in SOURCES]
    compiles = [subprocess.Popen([compiler, *FLAGS, "-c", str(source), "-o", obj], stderr=subprocess.PIPE, text=True)
                for source, obj in zip(SOURCES, objects)]
    errors = [proc.communicate()[1] for proc in compiles]
    failed = [err for proc, err in zip(compiles, errors) if proc.returncode]
    if not failed:
        link = subprocess.run([compiler, "-shared", "-pthread", *objects, "-o", out, f"-L{ms_lib}", "-l:libdnnl.so.3",
                               f"-Wl,-rpath,{ms_lib}"], capture_output=True, text=True)
        failed = [link.stderr] if link.returncode else []
    if failed:
        first = next((line for line in failed[0].splitlines() if "error" in line), failed[0].strip()[:200])
        source = next((s.name for s in SOURCES if s.name in first), "the kernels")
        raise Unavailable(f"compiling {source} failed: {first}")


def same_as_first(first, *_):
    """The first input's shape or dtype: the output's, for kernels whose output is like their first input."""
    return first


def operator(name, *, out_shape, out_dtype=same_as_first, bprop=None):
    """The library's function ``name`` as a MindSpore "aot" custom operator (builds the library)."""
    return ops.Custom(f"{build()}:{name}", out_shape=out_shape, out_dtype=out_dtype, func_type="aot", bprop=bprop)
