"""How close a Generator's images are to the real ones: ``python -m dcgan_ms.evaluate --help``.

    python -m dcgan_ms.evaluate --ckpt runs/quickstart/generator.ckpt --dataset sample --num 1024

Generates ``--num`` images, takes as many real images, and reports the sliced Wasserstein distance
on Laplacian-pyramid patches (``dcgan_ms/swd.py``) per pyramid level and in the mean, x 1e3; lower
is better, two halves of the real set score about 10-15; and the diversity of the generated images
(``swd.diversity``: nearest-neighbour distances within the set against the real set's, about 1 when
as varied as the real images, near 0 for a collapsed Generator). Prints them and writes JSON (default:
``swd.json`` beside the checkpoint). ``--random_init`` scores an untrained Generator instead, as a
baseline. The run's pixel range, resize filter and background come from ``config.json`` beside the
checkpoint (``--pixel_range`` and ``--resize`` override): the real images are those it trained on.
"""
import argparse
import json
import os

from .errors import ArgumentParser, UserError, cli
from .pixels import RESIZE, RESIZE_BEFORE_RECORDED, RESIZES


def build_parser():
    p = ArgumentParser(prog="python -m dcgan_ms.evaluate", description="Sliced Wasserstein distance "
                                "between a Generator's images and real images (no download needed).",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--ckpt", help="the generator.ckpt to score")
    g.add_argument("--random_init", action="store_true", help="score an untrained Generator (baseline)")
    p.add_argument("--dataset", choices=("faces", "sample"), default="sample", help="the real images")
    p.add_argument("--data_root", default=None, help="a folder of real images instead of --dataset")
    p.add_argument("--num", type=int, default=1024, help="images per set")
    p.add_argument("--seed", type=int, default=0, help="seeds the noise, the real images' order and the SWD")
    p.add_argument("--bn", choices=("batch", "moving"), default="batch", help="BatchNorm when generating")
    p.add_argument("--pixel_range", choices=("-1,1", "0,1"), default=None,
                   help="the range the Generator was trained for (default: from config.json beside --ckpt)")
    p.add_argument("--resize", choices=RESIZES, default=None, help="how the real images are shrunk to 64 px "
                   f"(default: as the run did, from config.json beside --ckpt; else {RESIZE})")
    p.add_argument("--nz", type=int, default=100, help="with --random_init")
    p.add_argument("--ngf", type=int, default=64, help="with --random_init")
    p.add_argument("--out", default=None, help="JSON to write (default: swd.json beside --ckpt)")
    return p


@cli
def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.num < 2:
        raise UserError(f"--num {args.num}: need at least 2 images per set")
    import mindspore as ms

    from . import checkpoint
    from .data import FACES_DIR, SAMPLE_DIR, prepare_faces
    from .images import generated_images, real_images
    from .layers import speed_up
    from .models import Generator
    from .pixels import PIXEL_RANGES
    from .swd import diversity, swd

    pixel_range, background, resize = args.pixel_range or "-1,1", "white", args.resize or RESIZE
    if args.ckpt:
        generator = checkpoint.load_generator(args.ckpt)
        config = os.path.join(os.path.dirname(os.path.abspath(args.ckpt)), "config.json")
        if os.path.isfile(config):  # how the run read its images
            trained = json.load(open(config))
            pixel_range = args.pixel_range or trained.get("pixel_range", "-1,1")
            background = trained.get("background", background)
            resize = args.resize or trained.get("resize", RESIZE_BEFORE_RECORDED)
    else:
        ms.set_seed(args.seed)
        generator = speed_up(Generator(args.nz, args.ngf))
    data_root = args.data_root or (SAMPLE_DIR if args.dataset == "sample" else prepare_faces(FACES_DIR))
    real = real_images(data_root, args.num, args.seed, background, resize)
    fake = generated_images(generator, args.num, seed=args.seed, bn=args.bn, pixel_range=PIXEL_RANGES[pixel_range])
    result, spread = swd(real, fake, args.seed), diversity(real, fake)
    report = {"ckpt": args.ckpt or "random init", "data_root": os.path.abspath(data_root), "num": args.num,
              "seed": args.seed, "bn": args.bn, "pixel_range": pixel_range, "resize": resize,
              "swd_x1e3": {"per_level": {str(k): v for k, v in result["levels"].items()}, "mean": result["mean"]},
              "diversity": spread}
    out = args.out or (os.path.join(os.path.dirname(os.path.abspath(args.ckpt)), "swd.json") if args.ckpt else None)
    if out:
        try:
            with open(out, "w") as f:
                json.dump(report, f, indent=2)
        except OSError as e:
            raise UserError(f"cannot write {out} ({e.strerror or e}): pass a writable --out") from None
    levels = ", ".join(f"{k}px {v:.1f}" for k, v in result["levels"].items())
    print(f"SWD x1e3 ({args.num} images): mean {result['mean']:.1f} ({levels}); diversity {spread:.2f}"
          + (f"; written to {out}" if out else ""))


if __name__ == "__main__":
    main()
