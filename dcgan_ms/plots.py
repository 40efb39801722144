"""Pictures of a run: image grids, the loss plot and the progress GIF (Pillow and matplotlib), each
written whole or not at all (``files.written_whole``)."""
import math

import numpy as np
from PIL import Image

from .files import written_whole
from .pixels import TANH


def to_uint8(images, pixel_range=TANH):
    """(N, 3, H, W) float images in ``pixel_range`` (``pixels.py``) -> (N, H, W, 3) uint8."""
    return pixel_range.to_uint8(images)


def image_grid(images, nrow=None, padding=2, pad_value=255):
    """Tile (N, 3, H, W) images in [-1, 1] into one PIL image, ``nrow`` per row (default: square)."""
    pixels = to_uint8(images)
    n, h, w, c = pixels.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = np.full((rows * (h + padding) + padding, nrow * (w + padding) + padding, c), pad_value, np.uint8)
    for i, img in enumerate(pixels):
        y, x = padding + (i // nrow) * (h + padding), padding + (i % nrow) * (w + padding)
        grid[y:y + h, x:x + w] = img
    return Image.fromarray(grid)


def save_grid(images, path, nrow=None):
    with written_whole(path) as tmp:
        image_grid(images, nrow).save(tmp)
    return path


def smoothed(values, span=None):
    """An exponential moving average of ``values`` over about ``span`` points (default: 1/40 of them, at
    least 5), started from the first value's average with itself so the line begins where the data do."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return values
    alpha = 2.0 / ((span or max(5, values.size // 40)) + 1)
    out, level, weight = np.empty_like(values), 0.0, 0.0
    for i, v in enumerate(values):
        level, weight = (1 - alpha) * level + alpha * v, (1 - alpha) * weight + alpha
        out[i] = level / weight  # bias-corrected, as Adam's moments are
    return out


def load_matplotlib():
    """Import matplotlib's Figure now (most of a second): a run does it as training begins, not after its
    last step, where the loss plot needs it."""
    from matplotlib.figure import Figure  # noqa: F401


def loss_figure(log, swd_log=None):
    """The figure of ``plot_losses``: each series raw (thin, faint) under its smoothed line, so that a
    trend can be read through the step-to-step spikes of GAN losses."""
    from matplotlib.figure import Figure  # no pyplot: works headless and leaves a notebook's backend alone

    panels = 3 if swd_log else 2
    fig = Figure(figsize=(6 * panels, 4))
    ax1, ax2, *ax3 = fig.subplots(1, panels)
    step = log["step"]
    for ax, series in ((ax1, (("g_loss", "G", "tab:blue"), ("d_loss", "D", "tab:orange"))),
                       (ax2, (("d_real", "D(x), real", "tab:green"), ("d_fake", "D(G(z)), fake", "tab:red")))):
        for column, label, color in series:
            ax.plot(step, log[column], color=color, linewidth=0.5, alpha=0.3)
            ax.plot(step, smoothed(log[column]), label=label, color=color, linewidth=1.5)
        ax.legend()
    ax1.set(title="Generator and Discriminator loss (smoothed over the raw)", xlabel="step", ylabel="BCE loss")
    ax2.axhline(0.5, color="gray", linestyle=":", linewidth=0.8)
    ax2.set(title="Discriminator outputs (batch means)", xlabel="step", ylabel="probability real", ylim=(0, 1))
    if ax3:
        ax3[0].plot(swd_log["step"], swd_log["swd_mean"], marker="o", color="tab:purple")
        ax3[0].set(title="SWD to real images (x1e3, lower is better)", xlabel="step", ylabel="SWD")
    fig.tight_layout()
    return fig


def plot_losses(log, path, swd_log=None):
    """G's and D's losses, and D(x) / D(G(z)), against the step (``log``: column -> array, as
    ``History.log()`` gives); a third panel with the SWD (``swd_log``, ``SWDTracker.log()``) when there is one."""
    fig = loss_figure(log, swd_log)
    with written_whole(path) as tmp:
        fig.savefig(tmp, dpi=100)
    return path


def make_gif(frames, path, duration_ms=400):
    """An animated GIF of the given frames (PIL images or paths of PNGs, such as the fixed-noise
    grids, one per epoch); the last frame is held longer."""
    # Octree quantisation to the GIF's 256 colours: many times faster than Pillow's default (median
    # cut), and the same to the eye on these images.
    frames = [(f if isinstance(f, Image.Image) else Image.open(f)).convert("RGB").quantize(
        256, method=Image.Quantize.FASTOCTREE) for f in frames]
    durations = [duration_ms] * (len(frames) - 1) + [duration_ms * 5]
    with written_whole(path) as tmp:
        frames[0].save(tmp, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return path
