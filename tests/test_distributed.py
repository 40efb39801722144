"""Data-parallel training launched by MindSpore's msrun with 2 CPU workers on the sample data: runs that
finish, and runs that something stops early (a signal to one rank, Ctrl-C on the launcher, a broken image
in one rank's shard, the time limit)."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import REPO, copy_sample_images, free_port, logged_steps

pytestmark = pytest.mark.slow

MSRUN = os.path.join(os.path.dirname(sys.executable), "msrun")
needs_msrun = pytest.mark.skipif(not os.path.exists(MSRUN),
                                 reason="msrun is installed with mindspore; not found beside python")
TINY = ["--batch_size", "4", "--ngf", "8", "--ndf", "8", "--nz", "16", "--no_progress"]


def processes_of(port):
    """The pids of msrun, its scheduler and its workers for the cluster on ``port``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read().split(b"\0")
        except OSError:
            continue
        if f"--master_port={port}".encode() in cmdline or f"MS_SCHED_PORT={port}".encode() in environ:
            found.append(int(pid))
    return found


def worker_pid(port, rank):
    for pid in processes_of(port):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read().split(b"\0")
        except OSError:
            continue
        if b"MS_ROLE=MS_WORKER" in environ and f"RANK_ID={rank}".encode() in environ:
            return pid
    raise AssertionError(f"no worker of rank {rank} on port {port}")


def wait_for_steps(out, steps, proc, timeout=240):
    """Wait until both ranks have logged ``steps`` steps."""
    deadline = time.time() + timeout
    while min(len(logged_steps(out, r)) for r in (0, 1)) < steps:
        assert proc.poll() is None, "the run ended before the signal was sent"
        assert time.time() < deadline, "the run did not reach the step"
        time.sleep(0.2)


def hangup_as_in_a_terminal():
    """SIGHUP's default action in the launcher, as a shell in a terminal has it: a suite started under
    nohup passes SIGHUP on ignored, and bash cannot trap a signal that was ignored when it started."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


class Launch:
    """scripts/run_distributed.sh with 2 workers (the README's launcher, which runs
    msrun --worker_num=2 --local_worker_num=2 ... python -m dcgan_ms.train --distributed FLAGS), started from
    ``cwd``, its output read as it comes."""

    def __init__(self, flags, logs, cwd=None):
        self.port, self.logs = free_port(), logs
        env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               "MASTER_PORT": str(self.port), "LOG_DIR": str(logs)}
        self.proc = subprocess.Popen(["bash", os.path.join(REPO, "scripts", "run_distributed.sh"), "2", *flags],
                                     env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True, preexec_fn=hangup_as_in_a_terminal)
        self.lines = []
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for_line(self, text, timeout=120):
        """Wait until the launcher has printed a line that holds ``text``."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in list(self.lines)):
            assert self.proc.poll() is None, f"the launcher ended without saying {text!r}: {''.join(self.lines)}"
            assert time.monotonic() < deadline, f"the launcher did not say {text!r}"
            time.sleep(0.05)

    def finish(self, timeout=300):
        """Wait for the launcher, then (for up to a minute) for every process of the run to end; kill what
        is left, which fails the test. Returns the launcher's output and the workers' logs."""
        try:
            self.proc.wait(timeout=timeout)
            self.reader.join(timeout=60)
            deadline = time.monotonic() + 60
            while processes_of(self.port) and time.monotonic() < deadline:
                time.sleep(0.2)
            left = processes_of(self.port)
        finally:
            self.kill()
        assert not left, f"processes left behind a minute after the launcher ended: {left}"
        workers = [(self.logs / f"worker_{r}.log").read_text(errors="replace") for r in (0, 1)]
        return "".join(self.lines), workers

    def kill(self):
        """SIGKILL the launcher, msrun, the scheduler and the workers: never leave one behind."""
        for pid in processes_of(self.port) + [self.proc.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def launch(flags, logs, expect=0, while_running=None, cwd=None):
    """A Launch run to its end (``while_running(launch)`` acts on it meanwhile); the launcher must exit
    with ``expect`` and leave no process behind. Returns its output and the workers' logs."""
    run = Launch(flags, logs, cwd=cwd)
    try:
        if while_running:
            while_running(run)
    except BaseException:
        run.kill()
        raise
    output, workers = run.finish()
    assert run.proc.returncode == expect, output[-3000:] + "".join(w[-2000:] for w in workers)
    assert "run_distributed.sh: line" not in output, output[-3000:]  # no shell error on the user's terminal
    return output, workers


def errors(worker_log):
    """The lines of a worker's log that dcgan_ms wrote (MindSpore's own start with [WARNING] and the like)."""
    return [line for line in worker_log.splitlines() if line.startswith(("error:", "interrupted", "stopped"))]


@pytest.fixture(scope="module")
def two_step_run(tmp_path_factory):
    """A 2-step run of 2 workers on 48 images (6 steps an epoch on each rank), which the stop tests resume."""
    tmp_path = tmp_path_factory.mktemp("two_steps")
    root, out = copy_sample_images(tmp_path / "faces", 48), tmp_path / "run"
    launch(["--data_root", str(root), *TINY, "--max_steps", "2", "--instance_noise", "0.1", "--ema", "0.9",
            "--epochs", "50", "--output_dir", str(out)], tmp_path / "logs")
    return out


def resumable_copy(run, tmp_path):
    """A copy of ``run``'s folder, for one test to resume."""
    out = tmp_path / "run"
    shutil.copytree(run, out)
    return out


@needs_msrun
def test_two_workers_start_alike_read_disjoint_shards_and_only_rank_0_writes(two_step_run):
    out = two_step_run
    ranks = [json.loads((out / f"rank_{r}.json").read_text()) for r in (0, 1)]
    assert [r["steps"] for r in ranks] == [2, 2] and all(r["devices"] == 2 for r in ranks)
    # Same weights and BatchNorm statistics (G's, D's and the averaged G's) on every rank, bit for bit.
    assert ranks[0]["parameter_digest"] == ranks[1]["parameter_digest"]
    assert ranks[0]["running_stats_digest"] == ranks[1]["running_stats_digest"]
    # Disjoint shards: 2 steps x 4 images each, no image read by both ranks.
    seen = [set(r["image_digests"]) for r in ranks]
    assert len(seen[0]) == len(seen[1]) == 8 and not seen[0] & seen[1]
    # Only rank 0 writes artifacts.
    assert ranks[1]["artifacts_written"] == []
    assert {"generator.ckpt", "discriminator.ckpt", "losses.png", "progress.gif"} <= set(ranks[0]["artifacts_written"])
    assert not (out / "log.csv").exists()
    for r in (0, 1):  # every rank its own log, finite losses
        rows = list(csv.DictReader(open(out / f"log_rank{r}.csv")))
        assert len(rows) == 2
        assert all(np.isfinite(float(row[k])) for row in rows for k in ("g_loss", "d_loss"))
    # Each rank drew its own noise: their losses differ.
    assert open(out / "log_rank0.csv").read() != open(out / "log_rank1.csv").read()


@needs_msrun
def test_sigterm_to_one_rank_stops_every_rank_after_the_same_step_saved(two_step_run, tmp_path):
    """Resumed on the same two workers (both load rank 0's checkpoint and go on in step); SIGTERM to rank 1."""
    out = resumable_copy(two_step_run, tmp_path)

    def terminate_rank_1(run):
        wait_for_steps(out, 5, run.proc)
        os.kill(worker_pid(run.port, 1), signal.SIGTERM)

    output, workers = launch(["--resume", "--output_dir", str(out), "--max_steps", "300", "--no_progress"],
                             tmp_path / "logs", expect=130, while_running=terminate_rank_1)
    # msrun itself ends with status 1 (a worker exited 130); the launcher reads the workers' closing lines.
    assert output.strip().splitlines()[-1] == (
        f"interrupted: the workers stopped together and saved (see {tmp_path / 'logs'}/worker_0.log "
        f"{tmp_path / 'logs'}/worker_1.log); run the same command with --resume to continue")
    stopped = assert_stopped_together(out)  # every step logged once, across the resume
    assert 5 <= stopped < 300
    assert_saved_on_stop(out, stopped, workers[0], first_step=2)
    ranks = [json.loads((out / f"rank_{r}.json").read_text()) for r in (0, 1)]
    assert [r["steps"] for r in ranks] == [stopped, stopped]
    assert ranks[0]["parameter_digest"] == ranks[1]["parameter_digest"]
    assert ranks[0]["running_stats_digest"] == ranks[1]["running_stats_digest"]


@needs_msrun
def test_ctrl_c_on_the_launcher_stops_the_workers_after_the_same_step_saved(two_step_run, tmp_path):
    """Ctrl-C in the launcher's terminal: the workers stop gracefully, the launcher exits 130."""
    out = resumable_copy(two_step_run, tmp_path)

    def ctrl_c(run):
        wait_for_steps(out, 5, run.proc)
        os.killpg(run.proc.pid, signal.SIGINT)  # what the terminal sends to the foreground process group

    output, workers = launch(["--resume", "--output_dir", str(out), "--max_steps", "300", "--no_progress"],
                             tmp_path / "logs", expect=130, while_running=ctrl_c)
    assert "stopping: every worker finishes its step and saves" in output
    assert output.strip().splitlines()[-1].startswith("interrupted: the workers stopped together and saved")
    assert_saved_on_stop(out, assert_stopped_together(out), workers[0], first_step=2)


@needs_msrun
def test_a_second_ctrl_c_aborts_at_once_and_keeps_the_newest_checkpoint(two_step_run, tmp_path):
    """The second Ctrl-C, sent once the launcher has taken the first: an abort, at once, leaving no
    process behind (``launch`` checks)."""
    out = resumable_copy(two_step_run, tmp_path)

    def ctrl_c_twice(run):
        wait_for_steps(out, 3, run.proc)
        os.killpg(run.proc.pid, signal.SIGINT)
        run.wait_for_line("stopping: every worker finishes its step and saves")
        os.killpg(run.proc.pid, signal.SIGINT)

    started = time.monotonic()
    output, _ = launch(["--resume", "--output_dir", str(out), "--max_steps", "300", "--no_progress"],
                       tmp_path / "logs", expect=130, while_running=ctrl_c_twice)
    assert "aborting: the workers are killed" in output and time.monotonic() - started < 120
    assert output.strip().splitlines()[-1].startswith("aborted: the newest resume checkpoint is kept")
    assert (out / "checkpoints" / "step_0000002.ckpt").is_file()


@needs_msrun
def test_a_closed_terminal_stops_the_workers_as_ctrl_c_does(tmp_path):
    """SIGHUP to the launcher (its terminal or ssh session closed) used to kill it and leave msrun training,
    detached: now the workers finish their step and save, as on Ctrl-C. Relative paths are the caller's."""
    root, out = copy_sample_images(tmp_path / "faces", 48), tmp_path / "run"

    def hang_up(run):
        wait_for_steps(out, 2, run.proc)
        os.kill(run.proc.pid, signal.SIGHUP)

    output, workers = launch(["--data_root", os.path.relpath(root, tmp_path), *TINY, "--epochs", "50",
                              "--output_dir", "run"], tmp_path / "logs", expect=130, while_running=hang_up,
                             cwd=tmp_path)
    assert output.strip().splitlines()[-1].startswith("interrupted: the workers stopped together and saved")
    assert_saved_on_stop(out, assert_stopped_together(out), workers[0], first_step=0)


@needs_msrun
def test_msrun_uneven_folder_gives_both_ranks_the_same_steps(tmp_path):
    """27 images (not a multiple of 2 devices x 4) in a folder with a sibling folder of images beside it:
    each rank gets 13 of the 27, so 3 batches of 4 an epoch, and the run finishes (unequal batch counts
    would leave one rank waiting forever in the last step's all-reduce)."""
    for folder, first, count in (("cats", 0, 27), ("dogs", 27, 10)):
        copy_sample_images(tmp_path / "mydata" / folder, count, first=first)
    out = tmp_path / "run"
    launch(["--data_root", str(tmp_path / "mydata" / "cats"), *TINY, "--epochs", "2", "--output_dir", str(out)],
           tmp_path / "logs")
    ranks = [json.loads((out / f"rank_{r}.json").read_text()) for r in (0, 1)]
    assert [r["steps"] for r in ranks] == [6, 6]
    assert json.loads((out / "config.json").read_text())["steps_per_epoch"] == 3
    assert ranks[0]["parameter_digest"] == ranks[1]["parameter_digest"]
    for r in (0, 1):
        rows = list(csv.DictReader(open(out / f"log_rank{r}.csv")))
        assert [(row["step"], row["epoch"]) for row in rows] == [(str(s), str(1 + (s - 1) // 3)) for s in range(1, 7)]


def assert_stopped_together(out):
    """Both ranks logged the same steps, 1..S, with S > 0; returns S."""
    steps = [logged_steps(out, r) for r in (0, 1)]
    assert steps[0] == steps[1] and steps[0] == list(range(1, len(steps[0]) + 1)) and steps[0], steps
    return steps[0][-1]


def assert_saved_on_stop(out, stopped, lead_log, first_step=0):
    """The lead rank saved the step where the ranks stopped (at the stop, or at that epoch's end)."""
    steps_per_epoch = json.loads((out / "config.json").read_text())["steps_per_epoch"]
    if stopped % steps_per_epoch:
        assert f"interrupted at step {stopped}: saving checkpoints and pictures" in errors(lead_log)
    assert (out / "checkpoints" / f"step_{stopped:07d}.ckpt").is_file()
    assert f"stopped: {stopped - first_step} steps" in lead_log


@needs_msrun
def test_broken_image_in_one_ranks_shard_stops_every_rank_with_one_line(tmp_path, monkeypatch):
    """On the streaming path (DCGAN_MS_DECODED_MB=0), resumed after a clean first epoch, rank 1 meets an
    image it cannot decode in the second: both ranks stop after the same step, save it, and say what to do."""
    from dcgan_ms.data.dataset import find_images, shard_indices
    monkeypatch.setenv("DCGAN_MS_DECODED_MB", "0")
    root, out = copy_sample_images(tmp_path / "faces", 48), tmp_path / "run"
    launch(["--data_root", str(root), *TINY, "--epochs", "1", "--output_dir", str(out)], tmp_path / "logs1")
    paths = find_images(str(root))
    broken = paths[shard_indices(len(paths), 2, 1, seed=1)[0]]  # in rank 1's shard
    with open(broken, "wb") as f:
        f.write(b"not a JPEG")
    _, workers = launch(["--resume", "--output_dir", str(out), "--epochs", "2", "--no_progress"], tmp_path / "logs2",
                        expect=1)
    done = assert_stopped_together(out)
    assert 6 <= done < 12  # the first epoch, and what the second did before the broken image
    tail = f"remove or replace that file and continue with --resume --output_dir {out}"
    assert errors(workers[1])[-1].startswith(f"error: cannot decode image {broken} (truncated, empty or not an image): "
                                             + tail)
    assert errors(workers[0])[-1].startswith("error: rank 1 could not decode an image of its shard (its log names the "
                                             "file): " + tail)
    assert (out / "checkpoints" / f"step_{done:07d}.ckpt").is_file()  # the steps done are saved


@needs_msrun
def test_time_limit_and_time_based_saves_are_agreed(tmp_path):
    """--save_minutes so short that every step passes it: each step is saved by the clock (mid-epoch
    steps too), on rank 0's clock for both ranks; the time limit stops both after the same step, saved."""
    root, out = copy_sample_images(tmp_path / "faces", 48), tmp_path / "run"
    _, workers = launch(["--data_root", str(root), *TINY, "--epochs", "500", "--max_minutes", "0.15",
                         "--save_minutes", "1e-9", "--keep_checkpoints", "1000", "--output_dir", str(out)],
                        tmp_path / "logs")
    stopped = assert_stopped_together(out)
    ranks = [json.loads((out / f"rank_{r}.json").read_text()) for r in (0, 1)]
    assert [r["steps"] for r in ranks] == [stopped, stopped]
    assert ranks[0]["running_stats_digest"] == ranks[1]["running_stats_digest"]
    saved = sorted(int(p.stem.split("_")[1]) for p in (out / "checkpoints").glob("step_*.ckpt"))
    assert saved == list(range(1, stopped + 1))
    assert f"stopped at the time limit (--max_minutes 0.15) after step {stopped}" in workers[0]


@needs_msrun
def test_gradients_are_averaged_over_the_devices(tmp_path):
    """distributed.gradient_mean gives every rank the mean of the ranks' gradients, not their sum."""
    port = free_port()
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
           "PYTHONPATH": REPO}
    proc = subprocess.run([MSRUN, "--worker_num=2", "--local_worker_num=2", f"--master_port={port}",
                           f"--log_dir={tmp_path}", "--join=True", os.path.join(REPO, "tests", "gradient_mean_probe.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    logs = [(tmp_path / f"worker_{r}.log").read_text(errors="replace") for r in (0, 1)]
    assert proc.returncode == 0, proc.stderr[-2000:] + "".join(logs)
    for log in logs:  # rank r's gradient is r + 1 everywhere: the mean of 1 and 2
        assert "mean gradient [1.5, 1.5, 1.5]" in log, log[-2000:]
