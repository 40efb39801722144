"""A second image set that dcgan_ms did not draw: the 3,786 Twemoji images (64x64 RGBA PNGs, Twitter's
emoji artwork, graphics under CC-BY 4.0) from the npm package emoji-datasource-twitter.

    python benchmarks/twemoji.py                     # -> data/twemoji (about 60 MB to download)
    python benchmarks/recipe.py --recipe quickstart --data_root data/twemoji

Needs ``npm`` and the npm registry (``npm pack`` fetches the package's archive; nothing is installed).
The images are real artwork in another style than the sample's avatars (flat faces, objects,
flags, symbols on transparent backgrounds, composited over white when training), so a recipe tuned
on the sample alone can be checked against it.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "emoji-datasource-twitter@16.0.0"
IMAGES = "package/img/twitter/64/"


def npm_pack(package, folder):
    """The archive of npm ``package`` (name@version), fetched into ``folder`` by ``npm pack`` (nothing is
    installed); exits with one line if npm or the registry is missing."""
    if shutil.which("npm") is None:
        sys.exit("error: npm is not installed: install Node.js's npm, or pass another --data_root")
    proc = subprocess.run(["npm", "pack", package, "--silent"], cwd=folder, capture_output=True, text=True)
    archives = glob.glob(os.path.join(folder, "*.tgz"))
    if proc.returncode or not archives:
        sys.exit(f"error: npm pack {package} failed ({proc.stderr.strip()[-500:]}): check the npm registry "
                 "can be reached")
    return archives[0]


def fetch(out):
    with tempfile.TemporaryDirectory() as tmp:
        archive = npm_pack(PACKAGE, tmp)
        os.makedirs(out, exist_ok=True)
        count = 0
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.startswith(IMAGES) and member.name.endswith(".png"):
                    with open(os.path.join(out, os.path.basename(member.name)), "wb") as f:
                        f.write(tar.extractfile(member).read())
                    count += 1
    return count


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join(REPO, "data", "twemoji"), help="the folder to fill")
    args = p.parse_args()
    if os.path.isdir(args.out) and os.listdir(args.out):
        print(f"{args.out} already holds {len(os.listdir(args.out))} files: nothing to do")
        return
    print(f"{fetch(args.out)} images in {args.out}")


if __name__ == "__main__":
    main()
