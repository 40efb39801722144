"""report.html: written by every run, rebuilt by python -m dcgan_ms.report, self-contained, and shown by a
real browser (headless Chromium, Debian's package, which .ci/run installs)."""
import hashlib
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from dcgan_ms.plots import smoothed

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def page(path):
    return open(path, encoding="utf-8").read()


def test_a_run_leaves_a_self_contained_report_with_its_fingerprint_and_scores(tiny_run):
    out, _ = tiny_run
    text = page(os.path.join(out, "report.html"))
    sources = re.findall(r"src='([^']*)'", text)
    assert sources and all(s.startswith("data:image/") for s in sources), "a picture the page does not hold"
    assert not re.search(r"(href|src)=['\"]?(https?:|//|/)", text), "the page reaches outside itself"
    for name in ("generator.ckpt", "config.json"):  # the fingerprint a teacher checks with sha256sum
        digest = hashlib.sha256(open(os.path.join(out, name), "rb").read()).hexdigest()
        assert f"<th>{name}</th><td>{digest}</td>" in text, name
    frames = json.loads(re.search(r"<script id=frames type=application/json>(.*?)</script>", text, re.S).group(1))
    assert [name for name, _ in frames] == ["epoch 001"]  # one grid: a 2-step run ends in its first epoch
    assert "<th>images a side</th><td>24</td>" in text  # all 24 of the tiny set: scored
    assert re.search(r"<th>SWD x1e3 \(lower is better\)</th><td>\d+\.\d \(64 px \d+\.\d / 32 px", text)
    assert re.search(r"<th>diversity \(about 1: as varied as the real images\)</th><td>\d\.\d\d</td>", text)
    assert "2 of 2 steps (finished)" in text and "<th>nz</th><td>16</td>" in text
    environment = json.load(open(os.path.join(out, "environment.json")))
    assert environment[0]["device_target"] == "CPU" and f"<td>{environment[0]['mindspore']}</td>" in text


def swd_shown(text):
    return re.search(r"<th>SWD x1e3 \(lower is better\)</th><td>([\d.]+) ", text)[1]


def test_the_report_command_scores_the_generator_itself_and_never_shows_a_score_from_a_file(tiny_run, tmp_path):
    """A report_scores.json forged with generator.ckpt's real SHA-256 (anyone can compute it) and a far
    better SWD, as the report once cached its scores: the page shows what the Generator scores."""
    run = tmp_path / "forged"
    shutil.copytree(tiny_run[0], run)
    measured = swd_shown(page(run / "report.html"))
    digest = hashlib.sha256(open(run / "generator.ckpt", "rb").read()).hexdigest()
    (run / "report_scores.json").write_text(json.dumps({"generator_sha256": digest, "num": 24, "swd_x1e3": 0.123,
                                                        "swd_x1e3_per_level": {"64": 0.123}, "diversity": 1.0}))
    proc = run_cli("dcgan_ms.report", str(run))
    assert proc.returncode == 0, proc.stderr
    text = page(run / "report.html")
    assert "0.1 (64 px 0.1)" not in text and abs(float(swd_shown(text)) - float(measured)) <= 0.15


def test_the_report_command_rebuilds_a_page_for_an_unfinished_run_and_refuses_a_folder_that_is_no_run(
        tiny_run, tmp_path):
    run = tmp_path / "unfinished"
    shutil.copytree(tiny_run[0], run)
    for name in ("generator.ckpt", "report.html"):
        os.remove(run / name)
    shutil.rmtree(run / "samples")
    proc = run_cli("dcgan_ms.report", str(run))
    assert proc.returncode == 0, proc.stderr
    text = page(run / "report.html")
    assert "not scored: no generator.ckpt yet" in text and "no grid yet" in text and "generator.ckpt</th>" not in text
    proc = run_cli("dcgan_ms.report", str(tmp_path))
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"error: {tmp_path} holds no config.json: pass the --output_dir of a training run"]


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium; .ci/run installs it)")
def test_a_browser_shows_the_pages_pictures_and_plots(tiny_run, tmp_path):
    shot = tmp_path / "shot.png"
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1400",
                           f"--screenshot={shot}", "file://" + os.path.join(tiny_run[0], "report.html")],
                          capture_output=True, text=True, timeout=180, env={**os.environ, "HOME": str(tmp_path)})
    assert shot.is_file(), proc.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    # The grid of 64 generated images (530 px square): hundreds of rows mostly drawn on, which text,
    # tables and the slider never are.
    drawn_rows = ((pixels.max(axis=2) < 235).sum(axis=1) > 400).sum()
    assert drawn_rows > 300, f"no grid of images on the page ({drawn_rows} rows drawn on)"
    # The plots: matplotlib's blue, orange, green and red lines.
    for colour in ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)):
        assert (np.abs(pixels - colour).sum(axis=2) < 40).sum() > 50, f"no line of colour {colour}"


def test_smoothing_keeps_a_constant_starts_at_the_first_value_and_follows_a_step():
    np.testing.assert_allclose(smoothed([3.0] * 50), 3.0)
    values = np.r_[np.zeros(100), np.ones(300)]
    line = smoothed(values, span=10)
    assert line[0] == 0 and line[99] == 0 and abs(line[-1] - 1) < 1e-6 and 0 < line[105] < 1
    spiky = np.random.default_rng(0).normal(1.0, 1.0, 2000)
    assert np.std(smoothed(spiky)[100:]) < 0.3 * np.std(spiky)


def test_values_from_a_crafted_run_folder_are_escaped_and_numbers_checked(tmp_path):
    """A config.json whose batch size is markup and whose step count is text, and a grid whose name would
    open a comment inside the page's <script>: the page shows them as text, never as markup."""
    from dcgan_ms.report_page import write_report
    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"global_batch_size": "<script>alert(1)</script>",
                                                 "total_steps": "<b>x</b>", "seed": 1}))
    Image.new("RGB", (8, 8), "red").save(run / "samples" / "epoch_<!--<script>.png")
    (run / "log.csv").write_text("step,epoch,g_loss,d_loss,d_real,d_fake,img_per_s\ninf,1,1,1,0.5,0.5,nan\n")
    text = page(write_report(str(run), score=False)[0])
    assert "<script>alert" not in text and "<!--" not in text and "<b>x" not in text
    frames = re.search(r"<script id=frames type=application/json>(.*?)</script>", text, re.S)[1]
    assert json.loads(frames)[0][0] == "epoch <!--<script>"  # the JSON reads back the name as it is
    assert "0 of ? steps (not finished" in text and "batches of 0;" in text


def test_a_malformed_run_folder_gives_a_line_per_part_and_the_page_keeps_the_rest(tiny_run, tmp_path):
    """environment.json a dict, a step "two" in log.csv, swd.csv without its swd_mean column, a grid that
    is a link to a file outside the run, in a folder whose name globs ("exp[1]"): one line for each
    part on stderr and in the page, no traceback, and the grids and flags that are fine still shown."""
    run = tmp_path / "exp[1]"
    shutil.copytree(tiny_run[0], run)
    (run / "environment.json").write_text(json.dumps({"device_target": "CPU"}))
    with open(run / "log.csv", "a") as f:
        f.write("two,1,0.5,0.5,0.5,0.5,100\n")
    (run / "swd.csv").write_text("epoch,step,seconds\n1,2,0.1\n")
    secret = tmp_path / "secret.png"
    Image.new("RGB", (8, 8), "blue").save(secret)
    (run / "samples" / "epoch_002.png").symlink_to(secret)
    proc = run_cli("dcgan_ms.report", str(run), "--no_score")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if line.startswith("note:")]
    assert notes == ["note: the page does not show the log: log.csv line 4: step 'two' is not a number",
                     "note: the page does not show the grids epoch_002.png: not plain image files of the run",
                     "note: the page does not show the SWD over epochs: swd.csv has no swd_mean column",
                     "note: the page does not show the environment: environment.json holds no list of sessions"]
    text = page(run / "report.html")
    frames = json.loads(re.search(r"<script id=frames type=application/json>(.*?)</script>", text, re.S)[1])
    assert [name for name, _ in frames] == ["epoch 001"] and "<th>nz</th><td>16</td>" in text
    assert "log.csv line 4: step &#x27;two&#x27; is not a number" in text
    (run / "config.json").write_text("[1, 2]")
    proc = run_cli("dcgan_ms.report", str(run), "--no_score")
    assert proc.returncode == 0 and "the flags: config.json holds no run's config" in proc.stderr


def test_a_run_whose_images_cannot_be_scored_still_writes_its_page_and_says_what_it_lacks(tiny_run, tmp_path, capsys):
    """The final scores' real images are read when training begins and the generated ones scored on a
    thread at the end: a set that gives no images (here an empty folder) neither stops the run at its
    start nor loses the page at its end; the page says it is not scored, stderr says why."""
    from dcgan_ms.callbacks import FinalScores, ReportPage
    from dcgan_ms.loop import Position
    from dcgan_ms.models import Generator
    from dcgan_ms.scoring import Scorer
    run = tmp_path / "run"
    shutil.copytree(tiny_run[0], run)
    os.remove(run / "report.html")
    (tmp_path / "empty").mkdir()
    final = FinalScores(Generator(nz=16, ngf=8), Scorer(str(tmp_path / "empty"), num=16, seed=1))
    page_callback = ReportPage(str(run), final)
    final.on_train_begin(Position())
    for callback in (final, page_callback):
        callback.on_train_end(Position(step=2), None)
    notes = capsys.readouterr().err.strip().splitlines()
    assert len(notes) == 1 and notes[0].startswith("note: report.html does not show the final Generator's scores: ")
    assert str(tmp_path / "empty") in notes[0]
    assert "not scored" in page(run / "report.html")


def test_the_log_is_read_into_its_columns():
    from dcgan_ms import run_folder
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "log.csv"), "w") as f:
            f.write("step,epoch,g_loss,d_loss,d_real,d_fake,img_per_s,extra\n1,1,2.5,0.5,0.9,0.1,,x\n"
                    "2,1,2.0,0.6,0.8,0.2,120.5,y\n")
        log = run_folder.read_log(folder)
    assert log == {"step": [2.0], "epoch": [1.0], "g_loss": [2.0], "d_loss": [0.6], "d_real": [0.8], "d_fake": [0.2],
                   "img_per_s": [120.5]}
