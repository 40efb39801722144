"""How training stops: the time limit (--max_minutes), Ctrl-C and SIGTERM, and what a stop means
for the callbacks that save."""
import signal
import sys
import time

from ..loop import Callback, Stop, StopTraining


def ended_cleanly(stop):
    """Training ran all its steps, or was stopped by the user or its time limit (the pictures of the
    run are made)."""
    return stop is None or stop.reason.clean


def saves_now(stop, position, saved_step):
    """A stop whose work must still be saved: not after a non-finite loss or an abort."""
    return stop is not None and stop.save and position.step > saved_step


class TimeLimit(Callback):
    """``--max_minutes``: once ``minutes`` have passed on ``clock`` since training began, end it after the
    current step as if its steps were done (everything saved, pictures made); ``--resume`` continues it."""

    def __init__(self, minutes, output_dir, clock=time.time):
        self.minutes, self.output_dir, self.clock = minutes, output_dir, clock

    def on_train_begin(self, position):
        self.deadline = self.clock() + 60 * self.minutes

    def on_step_end(self, position, losses, real_imgs):
        if self.clock() >= self.deadline:
            raise StopTraining(Stop.TIME_LIMIT, f"stopped at the time limit (--max_minutes {self.minutes:g})")

    def on_train_end(self, position, stop):
        # The step where training stopped: in a data-parallel run the ranks take a stop at their next
        # agreement, a step after the one that asked for it.
        if stop is not None and stop.reason is Stop.TIME_LIMIT:
            print(f"stopped at the time limit (--max_minutes {self.minutes:g}) after step {position.step}: continue "
                  f"with --resume --output_dir {self.output_dir}", file=sys.stderr)


class StopOnSignal(Callback):
    """Ctrl-C or SIGTERM (what schedulers send before a kill): finish the step, then stop training
    (Stop.INTERRUPTED: the callbacks save); a second one aborts at once. SIGTERM too,
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
            raise StopTraining(Stop.INTERRUPTED)

    def on_epoch_end(self, position):
        self.on_step_end(position, None, None)

    def on_train_end(self, position, stop):
        for s, handler in self.previous.items():
            signal.signal(s, handler)
