"""Generate avatars from a Generator checkpoint: ``python -m dcgan_ms.generate --help``.

    python -m dcgan_ms.generate --ckpt runs/quickstart/generator.ckpt --num 64 --out grid.png
    python -m dcgan_ms.generate --ckpt runs/quickstart/generator.ckpt --interpolate slerp --out walk.png

``--interpolate`` walks the latent space (the DCGAN paper's section 6.1): each of ``--rows`` rows goes
in ``--steps`` steps from one random z to another, written as the grid and a GIF beside it. Works with
this package's checkpoints and the tutorial's own (same parameter names); nz and ngf are read from the
checkpoint. ``--bn``: BatchNorm with the batch's statistics or the running averages (``images.py``).
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image

from . import gpu
from .errors import ArgumentParser, UserError, cli
from .files import written_whole


def build_parser():
    p = ArgumentParser(prog="python -m dcgan_ms.generate", description="Write a grid of avatars "
                                "(and optionally each image) generated from a Generator checkpoint.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--ckpt", required=True, help="a generator.ckpt (ours or the tutorial's)")
    p.add_argument("--num", type=int, default=64, help="how many images")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise z")
    p.add_argument("--out", default="generated.png", help="the grid PNG to write")
    p.add_argument("--individual", default=None, metavar="DIR", help="also write each image as DIR/N.png")
    p.add_argument("--nrow", type=int, default=None, help="images per grid row (default: square)")
    p.add_argument("--bn", choices=("batch", "moving"), default="batch",
                   help="BatchNorm statistics: of the generated batch, or the running averages")
    p.add_argument("--interpolate", choices=("linear", "slerp"), default=None,
                   help="instead of independent images, rows walking between two random z")
    p.add_argument("--steps", type=int, default=8, help="with --interpolate: images per row")
    p.add_argument("--rows", type=int, default=4, help="with --interpolate: how many walks")
    p.add_argument("--nz", type=int, default=None, help="noise length (default: the checkpoint's)")
    p.add_argument("--ngf", type=int, default=None, help="Generator width (default: the checkpoint's)")
    p.add_argument("--device_target", choices=("CPU", "GPU", "Ascend"), default="CPU",
                   help="where to run the Generator")
    return p


@cli
def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.num < 1 or (args.bn == "batch" and args.num < 2):
        raise UserError(f"--num {args.num}: need at least 2 images with --bn batch (1 with --bn moving)")
    for note in gpu.prepare(args.device_target):  # before MindSpore is imported
        print(f"note: {note}", file=sys.stderr)
    from . import checkpoint, plots
    from .images import generate, interpolate
    from .runtime import set_device

    set_device(args.device_target)
    generator = checkpoint.load_generator(args.ckpt, args.nz, args.ngf)
    rng, nrow = np.random.default_rng(args.seed), args.nrow
    if args.interpolate:
        if args.steps < 2 or args.rows < 1:
            raise UserError("--interpolate needs --steps of at least 2 and --rows of at least 1")
        z = np.concatenate([interpolate(rng.standard_normal((generator.nz, 1, 1)),
                                        rng.standard_normal((generator.nz, 1, 1)), args.steps, args.interpolate)
                            for _ in range(args.rows)])
        nrow = args.steps
    else:
        z = rng.standard_normal((args.num, generator.nz, 1, 1)).astype(np.float32)
    images = generate(generator, z, args.bn)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        plots.save_grid(images, args.out, nrow)
        if args.interpolate:  # frame t: the t-th image of every row, stacked
            walk = images.reshape(args.rows, args.steps, *images.shape[1:])
            frames = [plots.image_grid(walk[:, t], nrow=1) for t in range(args.steps)]
            frames += frames[-2:0:-1]  # and back
            plots.make_gif(frames, os.path.splitext(args.out)[0] + ".gif", duration_ms=150)
        if args.individual:
            os.makedirs(args.individual, exist_ok=True)
            for i, pixels in enumerate(plots.to_uint8(images)):  # written whole: never through a planted link
                with written_whole(os.path.join(args.individual, f"{i}.png")) as tmp:
                    Image.fromarray(pixels).save(tmp)
    except OSError as e:
        raise UserError(f"cannot write the images ({e.strerror or e}): pass a writable --out") from None
    extra = [os.path.splitext(args.out)[0] + ".gif"] if args.interpolate else []
    extra += [args.individual + "/"] if args.individual else []
    print(f"wrote {len(images)} images from {args.ckpt} to {' and '.join([args.out] + extra)}")


if __name__ == "__main__":
    main()
