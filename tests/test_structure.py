"""The shape the package keeps, so that a newcomer reads it in an hour and changes it safely: short
modules and docstrings, keyword arguments, the library below the command lines, flags defined once."""
import ast
import glob
import os
import re

from conftest import REPO

PACKAGE = os.path.join(REPO, "dcgan_ms")


def modules():
    return {os.path.relpath(path, REPO): ast.parse(open(path).read())
            for path in sorted(glob.glob(os.path.join(PACKAGE, "**", "*.py"), recursive=True))}


def module_name(path):
    return path[:-3].replace(os.sep, ".").removesuffix(".__init__")


def is_command_line(tree):
    """A module run as a command: it ends in ``if __name__ == "__main__"``."""
    return any(isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) for node in tree.body)


def imported_modules(path, tree):
    """The dcgan_ms modules ``path`` imports, anywhere in it (functions too), as dotted names."""
    package = module_name(path).split(".")
    if not path.endswith("__init__.py"):
        package = package[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dcgan_ms"):
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_modules_and_their_docstrings_read_at_once():
    long = []
    for path, tree in modules().items():
        lines = sum(1 for _ in open(os.path.join(REPO, path)))
        doc = ast.get_docstring(tree) or ""
        if lines > 300 or doc.count("\n") + 1 > 12:
            long.append(f"{path}: {lines} lines, docstring {doc.count(chr(10)) + 1}")
    for path in glob.glob(os.path.join(PACKAGE, "kernels", "*.[ch]*")):
        if sum(1 for _ in open(path)) > 350:
            long.append(os.path.relpath(path, REPO))
    assert not long, f"modules over 300 lines (C++ 350) or docstrings over 12: {long}"


def test_the_package_map_names_every_module():
    """dcgan_ms/__init__.py's docstring is the package's map: each top-level module and subpackage is on it."""
    import dcgan_ms
    names = {os.path.basename(p) for p in glob.glob(os.path.join(PACKAGE, "*.py")) if not p.endswith("__init__.py")}
    names |= {os.path.basename(os.path.dirname(p)) + "/" for p in glob.glob(os.path.join(PACKAGE, "*", "__init__.py"))}
    missing = sorted(name for name in names if not re.search(rf"(?<![\w/]){re.escape(name)}", dcgan_ms.__doc__))
    assert not missing, f"not on the map in dcgan_ms/__init__.py: {missing}"


def test_lines_are_at_most_120_characters():
    long = [f"{path}:{number}" for path in modules() for number, line in enumerate(open(os.path.join(REPO, path)), 1)
            if len(line.rstrip("\n")) > 120]
    assert not long, long


def test_no_call_passes_more_than_six_positional_arguments():
    """... except a container's elements: the tutorial's ``nn.SequentialCell(layer, layer, ...)``."""
    walls = [f"{path}:{node.lineno}" for path, tree in modules().items() for node in ast.walk(tree)
             if isinstance(node, ast.Call) and sum(not isinstance(a, ast.Starred) for a in node.args) > 6
             and ast.unparse(node.func) != "nn.SequentialCell"]
    assert not walls, f"use keyword arguments: {walls}"


def test_the_library_does_not_import_the_command_lines():
    trees = modules()
    commands = {module_name(p) for p, tree in trees.items() if is_command_line(tree)}
    assert {"dcgan_ms.train", "dcgan_ms.generate", "dcgan_ms.evaluate", "dcgan_ms.export"} <= commands
    upward = [f"{path} imports {name}" for path, tree in trees.items() if not is_command_line(tree)
              for name in imported_modules(path, tree) if name in commands]
    assert not upward, upward


def import_graph():
    """dcgan_ms module -> the dcgan_ms modules it imports, anywhere in it (functions too). ``from . import
    x`` counts as an import of x alone, not of the package's __init__."""
    trees = modules()
    names = {module_name(path) for path in trees}
    graph = {}
    for path, tree in trees.items():
        imported = imported_modules(path, tree) & names
        parents = {name.rsplit(".", 1)[0] for name in imported if name.rsplit(".", 1)[0] in imported}
        graph[module_name(path)] = imported - parents - {module_name(path)}
    return graph


def circle_in(graph):
    """One circle of imports in ``graph`` as a list of modules, or None."""
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return trail[trail.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt, trail + [nxt])):
                return found
        state[node] = "done"
        return None

    return next((found for node in sorted(graph) if node not in state and (found := visit(node, [node]))), None)


def test_no_circle_of_imports():
    graph = import_graph()
    assert len(graph) > 40 and "dcgan_ms.run_folder" in graph["dcgan_ms.session"]
    assert circle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # the check itself
    assert circle_in(graph) is None, f"imports in a circle: {' -> '.join(circle_in(graph))}"


def design_levels():
    """docs/design.md's "Layers of the package" table: module -> its row (0 the highest)."""
    text = open(os.path.join(REPO, "docs", "design.md"), encoding="utf-8").read()
    table = text.split("## Layers of the package", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "`" in line]
    levels = {}
    for level, row in enumerate(rows):
        for name in row.split("|")[2].split("`")[1::2]:
            levels["dcgan_ms." + name.removesuffix("/").removesuffix(".py").replace("/", ".")] = level
    return levels


def test_no_module_imports_one_above_it_as_docs_design_md_lays_them_out():
    levels, graph = design_levels(), import_graph()
    placed = {name: next((levels[p] for p in (name, name.rsplit(".", 1)[0]) if p in levels), None) for name in graph}
    unplaced = sorted(name for name, level in placed.items() if level is None and name != "dcgan_ms")
    assert not unplaced, f"modules missing from docs/design.md's table of layers: {unplaced}"
    upward = [f"{a} (row {placed[a]}) imports {b} (row {placed[b]})" for a, imported in graph.items() if a != "dcgan_ms"
              for b in imported if placed[b] < placed[a]]
    assert not upward, upward


def test_a_flag_is_defined_once_on_the_config_and_the_parser_is_built_from_it():
    from dcgan_ms.config import FLAGS, RUN_DEFINING, TrainConfig
    from dcgan_ms.train import build_parser
    parser_flags = {a.dest for a in build_parser()._actions if a.dest != "help"}
    assert parser_flags == {f.name for f in FLAGS} == set(TrainConfig().flags())
    assert {"seed", "batch_size", "ngf", "instance_noise", "distributed"} <= set(RUN_DEFINING)
    assert not {"epochs", "max_steps", "device_target", "resume", "output_dir"} & set(RUN_DEFINING)


def test_the_command_line_parses_its_flags_without_mindspore():
    """A wrong flag or --help is answered at once: parsing imports nothing of MindSpore (seconds to load)."""
    import subprocess
    import sys
    code = ("import sys\nfrom dcgan_ms.train import parse_args\nparse_args(['--dataset', 'sample', '--background', "
            "'#ff0000'])\nprint(sorted(m for m in sys.modules if m.split('.')[0] == 'mindspore'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_the_defaults_are_the_tutorials_as_the_readme_says():
    """README: "The defaults are the tutorial's: batch 128, 3 epochs, nz 100, ngf = ndf = 64, Adam lr 2e-4,
    beta1 0.5", for the command line and for the networks built without arguments."""
    from dcgan_ms import models
    from dcgan_ms.train import parse_args
    args = parse_args([])
    assert (args.batch_size, args.epochs, args.nz, args.ngf, args.ndf, args.lr, args.beta1) == (
        128, 3, 100, 64, 64, 2e-4, 0.5)
    assert (args.dataset, args.data_root, args.device_target) == ("faces", None, "CPU")
    assert (models.NZ, models.NGF, models.NDF) == (100, 64, 64)
    readme = " ".join(open(os.path.join(REPO, "README.md"), encoding="utf-8").read().split())
    assert ("The defaults are the tutorial's: batch 128, 3 epochs, nz 100, ngf = ndf = 64, Adam lr 2e-4, beta1 0.5"
            in readme)
