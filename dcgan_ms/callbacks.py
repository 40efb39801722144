"""Everything around the training loop, one callback each (the hooks are ``loop.Callback``'s).

    History            every step's losses, in memory (what the notebook plots)
    CSVLog             log.csv, a row per step; trimmed to the checkpoint's step on resume
    Progress           the progress bar (or a line per epoch) and the closing "done:" line
    SWDTracker         swd.csv: G's sliced Wasserstein distance to real images every few epochs
    ResumeCheckpoints  checkpoints/step_*.ckpt, with their cadence; the final save after Ctrl-C
    WeightCheckpoints  generator.ckpt and discriminator.ckpt after every epoch
    ProgressGrids      samples/epoch_NNN.png, G(fixed noise) after every epoch, and progress.gif
    LossPlot           losses.png when training ends
    RankReport         rank_<N>.json of a data-parallel run: weight digests, images read, files written
    StopOnSignal       Ctrl-C / SIGTERM: finish the step, save, stop; a second one aborts

``session.standard_callbacks`` picks and orders them for ``python -m dcgan_ms.train``: the order is
the order they are told in, so savers come before the plots that read their files and
StopOnSignal comes last, after the step it ends has been logged. Callbacks that save what was done
do so again when training stops early (``stop.save``) and only if they have not saved that step.
"""
import csv
import hashlib
import json
import math
import os
import signal
import sys
import time

import numpy as np

from . import checkpoint, plots, resume
from .generate import generate
from .loop import Callback, StopTraining

LOG_FIELDS = ("step", "epoch", "g_loss", "d_loss", "d_real", "d_fake", "img_per_s")


def ended_cleanly(stop):
    """Training ran all its steps, or was stopped by the user or its time limit (the pictures of the
    run are made)."""
    return stop is None or stop.reason in ("interrupted", "time limit")


def saves_now(stop, position, saved_step):
    """A stop whose work must still be saved: not after a non-finite loss or an abort."""
    return stop is not None and stop.save and position.step > saved_step


def log_row(position, losses):
    return [position.step, position.epoch, f"{losses.g_loss:.6g}", f"{losses.d_loss:.6g}", f"{losses.d_real:.6g}",
            f"{losses.d_fake:.6g}", f"{losses.batch_size / losses.seconds:.4g}"]


class History(Callback):
    """The losses of every step, kept in memory: ``history.log()`` is a dict of column -> array, as
    ``plots.read_log`` gives for a log.csv."""

    def __init__(self):
        self.rows = []

    def on_step_end(self, position, losses, real_imgs):
        self.rows.append([float(v) for v in log_row(position, losses)])

    def log(self):
        columns = zip(*self.rows) if self.rows else [[]] * len(LOG_FIELDS)
        return {name: np.array(values) for name, values in zip(LOG_FIELDS, columns)}


def keep_rows(path, last_step):
    """Rewrite the CSV log at ``path`` (atomically) keeping only whole rows up to ``last_step``: the
    rows a killed run wrote after its last checkpoint are done again, so they must not stay twice."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    header, step = rows[0], rows[0].index("step")
    kept = [r for r in rows[1:] if len(r) == len(header) and all(r) and r[step].isdigit() and int(r[step]) <= last_step]
    with open(path + ".tmp", "w", newline="") as f:
        csv.writer(f).writerows([header] + kept)
    os.replace(path + ".tmp", path)


class CSVLog(Callback):
    """``path`` (log.csv): a row per step, flushed at once, so a killed run keeps its rows. A new run
    starts a new log; a resumed one (``resume_step``) keeps the rows up to that step and appends."""

    def __init__(self, path, resume_step=None):
        self.path, self.resume_step = path, resume_step

    def on_train_begin(self, position):
        if self.resume_step is not None:
            keep_rows(self.path, self.resume_step)
        self.file = open(self.path, "w" if self.resume_step is None else "a", newline="")
        self.writer = csv.writer(self.file)
        if self.file.tell() == 0:
            self.writer.writerow(LOG_FIELDS)

    def on_step_end(self, position, losses, real_imgs):
        self.writer.writerow(log_row(position, losses))
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

    def __init__(self, total_steps, steps_per_epoch, output_dir, devices=1, bar=True, every_seconds=30.0):
        self.total_steps, self.epochs = total_steps, math.ceil(total_steps / steps_per_epoch)
        self.output_dir, self.devices, self.every_seconds = output_dir, devices, every_seconds
        self.show_bar = bar and redraws_in_place(sys.stderr)
        self.plain_lines = bar and not self.show_bar

    def on_train_begin(self, position):
        from tqdm import tqdm
        self.bar = tqdm(total=self.total_steps, initial=position.step, unit="step", disable=not self.show_bar,
                        dynamic_ncols=True)
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
            print(line, file=sys.stderr, flush=True)
            self.last_line = now

    def on_epoch_end(self, position):
        if not self.show_bar and not self.plain_lines:
            print(f"epoch {position.epoch}/{self.epochs} step {position.step}/{self.total_steps} Loss_D "
                  f"{self.last.d_loss:.3f} Loss_G {self.last.g_loss:.3f}", file=sys.stderr)

    def on_train_end(self, position, stop):
        self.bar.close()
        if ended_cleanly(stop):
            elapsed, done = time.time() - self.started, position.step - self.first_step
            print(f"{'done' if stop is None else 'stopped'}: {done} steps in {elapsed:.0f} s ({self.images / max(elapsed, 1e-9):.1f} "
                  f"img/s over {self.devices} device(s)), {position.step} in all; outputs in {self.output_dir}",
                  file=sys.stderr)


class SWDTracker(Callback):
    """swd.csv: every ``every`` epochs and at the end, G's SWD (``swd.py``) against ``num`` real images
    (the same ones every time). ``every=0`` tracks nothing but still owns the file: a new run starts
    without the old one's, a resumed one keeps the rows up to its checkpoint."""

    def __init__(self, path, generator, data_root, every, total_steps, num=256, seed=1, pixel_range="-1,1",
                 background="white", resume_step=None):
        self.path, self.generator, self.data_root, self.every = path, generator, data_root, every
        self.total_steps, self.num, self.seed, self.pixel_range = total_steps, num, seed, pixel_range
        self.background = background
        self.resume_step, self.real = resume_step, None

    def on_train_begin(self, position):
        if self.resume_step is not None:
            keep_rows(self.path, self.resume_step)
        elif os.path.exists(self.path):
            os.remove(self.path)

    def on_epoch_end(self, position):
        if self.every and (position.epoch % self.every == 0 or position.step >= self.total_steps):
            self.track(position)

    def track(self, position):
        from tqdm import tqdm

        from .evaluate import generated_images, real_images
        from .swd import swd
        start = time.perf_counter()
        if self.real is None:
            self.real = real_images(self.data_root, self.num, self.seed, self.background)
        result = swd(self.real, generated_images(self.generator, self.num, self.seed, "batch", self.pixel_range),
                     self.seed)
        seconds = time.perf_counter() - start
        new = not os.path.exists(self.path)
        with open(self.path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["epoch", "step", "swd_mean"] + [f"swd_{k}px" for k in result["levels"]] + ["seconds"])
            w.writerow([position.epoch, position.step, f"{result['mean']:.4g}"]
                       + [f"{v:.4g}" for v in result["levels"].values()] + [f"{seconds:.2f}"])
        tqdm.write(f"epoch {position.epoch}: SWD x1e3 {result['mean']:.1f} ({seconds:.1f} s)", file=sys.stderr)


class ResumeCheckpoints(Callback):
    """checkpoints/step_NNNNNNN.ckpt (``resume.py``): at each epoch's end, every ``save_every`` steps,
    when ``save_minutes`` have passed on ``clock`` since the last, and when training stops early with
    work to save.

    In a data-parallel run every rank has one and saves at the same steps (``clock`` is the
    ``distributed.Agreement``'s, the same on every rank); ``before_save`` (the BatchNorm statistics'
    average over the devices) runs on every rank, and only the rank with ``write=True`` writes."""

    def __init__(self, output_dir, cells, fixed_noise, config, steps_per_epoch, total_steps, *, keep=3,
                 save_every=0, save_minutes=0.0, write=True, before_save=None, clock=time.time):
        self.output_dir, self.cells, self.fixed_noise, self.config = output_dir, cells, fixed_noise, config
        self.steps_per_epoch, self.total_steps, self.keep = steps_per_epoch, total_steps, keep
        self.save_every, self.save_minutes, self.write = save_every, save_minutes, write
        self.before_save, self.clock = before_save, clock
        self.written = []

    def on_train_begin(self, position):
        self.saved_step, self.saved_time = position.step, self.clock()

    def on_step_end(self, position, losses, real_imgs):
        mid_epoch = position.step_in_epoch < self.steps_per_epoch and position.step < self.total_steps
        if mid_epoch and self.due(position.step):
            self.save(position)

    def due(self, step):
        if self.save_every and step % self.save_every == 0:
            return True
        return bool(self.save_minutes) and self.clock() - self.saved_time >= 60 * self.save_minutes

    def on_epoch_end(self, position):
        self.save(position)

    def on_train_end(self, position, stop):
        if saves_now(stop, position, self.saved_step):
            if self.write:
                print(f"{'interrupted' if stop.reason == 'interrupted' else 'stopped'} at step {position.step}: "
                      "saving checkpoints and pictures", file=sys.stderr)
            self.save(position)

    def save(self, position):
        if self.before_save is not None:
            self.before_save()
        if self.write:
            self.written.append(resume.save_state(self.output_dir, self.cells, self.fixed_noise, self.keep,
                                                  step=position.step, epoch=position.epoch,
                                                  step_in_epoch=position.step_in_epoch, config=self.config))
        self.saved_step, self.saved_time = position.step, self.clock()


class WeightCheckpoints(Callback):
    """generator.ckpt and discriminator.ckpt in ``output_dir`` (``checkpoint.save``, atomic) after every
    epoch, and when training stops early with work to save."""

    def __init__(self, output_dir, generator, discriminator):
        self.output_dir, self.generator, self.discriminator = output_dir, generator, discriminator
        self.written = []

    def on_train_begin(self, position):
        self.saved_step = position.step

    def on_epoch_end(self, position):
        for net, name in ((self.generator, "generator.ckpt"), (self.discriminator, "discriminator.ckpt")):
            self.written.append(checkpoint.save(checkpoint.as_saved(net), os.path.join(self.output_dir, name)))
        self.saved_step = position.step

    def on_train_end(self, position, stop):
        if saves_now(stop, position, self.saved_step):
            self.on_epoch_end(position)


class ProgressGrids(Callback):
    """``samples/epoch_NNN.png`` in ``output_dir``: G(``fixed_noise``) after every epoch, with BatchNorm
    as in training (its running statistics untouched); when training ends, ``progress.gif`` of them."""

    def __init__(self, output_dir, generator, fixed_noise):
        self.output_dir, self.generator, self.fixed_noise = output_dir, generator, fixed_noise
        self.written = []

    def on_train_begin(self, position):
        os.makedirs(os.path.join(self.output_dir, "samples"), exist_ok=True)
        earlier = (self.path(e) for e in range(1, position.epoch))  # a resumed run's grids so far
        self.grids = [p for p in earlier if os.path.exists(p)]
        self.first_step = self.saved_step = position.step

    def path(self, epoch):
        return os.path.join(self.output_dir, "samples", f"epoch_{epoch:03d}.png")

    def on_epoch_end(self, position):
        images = generate(self.generator, self.fixed_noise, bn="batch")
        path = plots.save_grid(images, self.path(position.epoch), nrow=8)
        self.grids = [g for g in self.grids if g != path] + [path]
        self.written.append(path)
        self.saved_step = position.step

    def on_train_end(self, position, stop):
        if saves_now(stop, position, self.saved_step):
            self.on_epoch_end(position)
        if ended_cleanly(stop) and position.step > self.first_step:
            self.written.append(plots.make_gif(self.grids, os.path.join(self.output_dir, "progress.gif")))


class LossPlot(Callback):
    """losses.png when training ends: the log's losses and D's outputs (and the SWD, if tracked)."""

    def __init__(self, output_dir, log_path, swd_path):
        self.output_dir, self.log_path, self.swd_path = output_dir, log_path, swd_path
        self.written = []

    def on_train_begin(self, position):
        self.first_step = position.step

    def on_train_end(self, position, stop):
        if ended_cleanly(stop) and position.step > self.first_step:
            swd_log = plots.read_log(self.swd_path) if os.path.exists(self.swd_path) else None
            self.written.append(plots.plot_losses(plots.read_log(self.log_path),
                                                  os.path.join(self.output_dir, "losses.png"), swd_log))


class RankReport(Callback):
    """rank_<N>.json, written by every rank of a data-parallel run when training ends: the digests of
    its weights and BatchNorm statistics (equal on all ranks), of the first images it read (disjoint
    between ranks), and the files its ``writers`` (other callbacks) wrote."""
    DIGESTS_KEPT = 4096

    def __init__(self, output_dir, rank, devices, nets, writers):
        self.output_dir, self.rank, self.devices, self.nets, self.writers = output_dir, rank, devices, nets, writers
        self.digests = []

    def on_step_end(self, position, losses, real_imgs):
        if len(self.digests) < self.DIGESTS_KEPT:
            self.digests += [hashlib.sha1(img.tobytes()).hexdigest()[:16] for img in real_imgs.asnumpy()]

    def on_train_end(self, position, stop):
        if not ended_cleanly(stop):
            return
        from .distributed import parameter_digest
        written = {os.path.relpath(p, self.output_dir) for w in self.writers for p in getattr(w, "written", ())}
        with open(os.path.join(self.output_dir, f"rank_{self.rank}.json"), "w") as f:
            json.dump({"rank": self.rank, "devices": self.devices, "steps": position.step,
                       "parameter_digest": parameter_digest(*self.nets),
                       "running_stats_digest": parameter_digest(*self.nets, trainable=False),
                       "artifacts_written": sorted(written), "image_digests": self.digests[:self.DIGESTS_KEPT]},
                      f, indent=1)


class TimeLimit(Callback):
    """``--max_minutes``: once ``minutes`` have passed on ``clock`` since training began, end it after the
    current step as if its steps were done (everything saved, pictures made); ``--resume`` continues it."""

    def __init__(self, minutes, output_dir, clock=time.time):
        self.minutes, self.output_dir, self.clock = minutes, output_dir, clock

    def on_train_begin(self, position):
        self.deadline = self.clock() + 60 * self.minutes

    def on_step_end(self, position, losses, real_imgs):
        if self.clock() >= self.deadline:
            raise StopTraining("time limit", f"stopped at the time limit (--max_minutes {self.minutes:g}) after step "
                               f"{position.step}: continue with --resume --output_dir {self.output_dir}")

    def on_train_end(self, position, stop):
        if stop is not None and stop.reason == "time limit":
            print(stop.message, file=sys.stderr)


class StopOnSignal(Callback):
    """Ctrl-C or SIGTERM (what schedulers send before a kill): finish the step, then stop training
    (StopTraining("interrupted"): the callbacks save); a second one aborts at once. SIGTERM too,
    because a Ctrl-C that arrives while MindSpore runs a graph reaches Python as SIGTERM (its
    runtime's own SIGINT handler sends it). Put it last: the step it ends is logged first."""

    def on_train_begin(self, position):
        self.asked = False
        self.previous = {s: signal.signal(s, self.ask) for s in (signal.SIGINT, signal.SIGTERM)}

    def ask(self, signum, frame):
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True

    def on_step_end(self, position, losses, real_imgs):
        if self.asked:
            raise StopTraining("interrupted")

    def on_epoch_end(self, position):
        self.on_step_end(position, None, None)

    def on_train_end(self, position, stop):
        for s, handler in self.previous.items():
            signal.signal(s, handler)
