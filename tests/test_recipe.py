"""benchmarks/recipe.py, the script behind the README's recipe table, runs end to end (on a tiny recipe)."""
import json
import os
import subprocess
import sys

from conftest import REPO


def test_recipe_script_trains_scores_and_summarises_each_seed(tmp_path, flat_images):
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "recipe.py"), "--seeds", "1", "2", "--num", "16",
                           "--data_root", flat_images, "--name", "tiny", "--out", str(out), "--runs_dir",
                           str(tmp_path / "runs"), "--", "--ngf", "4", "--ndf", "4", "--nz", "8", "--batch_size", "8",
                           "--epochs", "9", "--max_steps", "2"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())["results"]
    assert [(r["recipe"], r["seed"], r["steps"]) for r in results] == [("tiny", 1, 2), ("tiny", 2, 2)]
    assert all(r["swd"] > 0 and r["diversity"] > 0 and sorted(r["levels"]) == ["16", "32", "64"] for r in results)
    assert results[0]["swd"] != results[1]["swd"]  # two seeds, two runs
    summary = proc.stdout.strip().splitlines()[-1]
    assert summary.startswith("tiny: SWD x1e3 mean ") and "over seeds 1, 2;" in summary and "2 (2-2) steps" in summary, summary
