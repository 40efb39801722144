"""``python -m dcgan_ms.doctor``: what this machine has, and what training will do with it.

One line a check, in the order a failure is best fixed: Python, MindSpore and numpy, the backends this
MindSpore build has (GPU: its plugins, the CUDA and cuDNN libraries found, devices; Ascend: its plugin,
CANN, devices), the C++ compiler and the compiled kernels (or the fallback and its cost here), msrun,
the shipped sample and the anime faces, the kernel cache and the output folder, free disk; then a few
real training steps of tiny networks on the chosen device. Exit status 0 when a run will work, 1 when
a check failed (the last line says what to fix first). ``--json`` gives the same as one JSON object,
for a teacher collecting many nodes.

    python -m dcgan_ms.doctor                          # the CPU, runs/ as the output folder
    python -m dcgan_ms.doctor --device_target Ascend --output_dir /shared/class/runs --json
"""
import contextlib
import ctypes.util
import dataclasses
import io
import glob
import json
import os
import platform
import shutil
import sys
import tempfile
import time

from .errors import ArgumentParser, UserError, cli, first_line

OK, NOTE, FAIL = "ok", "note", "FAIL"
PYTHONS = ((3, 10), (3, 11), (3, 12))  # MindSpore 2.10's wheels
FREE_DISK_NEEDED = 2 << 30  # bytes: the faces (0.5 GB zipped, as much unpacked) and a run's checkpoints
# MindSpore 2.10's GPU plugins: the CUDA version of each -> the cuDNN it was built with
CUDA_PLUGINS = {"11.1": "8.0", "11.6": "8.5"}


@dataclasses.dataclass
class Check:
    """One line of the report: ``name``, ``status`` (ok, note or FAIL) and what was found; for a FAIL,
    ``fix`` says what to do."""
    name: str
    status: str
    found: str
    fix: str = ""

    def line(self):
        return f"{self.status:<4}  {self.name:<10} {self.found}" + (f": {self.fix}" if self.fix else "")


def check_python():
    version = sys.version_info[:2]
    found = f"Python {platform.python_version()} on {platform.platform()}"
    if version not in PYTHONS:
        return Check("python", FAIL, found, "MindSpore 2.10 has wheels for Python 3.10, 3.11 and 3.12: make the "
                     "venv with one of them")
    return Check("python", OK, found)


def check_mindspore():
    try:
        import mindspore as ms
        import numpy as np
    except ImportError as e:
        return Check("mindspore", FAIL, f"cannot import it ({first_line(e)})", "pip install -r requirements.txt")
    found = f"MindSpore {ms.__version__}, numpy {np.__version__}"
    if int(np.__version__.split(".")[0]) >= 2:
        return Check("mindspore", FAIL, found, 'MindSpore 2.10 needs numpy 1: pip install "numpy<2"')
    return Check("mindspore", OK, found)


def plugin_folder():
    import mindspore as ms
    return os.path.join(os.path.dirname(ms.__file__), "lib", "plugin")


def library_found(name):
    """The file name the dynamic loader would find for lib``name`` (ldconfig's cache or LD_LIBRARY_PATH;
    its version is in the name, e.g. libcudnn.so.8), or None."""
    found = ctypes.util.find_library(name)
    if found:
        return found
    folders = filter(None, os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep))
    paths = sorted(path for folder in folders for path in glob.glob(os.path.join(folder, f"lib{name}.so.*")))
    return os.path.basename(paths[-1]) if paths else None


def check_gpu(chosen):
    plugins = sorted(v for v in CUDA_PLUGINS if glob.glob(os.path.join(plugin_folder(), f"libmindspore_gpu.so.{v}")))
    status = FAIL if chosen == "GPU" else NOTE
    if not plugins:
        return Check("gpu", status, "this MindSpore build has no GPU plugin",
                     "install MindSpore's GPU build (mindspore.cn/install)" if chosen == "GPU" else "")
    needs = ", ".join(f"CUDA {v} with cuDNN {CUDA_PLUGINS[v]}" for v in plugins)
    libraries = {lib: library_found(lib) for lib in ("cuda", "cudart", "cudnn")}
    missing = [lib for lib, file in libraries.items() if not file]
    devices = len(glob.glob("/dev/nvidia[0-9]*"))
    present = ", ".join(file for file in libraries.values() if file)
    found = f"plugins for {needs}; found {present or 'no CUDA library'}; {devices} NVIDIA device(s)"
    if missing or not devices:
        why = (f"no {', '.join('lib' + m for m in missing)} found" if missing else "") + \
              ("; " if missing and not devices else "") + ("no /dev/nvidia device" if not devices else "")
        return Check("gpu", status, f"{found}; {why}",
                     f"install the NVIDIA driver and {needs} (their lib folders on LD_LIBRARY_PATH), or train on CPU"
                     if chosen == "GPU" else "")
    return Check("gpu", OK, found)


def cann_version():
    """The CANN toolkit's version (from its version.cfg or version.info), or None."""
    home = os.environ.get("ASCEND_HOME_PATH") or os.environ.get("ASCEND_TOOLKIT_HOME") or \
        "/usr/local/Ascend/ascend-toolkit/latest"
    for name in ("version.cfg", "version.info", os.path.join("compiler", "version.info")):
        path = os.path.join(home, name)
        if os.path.isfile(path):
            for line in open(path, errors="replace"):
                if "version" in line.lower() and "=" in line:
                    return line.split("=", 1)[1].strip().strip('"[]')
    return None


def check_ascend(chosen):
    status = FAIL if chosen == "Ascend" else NOTE
    if not glob.glob(os.path.join(plugin_folder(), "libmindspore_ascend.so*")):
        return Check("ascend", status, "this MindSpore build has no Ascend plugin",
                     "install MindSpore's Ascend build (mindspore.cn/install)" if chosen == "Ascend" else "")
    cann, devices = cann_version(), len(glob.glob("/dev/davinci[0-9]*"))
    found = f"plugin present; CANN {cann or 'not found'}; {devices} NPU device(s)"
    if cann is None or not devices:
        return Check("ascend", status, found,
                     "install the Ascend driver and the CANN version this MindSpore needs (mindspore.cn/install), "
                     "then source set_env.sh" if chosen == "Ascend" else "")
    return Check("ascend", OK, found)


def check_kernels(chosen):
    if chosen != "CPU":
        return Check("kernels", OK, f"not used on {chosen}: MindSpore's own convolutions")
    from .kernels.choice import builtin_cost
    from .kernels.library import Unavailable, build
    from .runtime import ONEDNN_LIMITS
    try:
        return Check("kernels", OK, f"compiled CPU kernels built with {os.environ.get('CXX', 'g++')}: {build()}")
    except Unavailable as e:
        limit = next((os.environ[name] for name in ONEDNN_LIMITS if os.environ.get(name)), "AVX2")
        return Check("kernels", NOTE, f"{e}; training falls back to MindSpore's convolutions: {builtin_cost(limit)}")


def check_msrun():
    found = shutil.which("msrun")
    if not found:
        return Check("msrun", NOTE, "not on PATH: one device trains; for several, activate the venv that has "
                     "mindspore (msrun comes with it)")
    return Check("msrun", OK, found)


def check_data():
    from .data import FACES_DIR, SAMPLE_DIR, find_images
    from .data.faces import FACES_IMAGES, MARKER
    try:
        sample = len(find_images(SAMPLE_DIR))
    except UserError as e:
        return Check("data", FAIL, f"the shipped sample: {e}", "restore data/sample from the repository")
    if os.path.isfile(os.path.join(FACES_DIR, MARKER)):
        faces = f"the anime faces unpacked in {FACES_DIR}"
    elif os.path.isfile(os.path.join(FACES_DIR, "faces.zip")):
        faces = f"faces.zip in {FACES_DIR}, unpacked by the first run"
    elif os.path.isdir(FACES_DIR) and any(os.scandir(FACES_DIR)):
        faces = (f"{FACES_DIR} holds files but no complete set (an unpack or download that did not finish): the "
                 "next run with --dataset faces says what to do")
    else:
        faces = (f"the {FACES_IMAGES:,} anime faces not here yet (the first run with --dataset faces downloads them, "
                 "or put faces.zip in --data_root by hand)")
    return Check("data", OK, f"sample: {sample:,} images in {SAMPLE_DIR}; {faces}")


def writable(folder):
    """None if a file can be made in ``folder`` (made if missing), else why not."""
    from .files import why_not_written
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            return None
    except OSError as e:
        return why_not_written(e)


def check_folders(output_dir):
    from .kernels.library import cache_dir, untrusted
    problems = []
    cache = str(cache_dir())
    if writable(cache):
        problems.append(f"the kernel cache {cache} cannot be written ({writable(cache)}): set DCGAN_MS_CACHE")
    elif untrusted(cache_dir()):
        problems.append(f"the kernel cache {cache} is another user's or others can write it: its kernels are not "
                        "loaded, each run builds its own (set DCGAN_MS_CACHE to a folder of yours)")
    why = writable(output_dir)
    if why:
        return Check("folders", FAIL, f"the output folder {output_dir} cannot be written ({why})",
                     "pass --output_dir, a folder of yours")
    found = f"output folder {os.path.abspath(output_dir)} writable; kernel cache {cache}"
    return Check("folders", NOTE, f"{found}; {problems[0]}") if problems else Check("folders", OK, found)


def check_disk(output_dir):
    free = shutil.disk_usage(output_dir if os.path.isdir(output_dir) else ".").free
    found = f"{free / (1 << 30):.1f} GB free under {os.path.abspath(output_dir)}"
    if free < FREE_DISK_NEEDED:
        return Check("disk", FAIL, found, f"free at least {FREE_DISK_NEEDED >> 30} GB (the faces and a run's "
                     "checkpoints), or pass an --output_dir on another disk")
    return Check("disk", OK, found)


def check_training(chosen, output_dir):
    """Three real steps of tiny networks on the shipped sample, on ``chosen``, into a temporary folder
    under ``output_dir``; their speed is not the real run's."""
    from .config import TrainConfig
    from .training import train
    run = tempfile.mkdtemp(prefix=".doctor-", dir=output_dir)
    try:
        started = time.time()
        with contextlib.redirect_stderr(io.StringIO()):  # the run's own lines; what matters is below
            done = train(TrainConfig(dataset="sample", device_target=chosen, ngf=4, ndf=4, nz=8, batch_size=8,
                                     max_steps=3, output_dir=run, no_progress=True, swd_every=0))
        return Check("training", OK, f"{done['steps']} steps of tiny networks on {chosen} in "
                     f"{time.time() - started:.1f} s (graph compile included)")
    except UserError as e:
        return Check("training", FAIL, f"a tiny run on {chosen} failed: {e}", "fix what the lines above say first")
    finally:
        shutil.rmtree(run, ignore_errors=True)


def run_checks(device_target="CPU", output_dir="runs", train_steps=True):
    """Every check, in order; the device and training checks are skipped once Python or MindSpore fails."""
    checks = [check_python(), check_mindspore()]
    if any(c.status == FAIL for c in checks):
        return checks
    checks += [check_gpu(device_target), check_ascend(device_target), check_kernels(device_target), check_msrun(),
               check_data(), check_folders(output_dir)]
    if checks[-1].status != FAIL:
        checks.append(check_disk(output_dir))
    if train_steps and not any(c.status == FAIL for c in checks):
        checks.append(check_training(device_target, output_dir))
    return checks


def build_parser():
    p = ArgumentParser(prog="python -m dcgan_ms.doctor", description="Check this machine for dcgan_ms: one line a "
                       "check, then a few real training steps. Exit 0 when a run will work.")
    p.add_argument("--device_target", choices=("CPU", "GPU", "Ascend"), default="CPU",
                   help="the device training will use, checked with a few real steps (default: CPU)")
    p.add_argument("--output_dir", default="runs", help="the folder runs will write into (default: runs)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of lines, for collecting nodes")
    p.add_argument("--no_training", action="store_true", help="skip the few training steps at the end")
    return p


@cli
def main(argv=None):
    args = build_parser().parse_args(argv)
    checks = run_checks(args.device_target, args.output_dir, train_steps=not args.no_training)
    failed = [c for c in checks if c.status == FAIL]
    if args.json:
        print(json.dumps({"ready": not failed, "host": platform.node(), "device_target": args.device_target,
                          "checks": [dataclasses.asdict(c) for c in checks]}, indent=1))
    else:
        for c in checks:
            print(c.line())
        print(f"not ready: fix first: {failed[0].name}: {failed[0].fix}" if failed else
              f"ready: python -m dcgan_ms.train --device_target {args.device_target} will run here")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
