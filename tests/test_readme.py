"""README.md and README_CN.md: the same commands, each file linking to the other at the top, and no link to a
file that is not there."""
import os
import re

from conftest import REPO, readme_commands


def test_the_chinese_readme_gives_exactly_the_english_commands():
    english, chinese = readme_commands("README.md"), readme_commands("README_CN.md")
    assert len(english) >= 15 and chinese == english


def test_each_readme_links_to_the_other_in_its_first_lines():
    english = open(os.path.join(REPO, "README.md"), encoding="utf-8").read().splitlines()[:5]
    chinese = open(os.path.join(REPO, "README_CN.md"), encoding="utf-8").read().splitlines()[:5]
    assert any("(README_CN.md)" in line for line in english)
    assert any("(README.md)" in line for line in chinese)
    assert sum(1 for _ in open(os.path.join(REPO, "README.md"), encoding="utf-8")) <= 300


def test_every_file_a_readme_links_to_is_in_the_repository():
    for name in ("README.md", "README_CN.md"):
        text = open(os.path.join(REPO, name), encoding="utf-8").read()
        links = [link for link in re.findall(r"\]\(([^)#\s]+)", text) if "://" not in link]
        missing = [link for link in links if not os.path.exists(os.path.join(REPO, link))]
        assert links and not missing, (name, missing)
