"""Generate avatars from a Generator checkpoint: ``python -m dcgan_ms.generate --help``.

    python -m dcgan_ms.generate --ckpt runs/quickstart/generator.ckpt --num 64 --out grid.png
    python -m dcgan_ms.generate --ckpt runs/quickstart/generator.ckpt --interpolate slerp --out walk.png

``--interpolate`` walks the latent space (the DCGAN paper's section 6.1): each of ``--rows`` rows
goes in ``--steps`` steps from one random z to another; it writes the grid and, beside it, a GIF
(``walk.gif``) in which every row moves from its start to its end.

Works with this package's checkpoints and with a generator.ckpt saved by the MindSpore tutorial's
own code (same parameter names); nz and ngf are read from the checkpoint.

BatchNorm when generating (``--bn``): in training mode BatchNorm normalises each layer with the
statistics of the current batch; in inference mode with the running averages it collected during
training. ``batch`` (the default) is how the Generator ran during training and how the progress
grids are made; it needs a batch of several images and makes each image depend a little on the
others. ``moving`` uses the running averages: each image depends on its own z only, but after a
short training the averages lag behind the weights and images come out washed out.
"""
import argparse
import os

import numpy as np
from PIL import Image

from .errors import UserError, cli
from .models import running_stats


def generate(generator, z, bn="batch"):
    """Images (N, 3, 64, 64) in [-1, 1] for noise ``z`` (N, nz, 1, 1), with BatchNorm as ``bn`` says.

    With ``bn="batch"`` the running averages are restored afterwards, so generating leaves the
    checkpointed statistics unchanged.
    """
    import mindspore as ms
    from mindspore import ops

    if bn == "moving":
        generator.set_train(False)
        return generator(ms.Tensor(z, ms.float32)).asnumpy()
    stats = running_stats(generator)
    saved = [p.asnumpy().copy() for p in stats]
    generator.set_train(True)
    images = generator(ms.Tensor(z, ms.float32)).asnumpy()
    for p, value in zip(stats, saved):  # in place: a compiled train step keeps updating the same memory
        ops.assign(p, ms.Tensor(value))
    return images


def interpolate(z0, z1, steps, method="slerp"):
    """``steps`` noise vectors from z0 to z1 (both ends included), shape (steps, *z0.shape).

    "linear" walks the straight line; "slerp" walks the great circle, which keeps the vectors'
    length typical of Gaussian noise (a straight line between two such vectors passes closer to
    the origin than any noise the Generator saw in training).
    """
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    t = np.linspace(0.0, 1.0, steps).reshape(-1, *([1] * z0.ndim))
    if method == "linear":
        return ((1 - t) * z0 + t * z1).astype(np.float32)
    cos = np.dot(z0.ravel(), z1.ravel()) / (np.linalg.norm(z0) * np.linalg.norm(z1))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return ((1 - t) * z0 + t * z1).astype(np.float32)
    return ((np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)).astype(np.float32)


def build_parser():
    p = argparse.ArgumentParser(prog="python -m dcgan_ms.generate", description="Write a grid of avatars "
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
    p.add_argument("--device_target", choices=("CPU", "GPU", "Ascend"), default="CPU")
    return p


@cli
def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.num < 1 or (args.bn == "batch" and args.num < 2):
        raise UserError(f"--num {args.num}: need at least 2 images with --bn batch (1 with --bn moving)")
    from . import checkpoint, plots
    from .runtime import set_device

    set_device(args.device_target)
    generator = checkpoint.load_generator(args.ckpt, args.nz, args.ngf)
    rng = np.random.default_rng(args.seed)
    if args.interpolate:
        if args.steps < 2 or args.rows < 1:
            raise UserError("--interpolate needs --steps of at least 2 and --rows of at least 1")
        z = np.concatenate([interpolate(rng.standard_normal((generator.nz, 1, 1)),
                                        rng.standard_normal((generator.nz, 1, 1)), args.steps, args.interpolate)
                            for _ in range(args.rows)])
        args.num, args.nrow = len(z), args.steps
    else:
        z = rng.standard_normal((args.num, generator.nz, 1, 1)).astype(np.float32)
    images = generate(generator, z, args.bn)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        plots.save_grid(images, args.out, args.nrow)
        if args.interpolate:  # frame t: the t-th image of every row, stacked
            walk = images.reshape(args.rows, args.steps, *images.shape[1:])
            frames = [plots.image_grid(walk[:, t], nrow=1) for t in range(args.steps)]
            frames += frames[-2:0:-1]  # and back
            plots.make_gif(frames, os.path.splitext(args.out)[0] + ".gif", duration_ms=150)
        if args.individual:
            os.makedirs(args.individual, exist_ok=True)
            for i, pixels in enumerate(plots.to_uint8(images)):
                Image.fromarray(pixels).save(os.path.join(args.individual, f"{i}.png"))
    except OSError as e:
        raise UserError(f"cannot write the images ({e.strerror or e}): pass a writable --out") from None
    extra = [os.path.splitext(args.out)[0] + ".gif"] if args.interpolate else []
    extra += [args.individual + "/"] if args.individual else []
    print(f"wrote {args.num} images from {args.ckpt} to {' and '.join([args.out] + extra)}")


if __name__ == "__main__":
    main()
