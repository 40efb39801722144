"""Crash-safe, resumable training: kill -9 and resume, damaged checkpoints, non-finite losses, a full disk.

Found on this machine (MindSpore 2.10, CPU): training is deterministic for a fixed seed, so a run that
is killed and resumed logs exactly the losses of the same run left alone; the first test checks that.
"""
import csv
import re
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time

import mindspore as ms
import numpy as np
import pytest

from conftest import copy_sample_images, run_cli
from dcgan_ms import resume, run_folder
from dcgan_ms.checkpoint import restore
from dcgan_ms.errors import UserError
from dcgan_ms.loop import Callback

STEPS_PER_EPOCH, EPOCHS = 9, 3  # 72 images in batches of 8


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return str(copy_sample_images(tmp_path_factory.mktemp("resume") / "faces", 8 * STEPS_PER_EPOCH))


def flags(images, out, *extra):
    return ["dcgan_ms.train", "--data_root", images, "--batch_size", "8", "--ngf", "8", "--ndf", "8", "--nz", "16",
            "--epochs", str(EPOCHS), "--instance_noise", "0.1", "--output_dir", str(out), "--no_progress", *extra]


def read_log(out):
    with open(os.path.join(out, "log.csv"), newline="") as f:
        return list(csv.DictReader(f))


def losses(rows):
    return [(r["step"], r["epoch"], r["g_loss"], r["d_loss"], r["d_real"], r["d_fake"]) for r in rows]


def signal_when_logged(run, out, step, signum, timeout=300):
    """Send ``signum`` to ``run`` the moment its log.csv holds ``step`` (polled every millisecond, on the
    file's size: a step of these tiny networks takes several), then wait for it to end."""
    log, size, deadline = out / "log.csv", -1, time.monotonic() + timeout
    while run.poll() is None and time.monotonic() < deadline:
        if log.exists() and log.stat().st_size != size:
            size = log.stat().st_size
            if any(r["step"] == str(step) for r in read_log(out)):
                break
        time.sleep(0.001)
    run.send_signal(signum)
    run.wait(timeout=timeout)


def checkpoint_steps(out):
    return sorted(int(os.path.basename(p)[5:12]) for p in run_folder.state_paths(str(out)))


# The quickstart's knobs too: the instance noise fades over steps the kill falls among.
KNOBS = ("--instance_noise_steps", "15", "--label_smoothing", "0.1", "--lr_d", "4e-4", "--beta2", "0.99", "--ema", "0.9")


@pytest.mark.slow
def test_kill_9_mid_epoch_then_resume_continues_the_same_run(tmp_path, images):
    reference = tmp_path / "left_alone"
    proc = run_cli(*flags(images, reference, "--save_every", "2", *KNOBS))
    assert proc.returncode == 0, proc.stderr
    expected = losses(read_log(reference))
    assert [int(r[0]) for r in expected] == list(range(1, STEPS_PER_EPOCH * EPOCHS + 1))

    out = tmp_path / "killed"
    with open(tmp_path / "killed.err", "w") as err:
        run = subprocess.Popen([sys.executable, "-m", *flags(images, out, "--save_every", "2", *KNOBS)],
                               stdout=subprocess.DEVNULL, stderr=err)
        signal_when_logged(run, out, STEPS_PER_EPOCH + 2, signal.SIGKILL)  # early in epoch 2, past a checkpoint
    assert run.returncode == -signal.SIGKILL, (tmp_path / "killed.err").read_text()
    logged = [int(r["step"]) for r in read_log(out) if r["step"].isdigit()]
    assert STEPS_PER_EPOCH < logged[-1] < 2 * STEPS_PER_EPOCH, f"not killed mid-epoch 2: at step {logged[-1]}"
    kept = checkpoint_steps(out)
    for path in run_folder.state_paths(str(out)):  # every checkpoint a kill -9 left behind is whole
        resume.read_state(path)
    last = kept[-1]
    assert logged[-1] - last <= 2, "the kill lost more than the steps since the last checkpoint"

    proc = run_cli("dcgan_ms.train", "--resume", "--output_dir", str(out), "--no_progress")
    assert proc.returncode == 0, proc.stderr
    assert f"resuming from {out}/checkpoints/step_{last:07d}.ckpt: step {last}," in proc.stderr
    assert f"done: {STEPS_PER_EPOCH * EPOCHS - last} steps" in proc.stderr
    resumed = losses(read_log(out))
    assert [int(r[0]) for r in resumed] == list(range(1, STEPS_PER_EPOCH * EPOCHS + 1)), "gaps or duplicates"
    assert resumed == expected  # deterministic on CPU: the same losses as the run that was left alone
    assert sorted(os.listdir(out / "samples")) == [f"epoch_{e:03d}.png" for e in range(1, EPOCHS + 1)]
    np.testing.assert_array_equal(np.load(out / "fixed_noise.npy"), np.load(reference / "fixed_noise.npy"))
    averaged = [ms.load_checkpoint(str(run / "generator.ckpt")) for run in (reference, out)]  # --ema: restored too
    assert sorted(averaged[0]) == sorted(averaged[1]) and "generator.0.weight" in averaged[0]
    for name, value in averaged[0].items():
        np.testing.assert_array_equal(value.asnumpy(), averaged[1][name].asnumpy(), err_msg=name)


def corrupt(path, how):
    data = open(path, "rb").read()
    if how == "truncate":
        data = data[: len(data) // 2]
    else:  # one flipped bit in the middle of the weights
        middle = len(data) // 2
        data = data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1:]
    open(path, "wb").write(data)


@pytest.mark.slow
def test_damaged_checkpoints_are_named_and_resume_falls_back(tmp_path, images):
    out = tmp_path / "run"
    proc = run_cli(*flags(images, out, "--max_steps", "6", "--save_every", "1", "--keep_checkpoints", "3"))
    assert proc.returncode == 0, proc.stderr
    assert checkpoint_steps(out) == [4, 5, 6]  # the newest --keep_checkpoints
    first_run = losses(read_log(out))
    corrupt(run_folder.state_paths(str(out))[0], "truncate")  # step 6
    corrupt(run_folder.state_paths(str(out))[1], "flip")  # step 5: only the CRC can tell

    proc = run_cli("dcgan_ms.train", "--resume", "--output_dir", str(out), "--no_progress")
    assert proc.returncode == 0, proc.stderr
    for step in (6, 5):
        assert f"warning: resume checkpoint {out}/checkpoints/step_{step:07d}.ckpt is damaged or truncated" in \
            proc.stderr
    assert "Traceback" not in proc.stderr and "[ERROR]" not in proc.stderr
    assert f"resuming from {out}/checkpoints/step_0000004.ckpt: step 4" in proc.stderr
    assert losses(read_log(out)) == first_run  # steps 5 and 6 done again, logged once

    corrupt(run_folder.state_paths(str(out))[0], "flip")  # naming a damaged checkpoint is an error, not a fallback
    proc = run_cli("dcgan_ms.train", "--resume", run_folder.state_paths(str(out))[0], "--no_progress")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: resume checkpoint {out}/checkpoints/step_")

    # A new run must not silently replace one that can be resumed.
    proc = run_cli(*flags(images, out, "--max_steps", "2"))
    assert proc.returncode == 2
    assert "already holds a training run" in proc.stderr.strip().splitlines()[-1]
    proc = run_cli("dcgan_ms.train", "--resume", "--output_dir", str(out), "--ngf", "16")
    assert proc.returncode == 2
    assert "--ngf 16 differs from the run being resumed (8)" in proc.stderr.strip().splitlines()[-1]
    proc = run_cli("dcgan_ms.train", "--resume", "--output_dir", str(out), "--label_smoothing", "0.2")
    assert proc.returncode == 2
    assert "--label_smoothing 0.2 differs from the run being resumed (0.0)" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_nonfinite_losses_stop_and_keep_the_last_good_checkpoint(tmp_path, images):
    out = tmp_path / "run"
    # A learning rate of 1e30 moves every weight by ~1e30 in the first Adam step: the second step overflows.
    proc = run_cli(*flags(images, out, "--lr", "1e30", "--save_every", "1"))
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: losses became non-finite at step ") and "try a lower --lr" in last, last
    rows = read_log(out)
    assert rows and all(np.isfinite(float(r["g_loss"])) and np.isfinite(float(r["d_loss"])) for r in rows)
    state = resume.latest_state(str(out))
    assert state["step"] == len(rows)
    assert all(np.isfinite(p.asnumpy()).all() for p in state["params"].values())


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_saves_and_resume_finishes(tmp_path, images, signum):
    out = tmp_path / "run"
    with open(tmp_path / "err", "w") as err:
        run = subprocess.Popen([sys.executable, "-m", *flags(images, out)], stdout=subprocess.DEVNULL,
                               stderr=err)
        signal_when_logged(run, out, 3, signum)
    text = (tmp_path / "err").read_text()
    assert run.returncode == 130, text
    done = len(read_log(out))
    assert f"interrupted at step {done}: saving" in text and "Traceback" not in text
    assert checkpoint_steps(out)[-1] == done  # nothing done is lost
    proc = run_cli("dcgan_ms.train", "--resume", "--output_dir", str(out), "--no_progress")
    assert proc.returncode == 0, proc.stderr
    assert [int(r["step"]) for r in read_log(out)] == list(range(1, STEPS_PER_EPOCH * EPOCHS + 1))


class CtrlCTwice(Callback):
    """Presses Ctrl-C twice after step ``at``: the first is taken (Python runs its handler when os.kill
    returns), then the second arrives while the first still waits for the step's end."""

    def __init__(self, at):
        self.at = at

    def on_step_end(self, position, losses, real_imgs):
        if position.step == self.at:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)


def test_a_second_ctrl_c_aborts_at_once_and_names_the_checkpoint_kept(tmp_path, images, monkeypatch):
    from dcgan_ms import train, training
    out = tmp_path / "run"
    standard = training.standard_callbacks
    monkeypatch.setattr(training, "standard_callbacks", lambda s: [CtrlCTwice(at=5), *standard(s)])
    with pytest.raises(UserError) as raised:
        training.train(train.parse_args(flags(images, out, "--save_every", "2")[1:]))
    assert str(raised.value) == (f"aborted at step 5 without saving; the newest checkpoint in {out}/checkpoints is "
                                 f"from step 4: continue with --resume --output_dir {out}")
    assert checkpoint_steps(out) == [2, 4]
    assert [int(r["step"]) for r in read_log(out)] == [1, 2, 3, 4]  # told before the log heard of step 5
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handlers are given back


def networks_and_optimizers(width):
    from dcgan_ms.models import Discriminator, Generator
    from dcgan_ms.step import make_optimizers
    g, d = Generator(16, width), Discriminator(width)
    g.set_train()
    d.set_train()
    return (g, d, *make_optimizers(g, d))


@pytest.mark.slow
def test_resume_restores_weights_and_optimizer_states_exactly(tmp_path):
    from dcgan_ms.step import make_train_step

    runs = []
    for seed in (5, 6):  # the second network starts from other weights, then takes the first one's state
        ms.set_seed(seed)
        cells = networks_and_optimizers(8)
        runs.append((cells, make_train_step(*cells)))
    (cells_a, step_a), (cells_b, step_b) = runs
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.uniform(-1, 1, (4, 3, 64, 64)).astype(np.float32))
    z = ms.Tensor(rng.standard_normal((4, 16, 1, 1)).astype(np.float32))
    for _ in range(3):
        step_a(x, z)
    fixed = rng.standard_normal((64, 16, 1, 1)).astype(np.float32)
    path = resume.save_state(str(tmp_path), cells_a, fixed, keep=2, step=3, epoch=1, step_in_epoch=3,
                             config={"ngf": 8})
    state = resume.read_state(path)
    assert (state["step"], state["epoch"], state["step_in_epoch"]) == (3, 1, 3)
    assert state["config"] == {"ngf": 8}
    np.testing.assert_array_equal(state["fixed_noise"], fixed)
    restore(cells_b, state["params"], source=state["path"], into="this run")

    def everything(cells):
        return {p.name: p.asnumpy().copy() for c in cells for p in c.get_parameters()}

    a, b = everything(cells_a), everything(cells_b)
    assert a.keys() == b.keys()
    assert any("moment1" in k for k in a) and "optim_g.global_step" in a and "optim_d.beta2_power" in a
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert int(b["optim_g.global_step"].item()) == 3
    # The next step is the same step: Adam's moments and step count came along, not only the weights.
    np.testing.assert_array_equal([float(v) for v in step_a(x, z)], [float(v) for v in step_b(x, z)])

    with pytest.raises(UserError, match="does not fit this run: .* has shape"):
        restore(networks_and_optimizers(16), state["params"], source=state["path"], into="this run")


def test_full_disk_while_saving_keeps_the_previous_checkpoint(tmp_path, images, monkeypatch):
    from dcgan_ms import train, training

    real_save = ms.save_checkpoint
    calls = {"state": 0}

    def save_until_the_disk_fills(obj, path, **kwargs):
        if kwargs.get("crc_check"):  # resume checkpoints: the second one meets a full disk half-way
            calls["state"] += 1
            if calls["state"] == 2:
                with open(path, "wb") as f:
                    f.write(b"\0" * 1000)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, path, **kwargs)

    monkeypatch.setattr(ms, "save_checkpoint", save_until_the_disk_fills)
    out = tmp_path / "run"
    args = train.parse_args(flags(images, out, "--save_every", "2", "--max_steps", "6")[1:])
    with pytest.raises(UserError, match=r"could not write checkpoint .*step_0000004\.ckpt: the disk is full: "
                                        r"free some space$"):
        training.train(args)
    assert checkpoint_steps(out) == [2]
    assert resume.latest_state(str(out))["step"] == 2
    assert not [n for n in os.listdir(out / "checkpoints") if n.startswith(".")], "temporary file left behind"
    assert [int(r["step"]) for r in read_log(out)] == [1, 2, 3, 4]  # resume from step 2 drops 3 and 4


def half_written_then_disk_full(path):
    """What a full disk does to a write: part of the file, then ENOSPC."""
    with open(path, "wb") as f:
        f.write(b"\0" * 1000)
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.slow
@pytest.mark.parametrize("written", ["generator.ckpt", "samples/epoch_001.png", "losses.png", "progress.gif"])
def test_a_disk_that_fills_while_a_weight_file_or_picture_is_written_is_one_line_and_loses_no_step(
        tmp_path, images, monkeypatch, written):
    """At the end of an epoch (9 steps) the resume checkpoint is written first; the disk then fills while
    G's weights or a picture is written: one line names the file and the cause, no partial file is left
    under its name or a temporary one, and --resume continues from the step the checkpoint holds."""
    import matplotlib.figure
    from PIL import Image
    from dcgan_ms import train, training
    out = tmp_path / "run"
    target = os.path.basename(written)
    stem, extension = os.path.splitext(target)

    def failing(real, path_of):  # real(...), unless it writes the file chosen to meet the full disk
        def write(*args, **kwargs):
            path = str(path_of(*args, **kwargs))  # written_whole's: .NAME.tmp-XXXX/NAME beside the target
            if os.path.basename(os.path.dirname(path)).startswith(f".{target}.tmp-"):
                half_written_then_disk_full(path)
            return real(*args, **kwargs)
        return write

    monkeypatch.setattr(ms, "save_checkpoint", failing(ms.save_checkpoint, lambda net, path, **kw: path))
    monkeypatch.setattr(Image.Image, "save", failing(Image.Image.save, lambda image, path, *a, **kw: path))
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        failing(matplotlib.figure.Figure.savefig, lambda fig, path, *a, **kw: path))
    args = train.parse_args(flags(images, out, "--max_steps", str(STEPS_PER_EPOCH))[1:])
    what = "checkpoint " if written.endswith(".ckpt") else ""
    with pytest.raises(UserError) as raised:
        training.train(args)
    assert str(raised.value) == f"could not write {what}{out / written}: the disk is full: free some space"
    assert not (out / written).exists()
    left = [name for folder in (out, out / "samples", out / "checkpoints") for name in os.listdir(folder)
            if name.startswith(".") and name != ".lock"]
    assert left == [], "temporary files left behind"
    assert checkpoint_steps(out) == [STEPS_PER_EPOCH]  # the epoch's steps are kept
    monkeypatch.undo()  # (in this process: it holds the run folder's lock while it lives)
    done = training.train(train.parse_args(["--resume", "--output_dir", str(out), "--max_steps",
                                            str(STEPS_PER_EPOCH + 1), "--no_progress"]))
    assert done["steps"] == STEPS_PER_EPOCH + 1
    assert (out / written).is_file() == (written != "samples/epoch_001.png")  # a past epoch's grid is not redrawn
    assert [int(r["step"]) for r in read_log(out)] == list(range(1, STEPS_PER_EPOCH + 2))


def test_output_folder_not_writable(tmp_path, images):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    proc = run_cli(*flags(images, blocker / "run"))
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot write to output folder {blocker}/run") and "writable --output_dir" in last
    if os.geteuid() == 0:
        pytest.skip("running as root, which may write into read-only folders: the chmod case cannot be checked")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    proc = run_cli(*flags(images, locked / "run"))
    assert proc.returncode == 2 and "cannot write to output folder" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_an_edited_flag_in_a_checkpoint_is_checked_as_the_command_line_checks_it(tmp_path, images):
    """keep_checkpoints edited to 0 would make the rotation delete every checkpoint, the new one too."""
    import json
    out = tmp_path / "run"
    assert run_cli(*flags(images, out, "--max_steps", "2")).returncode == 0
    path = run_folder.state_paths(str(out))[0]
    state = resume.read_state(path)
    state["config"]["keep_checkpoints"] = 0
    ms.save_checkpoint([{"name": name, "data": p} for name, p in state["params"].items()] +
                       [{"name": "fixed_noise", "data": ms.Tensor(state["fixed_noise"])}], path,
                       append_dict={"step": state["step"], "epoch": state["epoch"],
                                    "step_in_epoch": state["step_in_epoch"], "config": json.dumps(state["config"])},
                       crc_check=True)
    proc = run_cli("dcgan_ms.train", "--resume", "--output_dir", str(out), "--max_steps", "4", "--no_progress")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: the run being resumed records --keep_checkpoints 0, which is not valid (must be greater than 0, got "
        "0): its checkpoint was edited or is damaged; resume from another, or start a new run")
    assert run_folder.state_paths(str(out)) == [path]


@pytest.mark.slow
def test_overwrite_deletes_the_old_run_only_once_the_new_run_is_set_up(tmp_path, images):
    out = tmp_path / "run"
    assert run_cli(*flags(images, out, "--max_steps", str(STEPS_PER_EPOCH + 2))).returncode == 0
    old, old_grids = checkpoint_steps(out), sorted(os.listdir(out / "samples"))
    assert old == [STEPS_PER_EPOCH, STEPS_PER_EPOCH + 2] and old_grids == ["epoch_001.png", "epoch_002.png"]
    proc = run_cli(*flags(str(tmp_path / "no-such-folder"), out, "--max_steps", "1", "--overwrite"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr.strip().splitlines()[-1]
    assert checkpoint_steps(out) == old and sorted(os.listdir(out / "samples")) == old_grids  # destroyed nothing
    proc = run_cli(*flags(images, out, "--max_steps", "1", "--overwrite", "--seed", "7"))
    assert proc.returncode == 0, proc.stderr
    # The old run's checkpoints, log and grids are gone (its epoch 2 grid would show in the new run's
    # report); a later --resume takes the new run's, with its seed.
    assert checkpoint_steps(out) == [1] and [int(r["step"]) for r in read_log(out)] == [1]
    assert sorted(os.listdir(out / "samples")) == ["epoch_001.png"]
    assert "epoch 002" not in (out / "report.html").read_text()
    proc = run_cli("dcgan_ms.train", "--resume", "--output_dir", str(out), "--max_steps", "3", "--no_progress")
    assert proc.returncode == 0, proc.stderr
    assert f"resuming from {out}/checkpoints/step_0000001.ckpt: step 1," in proc.stderr
    assert [int(r["step"]) for r in read_log(out)] == [1, 2, 3]
    assert json.loads((out / "config.json").read_text())["seed"] == 7


@pytest.mark.slow
def test_a_run_resumed_where_its_noise_generator_cannot_be_built_says_so(tmp_path, images):
    """Without a C++ compiler the loop's noise comes from NumPy's generator, other numbers than the
    compiled one's: a run resumed across that change goes on, saying it is no longer exact."""
    from dcgan_ms.kernels import noise_source
    if noise_source() != "compiled":
        pytest.skip("the kernels cannot be built here, so the compiled noise generator is not there to leave")
    out = tmp_path / "run"
    assert run_cli(*flags(images, out, "--max_steps", "2")).returncode == 0
    assert json.loads((out / "config.json").read_text())["noise"] == "compiled"
    proc = run_cli("dcgan_ms.train", "--resume", "--output_dir", str(out), "--max_steps", "3", "--no_progress")
    assert proc.returncode == 0 and "drew its noise" not in proc.stderr, proc.stderr  # the same host: exact
    proc = run_cli("dcgan_ms.train", "--resume", "--output_dir", str(out), "--max_steps", "4", "--no_progress",
                   env={"CXX": "no-such-c++", "DCGAN_MS_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    assert ("warning: the run drew its noise with the compiled kernels' generator, this host draws it with the "
            "NumPy generator (no C++ compiler): the run goes on with other random numbers") in proc.stderr
    assert json.loads((out / "config.json").read_text())["noise"] == "numpy"


@pytest.mark.slow
def test_resume_from_a_named_checkpoint_then_train_further_with_more_epochs(tmp_path, images):
    """README: ``--resume PATH`` continues from that checkpoint (the log's later steps are dropped and
    done again, the same), and ``--resume --output_dir DIR --epochs N`` trains a finished run further."""
    out = tmp_path / "run"
    assert run_cli(*flags(images, out, "--epochs", "1", "--save_every", "3")).returncode == 0
    first = losses(read_log(out))
    assert checkpoint_steps(out) == [3, 6, 9]
    proc = run_cli("dcgan_ms.train", "--resume", str(out / "checkpoints" / "step_0000006.ckpt"), "--no_progress")
    assert proc.returncode == 0, proc.stderr
    assert f"resuming from {out}/checkpoints/step_0000006.ckpt: step 6," in proc.stderr and "done: 3 steps" in proc.stderr
    assert losses(read_log(out)) == first
    proc = run_cli("dcgan_ms.train", "--resume", "--output_dir", str(out), "--no_progress")  # complete: says so
    assert proc.returncode == 0 and f"the run in {out} is complete (9 of 9 steps)" in proc.stderr, proc.stderr
    proc = run_cli("dcgan_ms.train", "--resume", "--output_dir", str(out), "--epochs", "2", "--no_progress")
    assert proc.returncode == 0, proc.stderr
    assert "done: 9 steps" in proc.stderr
    assert [int(r[0]) for r in losses(read_log(out))] == list(range(1, 2 * STEPS_PER_EPOCH + 1))
    assert losses(read_log(out))[:STEPS_PER_EPOCH] == first
    assert sorted(os.listdir(out / "samples")) == ["epoch_001.png", "epoch_002.png"]


HOLD_THE_FOLDER = """
import sys, time
from dcgan_ms.run_folder import lock
lock(sys.argv[1])
print("holding", flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_a_second_trainer_in_a_run_folder_is_refused_naming_the_first_and_a_killed_ones_lock_is_stale(tmp_path,
                                                                                                      images):
    out = tmp_path / "run"
    out.mkdir()
    first = subprocess.Popen([sys.executable, "-c", HOLD_THE_FOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "holding"
        proc = run_cli(*flags(images, out, "--max_steps", "1"))
        assert proc.returncode == 2
        assert proc.stderr.strip().splitlines()[-1] == (
            f"error: {out} is in use by another training run (process {first.pid} on {socket.gethostname()}): wait "
            "for it to end, or pass another --output_dir")
        assert not (out / "config.json").exists()  # the refused run wrote nothing there
    finally:
        first.kill()
        first.wait()
    proc = run_cli(*flags(images, out, "--max_steps", "1"))  # killed: its lock went with it
    assert proc.returncode == 0, proc.stderr


def test_the_lock_is_never_taken_through_a_link_and_a_file_system_without_locks_is_named(tmp_path, monkeypatch):
    """A .lock planted as a link to another file is refused, the file untouched; a file system that cannot
    lock (ENOLCK, some network mounts) is said as such, not as another run."""
    import fcntl
    from dcgan_ms.errors import UserError
    planted, victim = tmp_path / "planted", tmp_path / "victim"
    planted.mkdir()
    victim.write_text("mine")
    (planted / ".lock").symlink_to(victim)
    with pytest.raises(UserError, match=r"^cannot open the run folder's lock .*/\.lock: it is a symbolic link, which "
                                        r"no run makes: remove it$"):
        run_folder.lock(str(planted))
    assert victim.read_text() == "mine"

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(UserError, match=r"^the file system of .*/nfs cannot lock files \(No locks available\): pass "
                                        r"an --output_dir on a local disk$"):
        (tmp_path / "nfs").mkdir()
        run_folder.lock(str(tmp_path / "nfs"))


def test_a_resumed_runs_record_is_parsed_as_the_command_line_parses_it():
    """Values read back from a checkpoint keep the parser's types; what the parser refuses, and what
    resuming needs but the record lacks, is named in one line."""
    from dcgan_ms import config as config_module
    from dcgan_ms.train import parse_args
    given = parse_args(["--dataset", "sample", "--resume", "--output_dir", "run"])
    record = {**given.flags(), "devices": 1, "steps_per_epoch": 9, "batch_size": "8", "keep_checkpoints": "3"}
    resumed = config_module.resumed(given, config_module.checked_record(record))
    assert resumed.batch_size == 8 and resumed.keep_checkpoints == 3  # ints, as --batch_size 8 gives
    for key, value, why in [("lr", float("inf"), "must be a finite number, got inf"),
                            ("seed", -5, "must be 0 or more, got -5"),
                            ("beta1", [0.5], "not a value the command line gives"),
                            ("no_progress", "yes", "expected true or false"),
                            ("nz", None, "it has no value")]:
        with pytest.raises(UserError, match=re.escape(f"records --{key} {json.dumps(value)}, which is not valid "
                                                      f"({why}): its checkpoint was edited")):
            config_module.resumed(given, {**record, key: value})
    with pytest.raises(UserError, match="a run of a folder of images needs --data_root"):
        config_module.resumed(parse_args(["--resume", "--output_dir", "run"]),
                              {**record, "dataset": "folder", "data_root": None})
    del record["steps_per_epoch"]
    with pytest.raises(UserError, match="the run being resumed records no steps_per_epoch \\(its checkpoint"):
        config_module.checked_record(record)
    with pytest.raises(UserError, match="records devices \"2\", not a whole number above 0"):
        config_module.checked_record({**record, "steps_per_epoch": 9, "devices": "2"})
    with pytest.raises(UserError, match="records no config"):
        config_module.checked_record([1, 2])


@pytest.mark.parametrize("flags, why", [(["--seed", "-1"], "--seed: must be 0 or more, got -1"),
                                        (["--lr", "inf"], "--lr: must be a finite number, got inf"),
                                        (["--max_minutes", "nan"], "--max_minutes: must be a finite number, got nan")])
def test_seeds_below_zero_and_endless_numbers_are_refused_on_the_command_line(flags, why):
    proc = run_cli("dcgan_ms.train", "--dataset", "sample", *flags)
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: argument {why}: see python -m dcgan_ms.train --help"
