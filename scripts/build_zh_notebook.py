"""Build the Chinese notebook, tutorial_zh.ipynb, from tutorial.ipynb and the Chinese texts, so the two
cannot drift: the code cells are tutorial.ipynb's, the Markdown cells docs/tutorial_zh_texts.md's (one
text per cell id, after a ``<!-- cell: ID en: HASH -->`` line). HASH is a digest of the English cell the
text translates: when that cell changes, the text is stale, and building stops naming it until the text
is updated and marked translated.

    python scripts/build_zh_notebook.py                      # write tutorial_zh.ipynb
    python scripts/build_zh_notebook.py --check              # exit 1, naming the cells, if it is not up to date
    python scripts/build_zh_notebook.py --translated ID ...  # the texts of these cells match their English now
    python scripts/execute_notebook.py tutorial_zh.ipynb     # then its outputs, from a whole run

Building keeps a code cell's outputs where its source is unchanged, so a text edit needs no new run.
"""
import argparse
import copy
import hashlib
import json
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGLISH = os.path.join(REPO, "tutorial.ipynb")
CHINESE = os.path.join(REPO, "tutorial_zh.ipynb")
TEXTS = os.path.join(REPO, "docs", "tutorial_zh_texts.md")
MARK = re.compile(r"^<!-- cell: (\S+) en: ([0-9a-f]{12}) -->$", re.M)


def english_digest(source):
    """The digest a Chinese text records of the English cell it translates."""
    source = "".join(source) if isinstance(source, list) else source
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]


def read_texts(path=TEXTS):
    """Cell id -> Chinese Markdown, from the texts file."""
    parts = MARK.split(open(path, encoding="utf-8").read())
    return {cell_id: text.strip() for cell_id, text in zip(parts[1::3], parts[3::3])}


def read_digests(path=TEXTS):
    """Cell id -> the digest of the English cell its Chinese text translates."""
    return dict(MARK.findall(open(path, encoding="utf-8").read()))


def stale(english, digests):
    """The ids of the Markdown cells whose English changed since their Chinese text was written."""
    return [c["id"] for c in english["cells"]
            if c["cell_type"] == "markdown" and digests.get(c["id"]) != english_digest(c["source"])]


def mark_translated(english, ids, path=TEXTS):
    """Record that the texts of ``ids`` translate their English cells as they are now."""
    current = {c["id"]: english_digest(c["source"]) for c in english["cells"] if c["cell_type"] == "markdown"}
    unknown = sorted(set(ids) - set(current))
    if unknown:
        raise ValueError(f"no Markdown cell {', '.join(unknown)} in tutorial.ipynb")
    text = MARK.sub(lambda m: f"<!-- cell: {m[1]} en: {current[m[1]] if m[1] in ids else m[2]} -->",
                    open(path, encoding="utf-8").read())
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


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
    p.add_argument("--translated", nargs="+", metavar="ID", default=[],
                   help="the Chinese texts of these cells have been updated to their English: record it")
    args = p.parse_args()
    english = json.load(open(ENGLISH, encoding="utf-8"))
    if args.translated:
        mark_translated(english, args.translated)
    current = json.load(open(CHINESE, encoding="utf-8")) if os.path.exists(CHINESE) else None
    outdated = stale(english, read_digests())
    if outdated:
        sys.exit(f"the English of cells {', '.join(outdated)} changed since their Chinese text in "
                 f"{os.path.relpath(TEXTS, REPO)} was written: update those texts, then run python "
                 f"scripts/build_zh_notebook.py --translated {' '.join(outdated)}")
    built = build(english, read_texts(), current)
    if args.check:
        differing = differences(built, current) if current else ["all: it does not exist"]
        if differing:
            sys.exit(f"tutorial_zh.ipynb is not built from tutorial.ipynb and the texts (cells {', '.join(differing)}): "
                     "run python scripts/build_zh_notebook.py")
        return
    with open(CHINESE, "w", encoding="utf-8") as f:
        json.dump(built, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {os.path.relpath(CHINESE, REPO)}; its code cells without outputs need "
          "python scripts/execute_notebook.py tutorial_zh.ipynb", file=sys.stderr)


if __name__ == "__main__":
    main()
