"""What tutorial.ipynb's cells share beyond their variables, for learners who run cells twice, out of order,
and press Stop: the training run that the training cell continues each time it runs (its step, losses,
noise stream and pictures), its folder held as the command line holds one, and errors as one line in
the notebook's words (the cell to run first, the variable to set) instead of tracebacks.

Imports no MindSpore: ``one_line_errors`` runs in the first code cell, before MindSpore is imported.
"""
import inspect
import os
import re

from .errors import UserError

# The name a cell defines -> the section of the notebook that defines it (a NameError names it).
DEFINED_IN = {
    **dict.fromkeys(("QUICK", "DATASET", "DEVICE", "OUTPUT_DIR", "SEED", "PRECISION", "EPOCHS", "BATCH_SIZE", "NGF",
                     "NDF", "LR", "INSTANCE_NOISE", "EMA", "MAX_STEPS"), "Parameters"),
    **dict.fromkeys(("plt", "np", "ms", "checkpoint", "plots", "show_source", "set_device", "set_seed"),
                    "Parameters (its second code cell)"),
    "data_root": "Data preparation",
    **dict.fromkeys(("dataset", "real_batch", "create_dataset"), "Data processing"),
    **dict.fromkeys(("generator", "Generator", "Discriminator"), "Generator"),
    "discriminator": "Discriminator",
    "speed_up": "Faster layers, swapped in after construction",
    **dict.fromkeys(("optimizer_g", "optimizer_d", "make_optimizers", "make_train_step"), "Loss and optimizers"),
    **dict.fromkeys(("train_step", "average", "WeightAverage"), "The train step"),
    "shown": "Averaging G's weights",
    **dict.fromkeys(("train_loop", "train_epoch"), "Training (its first code cell)"),
    **dict.fromkeys(("run", "history", "grids", "fixed_noise"), "Training"),
    **dict.fromkeys(("g", "generate", "interpolate"), "Generating from the saved checkpoint"),
}
# Command-line flags, as the first cell's variables name them.
VARIABLES = {"device_target": "DEVICE", "output_dir": "OUTPUT_DIR", "dataset": "DATASET", "batch_size": "BATCH_SIZE",
             "seed": "SEED", "precision": "PRECISION", "epochs": "EPOCHS", "ngf": "NGF", "ndf": "NDF", "lr": "LR"}


def in_notebook_words(message):
    """A command line's error in the notebook's words: ``pass --device_target CPU`` becomes
    ``set DEVICE = "CPU" in the first cell``."""
    def variable(match):
        name = VARIABLES.get(match[1])
        if name is None:
            return match[0]
        return f'set {name} = "{match[2]}" in the first cell' if match[2] else f"set {name} in the first cell"
    return re.sub(r"pass (?:another |a writable |a )?--(\w+)(?: (?!or\b|and\b)([\w.-]+))?", variable, message)


def error_line(error):
    """The one line a UserError or a NameError of a notebook cell gets."""
    if isinstance(error, NameError):
        name = getattr(error, "name", None) or (re.findall(r"'(\w+)'", str(error)) or [""])[0]
        section = DEFINED_IN.get(name)
        if section:
            return f"error: {name} is not defined yet: run the \"{section}\" section first (or Run All from the top)"
        return f"error: {error}"
    return f"error: {in_notebook_words(str(error))}"


def one_line_errors(shell=None):
    """Show a UserError (a bad device, a folder in use, data missing) or a NameError (a cell run before the
    one it needs) as one line in the notebook; the cell still fails, so Run All stops there."""
    try:
        shell = shell or get_ipython()  # noqa: F821 (defined inside IPython only)
    except NameError:
        return  # plain Python: errors stay as they are

    def show(shell, kind, error, tb, tb_offset=None):
        if isinstance(error, NameError) and not raised_in_a_cell(tb):  # a bug below the cell: its traceback
            shell.showtraceback((kind, error, tb), tb_offset=tb_offset)
            return None
        line = [error_line(error)]
        shell._showtraceback(kind, error, line)  # the cell's error output: this line, no traceback
        return line

    shell.set_custom_exc((UserError, NameError), show)


def raised_in_a_cell(tb):
    """Whether the innermost frame of traceback ``tb`` is a notebook cell's own code (IPython compiles
    cells under names like ``<ipython-input-...>`` or ``/tmp/ipykernel_<pid>/<hash>.py``)."""
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = tb.tb_frame.f_code.co_filename
    return filename.startswith("<") or f"{os.sep}ipykernel_" in filename


def check_built_together(generator, discriminator, optimizer_g, optimizer_d, train_step):
    """Raise UserError, naming the cells to run again, when the optimizers do not hold these networks'
    weights or the train step was built with other optimizers (a cell re-run, the next ones skipped)."""
    def holds(optimizer, network):
        return [id(p) for p in optimizer.parameters] == [id(p) for p in network.trainable_params()]
    if not (holds(optimizer_g, generator) and holds(optimizer_d, discriminator)):
        raise UserError("the networks were built again after their optimizers: run \"Loss and optimizers\" and "
                        "\"The train step\" again, then this cell (it starts a new run)")
    step = inspect.unwrap(train_step)  # ms.jit's wrapper keeps the function it compiles as __wrapped__
    names = getattr(getattr(step, "__code__", None), "co_freevars", ())
    values = getattr(step, "__closure__", None) or ()
    built_with = {name: cell.cell_contents for name, cell in zip(names, values)  # what make_train_step closed over
                  if name in ("optimizer_g", "optimizer_d")}
    if built_with.get("optimizer_g", optimizer_g) is not optimizer_g or \
            built_with.get("optimizer_d", optimizer_d) is not optimizer_d:
        raise UserError("the optimizers were made again after the train step: run \"The train step\" again, then "
                        "this cell")


class NotebookRun:
    """The notebook's training run in ``output_dir``: made when the training cell first runs (or when the
    networks it trains were built anew), continued each time the cell runs again. It holds the folder's
    lock while the kernel lives, as a command-line run does, and removes an earlier notebook run's files
    there; a command-line run's folder (its resume checkpoints) it leaves alone, and says so."""

    def __init__(self, output_dir, generator, discriminator):
        from .loop import Position
        from . import run_folder
        if run_folder.state_paths(output_dir):  # the notebook writes no resume checkpoints: a command-line run's folder
            raise UserError(f"{output_dir} holds a command-line training run (resume checkpoints in "
                            f"{output_dir}/checkpoints): pass another --output_dir")
        run_folder.prepare(output_dir)
        run_folder.lock(output_dir)  # a command-line run in this folder is refused now, and the other way round
        run_folder.remove_old_run(run_folder.old_run_files(output_dir), "the notebook")
        self.output_dir, self.networks = output_dir, (generator, discriminator)
        self.position, self.planned, self.more = Position(), 0, 0

    def trains(self, generator, discriminator):
        """Whether this run trains these networks (not ones built since)."""
        return self.networks[0] is generator and self.networks[1] is discriminator

    def plan(self, steps, steps_per_epoch):
        """The step to train to now: the planned one when a Stop left it short, else ``steps`` more. The
        position goes on from the step done (``train_loop`` counts an epoch its last step ended early as
        done, so that a command-line run ends there; here the rest of the epoch is still to come)."""
        if self.position.step >= self.planned:
            self.planned, self.more = self.position.step + steps, steps
        epoch, self.position.step_in_epoch = divmod(self.position.step, steps_per_epoch)
        self.position.epoch = epoch + 1
        return self.planned

    def said(self, stop):
        """What the training cell prints when it ends: how to go on."""
        from .loop import Stop
        if stop is None:
            return f"{self.position.step} steps in all: run this cell again to train {self.more} more (the same run)"
        if stop.reason is Stop.INTERRUPTED:
            return (f"stopped after step {self.position.step}, everything saved: run this cell again to continue to "
                    f"step {self.planned}")
        return f"stopped: {stop.message or stop.reason.words}"
