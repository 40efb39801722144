"""tutorial.ipynb and tutorial_zh.ipynb: each runs top to bottom (a short pass of quick mode on the sample
data), shows and runs the package's own training loop on the networks it built, and its committed pictures
are not collapsed; the Chinese one is the English one's code with the Chinese texts."""
import base64
import io
import json
import os
import re
import sys

import nbformat
import numpy as np
from nbclient import NotebookClient
import pytest
from PIL import Image

from conftest import REPO, assert_drawn_images, grid_tiles
from dcgan_ms import checkpoint
from dcgan_ms.images import generate
from dcgan_ms.plots import to_uint8

NOTEBOOKS = [os.path.join(REPO, "tutorial.ipynb"), os.path.join(REPO, "tutorial_zh.ipynb")]


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=os.path.basename)
def test_tutorial_notebook_executes(tmp_path, monkeypatch, notebook):
    nb = nbformat.read(notebook, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert "QUICK = True" in params.source and 'DATASET = "sample"' in params.source
    # Write the run outside the repository, and train a short pass (the kernel inherits the environment).
    params.source = params.source.replace('OUTPUT_DIR = "runs/notebook"', f'OUTPUT_DIR = {str(tmp_path / "nb")!r}')
    monkeypatch.setenv("DCGAN_MS_NOTEBOOK_MAX_STEPS", "40")
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": REPO}}).execute()
    outputs = [o for c in code_cells(nb) for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if {"image/png", "image/jpeg"} & set(o.get("data", {}))]
    assert len(images) >= 6, "plots and image grids should be shown"
    # What this code draws: pictures, not blank figures; a grid of 64 distinct images (40 steps: less than an
    # epoch, so one grid); weights that load and draw.
    for shown in images:
        assert picture(shown).std() > 10, "a blank picture"
    grid = grid_tiles(tmp_path / "nb" / "samples" / "epoch_001.png")
    assert grid.shape == (64, 64, 64, 3)
    assert_drawn_images(grid)
    generator = checkpoint.load_generator(str(tmp_path / "nb" / "generator.ckpt"))
    z = np.random.default_rng(0).standard_normal((4, generator.nz, 1, 1)).astype(np.float32)
    assert_drawn_images(to_uint8(generate(generator, z)))
    with Image.open(tmp_path / "nb" / "progress.gif") as gif:
        assert gif.n_frames == 1
    assert "done: 40 steps in " in "".join(o.get("text", "") for o in outputs)
    # It shows the loop's real source and trains with it, not through the command line.
    shown = "".join(o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "def train_loop(" in shown and "callbacks.on_step_end(" in shown
    sources = "".join(c.source for c in code_cells(nb))
    assert "train_loop(train_step, dataset," in sources and "parse_args" not in sources
    # It shows the tutorial's networks as built, then rewrites them and checks the results are the same.
    printed = "".join(o.get("text", "") for o in outputs)
    assert re.search(r"^ 0 Conv2dTranspose\s", printed, re.M) and re.search(r"^ 1 BatchNorm2d\s", printed, re.M)
    assert "def speed_up(" in shown and "speed_up(generator, precision=PRECISION)" in sources
    difference = re.search(r"largest difference from the tutorial's layers: (\S+)", printed)
    assert difference and float(difference.group(1)) < 1e-4, printed[-2000:]


def picture(output):
    """A picture a notebook shows, as float32 RGB pixels."""
    data = output["data"].get("image/png") or output["data"]["image/jpeg"]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"), np.float32)


def band(image, left, right):
    """The horizontal band [left, right) of an image's width."""
    return image[:, int(left * image.shape[1]):int(right * image.shape[1])]


def colourfulness(output, left=0.0, right=1.0):
    """Mean saturation (max - min channel) of the non-white pixels of a picture the notebook shows, in
    the horizontal band [left, right) of its width. Training images score about 67; the grey blobs of
    a collapsed or barely trained generator (the 120-step notebook this replaced) 9-13."""
    image = band(picture(output), left, right)
    drawn = image[image.min(axis=2) < 235]  # leave out the figure's white background and the grid's padding
    return float((drawn.max(axis=1) - drawn.min(axis=1)).mean())


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=os.path.basename)
def test_committed_outputs_show_varied_avatars(notebook):
    """The committed run is long enough to show avatars: the pictures after training (the last progress
    grid, the generated images with BatchNorm as in training, the latent walk) are coloured faces, not
    the grey blobs of a collapsed or untrained G. (The first grids and bn="moving" are dark or grey
    by design, so they are left out.)"""
    nb = nbformat.read(notebook, as_version=4)
    cells = code_cells(nb)
    checks = [(next(c for c in cells if "grids.grids" in c.source), 0.75, 1.0),  # the last of 4 grids
              (next(c for c in cells if "generate(g, z, bn)" in c.source), 0.0, 0.5),  # bn="batch"
              (next(c for c in cells if "interpolate(" in c.source and "walk" in c.source), 0.0, 1.0)]
    for cell, left, right in checks:
        shown = [o for o in cell.outputs if {"image/png", "image/jpeg"} & set(o.get("data", {}))]
        assert shown, f"no picture committed for:\n{cell.source[:200]}"
        assert colourfulness(shown[0], left, right) > 30, f"grey pictures for:\n{cell.source[:200]}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=os.path.basename)
def test_the_committed_source_listings_are_the_packages_source_today(notebook):
    """Each ``show_source(NAME)`` output saved in the notebook is NAME's source as the package has it now
    (a change to the loop or the networks is re-shown, not left stale in the file learners open first)."""
    import inspect
    nb = nbformat.read(notebook, as_version=4)
    names = {}
    for line in "\n".join(c.source for c in code_cells(nb)).splitlines():
        if re.match(r"^from dcgan_ms[\w.]* import [\w, ]+$", line):
            exec(line, names)
    listed = 0
    for cell in code_cells(nb):
        shown = [o for o in cell.outputs if o.get("output_type") == "display_data" and "text/html" in o.get("data", {})]
        for name, output in zip(re.findall(r"^show_source\((\w+)\)", cell.source, re.M), shown):
            assert output["data"]["text/plain"].rstrip("\n") == inspect.getsource(names[name]).rstrip("\n"), name
            listed += 1
    assert listed >= 8, listed


def test_the_chinese_notebook_is_the_english_code_with_the_chinese_texts():
    sys.path.insert(0, os.path.join(REPO, "scripts"))
    import build_zh_notebook as build
    english, chinese = (json.load(open(path, encoding="utf-8")) for path in NOTEBOOKS)
    assert [(c["id"], c["source"]) for c in english["cells"] if c["cell_type"] == "code"] == \
        [(c["id"], c["source"]) for c in chinese["cells"] if c["cell_type"] == "code"]
    assert not build.differences(build.build(english, build.read_texts(), chinese), chinese), \
        "tutorial_zh.ipynb is stale: run python scripts/build_zh_notebook.py"
    for en, zh in zip(english["cells"], chinese["cells"]):
        if en["cell_type"] == "markdown":
            assert zh["source"] != en["source"] and re.search(r"[\u4e00-\u9fff]", zh["source"]), en["id"]
    assert all(c["outputs"] for c in chinese["cells"] if c["cell_type"] == "code" and "show_source" in c["source"]), \
        "tutorial_zh.ipynb is committed with the outputs of a whole run"
    edited = json.loads(json.dumps(chinese))
    next(c for c in edited["cells"] if c["cell_type"] == "code")["source"] += "\n# drifted"
    assert build.differences(build.build(english, build.read_texts(), edited), edited)  # a drift is caught


def test_a_chinese_text_is_stale_once_its_english_cell_changes(tmp_path):
    sys.path.insert(0, os.path.join(REPO, "scripts"))
    import build_zh_notebook as build
    english = json.load(open(NOTEBOOKS[0], encoding="utf-8"))
    assert build.stale(english, build.read_digests()) == [], "run python scripts/build_zh_notebook.py"
    cell = next(c for c in english["cells"] if c["cell_type"] == "markdown" and "## Generator" in c["source"])
    cell["source"] += "\nA sentence the Chinese text does not have yet."
    assert build.stale(english, build.read_digests()) == [cell["id"]]
    texts = tmp_path / "texts.md"  # marking it translated records the new English
    texts.write_text(open(build.TEXTS, encoding="utf-8").read(), encoding="utf-8")
    build.mark_translated(english, [cell["id"]], path=str(texts))
    assert build.stale(english, build.read_digests(str(texts))) == []
    assert build.read_texts(str(texts)) == build.read_texts()  # the texts themselves untouched
