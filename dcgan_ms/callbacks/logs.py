"""The log of a run, as numbers: History (in memory), CSVLog (log.csv), Progress (bar or lines)."""
import csv
import math
import os
import sys
import time

import numpy as np

from ..errors import UserError
from ..files import open_to_write, why_not_written, written_whole
from ..loop import Callback
from ..run_folder import LOG_FIELDS
from .control import ended_cleanly


def log_values(position, losses):
    """One step's row of the log, as numbers."""
    return (position.step, position.epoch, losses.g_loss, losses.d_loss, losses.d_real, losses.d_fake,
            losses.batch_size / losses.seconds)


def log_row(values):
    """A row of ``log_values`` as log.csv writes it."""
    step, epoch, *losses, speed = values
    return [step, epoch, *(f"{v:.6g}" for v in losses), f"{speed:.4g}"]


def columns(rows, names):
    """Rows of numbers as a dict of column name -> array."""
    values = zip(*rows) if rows else [[]] * len(names)
    return {name: np.array(column, dtype=float) for name, column in zip(names, values)}


class History(Callback):
    """The losses of every step, kept in memory: ``history.log()`` is a dict of column -> array."""

    def __init__(self):
        self.rows = []

    def on_step_end(self, position, losses, real_imgs):
        self.rows.append(log_values(position, losses))

    def log(self):
        return columns(self.rows, LOG_FIELDS)


def keep_rows(path, last_step):
    """Rewrite the CSV log at ``path`` (atomically) keeping only whole rows up to ``last_step``: the
    rows a killed run wrote after its last checkpoint are done again, so they must not stay twice.
    Returns the rows kept, as numbers."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return []
    header, step = rows[0], rows[0].index("step")
    kept = [r for r in rows[1:] if len(r) == len(header) and all(r) and r[step].isdigit() and int(r[step]) <= last_step]
    with written_whole(path) as tmp, open(tmp, "w", newline="") as f:
        csv.writer(f).writerows([header] + kept)
    return [tuple(float(v) for v in r) for r in kept]


def opened_log(path, *, append):
    """A run's log file (log.csv, swd.csv) opened to write, never through a link."""
    try:
        return open_to_write(path, append=append)
    except OSError as e:
        raise UserError(f"cannot write {path}: {why_not_written(e)}") from None


class CSVLog(History):
    """``path`` (log.csv): a row per step, flushed at once, so a killed run keeps its rows; and, as a
    History, every row of the run in memory. A new run starts a new log; a resumed one
    (``resume_step``) keeps the rows up to that step and appends."""

    def __init__(self, path, resume_step=None):
        super().__init__()
        self.path, self.resume_step = path, resume_step

    def on_train_begin(self, position):
        if self.resume_step is not None:
            self.rows = keep_rows(self.path, self.resume_step)
        self.file = opened_log(self.path, append=self.resume_step is not None)
        self.writer = csv.writer(self.file)
        if self.file.tell() == 0:
            self.writer.writerow(LOG_FIELDS)

    def on_step_end(self, position, losses, real_imgs):
        super().on_step_end(position, losses, real_imgs)
        self.writer.writerow(log_row(self.rows[-1]))
        self.file.flush()

    def on_train_end(self, position, stop):
        self.file.close()


def redraws_in_place(stream):
    """Whether ``stream`` shows a progress bar redrawn in place: a terminal or a notebook, not a log file."""
    return stream.isatty() or type(stream).__module__.startswith("ipykernel")


class Progress(Callback):
    """A tqdm bar with the tutorial's printout where stderr redraws in place (a terminal, a notebook);
    elsewhere (a worker's log under msrun, nohup, a batch job) a plain line every ``every_seconds``, as
    a bar's redraws would fill the file; ``bar=False``: a line per epoch. Then a closing line."""

    def __init__(self, total_steps, steps_per_epoch, *, output_dir, devices=1, bar=True, every_seconds=30.0,
                 stream=None):
        self.total_steps, self.epochs = total_steps, math.ceil(total_steps / steps_per_epoch)
        self.output_dir, self.devices, self.every_seconds = output_dir, devices, every_seconds
        self.stream = stream or sys.stderr  # the notebook's: stdout (Jupyter paints stderr red)
        self.show_bar = bar and redraws_in_place(self.stream)
        self.plain_lines = bar and not self.show_bar

    def on_train_begin(self, position):
        from tqdm import tqdm
        self.bar = tqdm(total=self.total_steps, initial=position.step, unit="step", disable=not self.show_bar,
                        file=self.stream, dynamic_ncols=True)
        self.first_step, self.started, self.images = position.step, time.time(), 0
        self.first_line, self.last_line = None, None  # plain lines: (time, step) of the first; time of the last

    def state(self, position, losses):
        return (f"epoch {position.epoch}/{self.epochs} Loss_D {losses.d_loss:.3f} Loss_G {losses.g_loss:.3f} "
                f"D(x) {losses.d_real:.2f} D(G(z)) {losses.d_fake:.2f}")

    def on_step_end(self, position, losses, real_imgs):
        self.last, self.images = losses, self.images + losses.batch_size * self.devices
        speed = losses.batch_size * self.devices / losses.seconds
        self.bar.set_postfix_str(f"{self.state(position, losses)} {speed:.1f} img/s")
        self.bar.update()
        now = time.time()
        if self.plain_lines and (self.first_line is None or now - self.last_line >= self.every_seconds):
            line = (f"step {position.step}/{self.total_steps} {self.state(position, losses)} "
                    f"{self.images / max(now - self.started, 1e-9):.1f} img/s")
            if self.first_line is None:
                self.first_line = (now, position.step)
            else:  # the pace since the first line (the steps before it include the graph's compilation)
                pace = (now - self.first_line[0]) / (position.step - self.first_line[1])
                line += f", {pace * (self.total_steps - position.step) / 60:.1f} min left"
            print(line, file=self.stream, flush=True)
            self.last_line = now

    def on_epoch_end(self, position):
        if not self.show_bar and not self.plain_lines:
            print(f"epoch {position.epoch}/{self.epochs} step {position.step}/{self.total_steps} Loss_D "
                  f"{self.last.d_loss:.3f} Loss_G {self.last.g_loss:.3f}", file=self.stream)

    def on_train_end(self, position, stop):
        self.bar.close()
        if ended_cleanly(stop):
            elapsed, done = time.time() - self.started, position.step - self.first_step
            speed = self.images / max(elapsed, 1e-9)
            print(f"{'done' if stop is None else 'stopped'}: {done} steps in {elapsed:.0f} s ({speed:.1f} "
                  f"img/s over {self.devices} device(s)), {position.step} in all; outputs in {self.output_dir}",
                  file=self.stream)
