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
    scores = json.load(open(os.path.join(out, "report_scores.json")))
    assert scores["num"] == 24 and f"{scores['swd_x1e3']:.1f}" in text and f"{scores['diversity']:.2f}" in text
    assert "2 of 2 steps (finished)" in text and "<th>nz</th><td>16</td>" in text
    environment = json.load(open(os.path.join(out, "environment.json")))
    assert environment[0]["device_target"] == "CPU" and f"<td>{environment[0]['mindspore']}</td>" in text


def test_the_report_command_rebuilds_a_page_for_an_unfinished_run_and_refuses_a_folder_that_is_no_run(
        tiny_run, tmp_path):
    run = tmp_path / "unfinished"
    shutil.copytree(tiny_run[0], run)
    for name in ("generator.ckpt", "report.html", "report_scores.json"):
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
    text = page(write_report(str(run), score=False))
    assert "<script>alert" not in text and "<!--" not in text and "<b>x" not in text
    frames = re.search(r"<script id=frames type=application/json>(.*?)</script>", text, re.S)[1]
    assert json.loads(frames)[0][0] == "epoch <!--<script>"  # the JSON reads back the name as it is
    assert "0 of ? steps (not finished" in text and "batches of 0;" in text
