"""A training run of ``python -m dcgan_ms.train``: ``train(config)`` = setup, the loop, the outcome.

    setup(config)                    session.py: device, data, networks, train_step, resume state
    standard_callbacks(session)      the log, bar, checkpoints, pictures, signals, per-rank report;
                                     rank 0 alone gets those that write pictures and files
    train_loop(train_step, data, ...)  loop.py: the same loop the notebook runs

``train`` raises UserError for what the user must fix and never exits the process.
"""
import os
import sys
import time

from . import callbacks as cb
from . import resume, run_folder
from .errors import UserError
from .loop import Stop, train_loop
from .noise import StepNoise
from .scoring import FINAL_IMAGES, Scorer
from .session import setup


def standard_callbacks(s):
    """The callbacks of ``python -m dcgan_ms.train`` for Session ``s``, in the order they are told."""
    c, out = s.config, s.config.output_dir
    resume_step = s.position.step if s.resumed_from else None
    ranks = s.ranks
    log = cb.CSVLog(os.path.join(out, ranks.log_name()), resume_step)
    every_rank = [log, cb.ResumeCheckpoints(out, s.cells, fixed_noise=s.fixed_noise, config=s.record,
                                            steps_per_epoch=s.steps_per_epoch, total_steps=s.total_steps,
                                            keep=c.keep_checkpoints, save_every=c.save_every,
                                            save_minutes=c.save_minutes, write=ranks.writes,
                                            before_save=ranks.before_save(s.networks),
                                            clock=s.agreement.clock)]
    scorer = Scorer(s.data_root, num=c.swd_num, seed=c.seed, look=c.look)
    swd = cb.SWDTracker(os.path.join(out, run_folder.SWD_LOG), s.shown_generator, scorer=scorer, every=c.swd_every,
                        total_steps=s.total_steps, resume_step=resume_step)
    page_num = min(FINAL_IMAGES, s.data.num_images)  # the tracker's real images, when it reads as many
    page_scorer = scorer if page_num == c.swd_num else Scorer(s.data_root, num=page_num, seed=c.seed, look=c.look)
    loss_plot, final_scores = cb.LossPlot(out, log, swd), cb.FinalScores(s.shown_generator, page_scorer)
    written_by_one = [final_scores, swd, cb.WeightCheckpoints(out, s.shown_generator, s.discriminator),
                      cb.ProgressGrids(out, s.shown_generator, s.fixed_noise), loss_plot,
                      cb.ReportPage(out, final_scores, loss_plot=loss_plot),
                      cb.Progress(s.total_steps, s.steps_per_epoch, output_dir=out, devices=ranks.devices,
                                  bar=not c.no_progress)]
    callbacks = every_rank + (written_by_one if ranks.writes else [])
    if c.max_minutes:
        callbacks.append(cb.TimeLimit(c.max_minutes, out, clock=s.agreement.clock))
    if ranks.parallel:
        callbacks.append(cb.RankSummary(out, rank=ranks.rank, devices=ranks.devices, nets=s.networks,
                                        writers=list(callbacks)))
    return callbacks + [cb.StopOnSignal()]


def step_noise(s):
    """The noise source of Session ``s``: its rank's z and instance noise, as its config says."""
    return StepNoise(nz=s.config.nz, seed=s.config.seed, rank=s.ranks.rank, instance_noise=s.config.instance_noise,
                     fade_steps=s.config.instance_noise_steps)


def train(config, data_root=None, callbacks=None):
    """Train as ``config`` (a TrainConfig) says, with ``standard_callbacks`` unless ``callbacks`` are
    given. Returns a dict describing what was done ("interrupted": stopped by Ctrl-C or SIGTERM, with
    everything saved); raises UserError when training stopped on something the user must fix."""
    s = setup(config, data_root)
    out = s.config.output_dir
    if s.position.step >= s.total_steps:
        if s.ranks.writes:
            print(f"the run in {out} is complete ({s.position.step} of {s.total_steps} steps): pass a larger "
                  "--epochs or --max_steps to train it further", file=sys.stderr)
        return outcome(s, None, 0.0)
    if s.ranks.writes:  # where this session ran, for report.html
        from .runtime import environment
        run_folder.record_environment(out, environment(s.config.device_target, s.ranks.devices))
    started = time.time()
    stop = train_loop(s.train_step, s.data, total_steps=s.total_steps, noise=step_noise(s), position=s.position,
                      callbacks=standard_callbacks(s) if callbacks is None else callbacks, agreement=s.agreement)
    if stop is None or stop.reason is not Stop.ABORTED:  # every rank stopped after the same step and saved
        s.agreement.finish()
    if stop is not None and not stop.reason.clean:
        raise UserError(stop_message(stop, s.position.step, out))
    return outcome(s, stop, time.time() - started)


def outcome(s, stop, seconds):
    p = s.position
    return {"output_dir": s.config.output_dir, "steps": p.step, "epochs": p.epoch if p.step_in_epoch else p.epoch - 1,
            "seconds": seconds, "rank": s.ranks.rank, "devices": s.ranks.devices,
            "interrupted": stop is not None and stop.reason is Stop.INTERRUPTED}


def stop_message(stop, step, out):
    """The one line for a run that stopped on something to fix, saying what is kept and what to do."""
    saved = resume.newest_step(out)
    again = f"continue with --resume --output_dir {out}" if saved else "run again"  # no checkpoint: nothing to resume
    if stop.reason is Stop.DATA_ERROR:
        return (f"{stop.message}: remove or replace that file and {again}"
                + (f" (the checkpoints hold the {saved} steps done)" if saved else ""))
    if stop.reason is Stop.NON_FINITE_LOSS:
        kept = (f"the newest checkpoint in {out}/checkpoints, from step {saved}, is kept" if saved
                else "no checkpoint had been written yet")
        return f"{stop.message}; training stopped and {kept}: try a lower --lr"
    kept = f"the newest checkpoint in {out}/checkpoints is from step {saved}" if saved else "no checkpoint was written"
    return f"aborted at step {step} without saving; {kept}: {again}"
