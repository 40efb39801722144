"""The doctor's tiny run, and whether a device computes it as the CPU does: the same flags and seed give the
same weights, batches and noise on every device (made on the host), so what may differ is the arithmetic
(cuDNN's algorithms, TF32), which stays within SAME_AS_CPU over a few steps."""
import subprocess
import sys

from .errors import first_line

TINY_RUN = dict(dataset="sample", ngf=4, ndf=4, nz=8, batch_size=8, max_steps=3, seed=1, no_progress=True, swd_every=0)
LOSSES = ("g_loss", "d_loss", "d_real", "d_fake")
# How far a device's losses may lie from the CPU's after the tiny run's steps, relative to max(1, |CPU's|):
# the same weights, batches and noise, so what differs is the arithmetic (cuDNN's algorithms, TF32).
SAME_AS_CPU = 0.02


def differs_from_cpu(log, folder):
    """Where ``log`` (a tiny run's, column -> values) differs from the same run on the CPU, trained in a
    process of its own into ``folder``; None when every loss lies within SAME_AS_CPU."""
    from .run_folder import read_log
    flags = [f"--{name}" if value is True else f"--{name}={value}" for name, value in TINY_RUN.items()]
    proc = subprocess.run([sys.executable, "-m", "dcgan_ms.train", *flags, "--device_target=CPU",
                           f"--output_dir={folder}"], capture_output=True, text=True)
    reference = read_log(folder)
    if proc.returncode or reference is None:
        return f"the same steps on the CPU failed ({first_line(proc.stderr or proc.returncode)})"
    return first_difference(log, reference)


def first_difference(log, reference):
    """The first loss of ``log`` farther than SAME_AS_CPU from ``reference``'s, in words; None if none is."""
    for name in LOSSES:
        for step, (value, expected) in enumerate(zip(log[name], reference[name]), 1):
            if not abs(value - expected) <= SAME_AS_CPU * max(1.0, abs(expected)):
                return f"step {step}'s {name} is {value:.5f} against {expected:.5f} on the CPU"
    return None
