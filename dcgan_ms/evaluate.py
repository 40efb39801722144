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
import dataclasses
import json
import os

from .errors import ArgumentParser, UserError, cli
from .files import written_whole
from .pixels import PIXEL_RANGES, RESIZE, RESIZES, ImageLook
from .run_folder import read_config


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
    from .layers import speed_up
    from .models import Generator
    from .scoring import Scorer

    look = ImageLook()
    if args.ckpt:
        generator = checkpoint.load_generator(args.ckpt)
        recorded = read_config(os.path.dirname(os.path.abspath(args.ckpt)))
        if isinstance(recorded, dict):  # how the run read its images
            look = ImageLook.of_run(recorded)
    else:
        ms.set_seed(args.seed)
        generator = speed_up(Generator(args.nz, args.ngf))
    look = dataclasses.replace(look, pixel_range=PIXEL_RANGES[args.pixel_range or look.pixel_range.flag],
                               resize=args.resize or look.resize)
    data_root = args.data_root or (SAMPLE_DIR if args.dataset == "sample" else prepare_faces(FACES_DIR))
    scores = Scorer(data_root, num=args.num, seed=args.seed, look=look).score(generator, bn=args.bn)
    report = {"ckpt": args.ckpt or "random init", "data_root": os.path.abspath(data_root), "num": args.num,
              "seed": args.seed, "bn": args.bn, "pixel_range": look.pixel_range.flag, "resize": look.resize,
              "swd_x1e3": {"per_level": scores["swd_x1e3_per_level"], "mean": scores["swd_x1e3"]},
              "diversity": scores["diversity"]}
    out = args.out or (os.path.join(os.path.dirname(os.path.abspath(args.ckpt)), "swd.json") if args.ckpt else None)
    if out:
        with written_whole(out) as tmp, open(tmp, "w") as f:
            json.dump(report, f, indent=2)
    levels = ", ".join(f"{k}px {v:.1f}" for k, v in scores["swd_x1e3_per_level"].items())
    print(f"SWD x1e3 ({args.num} images): mean {scores['swd_x1e3']:.1f} ({levels}); diversity "
          f"{scores['diversity']:.2f}" + (f"; written to {out}" if out else ""))

if __name__ == "__main__":
    main()
