"""report.html: one self-contained page of a run, worth handing in.

Every run writes it into its output folder when training ends (rank 0, ``callbacks.ReportPage``, which
scores the Generator it trained); ``python -m dcgan_ms.report RUN`` (report.py) rebuilds it for any run
folder, finished or not, scoring generator.ckpt itself: a score read back from a file is never shown.
The page has no outside link (its pictures are inline) and shows the run's state and fingerprint
(SHA-256 of generator.ckpt and config.json, for ``sha256sum``), the epoch grids as a timeline, the losses
and D's outputs, the final Generator's SWD and diversity, the flags, the environment.json sessions and
the time its steps took. Everything from the run folder is escaped; a part that cannot be shown (a
malformed file, a grid that is no plain image of the run) is left out, saying why, and the rest stays.
"""
import base64
import hashlib
import html
import io
import json
import math
import os
import stat
import time

from . import run_folder
from .errors import UserError, first_line
from .files import written_whole
from .run_folder import CONFIG, ENVIRONMENT, GENERATOR, REPORT, read_json

MAX_FRAMES = 60  # epoch grids on the timeline; a longer run shows that many, evenly spaced, and its last


def plain_file(path):
    """Whether ``path`` is a plain file (not a link, a folder or a device): what a run writes."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def final_scores(run, config):
    """SWD x1e3 and diversity of the run's generator.ckpt against its own images (at most FINAL_IMAGES a
    side), scored now; None when there is no checkpoint. A UserError says why it cannot be scored."""
    ckpt = os.path.join(run, GENERATOR)
    if not plain_file(ckpt):
        return None
    from . import checkpoint
    from .data import find_images
    from .pixels import ImageLook
    from .scoring import FINAL_IMAGES, Scorer
    data_root, seed = config.get("data_root"), config.get("seed", 1)
    if not isinstance(data_root, str) or isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserError("config.json records no usable data_root and seed")
    num = min(FINAL_IMAGES, len(find_images(data_root)))
    return Scorer(data_root, num=num, seed=seed, look=ImageLook.of_run(config)).score(checkpoint.load_generator(ckpt))


def timeline_frames(run):
    """(epoch name, JPEG data URI) of the epoch grids, at most MAX_FRAMES of them, the last included, and
    the names of those left out: not plain files (a link to anything at all), or not images."""
    from PIL import Image
    paths, skipped = run_folder.grid_paths(run), []
    if len(paths) > MAX_FRAMES:
        paths = [paths[i * (len(paths) - 1) // (MAX_FRAMES - 1)] for i in range(MAX_FRAMES)]
    frames = []
    for path in paths:
        buffer = io.BytesIO()
        try:
            if not plain_file(path):
                raise OSError("not a plain file")
            with Image.open(path) as image:
                image.convert("RGB").save(buffer, format="JPEG", quality=85)
        except Exception:  # Pillow raises many kinds for a file that is no image
            skipped.append(os.path.basename(path))
            continue
        frames.append((os.path.basename(path)[:-4].replace("_", " "), data_uri(buffer.getvalue(), "image/jpeg")))
    return frames, skipped


def data_uri(data, mime):
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def read_swd_log(run):
    """swd.csv's "step" and "swd_mean" columns, None when there is none; ValueError when it is malformed."""
    path = os.path.join(run, run_folder.SWD_LOG)
    if not plain_file(path):
        return None
    columns = run_folder.read_columns(path, ("step", "swd_mean"))
    return columns if columns["step"] else None


def loss_plot(log, swd_log):
    """The losses and D's outputs (with the SWD over epochs, ``swd_log``, when there is one) as a PNG data URI."""
    from . import plots
    buffer = io.BytesIO()
    plots.loss_figure(log, swd_log).savefig(buffer, format="png", dpi=90)
    return data_uri(buffer.getvalue(), "image/png")


def number(value):
    """``value`` when it is a finite number (a run folder's JSON may hold anything), else None."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return value if ok else None


def script_json(value):
    """JSON to stand inside <script>: no "<" in it (a "</script>" or "<!--" in a file name would end or
    hide the page), as \\u003c, which JSON reads back as "<"."""
    return json.dumps(value).replace("<", "\\u003c")


def table(pairs):
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in pairs)
    return f"<table>{rows}</table>"


STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse}th,td{text-align:left;padding:2px 10px;border-bottom:1px solid #eee;font-size:.9em}
th{color:#555;font-weight:normal}code{font-size:.85em}#grid{width:530px;image-rendering:pixelated}
.plot{width:100%}.status{font-size:1.05em}"""

SCRIPT = """const frames = JSON.parse(document.getElementById('frames').textContent);
const slider = document.getElementById('slider'), grid = document.getElementById('grid'),
      label = document.getElementById('label');
function show(i) { grid.src = frames[i][1]; label.textContent = frames[i][0]; }
slider.addEventListener('input', () => show(+slider.value));"""


def render(run, *, config, log, frames, plot, scores, environments, fingerprint, problems=()):
    """The page, as text; ``problems``: one line for each part that cannot be shown."""
    steps = int(number(log["step"][-1]) or 0) if log and log["step"] else 0  # a crafted "inf" is no step count
    total = number(config.get("total_steps"))  # numbers from the run folder, checked as numbers
    state = f"{steps} of {total if total is not None else '?'} steps" + (
        " (finished)" if total and steps >= total else " (not finished: --resume continues it)")
    batch = number(config.get("global_batch_size")) or number(config.get("batch_size")) or 0
    step_seconds = sum(batch / v for v in log["img_per_s"] if v > 0) if log else 0.0
    parts = [f"<h1>dcgan_ms run: {html.escape(os.path.abspath(run))}</h1>",
             f"<p class=status>{html.escape(state)}, batches of {html.escape(str(batch))}; "
             f"{step_seconds / 60:.1f} minutes in training steps (from the log)</p>",
             "<h2>Fingerprint</h2><p>Check it against the files: <code>sha256sum generator.ckpt config.json</code></p>",
             table(fingerprint.items())]
    if problems:
        parts.append("<h2>Not shown</h2><ul>" + "".join(f"<li>{html.escape(p)}</li>" for p in problems) + "</ul>")
    parts.append("<h2>G(fixed noise) after each epoch</h2>")
    if frames:
        last = len(frames) - 1
        parts += [f"<input id=slider type=range min=0 max={last} value={last} style='width:530px'> "
                  f"<span id=label>{html.escape(frames[-1][0])}</span><br>",
                  f"<img id=grid alt='the last grid' src='{frames[-1][1]}'>",
                  f"<script id=frames type=application/json>{script_json(frames)}</script>",
                  f"<script>{SCRIPT}</script>"]
    else:
        parts.append("<p>no grid yet: the first is drawn at the end of the first epoch</p>")
    parts.append("<h2>Losses and D's outputs</h2>")
    parts.append(f"<img class=plot alt='losses' src='{plot}'>" if plot else "<p>no step logged yet</p>")
    parts.append("<h2>The final Generator</h2>")
    if scores:
        levels = " / ".join(f"{k} px {v:.1f}" for k, v in scores["swd_x1e3_per_level"].items())
        parts.append(table([("SWD x1e3 (lower is better)", f"{scores['swd_x1e3']:.1f} ({levels})"),
                            ("diversity (about 1: as varied as the real images)", f"{scores['diversity']:.2f}"),
                            ("images a side", scores["num"])]))
    else:
        parts.append("<p>not scored: no generator.ckpt yet, or the run's images are not here</p>")
    parts += ["<h2>Flags</h2>", table(config.items()), "<h2>Environment</h2>"]
    for i, env in enumerate(environments or []):
        parts += [f"<p>session {i + 1}</p>", table(env.items())]
    if not environments:
        parts.append("<p>not recorded (a run older than the report)</p>")
    parts.append(f"<p><small>written by python -m dcgan_ms.report on {time.strftime('%Y-%m-%d %H:%M:%S')}"
                 "</small></p>")
    return ("<!doctype html><html><head><meta charset=utf-8><title>dcgan_ms run</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")


def write_report(run, out=None, *, score=True, scores=None, loss_png=None):
    """Write ``out`` (default RUN/report.html) for the run folder ``run``; returns (its path, one line for
    each part that could not be shown). ``scores``: the final Generator's, scored by the run that trained
    it; else, with ``score``, generator.ckpt is scored here. ``loss_png``: the losses.png this process
    drew of the same log, shown as it is; else the plot is drawn from the folder's log."""
    config = run_folder.read_config(run)
    if config is None:
        raise UserError(f"{run} holds no config.json: pass the --output_dir of a training run")
    problems = []

    def shown(part, read):
        """What ``read()`` gives, or None with one line in ``problems`` saying why ``part`` is not shown."""
        try:
            return read()
        except (UserError, ValueError, TypeError, KeyError, OSError, RuntimeError) as e:  # RuntimeError: MindSpore's
            problems.append(f"{part}: {first_line(e)}")
            return None

    if not isinstance(config, dict):
        problems.append("the flags: config.json holds no run's config (a JSON object)")
        config = {}
    log = shown("the log", lambda: run_folder.read_log(run))
    frames, skipped = timeline_frames(run)
    if skipped:
        problems.append(f"the grids {', '.join(skipped)}: not plain image files of the run")
    if loss_png:
        with open(loss_png, "rb") as f:
            plot = data_uri(f.read(), "image/png")
    else:
        swd_log = shown("the SWD over epochs", lambda: read_swd_log(run))
        plot = shown("the loss plot", lambda: loss_plot(log, swd_log)) if log else None
    if scores is None and score:
        scores = shown("the final Generator's scores", lambda: final_scores(run, config))
    environments = read_json(os.path.join(run, ENVIRONMENT))
    if environments is not None and not (isinstance(environments, list)
                                         and all(isinstance(e, dict) for e in environments)):
        problems.append("the environment: environment.json holds no list of sessions")
        environments = None
    fingerprint = {name: sha256(os.path.join(run, name)) for name in (GENERATOR, CONFIG)
                   if plain_file(os.path.join(run, name))}
    page = render(run, config=config, log=log, frames=frames, plot=plot, scores=scores, environments=environments,
                  fingerprint=fingerprint, problems=problems)
    out = out or os.path.join(run, REPORT)
    with written_whole(out) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    return out, problems
