"""Everything around the training loop, one callback each (the hooks are ``loop.Callback``'s).

    logs.py      History (losses in memory), CSVLog (log.csv), Progress (bar or plain lines, "done:")
    saving.py    ResumeCheckpoints (checkpoints/step_*.ckpt), WeightCheckpoints (generator.ckpt,
                 discriminator.ckpt), RankSummary (rank_<N>.json of a data-parallel run)
    pictures.py  ProgressGrids (samples/epoch_NNN.png, progress.gif), LossPlot (losses.png), SWDTracker,
                 FinalScores (the page's SWD and diversity), ReportPage (report.html, ``report_page.py``)
    control.py   TimeLimit (--max_minutes), StopOnSignal (Ctrl-C / SIGTERM: finish the step, save, stop)

Callbacks are told in their order (``training.standard_callbacks``): savers before the plots, and
StopOnSignal last, after the step it ends has been logged. Those that save do so again when training
stops early (``stop.save``), if they have not saved that step.
"""
from .control import StopOnSignal, TimeLimit, ended_cleanly, saves_now
from .logs import CSVLog, History, Progress, keep_rows, redraws_in_place
from .pictures import FinalScores, LossPlot, ProgressGrids, ReportPage, SWDTracker
from .saving import RankSummary, ResumeCheckpoints, WeightCheckpoints

__all__ = ["CSVLog", "FinalScores", "History", "LossPlot", "Progress", "ProgressGrids", "RankSummary", "ReportPage",
           "ResumeCheckpoints", "SWDTracker", "StopOnSignal", "TimeLimit", "WeightCheckpoints",
           "ended_cleanly", "keep_rows", "redraws_in_place", "saves_now"]
