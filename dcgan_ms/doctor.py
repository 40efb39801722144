"""``python -m dcgan_ms.doctor``: what this machine has, and what training will do with it.

One line a check, in the order a failure is best fixed: Python, MindSpore and numpy, the backends (GPU:
as MindSpore's plugin will meet it, gpu.py; Ascend: CANN against the versions MindSpore takes, set_env.sh,
devices), the C++ compiler and the compiled kernels (or the fallback and its cost here), msrun,
the shipped sample and the anime faces, the kernel cache and the output folder, free disk; then a few
real training steps of tiny networks on the chosen device (on a GPU or NPU, against the same steps on
the CPU). Exit status 0 when a run will work, 1 when
a check failed (the last line says what to fix first). ``--json``: the same as one JSON object, for nodes.

    python -m dcgan_ms.doctor                          # the CPU, runs/ as the output folder
    python -m dcgan_ms.doctor --device_target Ascend --output_dir /shared/class/runs --json
"""
import contextlib
import dataclasses
import io
import glob
import importlib.util
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
    """MindSpore's plugin folder, found without importing MindSpore (its GPU plugin loads at import)."""
    spec = importlib.util.find_spec("mindspore")
    return os.path.join(spec.submodule_search_locations[0], "lib", "plugin") if spec else ""


def check_gpu(chosen):
    """Decided as MindSpore 2.10 decides (gpu.py: CUDA_HOME and its nvcc, each library the chosen plugin
    needs, the driver's CUDA version, the devices); with GPU chosen, it readies the plugin as training does."""
    from . import cuda, gpu
    plugins = [v for v in gpu.PLUGIN_NEEDS if os.path.isfile(os.path.join(plugin_folder(), f"libmindspore_gpu.so.{v}"))]
    if not plugins:
        return Check("gpu", FAIL if chosen == "GPU" else NOTE, "this MindSpore has no GPU plugin",
                     "pip install -r requirements.txt (MindSpore 2.10's wheel carries it)" if chosen == "GPU" else "")
    if chosen != "GPU":
        wheels = "installed" if cuda.wheel_library("libcudart.so.11.0", cuda.site_packages()) else \
            f"not installed ({gpu.PIP_LINE})"
        return Check("gpu", NOTE, f"plugins for CUDA {' and '.join(plugins)}; the CUDA 11 libraries from pip: "
                     f"{wheels}; --device_target GPU checks the driver and devices")
    if "mindspore" in sys.modules and not cuda.plugin_loaded():
        return Check("gpu", FAIL, "MindSpore was imported before its GPU plugin could be readied",
                     "run python -m dcgan_ms.doctor --device_target GPU in a process of its own")
    setup = gpu.ready()
    found = gpu.describe(setup)
    if setup.problem:
        return Check("gpu", FAIL, found, setup.problem)
    if setup.device_error:
        return Check("gpu", FAIL, found, "check that nvidia-smi lists a GPU and CUDA_VISIBLE_DEVICES names it")
    return Check("gpu", NOTE, f"{found}; {'; '.join(setup.notes)}") if setup.notes else Check("gpu", OK, found)


def check_ascend(chosen):
    if not glob.glob(os.path.join(plugin_folder(), "libmindspore_ascend.so*")):
        fix = "pip install -r requirements.txt (MindSpore 2.10's wheel carries it)" if chosen == "Ascend" else ""
        return Check("ascend", FAIL if chosen == "Ascend" else NOTE, "this MindSpore has no Ascend plugin", fix)
    from .ascend import cann_version, cann_versions_supported, set_env_unset
    cann, supported = cann_version(), cann_versions_supported()
    devices, unset = len(glob.glob("/dev/davinci[0-9]*")), set_env_unset()
    found = (f"plugin present; CANN {cann or 'not found'} (MindSpore 2.10 takes {', '.join(supported) or '?'}); "
             f"{devices} NPU device(s); set_env.sh "
             f"{'not sourced (' + ', '.join(unset) + ' unset)' if unset else 'sourced'}")
    if chosen != "Ascend":
        return Check("ascend", NOTE, found)
    if cann is None:
        fix = (f"install the Ascend driver and CANN ({' or '.join(supported)}) from hiascend.com, then source "
               "/usr/local/Ascend/ascend-toolkit/set_env.sh")
    elif supported and cann not in supported:
        fix = f"CANN {cann} is not one MindSpore 2.10 takes: install CANN {' or '.join(supported)}"
    elif unset:
        fix = "source /usr/local/Ascend/ascend-toolkit/set_env.sh (in every shell that trains, msrun's too)"
    elif not devices:
        fix = "no /dev/davinci device: install the Ascend driver and firmware, then check npu-smi info"
    else:
        return Check("ascend", OK, found)
    return Check("ascend", FAIL, found, fix)


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
    from .cache import cache_dir, make_cache, untrusted_folder
    from .files import why_not_written
    cache, problem = str(cache_dir()), None
    try:
        make_cache()  # private (0700), as a run makes it
        unwritable = writable(cache)
        why = unwritable and f"cannot be written ({unwritable})"
    except OSError as e:
        why = f"cannot be made ({why_not_written(e)})"
    distrust = None if why else untrusted_folder(cache)
    if why:
        problem = f"the kernel cache {cache} {why}: set DCGAN_MS_CACHE"
    elif distrust:
        problem = (f"the kernel cache {cache} cannot be trusted ({distrust}): its kernels are not "
                   "loaded, each run builds its own (set DCGAN_MS_CACHE to a folder of yours)")
    why = writable(output_dir)
    if why:
        return Check("folders", FAIL, f"the output folder {output_dir} cannot be written ({why})",
                     "pass --output_dir, a folder of yours")
    found = f"output folder {os.path.abspath(output_dir)} writable; kernel cache {cache}"
    return Check("folders", NOTE, f"{found}; {problem}") if problem else Check("folders", OK, found)


def check_disk(output_dir):
    free = shutil.disk_usage(output_dir if os.path.isdir(output_dir) else ".").free
    found = f"{free / (1 << 30):.1f} GB free under {os.path.abspath(output_dir)}"
    if free < FREE_DISK_NEEDED:
        return Check("disk", FAIL, found, f"free at least {FREE_DISK_NEEDED >> 30} GB (the faces and a run's "
                     "checkpoints), or pass an --output_dir on another disk")
    return Check("disk", OK, found)


def check_training(chosen, output_dir):
    """Three real steps of tiny networks on the shipped sample, on ``chosen``, into a temporary folder
    under ``output_dir``; their speed is not the real run's. On a GPU or NPU, the same steps on the CPU
    (another process, same seed: the same weights, batches and noise) must give the same losses."""
    from .config import TrainConfig
    from .run_folder import read_log
    from .same_as_cpu import SAME_AS_CPU, TINY_RUN, differs_from_cpu
    from .training import train
    run = tempfile.mkdtemp(prefix=".doctor-", dir=output_dir)
    try:
        started = time.time()
        with contextlib.redirect_stderr(io.StringIO()):  # the run's own lines; what matters is below
            done = train(TrainConfig(**TINY_RUN, device_target=chosen, output_dir=os.path.join(run, chosen)))
        found = (f"{done['steps']} steps of tiny networks on {chosen} in {time.time() - started:.1f} s "
                 "(graph compile included)")
        differs = chosen != "CPU" and differs_from_cpu(read_log(os.path.join(run, chosen)), os.path.join(run, "CPU"))
        if differs:
            return Check("training", FAIL, f"{found}, but {differs}", f"training on {chosen} computes other numbers "
                         "than on the CPU: report it with this line (python -m dcgan_ms.doctor --json)")
        return Check("training", OK, found if chosen == "CPU" else
                     f"{found}; losses within {SAME_AS_CPU} of the CPU's")
    except UserError as e:
        return Check("training", FAIL, f"a tiny run on {chosen} failed: {e}", "fix what the lines above say first")
    finally:
        shutil.rmtree(run, ignore_errors=True)


def run_checks(device_target="CPU", output_dir="runs", train_steps=True):
    """Every check, in order; the device and training checks are skipped once Python or MindSpore fails.
    The GPU is checked before MindSpore is imported: its plugin loads at import (gpu.py)."""
    python = check_python()
    gpu = check_gpu(device_target) if python.status != FAIL else None
    checks = [python, check_mindspore()]
    if any(c.status == FAIL for c in checks):
        return checks
    checks += [gpu, check_ascend(device_target), check_kernels(device_target), check_msrun(),
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
