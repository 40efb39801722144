"""What a run shows: the fixed-noise grids and GIF, the loss plot, the SWD it tracks, its final scores and
report.html."""
import csv
import os
import sys
import time

from .. import plots, run_folder
from ..images import generate
from ..loop import Callback
from .control import ended_cleanly, saves_now
from .logs import columns, keep_rows, opened_log


class SWDTracker(Callback):
    """swd.csv: every ``every`` epochs and at the end, G's SWD against the real images of ``scorer`` (a
    ``scoring.Scorer``: the same ones every time), kept in memory too (``log()``). ``every=0`` tracks
    nothing but still owns the file: a new run starts without the old one's, a resumed one keeps the rows
    up to its checkpoint."""

    def __init__(self, path, generator, *, scorer, every, total_steps, resume_step=None):
        self.path, self.generator, self.scorer, self.every = path, generator, scorer, every
        self.total_steps, self.resume_step, self.rows = total_steps, resume_step, []

    def on_train_begin(self, position):
        if self.every:
            self.scorer.prepare()
        if self.resume_step is not None:
            self.rows = [(row[1], row[2]) for row in keep_rows(self.path, self.resume_step)]
        elif os.path.exists(self.path):
            os.remove(self.path)

    def on_epoch_end(self, position):
        if self.every and (position.epoch % self.every == 0 or position.step >= self.total_steps):
            self.track(position)

    def track(self, position):
        from tqdm import tqdm
        start = time.perf_counter()
        scores = self.scorer.score(self.generator, with_diversity=False)
        seconds = time.perf_counter() - start
        levels, mean = scores["swd_x1e3_per_level"], scores["swd_x1e3"]
        new = not os.path.exists(self.path)
        with opened_log(self.path, append=True) as f:
            w = csv.writer(f)
            if new:
                w.writerow(["epoch", "step", "swd_mean"] + [f"swd_{k}px" for k in levels] + ["seconds"])
            w.writerow([position.epoch, position.step, f"{mean:.4g}"] + [f"{v:.4g}" for v in levels.values()]
                       + [f"{seconds:.2f}"])
        self.rows.append((position.step, mean))
        tqdm.write(f"epoch {position.epoch}: SWD x1e3 {mean:.1f} ({seconds:.1f} s)", file=sys.stderr)

    def log(self):
        """The SWD so far: columns "step" and "swd_mean", or None when there is none."""
        return columns(self.rows, ("step", "swd_mean")) if self.rows else None


class ProgressGrids(Callback):
    """``samples/epoch_NNN.png`` in ``output_dir``: G(``fixed_noise``) after every epoch, with BatchNorm
    as in training (its running statistics untouched); when training ends, ``progress.gif`` of them."""

    def __init__(self, output_dir, generator, fixed_noise):
        self.output_dir, self.generator, self.fixed_noise = output_dir, generator, fixed_noise
        self.written = []

    def on_train_begin(self, position):
        os.makedirs(os.path.join(self.output_dir, run_folder.SAMPLES), exist_ok=True)
        earlier = (self.path(e) for e in range(1, position.epoch))  # a resumed run's grids so far
        self.grids = [p for p in earlier if os.path.exists(p)]
        self.first_step = self.saved_step = position.step

    def path(self, epoch):
        return run_folder.grid_path(self.output_dir, epoch)

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
            self.written.append(plots.make_gif(self.grids, os.path.join(self.output_dir, run_folder.GIF)))


class LossPlot(Callback):
    """losses.png when training ends: ``history``'s losses and D's outputs (a History or CSVLog among the
    callbacks), and the SWD when ``swd`` (an SWDTracker) has any."""

    def __init__(self, output_dir, history, swd=None):
        self.output_dir, self.history, self.swd = output_dir, history, swd
        self.written = []

    def on_train_begin(self, position):
        self.first_step = position.step
        plots.load_matplotlib()

    def on_train_end(self, position, stop):
        if ended_cleanly(stop) and position.step > self.first_step:
            swd_log = self.swd.log() if self.swd else None
            self.written.append(plots.plot_losses(self.history.log(), os.path.join(self.output_dir, run_folder.LOSSES),
                                                  swd_log))


class FinalScores(Callback):
    """The SWD and diversity of ``generator`` when training ends cleanly (as the pictures: not after a
    data error, a non-finite loss or an abort), for report.html, by ``scorer`` (a ``scoring.Scorer``).
    Told first among the callbacks that write: the real images' half is started when training begins,
    and at the end the generated images are drawn and scored on a thread while the others write
    their files; ``result()`` waits for them."""

    def __init__(self, generator, scorer):
        self.generator, self.scorer, self.future = generator, scorer, None

    def on_train_begin(self, position):
        self.scorer.prepare()

    def on_train_end(self, position, stop):
        if position.step > 0 and ended_cleanly(stop):
            self.future = self.scorer.score_later(self.generator)

    def result(self):
        """The scores (a dict as ``Scorer.score``'s), or None when training did not end cleanly; raises
        what scoring raised."""
        return self.future.result() if self.future else None


class ReportPage(Callback):
    """report.html in ``output_dir`` when training ends, after the other pictures and the weights
    (``report_page.write_report``), with the scores of ``final_scores`` (a FinalScores: the Generator
    generator.ckpt holds) and the losses.png that ``loss_plot`` (a LossPlot) drew, not drawn again; a
    part it cannot show is named on stderr."""

    def __init__(self, output_dir, final_scores, loss_plot=None):
        self.output_dir, self.final_scores, self.loss_plot = output_dir, final_scores, loss_plot
        self.written = []

    def on_train_end(self, position, stop):
        if position.step > 0:
            from ..errors import UserError, first_line
            from ..report_page import write_report
            scores, problems = None, []
            try:
                scores = self.final_scores.result()
            except (UserError, RuntimeError) as e:  # the run's images went away or broke while it trained
                problems.append(f"the final Generator's scores: {first_line(e)}")
            drawn = self.loss_plot.written[-1] if self.loss_plot and self.loss_plot.written else None
            path, more = write_report(self.output_dir, scores=scores, score=False, loss_png=drawn)
            self.written.append(path)
            for problem in problems + more:
                print(f"note: report.html does not show {problem}", file=sys.stderr)
