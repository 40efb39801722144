"""The shape the package keeps, so that a newcomer reads it in an hour and changes it safely: short
modules and docstrings, keyword arguments, the library below the command lines, flags defined once."""
import ast
import glob
import os

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
