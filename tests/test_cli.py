"""The command lines as a user runs them: python -m dcgan_ms.train / generate, in a subprocess."""
import csv
import json
import os
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import assert_drawn_images, assert_drawn_plot, copy_sample_images, grid_tiles, run_cli


def test_train_writes_every_artifact(tiny_run):
    out, proc = tiny_run
    for name in ("config.json", "fixed_noise.npy", "log.csv", "losses.png", "progress.gif",
                 "generator.ckpt", "discriminator.ckpt", "samples/epoch_001.png"):
        assert os.path.isfile(os.path.join(out, name)), name
    with open(os.path.join(out, "log.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2]  # --max_steps 2
    for r in rows:
        assert all(np.isfinite(float(r[k])) for k in ("g_loss", "d_loss", "d_real", "d_fake", "img_per_s"))
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["nz"] == 16 and config["total_steps"] == 2
    noise = np.load(os.path.join(out, "fixed_noise.npy"))
    assert noise.shape == (64, 16, 1, 1)
    # fixed noise is drawn once from the seed: a second run with the same seed has the same grid noise
    assert np.array_equal(noise, np.random.default_rng(1).standard_normal((64, 16, 1, 1)).astype(np.float32))
    grid = grid_tiles(os.path.join(out, "samples", "epoch_001.png"))
    assert grid.shape == (64, 64, 64, 3)  # G(fixed noise): 64 images, 8 x 8
    assert_drawn_images(grid)
    assert_drawn_plot(os.path.join(out, "losses.png"))
    with Image.open(os.path.join(out, "progress.gif")) as gif:  # one frame an epoch: the grid above
        assert gif.n_frames == 1
        assert grid_tiles(gif.convert("RGB")).shape == grid.shape
    assert "done: 2 steps" in proc.stderr
    with open(os.path.join(out, "swd.csv")) as f:  # --swd_every 1: one score, for the one epoch
        swd_rows = list(csv.DictReader(f))
    assert [(r["epoch"], r["step"]) for r in swd_rows] == [("1", "2")]
    levels = [float(swd_rows[0][f"swd_{size}px"]) for size in (64, 32, 16)]
    assert all(level > 0 for level in levels)
    # each written to 4 significant digits: the mean and the levels each off by up to 5e-4 of their size
    assert float(swd_rows[0]["swd_mean"]) == pytest.approx(np.mean(levels), rel=1e-3)


@pytest.mark.slow
def test_pynative_mode_trains_as_graph_mode_does(tiny_run, tmp_path, flat_images):
    """--mode pynative (op by op, for debugging): the same losses as the graph-mode tiny run, to float error."""
    out = tmp_path / "pynative"
    proc = run_cli("dcgan_ms.train", "--data_root", flat_images, "--batch_size", "8", "--ngf", "8", "--ndf", "8",
                   "--nz", "16", "--max_steps", "2", "--epochs", "5", "--mode", "pynative", "--output_dir", str(out),
                   "--no_progress")
    assert proc.returncode == 0, proc.stderr
    assert "(pynative mode)" in proc.stderr.splitlines()[0], proc.stderr

    def losses(folder):
        with open(os.path.join(folder, "log.csv")) as f:
            return [[float(r[k]) for k in ("g_loss", "d_loss", "d_real", "d_fake")] for r in csv.DictReader(f)]
    np.testing.assert_allclose(losses(out), losses(tiny_run[0]), rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_pixel_range_and_background_flags_are_the_runs_and_a_resume_keeps_them(tmp_path, flat_images):
    out = tmp_path / "run"
    proc = run_cli("dcgan_ms.train", "--data_root", flat_images, "--batch_size", "8", "--ngf", "4", "--ndf", "4",
                   "--nz", "8", "--max_steps", "1", "--pixel_range", "0,1", "--background", "#0000ff",
                   "--output_dir", str(out), "--no_progress")
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / "config.json").read_text())
    assert (config["pixel_range"], config["background"]) == ("0,1", "#0000ff")
    proc = run_cli("dcgan_ms.train", "--resume", "--output_dir", str(out), "--pixel_range", "-1,1", "--no_progress")
    assert proc.returncode == 2 and "--pixel_range" in proc.stderr.strip().splitlines()[-1], proc.stderr
    proc = run_cli("dcgan_ms.train", "--data_root", flat_images, "--background", "no-such-colour", "--output_dir",
                   str(tmp_path / "other"))
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: ") and \
        "is not a colour" in proc.stderr, proc.stderr


def test_generate_from_the_trained_checkpoint(tiny_run, tmp_path):
    out, _ = tiny_run
    grid = tmp_path / "grid.png"
    proc = run_cli("dcgan_ms.generate", "--ckpt", os.path.join(out, "generator.ckpt"), "--num", "9",
                   "--out", str(grid), "--individual", str(tmp_path / "each"), "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    tiles = grid_tiles(grid)
    assert tiles.shape == (9, 64, 64, 3)  # 3 x 3
    assert_drawn_images(tiles)
    assert sorted(os.listdir(tmp_path / "each")) == sorted(f"{i}.png" for i in range(9))
    for i, tile in enumerate(tiles):  # the grid shows the images written one by one
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "each" / f"{i}.png").convert("RGB")), tile)


@pytest.mark.slow
def test_generate_with_bn_moving_draws_with_batchnorms_running_averages(tiny_run, tmp_path):
    """--bn moving: G in inference mode (BatchNorm's running averages), the images the library draws for
    the same noise; --bn batch (the default, as in training) draws others."""
    from dcgan_ms import checkpoint
    from dcgan_ms.images import generate
    from dcgan_ms.plots import to_uint8
    ckpt = os.path.join(tiny_run[0], "generator.ckpt")
    drawn = {}
    for bn in ("moving", "batch"):
        proc = run_cli("dcgan_ms.generate", "--ckpt", ckpt, "--num", "4", "--seed", "3", "--bn", bn,
                       "--out", str(tmp_path / f"{bn}.png"))
        assert proc.returncode == 0, proc.stderr
        drawn[bn] = grid_tiles(tmp_path / f"{bn}.png")
    z = np.random.default_rng(3).standard_normal((4, 16, 1, 1)).astype(np.float32)
    expected = to_uint8(generate(checkpoint.load_generator(ckpt), z, bn="moving"))
    assert np.abs(drawn["moving"].astype(int) - expected).max() <= 1  # the same, to a rounding
    assert np.abs(drawn["moving"].astype(int) - drawn["batch"]).mean() > 5


def test_generate_wrong_sizes_is_one_clear_line(tiny_run, tmp_path):
    out, _ = tiny_run
    proc = run_cli("dcgan_ms.generate", "--ckpt", os.path.join(out, "generator.ckpt"), "--ngf", "64",
                   "--out", str(tmp_path / "x.png"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {os.path.join(out, 'generator.ckpt')} does not fit the model: generator.0.weight has shape "
        "(16, 64, 4, 4) in the checkpoint but (16, 512, 4, 4) in the model; pass the sizes it was trained with")
    assert "Traceback" not in proc.stderr


def test_bad_flags_exit_nonzero_with_one_message():
    for args, message in ((["--batch_size", "0"], "--batch_size: must be greater than 0"),
                          (["--epochs", "-1"], "--epochs: must be greater than 0"),
                          (["--device_target", "TPU"], "--device_target: invalid choice: 'TPU'"),
                          (["--beta1", "1.5"], "--beta1: must be in [0, 1)"),
                          (["--beta2", "1"], "--beta2: must be in [0, 1)"),
                          (["--lr_d", "0"], "--lr_d: must be greater than 0"),
                          (["--label_smoothing", "0.5"], "--label_smoothing: must be in [0, 0.5)"),
                          (["--instance_noise_steps", "-3"], "--instance_noise_steps: must be 0 or more")):
        proc = run_cli("dcgan_ms.train", *args)
        assert proc.returncode == 2, args
        [line] = proc.stderr.strip().splitlines()  # one line, not argparse's usage block
        assert line.startswith("error: argument ") and message in line, line
        assert line.endswith(": see python -m dcgan_ms.train --help"), line
    for args, message in ((["--dataset", "sample", "--data_root", "x"], "--dataset sample takes no --data_root"),
                          (["--distributed"], "--distributed needs --output_dir"),
                          (["--resume"], "--resume alone needs --output_dir"),
                          (["--background", "no-such-colour"], "is not a colour")):  # flags that do not go together
        proc = run_cli("dcgan_ms.train", *args)
        [line] = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and line.startswith("error: ") and message in line, (args, line)
    for command in ("generate", "evaluate", "export"):
        proc = run_cli(f"dcgan_ms.{command}", "--ckpt", "g.ckpt", "--no_such_flag")
        assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
            f"error: unrecognized arguments: --no_such_flag: see python -m dcgan_ms.{command} --help"], proc.stderr


def test_a_config_built_in_code_gets_the_command_lines_checks(tmp_path):
    """training.train(TrainConfig(...)) from code or a notebook is refused in the same line as the command
    line, before anything is written (bf16 with builtin layers once trained, in fp32)."""
    from dcgan_ms import training
    from dcgan_ms.config import TrainConfig
    from dcgan_ms.errors import UserError
    out = str(tmp_path / "run")
    for kwargs, message in ((dict(precision="bf16", conv="builtin"), "--precision bf16 runs in the compiled kernels"),
                            (dict(precision="bf16", device_target="GPU"), "--precision bf16 is for CPUs"),
                            (dict(data_root="x"), "--dataset sample takes no --data_root"),
                            (dict(distributed=True, device_id=1), "--device_id does not go with --distributed"),
                            (dict(background="no-such-colour"), "is not a colour")):
        with pytest.raises(UserError, match=re.escape(message)):
            training.train(TrainConfig(dataset="sample", output_dir=out, **kwargs))
    with pytest.raises(UserError, match="--distributed needs --output_dir"):
        TrainConfig(dataset="sample", distributed=True)
    assert not os.path.exists(out)


@pytest.mark.slow
def test_missing_data_root_and_unavailable_device(tmp_path):
    proc = run_cli("dcgan_ms.train", "--data_root", str(tmp_path / "nowhere"), "--output_dir", str(tmp_path / "r"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr.strip().splitlines()[-1]
    # This machine has no GPU: asking for one fails in one line saying what to do (test_gpu.py: each stage).
    proc = run_cli("dcgan_ms.train", "--dataset", "sample", "--device_target", "GPU", "--output_dir",
                   str(tmp_path / "r"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert re.match(r"error: device target GPU is not usable here: .*(--device_target CPU|requirements-gpu\.txt)$",
                    proc.stderr.strip()), proc.stderr


@pytest.mark.parametrize("command", ["train", "generate", "evaluate", "export", "doctor"])
def test_help_gives_every_flag_its_own_words(command):
    """Each flag of each command has a help text, and ``--help`` shows it beside the flag."""
    import importlib
    parser = importlib.import_module(f"dcgan_ms.{command}").build_parser()
    proc = run_cli(f"dcgan_ms.{command}", "--help")
    assert proc.returncode == 0
    shown = " ".join(proc.stdout.split())  # argparse wraps the texts to the terminal's width
    flags = [action for action in parser._actions if action.option_strings and action.dest != "help"]
    assert len(flags) >= (30 if command == "train" else 3)
    for action in flags:
        assert action.help and len(action.help.split()) >= 2, action.option_strings
        words = " ".join((action.help % {"default": action.default, "prog": parser.prog}).split())
        assert re.search(re.escape(action.option_strings[-1]) + r"(?: \S+)? " + re.escape(words), shown), (
            action.option_strings, words)


def broken_copy(tmp_path, flat_images):
    root = tmp_path / "faces"
    shutil.copytree(flat_images, root)
    data = (root / "0.jpg").read_bytes()
    (root / "0.jpg").write_bytes(data[: len(data) // 3])  # truncated JPEG
    (root / "1.jpg").write_bytes(b"")  # zero-byte file
    return root


def test_broken_image_stops_with_its_name(tmp_path, flat_images):
    """A set small enough to keep in memory is decoded before training: the broken image is named then."""
    root = broken_copy(tmp_path, flat_images)
    here = tmp_path / "cwd"  # the folder the user runs from: MindSpore's decoder copies the image into it
    here.mkdir()
    (here / "abnormal_image.png").write_bytes(b"the user's own file, not a copy of the broken image")
    proc = run_cli("dcgan_ms.train", "--data_root", str(root), "--batch_size", "4", "--ngf", "4", "--ndf", "4",
                   "--epochs", "2", "--output_dir", str(tmp_path / "run"), "--no_progress", cwd=here)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert re.match(rf"error: cannot decode image {re.escape(str(root))}/[01]\.jpg \(truncated, empty or not an "
                    r"image\): remove or replace that file and run again$", last), last
    assert "Traceback" not in proc.stderr
    assert os.listdir(here) == ["abnormal_image.png"]  # the decoder's copy is removed, the user's file kept


@pytest.mark.slow
def test_broken_image_met_while_streaming_stops_training_resumably(tmp_path, flat_images, monkeypatch):
    """A set too large for memory is decoded as it trains. Broken before any step is saved: named, "run
    again". Broken after a clean first epoch: training stops on it, saved, and once the file is replaced
    --resume finishes the run."""
    from dcgan_ms import train, training
    from dcgan_ms.data import dataset
    from dcgan_ms.errors import UserError
    monkeypatch.setattr(dataset, "IN_MEMORY_BYTES", 0)
    root, out = broken_copy(tmp_path, flat_images), tmp_path / "run"
    common = ["--data_root", str(root), "--batch_size", "4", "--ngf", "4", "--ndf", "4", "--output_dir", str(out),
              "--no_progress"]
    one_batch = copy_sample_images(tmp_path / "one_batch", 4)  # its only batch holds the broken image
    (one_batch / "2.jpg").write_bytes(b"")
    with pytest.raises(UserError, match=rf"^cannot decode image {re.escape(str(one_batch))}/2\.jpg \(truncated, "
                                        r"empty or not an image\): remove or replace that file and run again$"):
        training.train(train.parse_args([*common[2:], "--data_root", str(one_batch)]))
    broken = rf"^cannot decode image {re.escape(str(root))}/[01]\.jpg \(truncated, empty or not an image\): "

    good = {name: (root / name).read_bytes() for name in ("0.jpg", "1.jpg")}
    for name in good:
        shutil.copy(os.path.join(flat_images, name), root / name)
    training.train(train.parse_args([*common, "--epochs", "1"]))  # 6 steps of 4
    for name, data in good.items():
        (root / name).write_bytes(data)
    with pytest.raises(UserError, match=broken + "remove or replace that file and continue with --resume --output_dir "
                       + re.escape(str(out)) + r" \(the checkpoints hold the (\d+) steps done\)$") as raised:
        training.train(train.parse_args(["--resume", "--output_dir", str(out), "--epochs", "2", "--no_progress"]))
    saved = int(re.search(r"hold the (\d+) steps", str(raised.value)).group(1))
    assert 6 <= saved < 12 and os.path.isfile(out / "checkpoints" / f"step_{saved:07d}.ckpt")
    for name in good:  # replaced, as the line says
        shutil.copy(os.path.join(flat_images, name), root / name)
    done = training.train(train.parse_args(["--resume", "--output_dir", str(out), "--epochs", "2", "--no_progress"]))
    with open(out / "log.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == list(range(1, 13)) and done["steps"] == 12


@pytest.mark.slow
def test_max_minutes_ends_training_like_its_end_and_resume_finishes_it(tmp_path, flat_images):
    out = tmp_path / "run"
    common = ["--data_root", flat_images, "--batch_size", "8", "--ngf", "4", "--ndf", "4", "--nz", "8", "--epochs", "4",
              "--output_dir", str(out), "--no_progress"]
    proc = run_cli("dcgan_ms.train", *common, "--max_minutes", "0.0001")  # 6 ms: the first step passes it
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (f"stopped at the time limit (--max_minutes 0.0001) after step 1: "
                                                    f"continue with --resume --output_dir {out}")
    with open(out / "log.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1]
    for name in ("generator.ckpt", "discriminator.ckpt", "losses.png", "progress.gif", "samples/epoch_001.png",
                 "checkpoints/step_0000001.ckpt"):
        assert os.path.isfile(out / name), name
    proc = run_cli("dcgan_ms.train", "--resume", "--output_dir", str(out), "--max_minutes", "60", "--no_progress")
    assert proc.returncode == 0, proc.stderr
    assert "done: 11 steps" in proc.stderr  # 4 epochs of 3 steps in all


def test_distributed_launches_that_cannot_work_are_refused_in_one_line(tmp_path):
    out = str(tmp_path / "d")
    proc = run_cli("dcgan_ms.train", "--distributed", "--device_id", "1", "--output_dir", out)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].endswith(
        "error: --device_id does not go with --distributed: msrun gives each rank its own device")
    # A rank-table launch (Ascend's older scripts) sets RANK_TABLE_FILE, RANK_ID, DEVICE_ID but not msrun's variables.
    proc = run_cli("dcgan_ms.train", "--distributed", "--dataset", "sample", "--output_dir", out,
                   env={"RANK_TABLE_FILE": str(tmp_path / "rank_table.json"), "RANK_ID": "0", "DEVICE_ID": "0"})
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and last.startswith("error: --distributed runs under MindSpore's msrun") and \
        "scripts/run_distributed.sh" in last, proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_launcher_refuses_several_nodes_without_a_master_address(tmp_path):
    import subprocess
    from conftest import REPO
    env = {k: v for k, v in os.environ.items() if k != "MASTER_ADDR"}
    proc = subprocess.run(["bash", os.path.join(REPO, "scripts", "run_distributed.sh"), "8", "--dataset", "sample"],
                          env={**env, "NODES": "2"}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: NODES=2 needs MASTER_ADDR, the address of node 0 that every node can reach"
    proc = subprocess.run(["bash", os.path.join(REPO, "scripts", "run_distributed.sh"), "8", "--dataset", "sample"],
                          env={**env, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: msrun not found: activate the virtual")


def test_the_launcher_takes_paths_from_the_callers_folder_and_says_when_it_cannot_write_its_logs(tmp_path):
    """run_distributed.sh no longer runs in the checkout (which the user may not be able to write): its
    default LOG_DIR, runs/msrun_logs, is in the folder it is run from."""
    import subprocess
    import sys
    from conftest import REPO
    (tmp_path / "runs").write_text("a file where the folder would go")
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    env.pop("LOG_DIR", None)
    proc = subprocess.run(["bash", os.path.join(REPO, "scripts", "run_distributed.sh"), "2", "--dataset", "sample"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: cannot write msrun's logs into runs/msrun_logs: " \
                                                          "run from a folder of yours, or set LOG_DIR to one"


@pytest.mark.slow
def test_output_to_a_file_gets_plain_progress_lines_not_bar_redraws(tmp_path, flat_images):
    """Under msrun, nohup or a batch job stderr is a file: a line now and then instead of a redrawn bar."""
    proc = run_cli("dcgan_ms.train", "--data_root", flat_images, "--batch_size", "8", "--ngf", "4", "--ndf", "4",
                   "--nz", "8", "--max_steps", "2", "--output_dir", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    assert re.search(r"^step 1/2 epoch 1/1 Loss_D \d+\.\d{3} Loss_G \d+\.\d{3} D\(x\) \d\.\d\d D\(G\(z\)\) \d\.\d\d "
                     r"\d+\.\d img/s$", proc.stderr, re.M), proc.stderr


def test_plain_progress_lines_give_the_time_left_from_the_pace_after_the_first(capsys):
    from dcgan_ms.callbacks import Progress
    from dcgan_ms.loop import Losses, Position
    progress = Progress(total_steps=10, steps_per_epoch=5, output_dir="out", every_seconds=0)
    assert progress.plain_lines  # pytest's captured stderr is no terminal
    progress.on_train_begin(Position())
    for step in (1, 2, 3):
        progress.on_step_end(Position(step, 1, step), Losses(0.7, 0.6, 0.5, 0.4, 0.01, 8), None)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and lines[0].startswith("step 1/10 epoch 1/2 ") and "left" not in lines[0]
    assert re.fullmatch(r"step 3/10 epoch 1/2 Loss_D 0\.600 Loss_G 0\.700 D\(x\) 0\.50 D\(G\(z\)\) 0\.40 \d+\.\d img/s, "
                        r"\d+\.\d min left", lines[2]), lines[2]


def test_a_terminal_or_a_notebook_gets_the_bar():
    from dcgan_ms.callbacks import redraws_in_place

    class Stream:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    assert redraws_in_place(Stream(True)) and not redraws_in_place(Stream(False))
    notebook = type("OutStream", (Stream,), {"__module__": "ipykernel.iostream"})
    assert redraws_in_place(notebook(False))


@pytest.mark.slow
def test_ranks_starting_at_once_check_the_output_folder_without_tripping_on_each_other(tmp_path):
    """Every rank checks that the output folder takes a file, at the same moment: each under its own name."""
    import subprocess
    import sys
    import time
    folder, go = tmp_path / "run", tmp_path / "go"
    check = ("import os, sys, time; from dcgan_ms.run_folder import prepare\n"
             "open(sys.argv[1] + '.ready', 'w').close()\n"
             "while not os.path.exists(sys.argv[2]): time.sleep(0.01)\n"
             "end = time.time() + 2\n"
             "while time.time() < end: prepare(sys.argv[3])\n")
    ranks = [subprocess.Popen([sys.executable, "-c", check, str(tmp_path / f"rank{r}"), str(go), str(folder)],
                              stderr=subprocess.PIPE, text=True) for r in range(4)]
    while not all((tmp_path / f"rank{r}.ready").exists() or ranks[r].poll() is not None for r in range(4)):
        time.sleep(0.05)
    go.touch()  # all four check the folder over and over, at once, for 2 s
    failures = [p.communicate(timeout=120)[1] for p in ranks if p.wait(timeout=120)]
    assert not failures, failures[0][-2000:]
    assert sorted(os.listdir(folder)) == ["samples"]


def test_a_jpeg_cut_inside_its_header_is_named_instead_of_killing_the_process(tmp_path, flat_images):
    """MindSpore's decoder dies of SIGFPE on the first few hundred bytes of a JPEG (no message, nothing
    saved); such a file is named before it reaches the decoder."""
    root = tmp_path / "faces"
    shutil.copytree(flat_images, root)
    data = (root / "3.jpg").read_bytes()
    (root / "3.jpg").write_bytes(data[:300])
    proc = run_cli("dcgan_ms.train", "--data_root", str(root), "--batch_size", "4", "--ngf", "4", "--ndf", "4",
                   "--max_steps", "1", "--output_dir", str(tmp_path / "run"), "--no_progress")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: cannot decode image {root / '3.jpg'} (truncated, empty or not an image): remove or replace that "
        "file and run again")
