"""tutorial.ipynb runs top to bottom in quick mode (its committed parameters) on the sample data."""
import os

import nbformat
from nbclient import NotebookClient

from conftest import REPO


def test_tutorial_notebook_executes(tmp_path):
    nb = nbformat.read(os.path.join(REPO, "tutorial.ipynb"), as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert "QUICK = True" in params.source and 'DATASET = "sample"' in params.source
    # Write the run outside the repository.
    params.source = params.source.replace('OUTPUT_DIR = "runs/notebook"', f'OUTPUT_DIR = {str(tmp_path / "nb")!r}')
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": REPO}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if {"image/png", "image/jpeg"} & set(o.get("data", {}))]
    assert len(images) >= 6, "plots and image grids should be shown"
    assert os.path.isfile(tmp_path / "nb" / "generator.ckpt")
    assert os.path.isfile(tmp_path / "nb" / "progress.gif")
