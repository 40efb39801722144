"""A second set of 96 px images that dcgan_ms did not draw: OpenMoji's colour emoji (CC BY-SA 4.0), drawn
from their SVGs at 96x96 over white, as the tutorial's faces are 96x96.

    python benchmarks/openmoji.py                    # -> data/openmoji (4 MB to download)
    python benchmarks/parity.py --data_root data/openmoji

Needs ``npm`` and the npm registry (``npm pack`` fetches the package's archive; nothing is installed)
and cairosvg (benchmarks/requirements.txt) to draw the SVGs. Unlike the sample's soft avatars, these
have black outlines 1-2 px wide at 96 px: resized to 64 px without antialiasing they alias, so this set
shows what the resize filter costs.
"""
import argparse
import io
import os
import tarfile
import tempfile

from PIL import Image

from twemoji import npm_pack

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "openmoji@17.0.0"
SVGS = "package/color/svg/"
SIZE = 96


def fetch(out, limit):
    import cairosvg
    with tempfile.TemporaryDirectory() as tmp:
        archive = npm_pack(PACKAGE, tmp)
        os.makedirs(out, exist_ok=True)
        count = 0
        with tarfile.open(archive) as tar:
            members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.startswith(SVGS)
                              and m.name.endswith(".svg")), key=lambda m: m.name)
            for member in members[:limit]:
                try:
                    png = cairosvg.svg2png(bytestring=tar.extractfile(member).read(), output_width=SIZE,
                                           output_height=SIZE, background_color="white")
                except Exception:  # a few use SVG features cairosvg cannot draw: left out
                    continue
                name = os.path.splitext(os.path.basename(member.name))[0]
                Image.open(io.BytesIO(png)).convert("RGB").save(os.path.join(out, f"{name}.png"))
                count += 1
    return count


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join(REPO, "data", "openmoji"), help="the folder to fill")
    p.add_argument("--limit", type=int, default=None, help="draw only the first this many (by name)")
    args = p.parse_args()
    if os.path.isdir(args.out) and os.listdir(args.out):
        print(f"{args.out} already holds {len(os.listdir(args.out))} files: nothing to do")
        return
    print(f"{fetch(args.out, args.limit)} images in {args.out}")


if __name__ == "__main__":
    main()
