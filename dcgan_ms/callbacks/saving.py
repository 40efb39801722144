"""What a run saves: resume checkpoints, the weight files, and each rank's report."""
import hashlib
import os
import sys
import time

from .. import checkpoint, resume, run_folder
from ..loop import Callback, Stop
from .control import ended_cleanly, saves_now


class ResumeCheckpoints(Callback):
    """checkpoints/step_NNNNNNN.ckpt (``resume.py``): at each epoch's end, every ``save_every`` steps,
    when ``save_minutes`` have passed on ``clock`` since the last, and when training stops early with
    work to save.

    In a data-parallel run every rank has one and saves at the same steps (``clock`` is the
    ``distributed.Agreement``'s, the same on every rank); ``before_save`` (the BatchNorm statistics'
    average over the devices) runs on every rank, and only the rank with ``write=True`` writes."""

    def __init__(self, output_dir, cells, *, fixed_noise, config, steps_per_epoch, total_steps, keep=3,
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
                print(f"{'interrupted' if stop.reason is Stop.INTERRUPTED else 'stopped'} at step {position.step}: "
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
        for net, name in ((self.generator, run_folder.GENERATOR), (self.discriminator, run_folder.DISCRIMINATOR)):
            self.written.append(checkpoint.save(checkpoint.as_saved(net), os.path.join(self.output_dir, name),
                                                crc_check=True))
        self.saved_step = position.step

    def on_train_end(self, position, stop):
        if saves_now(stop, position, self.saved_step):
            self.on_epoch_end(position)


class RankSummary(Callback):
    """rank_<N>.json, written by every rank of a data-parallel run when training ends: the digests of
    its weights and BatchNorm statistics (equal on all ranks), of the first images it read (disjoint
    between ranks), and the files its ``writers`` (other callbacks) wrote."""
    DIGESTS_KEPT = 4096

    def __init__(self, output_dir, *, rank, devices, nets, writers):
        self.output_dir, self.rank, self.devices, self.nets, self.writers = output_dir, rank, devices, nets, writers
        self.digests = []

    def on_step_end(self, position, losses, real_imgs):
        if len(self.digests) < self.DIGESTS_KEPT:
            self.digests += [hashlib.sha1(img.tobytes()).hexdigest()[:16] for img in real_imgs.asnumpy()]

    def on_train_end(self, position, stop):
        if not ended_cleanly(stop):
            return
        from ..distributed import parameter_digest
        written = {os.path.relpath(p, self.output_dir) for w in self.writers for p in getattr(w, "written", ())}
        summary = {"rank": self.rank, "devices": self.devices, "steps": position.step,
                   "parameter_digest": parameter_digest(*self.nets),
                   "running_stats_digest": parameter_digest(*self.nets, trainable=False),
                   "artifacts_written": sorted(written), "image_digests": self.digests[:self.DIGESTS_KEPT]}
        run_folder.write_json(os.path.join(self.output_dir, run_folder.rank_summary_name(self.rank)), summary,
                              indent=1)
