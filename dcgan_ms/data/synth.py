"""Procedurally drawn anime-style avatars: the offline stand-in for faces.zip.

Each avatar has the parts a DCGAN must learn on the real faces: a face oval with a pointed chin, hair
of one of several colours and cuts, two large eyes with pupils and highlights, a mouth, sometimes
blush, on a plain background, with jittered positions and sizes. Image i of a set depends only on
(seed, i), so any set is reproducible and a larger set made with the same seed starts with the
smaller one. The project ships 1,500 in data/sample; draw more with

    python -m dcgan_ms.data.synth --num 20000 --out data/synth20k
"""
import argparse
import os
import random
import sys

from PIL import Image, ImageDraw

SIZE = 96  # the real faces are 96x96
SCALE = 4  # drawn at 4x and downsampled, which anti-aliases the edges

HAIR = [(30, 25, 35), (95, 60, 40), (235, 205, 120), (240, 150, 190), (80, 120, 220),
        (140, 90, 190), (200, 50, 50), (205, 205, 215), (70, 160, 110), (240, 140, 50)]
EYES = [(60, 110, 220), (60, 170, 90), (200, 60, 60), (150, 70, 190), (200, 140, 40), (60, 50, 45)]
SKIN = [(255, 228, 210), (250, 218, 195), (255, 236, 222), (240, 205, 180)]
FRINGES = ("spiky", "blunt", "side", "parted")


def _jitter(rng, colour, amount=18):
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in colour)


def _shade(colour, factor):
    return tuple(int(c * factor) for c in colour)


def _fringe(d, rng, hair, *, cx, top, fw, fh, u):
    """Fringe over the forehead, in one of several cuts."""
    fringe = rng.choice(FRINGES)
    line = top + fh * rng.uniform(0.55, 0.8)  # how far the fringe falls
    d.ellipse([cx - fw * 1.12, top - fh * 0.28, cx + fw * 1.12, top + fh * 0.75], fill=hair)
    if fringe == "spiky":
        n = rng.randint(4, 6)
        xs = [cx - fw * 1.05 + i * (2.1 * fw / n) for i in range(n + 1)]
        for a, b in zip(xs, xs[1:]):
            d.polygon([(a, top + fh * 0.2), (b, top + fh * 0.2),
                       ((a + b) / 2 + rng.uniform(-3, 3) * u, line + rng.uniform(-4, 4) * u)],
                      fill=hair)
    elif fringe == "blunt":
        d.rectangle([cx - fw * 0.98, top + fh * 0.2, cx + fw * 0.98, line], fill=hair)
    elif fringe == "side":
        sign = rng.choice((-1, 1))
        d.polygon([(cx - sign * fw * 1.0, top + fh * 0.2), (cx + sign * fw * 1.0, top + fh * 0.2),
                   (cx + sign * fw * 1.0, line + fh * 0.15), (cx - sign * fw * 0.2, top + fh * 0.35)],
                  fill=hair)
    else:  # parted in the middle, two curtains
        for sign in (-1, 1):
            d.polygon([(cx, top + fh * 0.1), (cx + sign * fw * 1.0, top + fh * 0.25),
                       (cx + sign * fw * 1.0, line + fh * 0.2), (cx + sign * fw * 0.25, top + fh * 0.4)],
                      fill=hair)


def _eyes(d, rng, eye, *, cx, cy, fw, fh, u):
    """Eyes: large ellipses with an iris, a pupil, highlights and a dark upper lash line; returns their
    place and size (ey, ex, ew, eh)."""
    ey = cy + fh * rng.uniform(0.05, 0.2)
    ex = fw * rng.uniform(0.42, 0.52)
    ew = fw * rng.uniform(0.2, 0.27)
    eh = ew * rng.uniform(1.2, 1.6)
    for sign in (-1, 1):
        x = cx + sign * ex
        d.ellipse([x - ew, ey - eh, x + ew, ey + eh], fill=(255, 255, 255))
        d.ellipse([x - ew * 0.85, ey - eh * 0.8, x + ew * 0.85, ey + eh], fill=eye)
        d.ellipse([x - ew * 0.4, ey - eh * 0.2, x + ew * 0.4, ey + eh * 0.55], fill=_shade(eye, 0.35))
        d.ellipse([x - ew * 0.6, ey - eh * 0.6, x - ew * 0.1, ey - eh * 0.15], fill=(255, 255, 255))
        d.ellipse([x + ew * 0.2, ey + eh * 0.3, x + ew * 0.45, ey + eh * 0.55], fill=(255, 255, 255))
        d.line([(x - ew * 1.15, ey - eh * 0.75), (x, ey - eh * 1.05), (x + ew * 1.15, ey - eh * 0.75)],
               fill=(40, 30, 35), width=int(2.2 * u))
    return ey, ex, ew, eh


def draw_avatar(rng):
    """Draw one 96x96 RGB avatar with the random source ``rng`` (a ``random.Random``)."""
    s = SIZE * SCALE
    bg = tuple(rng.randint(150, 250) for _ in range(3))
    img = Image.new("RGB", (s, s), bg)
    d = ImageDraw.Draw(img)
    u = s / 96.0  # one pixel of the final image

    hair = _jitter(rng, rng.choice(HAIR))
    skin = _jitter(rng, rng.choice(SKIN), 8)
    eye = _jitter(rng, rng.choice(EYES), 25)
    cx = s / 2 + rng.uniform(-7, 7) * u
    cy = s / 2 + rng.uniform(-4, 8) * u
    fw = rng.uniform(26, 34) * u  # face half-width
    fh = fw * rng.uniform(1.05, 1.25)  # face half-height
    top = cy - fh

    # Hair behind the head: a large rounded mass, long or short.
    hair_bottom = cy + fh * rng.uniform(0.3, 1.8)
    d.rounded_rectangle([cx - fw * 1.35, top - fh * 0.45, cx + fw * 1.35, hair_bottom],
                        radius=int(fw * 1.1), fill=hair)

    # Neck and face: an ellipse whose lower half narrows to a chin.
    d.rectangle([cx - fw * 0.35, cy + fh * 0.6, cx + fw * 0.35, s], fill=_shade(skin, 0.93))
    d.ellipse([cx - fw, top, cx + fw, cy + fh * 0.55], fill=skin)
    chin = cy + fh * rng.uniform(0.95, 1.1)
    d.polygon([(cx - fw * 0.97, cy), (cx + fw * 0.97, cy), (cx + fw * 0.45, cy + fh * 0.8),
               (cx, chin), (cx - fw * 0.45, cy + fh * 0.8)], fill=skin)

    _fringe(d, rng, hair, cx=cx, top=top, fw=fw, fh=fh, u=u)
    ey, ex, ew, eh = _eyes(d, rng, eye, cx=cx, cy=cy, fw=fw, fh=fh, u=u)

    # Blush and mouth.
    if rng.random() < 0.5:
        for sign in (-1, 1):
            x = cx + sign * ex * 1.15
            d.ellipse([x - ew, ey + eh * 1.25, x + ew, ey + eh * 1.6], fill=(245, 170, 170))
    my = cy + fh * rng.uniform(0.62, 0.75)
    mw = fw * rng.uniform(0.08, 0.18)
    if rng.random() < 0.5:
        d.line([(cx - mw, my), (cx + mw, my)], fill=(170, 70, 70), width=int(1.5 * u))
    else:
        d.polygon([(cx - mw, my), (cx + mw, my), (cx, my + mw * 0.9)], fill=(190, 70, 80))

    return img.resize((SIZE, SIZE), Image.LANCZOS)


def make_avatars(out, num, seed=0, quality=90, progress=True):
    """Write avatars ``0.jpg`` .. ``num-1.jpg`` into the folder ``out`` (the real set's layout)."""
    os.makedirs(out, exist_ok=True)
    items = range(num)
    if progress:
        from tqdm import tqdm
        items = tqdm(items, desc=f"drawing avatars into {out}", unit="img")
    for i in items:
        rng = random.Random(seed * 1_000_003 + i)
        draw_avatar(rng).save(os.path.join(out, f"{i}.jpg"), quality=quality)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m dcgan_ms.data.synth", description=__doc__.split("\n")[0])
    p.add_argument("--num", type=int, default=1000, help="how many avatars to draw (default 1000)")
    p.add_argument("--out", default="data/synth", help="output folder, filled with 0.jpg, 1.jpg, ...")
    p.add_argument("--seed", type=int, default=0, help="image i depends only on (seed, i)")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    args = p.parse_args(argv)
    if args.num < 1:
        p.error("--num must be at least 1")
    try:
        make_avatars(args.out, args.num, args.seed, args.quality)
    except OSError as e:
        sys.exit(f"error: cannot write avatars to {args.out}: {e.strerror or e}")


if __name__ == "__main__":
    main()
