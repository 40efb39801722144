"""Data-parallel training launched by MindSpore's msrun with 2 CPU workers on the sample data."""
import csv
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, free_port

MSRUN = os.path.join(os.path.dirname(sys.executable), "msrun")


def launch(flags, logs):
    """scripts/run_distributed.sh with 2 workers (the README's launcher, which runs
    msrun --worker_num=2 --local_worker_num=2 ... dcgan_ms/train.py --distributed FLAGS)."""
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
           "MASTER_PORT": str(free_port()), "LOG_DIR": str(logs)}
    proc = subprocess.Popen(["bash", "scripts/run_distributed.sh", "2", *flags], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=300)
    finally:  # never leave the scheduler or workers behind
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    worker_logs = "".join(p.read_text(errors="replace")[-2000:] for p in sorted(logs.glob("worker_*.log")))
    assert proc.returncode == 0, output[-3000:] + worker_logs


@pytest.mark.skipif(not os.path.exists(MSRUN), reason="msrun is installed with mindspore; not found beside python")
def test_msrun_two_cpu_workers(tmp_path, flat_images):
    out = tmp_path / "run"
    launch(["--data_root", flat_images, "--batch_size", "4", "--ngf", "8", "--ndf", "8", "--nz", "16",
            "--max_steps", "2", "--instance_noise", "0.1", "--output_dir", str(out), "--no_progress"],
           tmp_path / "logs")

    ranks = [json.loads((out / f"rank_{r}.json").read_text()) for r in (0, 1)]
    assert [r["steps"] for r in ranks] == [2, 2] and all(r["devices"] == 2 for r in ranks)
    # Same weights and BatchNorm statistics on every rank, bit for bit.
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

    # Resumed on the same two workers: both ranks load rank 0's checkpoint and go on in step.
    launch(["--resume", "--output_dir", str(out), "--max_steps", "3", "--no_progress"], tmp_path / "logs2")
    ranks = [json.loads((out / f"rank_{r}.json").read_text()) for r in (0, 1)]
    assert [r["steps"] for r in ranks] == [3, 3]
    assert ranks[0]["parameter_digest"] == ranks[1]["parameter_digest"]
    assert ranks[0]["running_stats_digest"] == ranks[1]["running_stats_digest"]
    for r in (0, 1):
        assert [row["step"] for row in csv.DictReader(open(out / f"log_rank{r}.csv"))] == ["1", "2", "3"]


@pytest.mark.skipif(not os.path.exists(MSRUN), reason="msrun is installed with mindspore; not found beside python")
def test_msrun_uneven_folder_gives_both_ranks_the_same_steps(tmp_path):
    """27 images (not a multiple of 2 devices x 4) in a folder with a sibling folder of images beside it:
    each rank gets 13 of the 27, so 3 batches of 4 an epoch, and the run finishes (unequal batch counts
    would leave one rank waiting forever in the last step's all-reduce)."""
    import shutil
    from dcgan_ms.data import SAMPLE_DIR
    for folder, first, count in (("cats", 0, 27), ("dogs", 27, 10)):
        (tmp_path / "mydata" / folder).mkdir(parents=True)
        for i in range(first, first + count):
            shutil.copy(os.path.join(SAMPLE_DIR, f"{i}.jpg"), tmp_path / "mydata" / folder / f"{i}.jpg")
    out = tmp_path / "run"
    launch(["--data_root", str(tmp_path / "mydata" / "cats"), "--batch_size", "4", "--ngf", "8", "--ndf", "8",
            "--nz", "16", "--epochs", "2", "--output_dir", str(out), "--no_progress"], tmp_path / "logs")
    ranks = [json.loads((out / f"rank_{r}.json").read_text()) for r in (0, 1)]
    assert [r["steps"] for r in ranks] == [6, 6]
    assert json.loads((out / "config.json").read_text())["steps_per_epoch"] == 3
    assert ranks[0]["parameter_digest"] == ranks[1]["parameter_digest"]
    for r in (0, 1):
        rows = list(csv.DictReader(open(out / f"log_rank{r}.csv")))
        assert [(row["step"], row["epoch"]) for row in rows] == [(str(s), str(1 + (s - 1) // 3)) for s in range(1, 7)]
