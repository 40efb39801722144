"""benchmarks/recipe.py, the script behind the README's recipe table, runs end to end (on a tiny recipe)."""
import json
import os
import statistics
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.slow
def test_recipe_script_trains_scores_and_summarises_each_seed(tmp_path, flat_images):
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "recipe.py"), "--seeds", "1", "2", "--num", "16",
                           "--data_root", flat_images, "--name", "tiny", "--out", str(out), "--runs_dir",
                           str(tmp_path / "runs"), "--", "--ngf", "4", "--ndf", "4", "--nz", "8", "--batch_size", "8",
                           "--epochs", "9", "--max_steps", "2"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())["results"]
    assert [(r["recipe"], r["seed"], r["steps"]) for r in results] == [("tiny", 1, 2), ("tiny", 2, 2)]
    for r in results:  # each run's scores are its own evaluate's (swd.json in its folder)
        report = json.loads((tmp_path / "runs" / f"tiny-seed{r['seed']}" / "swd.json").read_text())
        assert (r["swd"], r["levels"], r["diversity"]) == (report["swd_x1e3"]["mean"], report["swd_x1e3"]["per_level"],
                                                            report["diversity"])
        assert r["swd"] == pytest.approx(statistics.mean(r["levels"].values())) and sorted(r["levels"]) == ["16", "32", "64"]
    assert results[0]["swd"] != results[1]["swd"]  # two seeds, two runs
    swds = sorted(r["swd"] for r in results)
    summary = proc.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"tiny: SWD x1e3 mean {statistics.mean(swds):.1f} ({swds[0]:.1f}-{swds[1]:.1f}) over "
                              "seeds 1, 2;"), summary
    assert "2 (2-2) steps" in summary, summary
