"""Export the Generator for inference: ``python -m dcgan_ms.export --help``.

    python -m dcgan_ms.export --ckpt runs/quickstart/generator.ckpt --format MINDIR --out generator.mindir

Writes the Generator in inference mode (BatchNorm with its running averages) with ``ms.export`` for
a fixed batch (``--batch_size``): input z (batch, nz, 1, 1), output images (batch, 3, 64, 64) in
[-1, 1]. MINDIR is MindSpore's format (``ms.load`` and ``nn.GraphCell``, also MindSpore Lite); ONNX is
for other runtimes. MindSpore 2.10 writes each ConvTranspose's ``output_shape`` as (N, C, H, W) where
ONNX wants (H, W), which onnxruntime refuses, so we rewrite that attribute with the ``onnx`` package.
"""
import argparse
import os

import numpy as np

from .errors import ArgumentParser, UserError, cli, first_line
from .files import written_whole


def export_generator(generator, path, file_format="MINDIR", batch_size=64):
    """Export ``generator`` in inference mode; returns the path of the file written. It must compute
    with MindSpore's own layers (as built, not rewritten by ``layers.speed_up`` for the compiled CPU
    kernels, which are a library on this machine that neither a MINDIR nor an ONNX file can carry)."""
    import mindspore as ms

    if any(getattr(cell, "use_cpu_kernel", False) for _, cell in generator.cells_and_names()):
        raise UserError("this Generator computes with dcgan_ms's compiled CPU kernels, which cannot be exported: "
                        "load it as built (checkpoint.load_generator(path, conv=None))")
    generator.set_train(False)
    z = ms.Tensor(np.zeros((batch_size, generator.nz, 1, 1), np.float32))
    base, ext = os.path.splitext(path)
    wanted = {"MINDIR": ".mindir", "ONNX": ".onnx"}[file_format]
    written = (base if ext.lower() == wanted else path) + wanted
    # MindSpore chmods what it exports into (the folder to 0700 for ONNX, an existing file before it
    # replaces it), which fails in a shared folder the user does not own: written_whole's private
    # folder takes it, and the file is then moved into place with the user's file mode.
    with written_whole(written) as tmp:
        ms.export(generator, z, file_name=os.path.splitext(tmp)[0], file_format=file_format)
        if not os.path.isfile(tmp):
            raise UserError(f"MindSpore did not write {written}: see its messages above")
        if file_format == "ONNX":
            _fix_onnx_conv_transpose(tmp)
    return written


def _fix_onnx_conv_transpose(path):
    """Keep only the spatial dims of ConvTranspose's output_shape, as the ONNX standard says."""
    import onnx
    from onnx import helper

    model = onnx.load(path)
    for node in model.graph.node:
        if node.op_type != "ConvTranspose":
            continue
        for i, attr in enumerate(node.attribute):
            if attr.name == "output_shape" and len(attr.ints) == 4:
                node.attribute[i].CopyFrom(helper.make_attribute("output_shape", list(attr.ints[2:])))
    onnx.checker.check_model(model)
    os.chmod(path, 0o600)  # MindSpore writes it read-only
    onnx.save(model, path)


def load_mindir(path):
    """The exported Generator as a callable ``nn.GraphCell``."""
    import mindspore as ms
    from mindspore import nn
    return nn.GraphCell(ms.load(path))


def build_parser():
    p = ArgumentParser(prog="python -m dcgan_ms.export", description="Export a Generator checkpoint "
                                "to MINDIR or ONNX for inference.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--ckpt", required=True, help="the generator.ckpt to export")
    p.add_argument("--format", choices=("MINDIR", "ONNX"), default="MINDIR",
                   help="MINDIR (for ms.load and nn.GraphCell) or ONNX (for onnxruntime and others)")
    p.add_argument("--out", default=None, help="file to write (default: beside --ckpt, generator.mindir/.onnx)")
    p.add_argument("--batch_size", type=int, default=64, help="the exported graph's fixed batch size")
    return p


@cli
def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        raise UserError(f"--batch_size must be at least 1, got {args.batch_size}")
    from . import checkpoint
    generator = checkpoint.load_generator(args.ckpt, conv=None)  # the tutorial's layers, as built
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.ckpt)),
                                   "generator" + (".mindir" if args.format == "MINDIR" else ".onnx"))
    try:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        written = export_generator(generator, out, args.format, args.batch_size)
    except (RuntimeError, ValueError, OSError) as e:
        raise UserError(f"could not export {args.format} to {out} ({first_line(e)})") from None
    print(f"wrote {written}: z ({args.batch_size}, {generator.nz}, 1, 1) -> images ({args.batch_size}, 3, 64, 64)")


if __name__ == "__main__":
    main()
