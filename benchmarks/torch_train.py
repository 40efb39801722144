"""A plain PyTorch DCGAN training script doing the work ``python -m dcgan_ms.train`` does: the reference
``bench_train.py`` times whole runs against. Benchmark-only (torch, from benchmarks/requirements.txt).

    python benchmarks/torch_train.py --data_root data/sample/faces --batch_size 32 --ngf 16 --ndf 16 \
        --epochs 26 --instance_noise 0.1 --output_dir runs/torch_run

What it does, as a PyTorch user would write it (pytorch/examples' dcgan, images decoded once into
memory as a small data set allows): read every image under --data_root with Pillow, resize the short
side to 64 and centre-crop, scale to [-1, 1]; then per epoch a shuffled pass in batches (the last
partial batch dropped), each step the tutorial's G step then D step (``torch_dcgan.make_train_step``)
with z and the instance noise drawn by torch, a CSV row per step; after every epoch a PNG grid of
G(fixed noise) and G's and D's weights (torch.save), as dcgan_ms writes its grid and checkpoints.

``--inputs dcgan_ms`` (for ``parity.py``): everything random or read comes from dcgan_ms instead, as
``python -m dcgan_ms.train`` with the same seed draws it: the initial weights, the batches (its
pipeline, shuffling and ``--resize`` filter) and each step's z and instance noise (``noise.StepNoise``).
Only the arithmetic is PyTorch's, so a difference in learning that remains is the frameworks' own.
"""
import argparse
import csv
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_dcgan import make_train_step, torch_name  # noqa: E402

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def load_images(root, size=64):
    paths = sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files if f.lower().endswith(EXTENSIONS))
    images = np.empty((len(paths), 3, size, size), np.float32)
    for i, path in enumerate(paths):
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            scale = size / min(w, h)
            im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
            left, top = (im.size[0] - size) // 2, (im.size[1] - size) // 2
            im = im.crop((left, top, left + size, top + size))
        images[i] = np.asarray(im, np.float32).transpose(2, 0, 1) / 127.5 - 1
    return torch.from_numpy(images)


def save_grid(images, path, nrow=8, padding=2):
    x = ((images.detach().numpy().transpose(0, 2, 3, 1) + 1) * 127.5 + 0.5).clip(0, 255).astype(np.uint8)
    n, h, w, c = x.shape
    rows = (n + nrow - 1) // nrow
    grid = np.full((rows * (h + padding) + padding, nrow * (w + padding) + padding, c), 255, np.uint8)
    for i, img in enumerate(x):
        y0, x0 = padding + (i // nrow) * (h + padding), padding + (i % nrow) * (w + padding)
        grid[y0:y0 + h, x0:x0 + w] = img
    Image.fromarray(grid).save(path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data_root", required=True)
    p.add_argument("--output_dir", required=True)
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--max_steps", type=int, default=None)
    p.add_argument("--nz", type=int, default=100)
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--instance_noise", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: forward passes and losses under torch.autocast (torch_dcgan.py)")
    p.add_argument("--inputs", choices=("torch", "dcgan_ms"), default="torch",
                   help="dcgan_ms: initial weights, batches, z and instance noise as dcgan_ms draws them")
    p.add_argument("--resize", default="torchvision", help="with --inputs dcgan_ms: its --resize filter (dcgan_ms.train's default)")
    p.add_argument("--adam", choices=("pytorch", "mindspore"), default="pytorch",
                   help="mindspore: Adam with MindSpore's placement of epsilon (torch_dcgan.MindSporeAdam)")
    p.add_argument("--samples", type=int, default=0, help="after training, write this many of G's images (uint8 "
                   "NHWC, BatchNorm on batches of 64 as dcgan_ms.images.generated_images) to samples.npy")
    args = p.parse_args()
    os.makedirs(os.path.join(args.output_dir, "samples"), exist_ok=True)
    train_step, net_g, net_d = make_train_step(args.nz, args.ngf, args.ndf, seed=args.seed, noise=args.instance_noise,
                                               precision=args.precision, adam=args.adam)
    fixed_noise = torch.randn(64, args.nz, 1, 1)
    if args.inputs == "dcgan_ms":
        steps_per_epoch, batches = dcgan_ms_inputs(args, net_g, net_d)
    else:
        images = load_images(args.data_root)
        steps_per_epoch = len(images) // args.batch_size

        def batches(epoch, step):  # this epoch's shuffled batches: (images, z, instance noises drawn by the step)
            order = torch.randperm(len(images))
            for b in range(steps_per_epoch):
                yield images[order[b * args.batch_size:(b + 1) * args.batch_size]], torch.randn(
                    args.batch_size, args.nz, 1, 1), ()
    total = min(args.epochs * steps_per_epoch, args.max_steps or args.epochs * steps_per_epoch)
    step, epoch = 0, 0
    with open(os.path.join(args.output_dir, "log.csv"), "w", newline="") as f:
        log = csv.writer(f)
        log.writerow(["step", "epoch", "g_loss", "d_loss", "d_real", "d_fake", "img_per_s"])
        while step < total:
            epoch += 1
            for real, z, noises in batches(epoch, step):
                start = time.perf_counter()
                g_loss, d_loss, d_real, d_fake = train_step(real, z, noises)
                step += 1
                log.writerow([step, epoch, f"{g_loss:.6g}", f"{d_loss:.6g}", f"{d_real:.6g}", f"{d_fake:.6g}",
                              f"{args.batch_size / (time.perf_counter() - start):.4g}"])
                f.flush()
                if step >= total:
                    break
            net_g.train()  # the grid as dcgan_ms makes it: BatchNorm with the batch's statistics
            with torch.no_grad():
                save_grid(net_g(fixed_noise), os.path.join(args.output_dir, "samples", f"epoch_{epoch:03d}.png"))
            torch.save(net_g.state_dict(), os.path.join(args.output_dir, "generator.pt"))
            torch.save(net_d.state_dict(), os.path.join(args.output_dir, "discriminator.pt"))
    if args.samples:
        np.save(os.path.join(args.output_dir, "samples.npy"), generated_images(net_g, args.samples, args.nz))
    print(f"done: {step} steps", file=sys.stderr)


def dcgan_ms_inputs(args, net_g, net_d):
    """(steps per epoch, batches(epoch, step)) with dcgan_ms's data and noise for ``args.seed``, and its
    initial weights copied into ``net_g`` and ``net_d``: the order ``dcgan_ms.session.build_session``
    draws them in (seed, data, networks)."""
    import mindspore as ms
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from dcgan_ms.data import TrainingData
    from dcgan_ms.models import Discriminator, Generator
    from dcgan_ms.noise import StepNoise
    from dcgan_ms.pixels import ImageLook
    from dcgan_ms.runtime import set_seed
    ms.set_context(mode=ms.PYNATIVE_MODE)
    set_seed(args.seed)
    data = TrainingData(args.data_root, batch_size=args.batch_size, seed=args.seed, look=ImageLook(resize=args.resize))
    for ours, theirs in ((Generator(args.nz, args.ngf), net_g), (Discriminator(args.ndf), net_d)):
        state = {torch_name(p.name): torch.from_numpy(p.asnumpy().copy()) for p in ours.get_parameters()}
        result = theirs.load_state_dict(state, strict=False)  # BatchNorm's num_batches_tracked kept
        missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
        if missing or result.unexpected_keys:
            sys.exit(f"dcgan_ms's weights do not map onto PyTorch's: missing {missing}, "
                     f"unexpected {result.unexpected_keys}")
    noise = StepNoise(nz=args.nz, seed=args.seed, instance_noise=args.instance_noise)

    def batches(epoch, step):
        for real in data.batches(epoch):
            z, noises = noise(step, real.shape)
            step += 1
            yield (torch.from_numpy(real.asnumpy().copy()), torch.from_numpy(z.asnumpy().copy()),
                   [torch.from_numpy(n.asnumpy().copy()) for n in noises])
    return data.steps_per_epoch, batches


def generated_images(net_g, num, nz, batch_size=64):
    """``num`` images of G as uint8 (N, 64, 64, 3), in batches of 64 with the batch's BatchNorm statistics."""
    net_g.train()
    out = []
    with torch.no_grad():
        for start in range(0, num, batch_size):
            n = min(batch_size, num - start)
            x = net_g(torch.randn(max(n, 2), nz, 1, 1))[:n].numpy().transpose(0, 2, 3, 1)
            out.append(((x + 1) * 127.5 + 0.5).clip(0, 255).astype(np.uint8))
    return np.concatenate(out)


if __name__ == "__main__":
    main()
