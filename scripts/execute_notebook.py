"""Execute a notebook in place with its committed parameters (a whole quick-mode run), as its
committed outputs were made:

    python scripts/execute_notebook.py                       # tutorial.ipynb, about 5 minutes on a 2-core CPU
    python scripts/execute_notebook.py tutorial_zh.ipynb     # the Chinese one

Sources and text outputs are kept as single strings, as the notebook is committed (nbformat would
split them into lists of lines, which makes every later diff of the notebook noisy).
"""
import json
import os
import sys
import time

import nbformat
from nbclient import NotebookClient

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO, "tutorial.ipynb")


def joined(value):
    return "".join(value) if isinstance(value, list) else value


def main():
    notebook = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else NOTEBOOK
    os.environ.pop("DCGAN_MS_NOTEBOOK_MAX_STEPS", None)  # the whole run
    nb = nbformat.read(notebook, as_version=4)
    start = time.time()
    NotebookClient(nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": REPO}}).execute()
    print(f"executed in {time.time() - start:.0f} s", file=sys.stderr)
    data = json.loads(nbformat.writes(nb))
    for cell in data["cells"]:
        cell["source"] = joined(cell["source"])
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = joined(output["text"])
            for kind, value in output.get("data", {}).items():
                output["data"][kind] = joined(value)
    with open(notebook, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
