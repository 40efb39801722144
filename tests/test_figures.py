"""Figures the prose states, against where they come from: the bf16 ratios of both READMEs, the notebooks
and --help against docs/speed.md's table; the speed-ups the READMEs cite against docs/speed.md; and each
notebook's stated training time against the saved output of the run that made it. A figure updated in
its source but not in the prose (or the other way round) fails here."""
import json
import math
import os
import re

import pytest

from conftest import REPO


def text(name):
    return open(os.path.join(REPO, name), encoding="utf-8").read()


def flat(name):
    """A text with its line breaks and runs of spaces as single spaces (prose wraps anywhere)."""
    return " ".join(text(name).split())


def step_seconds(row):
    """The batch-128 and batch-32 seconds per step of one row of docs/speed.md's bf16 table."""
    found = re.search(r"^\| (?:\*\*)?%s(?:\*\*)? \| (?:\*\*)?([\d.]+)(?:\*\*)? \| [^|]+ \| (?:\*\*)?([\d.]+)" % row,
                      text("docs/speed.md"), re.M)
    assert found, f"docs/speed.md has no row '{row}'"
    return float(found[1]), float(found[2])


def bf16_ratios():
    fp32, bf16 = step_seconds("dcgan_ms fp32"), step_seconds("dcgan_ms bf16")
    return [bf16[i] / fp32[i] for i in range(2)]


def test_the_readmes_bf16_times_are_docs_speed_mds():
    batch128, batch32 = (f"{ratio:.2f}" for ratio in bf16_ratios())
    assert f"the tutorial's batch-128 step took {batch128} of its fp32 time on a 2-core AMD EPYC, the quickstart's " \
           f"{batch32}." in flat("README.md")
    assert f"教程批量大小 128 的训练步骤耗时为 fp32 的 {batch128} 倍，快速入门的为 {batch32} 倍" in flat("README_CN.md")


def test_the_bf16_speed_up_in_help_and_the_notebooks_is_docs_speed_mds():
    speedups = sorted(1 / ratio for ratio in bf16_ratios())
    span = f"{math.floor(speedups[0] * 10) / 10:.1f}-{math.floor(speedups[1] * 10 + 0.5) / 10:.1f}"
    from dcgan_ms.config import TrainConfig
    import dataclasses
    precision = next(f for f in dataclasses.fields(TrainConfig) if f.name == "precision")
    assert f"a {span}x " in " ".join(precision.metadata["help"].split())
    english = json.loads(text("tutorial.ipynb"))
    assert any(f"a {span}x faster step" in " ".join("".join(c["source"]).split()) for c in english["cells"])
    assert f"训练步骤的速度为 fp32 的 {span} 倍" in flat("docs/tutorial_zh_texts.md")


def test_the_speed_ups_the_readmes_cite_are_in_docs_speed_md():
    speed = text("docs/speed.md")
    for name in ("README.md", "README_CN.md"):
        line = re.search(r"^- \[docs/speed\.md\]\(docs/speed\.md\)[^\n]*", text(name), re.M)[0]  # Further reading
        cited = re.findall(r"(\d\.\d\d) ?(?:x|倍)", line)
        assert len(cited) == 4, (name, line)
        for figure in cited:
            assert f"**{figure}x**" in speed, (name, figure)


def training_seconds(notebook):
    """The seconds the saved training cell's last line reports ("done: 2392 steps in 270 s ...")."""
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            found = re.search(r"^done: \d+ steps in (\d+) s", "".join(output.get("text", "")), re.M)
            if found:
                return int(found[1])
    raise AssertionError("no training output saved")


@pytest.mark.parametrize("name, minutes, took", [
    ("tutorial.ipynb", r"about ([\d.]+) minutes of training on a 2-core CPU", r"where training took (\d+) s"),
    ("tutorial_zh.ipynb", r"在 2 核 CPU 上训练约需 ([\d.]+) 分钟", r"训练用时 (\d+) 秒"),
])
def test_each_notebook_states_the_training_time_its_saved_output_shows(name, minutes, took):
    notebook = json.loads(text(name))
    markdown = " ".join(" ".join("".join(c["source"]).split()) for c in notebook["cells"] if c["cell_type"] == "markdown")
    seconds = training_seconds(notebook)
    assert int(re.search(took, markdown)[1]) == seconds, (name, seconds)
    stated = float(re.search(minutes, markdown)[1])
    assert abs(stated * 60 - seconds) <= 0.15 * seconds, (name, stated, seconds)
