"""Build the Chinese notebook, tutorial_zh.ipynb, from tutorial.ipynb and the Chinese texts, so the two
cannot drift: the code cells are tutorial.ipynb's, the Markdown cells docs/tutorial_zh_texts.md's (one
text per cell id, after a ``<!-- cell: ID -->`` line).

    python scripts/build_zh_notebook.py                      # write tutorial_zh.ipynb
    python scripts/build_zh_notebook.py --check              # exit 1, naming the cells, if it is not up to date
    python scripts/execute_notebook.py tutorial_zh.ipynb     # then its outputs, from a whole run

Building keeps a code cell's outputs where its source is unchanged, so a text edit needs no new run.
"""
import argparse
import copy
import json
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGLISH = os.path.join(REPO, "tutorial.ipynb")
CHINESE = os.path.join(REPO, "tutorial_zh.ipynb")
TEXTS = os.path.join(REPO, "docs", "tutorial_zh_texts.md")
MARK = re.compile(r"^<!-- cell: (\S+) -->$", re.M)


def read_texts(path=TEXTS):
    """Cell id -> Chinese Markdown, from the texts file."""
    parts = MARK.split(open(path, encoding="utf-8").read())
    return {cell_id: text.strip() for cell_id, text in zip(parts[1::2], parts[2::2])}


def build(english, texts, previous=None):
    """The Chinese notebook: ``english``'s cells, its Markdown replaced by ``texts``; the code cells'
    outputs taken from ``previous`` (the Chinese notebook as it is) where their source is unchanged."""
    markdown = {c["id"] for c in english["cells"] if c["cell_type"] == "markdown"}
    if markdown != set(texts):
        raise ValueError(f"{os.path.relpath(TEXTS, REPO)} does not match the notebook's Markdown cells: missing "
                         f"{sorted(markdown - set(texts))}, unknown {sorted(set(texts) - markdown)}")
    earlier = {c["id"]: c for c in (previous or {}).get("cells", [])}
    notebook = copy.deepcopy(english)
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            cell["source"] = texts[cell["id"]]
        elif cell["id"] in earlier and earlier[cell["id"]]["source"] == cell["source"]:
            cell["outputs"] = earlier[cell["id"]]["outputs"]
            cell["execution_count"] = earlier[cell["id"]]["execution_count"]
        else:
            cell["outputs"], cell["execution_count"] = [], None
    return notebook


def differences(built, current):
    """The ids of the cells where ``current`` is not what ``build`` makes."""
    if [c["id"] for c in built["cells"]] != [c["id"] for c in current["cells"]]:
        return ["the cells themselves (added, removed or reordered)"]
    return [b["id"] for b, c in zip(built["cells"], current["cells"]) if b["source"] != c["source"]]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="only check that tutorial_zh.ipynb is up to date")
    args = p.parse_args()
    english = json.load(open(ENGLISH, encoding="utf-8"))
    current = json.load(open(CHINESE, encoding="utf-8")) if os.path.exists(CHINESE) else None
    built = build(english, read_texts(), current)
    if args.check:
        stale = differences(built, current) if current else ["all: it does not exist"]
        if stale:
            sys.exit(f"tutorial_zh.ipynb is not built from tutorial.ipynb and the texts (cells {', '.join(stale)}): "
                     "run python scripts/build_zh_notebook.py")
        return
    with open(CHINESE, "w", encoding="utf-8") as f:
        json.dump(built, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {os.path.relpath(CHINESE, REPO)}; its code cells without outputs need "
          "python scripts/execute_notebook.py tutorial_zh.ipynb", file=sys.stderr)


if __name__ == "__main__":
    main()
