"""Train a DCGAN on anime faces: ``python -m dcgan_ms.train --help``.

    python -m dcgan_ms.train --device_target GPU            # the tutorial: real faces, downloaded
    python -m dcgan_ms.train --dataset sample --epochs 5    # the shipped sample, offline, on CPU
    python -m dcgan_ms.train --resume --output_dir runs/faces-20261123-101500   # continue a run
    scripts/run_distributed.sh 8 --device_target Ascend --output_dir runs/dist8  # msrun, 8 devices

The command line only: the flags are ``config.TrainConfig``'s fields, the run is ``training.train``.
What a run writes, how resuming and Ctrl-C work and how ranks share the work: README.md.
"""
import argparse
import sys

from . import gpu
from .config import FLAGS, TrainConfig
from .errors import ArgumentParser, cli


def build_parser():
    """The command line, built from ``TrainConfig``'s fields (their defaults, help and parsing)."""
    p = ArgumentParser(prog="python -m dcgan_ms.train", description="Train the MindSpore tutorial's "
                                "DCGAN on anime faces (or any folder of images).",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    groups = {}
    for field in FLAGS:
        group = field.metadata["group"]
        if group not in groups:
            groups[group] = p.add_argument_group(group)
        groups[group].add_argument(f"--{field.name}", help=field.metadata["help"], **field.metadata["parsing"])
    return p


def explicit_flags(argv):
    """The destinations of the flags given on the command line (not left at their defaults)."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def parse_args(argv=None):
    """The command line as a TrainConfig (which checks the flags that do not go together)."""
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    if args["dataset"] is None:
        args["dataset"] = "folder" if args["data_root"] else "faces"
    return TrainConfig(**args, explicit=tuple(sorted(explicit_flags(argv))))


@cli
def main(argv=None):
    config = parse_args(argv)  # before MindSpore is imported: a wrong flag is answered at once
    for note in gpu.prepare(config.device_target, several=config.distributed):  # before MindSpore too
        print(f"note: {note}", file=sys.stderr)
    from .training import train
    done = train(config)
    if done["interrupted"]:  # Ctrl-C or SIGTERM: everything was saved
        if done["devices"] > 1:  # the line run_distributed.sh reads in each worker's log
            print(f"rank {done['rank']}: interrupted after step {done['steps']} with every rank; saved",
                  file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
