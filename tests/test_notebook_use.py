"""tutorial.ipynb as learners use it, in a real kernel, cell by cell: a cell run before the one it needs,
the training cell run twice, the networks rebuilt, Stop (the kernel's interrupt) during training and
then the cell again, a command-line run on the folder the kernel holds, a GPU the machine lacks. The
code cells are the Chinese notebook's too (test_notebook.py checks that)."""
import os
import queue
import time

import nbformat
import pytest
from jupyter_client.manager import KernelManager

from conftest import REPO, run_cli
from dcgan_ms import notebook

NOTEBOOK = os.path.join(REPO, "tutorial.ipynb")


def test_errors_are_said_in_the_notebooks_words():
    assert notebook.in_notebook_words("install the driver, or pass --device_target CPU") == \
        'install the driver, or set DEVICE = "CPU" in the first cell'
    assert notebook.in_notebook_words("wait for it to end, or pass another --output_dir") == \
        "wait for it to end, or set OUTPUT_DIR in the first cell"
    assert notebook.in_notebook_words("pass --max_minutes 2") == "pass --max_minutes 2"  # no such variable
    missing = notebook.error_line(NameError("name 'dataset' is not defined", name="dataset"))
    assert missing == 'error: dataset is not defined yet: run the "Data processing" section first (or Run All from ' \
                      'the top)'
    assert notebook.error_line(NameError("name 'typo' is not defined", name="typo")) == \
        "error: name 'typo' is not defined"


def test_a_command_line_runs_folder_is_not_the_notebooks_to_clear(tmp_path):
    (tmp_path / "cli" / "checkpoints").mkdir(parents=True)
    (tmp_path / "cli" / "checkpoints" / "step_0000040.ckpt").write_bytes(b"a resume checkpoint")
    (tmp_path / "cli" / "generator.ckpt").write_bytes(b"its weights")
    with pytest.raises(notebook.UserError) as refused:
        notebook.NotebookRun(str(tmp_path / "cli"), None, None)
    assert notebook.error_line(refused.value) == (f"error: {tmp_path / 'cli'} holds a command-line training run (resume "
                                                  f"checkpoints in {tmp_path / 'cli'}/checkpoints): set OUTPUT_DIR in "
                                                  "the first cell")
    assert (tmp_path / "cli" / "generator.ckpt").read_bytes() == b"its weights"
    (tmp_path / "old" / "samples").mkdir(parents=True)  # an earlier notebook run's files: this run's to replace
    for name in ("samples/epoch_001.png", "generator.ckpt", "progress.gif", "notes.txt"):
        (tmp_path / "old" / name).write_bytes(b"x")
    notebook.NotebookRun(str(tmp_path / "old"), None, None)
    assert sorted(p.name for p in (tmp_path / "old").rglob("*") if p.is_file()) == [".lock", "notes.txt"]


def test_a_name_missing_below_the_cell_keeps_its_traceback():
    """Only a cell's own NameError is a cell run too early; one raised inside a function is a bug, shown whole."""
    shown = []

    class Shell:
        def set_custom_exc(self, kinds, handler):
            self.handler = handler

        def _showtraceback(self, kind, error, lines):
            shown.append(("line", lines))

        def showtraceback(self, exc_tuple, tb_offset=None):
            shown.append(("traceback", exc_tuple[1]))

    shell = Shell()
    notebook.one_line_errors(shell)

    def helper():
        return dataset  # noqa: F821 (the missing name)
    for code in ("dataset", "helper()"):
        try:
            exec(compile(code, "<ipython-input-1-cell>", "eval"), {"helper": helper})
        except NameError as e:
            shell.handler(shell, NameError, e, e.__traceback__)
    assert shown[0] == ("line", ['error: dataset is not defined yet: run the "Data processing" section first (or Run '
                                 'All from the top)'])
    assert shown[1][0] == "traceback" and isinstance(shown[1][1], NameError)


class Kernel:
    """A Jupyter kernel running the notebook's cells as a learner's clicks would."""

    def __init__(self, cwd, env, sockets):
        # IPC sockets in a folder of the test's own: TCP would pick free ports that another process (a second
        # kernel, CI's other work) can take before the kernel binds them
        self.manager = KernelManager(kernel_name="python3", transport="ipc", ip=str(sockets))
        self.manager.start_kernel(cwd=cwd, env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=120)

    def start(self, code):
        return self.client.execute(code)

    def finish(self, msg_id, timeout=600):
        """(status, stdout, stderr, error lines) of an execution."""
        out, err, error = [], [], []
        deadline = time.time() + timeout
        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=max(1, deadline - time.time()))
            except queue.Empty:
                raise AssertionError(f"no answer in {timeout} s; so far: {''.join(out)[-2000:]}") from None
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                (out if content["name"] == "stdout" else err).append(content["text"])
            elif kind == "error":
                error = content["traceback"]
            elif kind == "status" and content["execution_state"] == "idle":
                break
        reply = self.client.get_shell_msg(timeout=60)
        while reply["parent_header"].get("msg_id") != msg_id:  # a reply to an earlier request (kernel_info)
            reply = self.client.get_shell_msg(timeout=60)
        return reply["content"]["status"], "".join(out), "".join(err), error

    def run(self, code, timeout=600):
        return self.finish(self.start(code), timeout)

    def wait_for(self, msg_id, text, timeout=300):
        """Read the execution's output until ``text`` appears in it (the execution goes on)."""
        seen, deadline = "", time.time() + timeout
        while text not in seen:
            msg = self.client.get_iopub_msg(timeout=max(1, deadline - time.time()))
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                seen += msg["content"]["text"]
        return seen

    def close(self):
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@pytest.fixture
def cells(tmp_path):
    """The notebook's code cells by id, its run folder in ``tmp_path``."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = {c.get("id"): c.source for c in nb.cells if c.cell_type == "code"}
    code["265c326b"] = code["265c326b"].replace('OUTPUT_DIR = "runs/notebook"', f'OUTPUT_DIR = {str(tmp_path / "nb")!r}')
    return code, [c.get("id") for c in nb.cells if c.cell_type == "code"]


def ok(result):
    status, out, err, error = result
    assert status == "ok" and not error, (out[-3000:], err[-3000:], error)
    return out


@pytest.mark.slow
def test_a_learner_runs_cells_twice_out_of_order_and_presses_stop(cells, tmp_path):
    code, order = cells
    kernel = Kernel(REPO, {**os.environ, "DCGAN_MS_NOTEBOOK_MAX_STEPS": "12"}, tmp_path / "kernel")
    training = "7eda94eb"
    try:
        ok(kernel.run(code["265c326b"]))
        ok(kernel.run(code["dc5e948a"]))
        # A picture cell before training, and the data cell skipped: one line naming what to run first.
        for cell, name, section in (("b2677881", "grids", "Training"), ("6d1538fb", "data_root", "Data preparation")):
            status, out, err, error = kernel.run(code[cell])
            assert status == "error" and error == [f'error: {name} is not defined yet: run the "{section}" section '
                                                   f'first (or Run All from the top)'], error
        outputs = [ok(kernel.run(code[cell])) for cell in order[2:]]  # Run All, the rest
        assert "12 steps in all: run this cell again to train 12 more (the same run)" in "".join(outputs)
        # The training cell again: the same run goes on (steps, losses, grids).
        out = ok(kernel.run(code[training]))
        assert "done: 12 steps in " in out and "24 steps in all: run this cell again" in out, out
        out = ok(kernel.run("print(run.position.step, len(history.rows), len(grids.grids))"))
        assert out.split() == ["24", "24", "1"], out  # one epoch not yet ended: its grid is the run's one
        # A command-line run on the folder this kernel holds is refused, naming the kernel's process.
        proc = run_cli("dcgan_ms.train", "--dataset", "sample", "--max_steps", "1", "--output_dir", str(tmp_path / "nb"),
                       "--overwrite")
        assert proc.returncode == 2 and "is in use by another training run (process" in proc.stderr, proc.stderr
        # Networks rebuilt, then trained: one line naming the cells to run again; then those cells: a new run.
        for cell in ("d02686b9", "78c6414b", "faster-layers-code"):
            ok(kernel.run(code[cell]))
        status, out, err, error = kernel.run(code[training])
        assert status == "error" and len(error) == 1 and '"Loss and optimizers" and "The train step" again' in error[0]
        for cell in ("ad334ba1", "fbf5efeb", "ema-average-code", training):
            out = ok(kernel.run(code[cell]))
        assert "12 steps in all" in out, out
        out = ok(kernel.run("print(run.position.step, len(history.rows), len(grids.grids))"))
        assert out.split() == ["12", "12", "1"], out  # a new run: the old one's grids are gone from the folder too
        assert sorted(os.listdir(tmp_path / "nb" / "samples")) == ["epoch_001.png"]
        # Stop during training: the step ends, everything is saved, the kernel lives; the cell again continues.
        ok(kernel.run("MAX_STEPS = 100_000"))
        for attempt in range(2):
            started = kernel.start(code[training])
            kernel.wait_for(started, "epoch ")  # an epoch's line: training is under way
            kernel.manager.interrupt_kernel()
            status, out, err, error = kernel.finish(started)
            assert status == "ok" and not error, (out, err, error)
            assert "stopped: " in out and "everything saved: run this cell again to continue" in out, out
            step = int(out.split("stopped after step ")[1].split(",")[0])
            assert step > 12 + attempt * 40, out
        assert ok(kernel.run("print(run.position.step, len(history.rows))")).split() == [str(step), str(step)]
        assert os.path.isfile(tmp_path / "nb" / "generator.ckpt")
    finally:
        kernel.close()


@pytest.mark.slow
def test_a_gpu_the_machine_lacks_stops_run_all_at_the_first_cell_with_one_line(tmp_path):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = params.source.replace('DEVICE = "CPU"', 'DEVICE = "GPU"').replace(
        'OUTPUT_DIR = "runs/notebook"', f'OUTPUT_DIR = {str(tmp_path / "nb")!r}')
    for cell in nb.cells:  # the committed run's outputs and counts gone: what runs now is what shows
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    with pytest.raises(CellExecutionError):
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": REPO}}).execute()
    ran = [c for c in nb.cells if c.cell_type == "code" and c.get("execution_count")]
    assert len(ran) == 2  # the parameters, then the cell that chose the device; nothing after it
    errors = [o for o in ran[-1].outputs if o.output_type == "error"]
    assert len(errors) == 1 and len(errors[0].traceback) == 1, errors
    assert errors[0].traceback[0].startswith("error: device target GPU is not usable here: "), errors[0].traceback
    assert "--device_target" not in errors[0].traceback[0]  # the notebook's words: DEVICE
    assert not (tmp_path / "nb").exists()
