import hashlib
import os
import random
import re
import shutil
import time

import numpy as np
import pytest

from conftest import copy_sample_images
from dcgan_ms.data import SAMPLE_DIR, create_dataset, find_images
from dcgan_ms.data.synth import draw_avatar, make_avatars
from dcgan_ms.errors import UserError
from dcgan_ms.pixels import ImageLook


def first_batch(root, batch_size):
    dataset = create_dataset(root, batch_size, shuffle=False, num_parallel_workers=1)
    return next(dataset.dataset.create_tuple_iterator(num_epochs=1, output_numpy=True))[0], dataset


def test_shipped_sample_batches():
    x, dataset = first_batch(SAMPLE_DIR, 32)
    assert x.shape == (32, 3, 64, 64) and x.dtype == np.float32
    assert x.min() >= -1 - 1e-6 and x.max() <= 1 + 1e-6
    assert x.min() < -0.9 and x.max() > 0.9  # really uses the [-1, 1] range, not [0, 1]
    assert dataset.steps_per_epoch == 1500 // 32


def test_flat_and_nested_layouts(flat_images, nested_images):
    assert len(find_images(flat_images)) == 24
    assert len(find_images(nested_images)) == 20
    x, dataset = first_batch(flat_images, 8)
    assert x.shape == (8, 3, 64, 64) and dataset.steps_per_epoch == 3
    x, dataset = first_batch(nested_images, 5)
    assert x.shape == (5, 3, 64, 64) and dataset.steps_per_epoch == 4


def epoch(dataset, seed=0):
    """One epoch's batches as arrays (shuffled with the pipeline's seed, as TrainingData sets it)."""
    import mindspore.dataset as ds
    ds.config.set_seed(seed)
    return [x for (x,) in dataset.dataset.create_tuple_iterator(num_epochs=1, output_numpy=True)]


def digests(batches):
    return [hashlib.sha1(img.tobytes()).hexdigest() for x in batches for img in x]


def test_exactly_the_images_under_the_folder_at_any_depth(tmp_path):
    copy_sample_images(tmp_path / "mydata" / "cats", 21)
    copy_sample_images(tmp_path / "mydata" / "dogs", 30, first=21)  # a sibling folder of images: never read
    (tmp_path / "mydata" / "cats" / "notes.txt").write_text("not an image")
    shutil.copy(os.path.join(SAMPLE_DIR, "99.jpg"), tmp_path / "mydata" / "cats" / ".hidden.jpg")
    copy_sample_images(tmp_path / "mydata" / "cats" / ".thumbnails", 5, first=60)  # hidden folder: skipped
    os.rename(tmp_path / "mydata" / "cats" / "3.jpg", tmp_path / "mydata" / "cats" / "3.JPG")  # any case
    cats = str(tmp_path / "mydata" / "cats")
    assert len(find_images(cats)) == 21
    dataset = create_dataset(cats, 4, num_parallel_workers=1)
    assert dataset.steps_per_epoch == 5 == len(epoch(dataset))

    deep = tmp_path / "deep"  # two and three levels down, and mixed depths
    copy_sample_images(deep / "a" / "b", 7)
    copy_sample_images(deep / "a" / "c" / "d", 6, first=7)
    copy_sample_images(deep, 4, first=13)
    copy_sample_images(deep / "e", 3, first=17)
    assert len(find_images(str(deep))) == 20
    dataset = create_dataset(str(deep), 6, num_parallel_workers=1)
    batches = epoch(dataset)
    assert dataset.steps_per_epoch == 3 == len(batches)
    assert len(set(digests(batches))) == 18  # 20 images, the last partial batch dropped, none twice


def test_symlinked_folders_are_followed_once(tmp_path):
    copy_sample_images(tmp_path / "real", 10)
    root = tmp_path / "root"
    copy_sample_images(root, 3, first=10)
    os.symlink(tmp_path / "real", root / "linked")  # a linked folder is read
    os.symlink(tmp_path / "real", root / "again")  # a second link to it adds nothing
    os.symlink(root, tmp_path / "real" / "up")  # a loop back to the root
    assert len(find_images(str(root))) == 13
    dataset = create_dataset(str(root), 13, num_parallel_workers=1)
    assert len(set(digests(epoch(dataset)))) == 13


@pytest.mark.parametrize("shards", [None, 2])
def test_decoded_once_or_every_epoch_the_batches_are_the_same(tmp_path, shards):
    """Kept in memory (a small set, "auto") or decoded every epoch: the same images in the same order
    for the same seed, so a run trains the same either way."""
    copy_sample_images(tmp_path / "set", 47)
    kept, streamed = (create_dataset(str(tmp_path / "set"), 5, num_shards=shards, shard_id=shards and 1, seed=3,
                                     num_parallel_workers=1, in_memory=choice) for choice in ("auto", False))
    for seed in (5, 6):
        a, b = epoch(kept, seed), epoch(streamed, seed)
        assert len(a) == len(b) == kept.steps_per_epoch == (47 // (shards or 1)) // 5
        assert all(x.dtype == np.float32 and np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(epoch(kept, 5)[0], epoch(kept, 6)[0])  # and shuffled per epoch


def test_each_epochs_order_comes_from_seed_and_epoch_and_a_resume_skips_the_batches_done(tmp_path):
    """``TrainingData.batches``: the epoch prepared early gives what a fresh pipeline gives; another
    epoch another order; ``skip`` leaves out the first batches; the MindSpore dataset gets no attributes."""
    copy_sample_images(tmp_path / "set", 30)
    data, fresh = (create_dataset(str(tmp_path / "set"), 5, seed=4, num_parallel_workers=1) for _ in range(2))
    first = digests(b.asnumpy() for b in data.batches(1))
    second = digests(b.asnumpy() for b in data.batches(2))  # taken from the pipeline prepared at epoch 1's end
    assert second == digests(b.asnumpy() for b in fresh.batches(2)) and second != first
    assert digests(b.asnumpy() for b in fresh.batches(2, skip=4)) == second[20:]
    assert sorted(first) == sorted(second)
    assert not any(hasattr(d.dataset, name) for d in (data, fresh) for name in ("image_files", "next_epoch"))


def test_a_large_set_says_it_is_decoding(tmp_path, monkeypatch, capsys):
    from dcgan_ms.data import dataset
    copy_sample_images(tmp_path / "set", 12)
    monkeypatch.setattr(dataset, "SAY_DECODING", 10)
    create_dataset(str(tmp_path / "set"), 4, num_parallel_workers=1)
    assert "decoding the 12 images once, to keep them in memory" in capsys.readouterr().err
    monkeypatch.setattr(dataset, "SAY_DECODING", 13)
    create_dataset(str(tmp_path / "set"), 4, num_parallel_workers=1)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("shards", [2, 3])
def test_shards_are_equal_disjoint_and_cover_the_set(tmp_path, shards):
    copy_sample_images(tmp_path / "set", 47)  # 47 images: not a multiple of 2 or 3
    per_shard = 47 // shards
    seen = []
    for shard in range(shards):
        dataset = create_dataset(str(tmp_path / "set"), 5, num_shards=shards, shard_id=shard, seed=3,
                                 num_parallel_workers=1)
        whole = create_dataset(str(tmp_path / "set"), 1, num_shards=shards, shard_id=shard, seed=3,
                               num_parallel_workers=1)  # batches of 1: every image of the shard
        assert dataset.steps_per_epoch == per_shard // 5 == len(epoch(dataset))
        seen.append(set(digests(epoch(whole))))
        assert len(seen[-1]) == per_shard
        assert epoch(dataset, seed=5)[0].tobytes() != epoch(dataset, seed=6)[0].tobytes()  # shuffled per epoch
        assert digests(epoch(dataset, seed=5)) == digests(epoch(dataset, seed=5))  # ... as a function of the seed
    assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1:])
    assert len(set().union(*seen)) == 47 - 47 % shards


def test_transparent_pixels_take_the_background_colour(tmp_path):
    """Emoji-like RGBA images: a red disc on a fully transparent square. Its corners become the
    --background colour (white by default), not the black MindSpore's decoder alone would give."""
    from PIL import Image, ImageDraw
    for i in range(4):
        im = Image.new("RGBA", (72, 72), (0, 0, 0, 0))
        ImageDraw.Draw(im).ellipse([12, 12, 60, 60], fill=(220, 30, 30, 255))
        im.save(tmp_path / f"emoji{i}.png")
    palette = Image.new("P", (72, 72), 0)  # a palette image whose colour 0 is transparent
    palette.putpalette([0, 0, 0, 220, 30, 30] + [0] * 762)
    ImageDraw.Draw(palette).ellipse([12, 12, 60, 60], fill=1)
    palette.save(tmp_path / "palette.png", transparency=0)
    for background, corner in (("white", 1.0), ("#0000ff", (-1.0, -1.0, 1.0))):
        dataset = create_dataset(str(tmp_path), 5, shuffle=False, num_parallel_workers=1,
                                 look=ImageLook(background=background))
        x = epoch(dataset)[0]
        np.testing.assert_allclose(x[:, :, 0, 0], np.broadcast_to(corner, (5, 3)), atol=0.01)
        np.testing.assert_allclose(x[:, :, 32, 32], np.broadcast_to((220 / 127.5 - 1, 30 / 127.5 - 1,
                                                                      30 / 127.5 - 1), (5, 3)), atol=0.02)
    with pytest.raises(UserError, match="is not a colour"):
        create_dataset(str(tmp_path), 5, look=ImageLook(background="no-such-colour"))


def test_pixel_range_0_1_is_the_tutorials_x_over_255_of_the_same_pixels(flat_images):
    """--pixel_range 0,1 (the tutorial's scaling, kept for comparison): the same images as -1,1 (ours,
    Tanh's range), mapped by (x + 1) / 2."""
    from dcgan_ms.pixels import TANH, TUTORIAL
    batches = {}
    for pixel_range in (TANH, TUTORIAL):
        dataset = create_dataset(flat_images, 24, shuffle=False, num_parallel_workers=1, look=ImageLook(pixel_range))
        batches[pixel_range.flag] = next(dataset.dataset.create_tuple_iterator(num_epochs=1, output_numpy=True))[0]
    tutorial, ours = batches["0,1"], batches["-1,1"]
    assert tutorial.min() >= 0 and tutorial.max() <= 1 and ours.min() < -0.9 and ours.max() > 0.9
    np.testing.assert_allclose(tutorial, (ours + 1) / 2, atol=1e-6)


def test_resize_antialias_averages_what_bilinear_turns_into_false_stripes(tmp_path):
    """96 px images of 1 px black and white stripes, shrunk to 64: "antialias" weighs every pixel a new one
    covers and gives grey, as the stripes look from afar (Pillow's bicubic filter, to the pixel);
    "bilinear", the tutorial's, samples near each new pixel's centre and turns them into coarser stripes
    of half the full contrast (aliasing). Both as MindSpore's own transforms, decoded once or streamed."""
    from PIL import Image
    stripes = np.zeros((96, 96, 3), np.uint8)
    stripes[:, ::2] = 255
    for i in range(2):
        Image.fromarray(stripes).save(tmp_path / f"stripes{i}.png")
    x = {}
    for resize in ("antialias", "bilinear"):
        for in_memory in (True, False):
            dataset = create_dataset(str(tmp_path), 2, shuffle=False, num_parallel_workers=1,
                                     look=ImageLook(resize=resize), in_memory=in_memory)
            x[resize, in_memory] = epoch(dataset)[0]
        np.testing.assert_array_equal(x[resize, True], x[resize, False])
    antialias, bilinear = x["antialias", True], x["bilinear", True]
    pillow = np.asarray(Image.fromarray(stripes).resize((64, 64), Image.BICUBIC), np.float32) / 127.5 - 1
    np.testing.assert_allclose(antialias[0], pillow.transpose(2, 0, 1), atol=1.5 / 127.5)
    assert np.abs(antialias).max() < 0.3  # grey: within 0.3 of 0 in [-1, 1]
    assert bilinear.max() - bilinear.min() > 0.9  # false stripes of half the contrast left


def test_resize_torchvision_the_default_gives_pillows_bilinear_pixels_to_the_bit(tmp_path):
    """--resize torchvision, the default: the pixels PyTorch's DCGAN example trains on (torchvision's Resize:
    Pillow's bilinear filter), decoded once or streamed; softer than "antialias" (Pillow's bicubic filter)."""
    from PIL import Image
    folder = copy_sample_images(tmp_path / "faces", 4)
    pillow = np.stack([np.asarray(Image.open(folder / f"{i}.jpg").convert("RGB").resize((64, 64), Image.BILINEAR))
                       for i in range(4)]).transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1
    x = {}
    for resize in ("torchvision", "antialias"):
        for in_memory in (True, False):
            dataset = create_dataset(str(folder), 4, shuffle=False, num_parallel_workers=1,
                                     look=ImageLook(resize=resize),
                                     in_memory=in_memory)
            x[resize, in_memory] = epoch(dataset)[0]  # one batch of the four
    np.testing.assert_array_equal(x["torchvision", True], x["torchvision", False])
    np.testing.assert_allclose(x["torchvision", True], pillow, atol=1e-6)  # the same uint8 pixels, scaled
    default = epoch(create_dataset(str(folder), 4, shuffle=False, num_parallel_workers=1))[0]
    np.testing.assert_array_equal(default, x["torchvision", True])  # the default: the pixels PyTorch trains on
    detail = {r: np.abs(np.diff(x[r, True], axis=-1)).mean() for r in ("torchvision", "antialias")}
    assert detail["torchvision"] < 0.95 * detail["antialias"], detail


def test_a_run_trained_with_the_tutorials_filter_resumes_with_it_under_the_new_default():
    """Runs recorded ``"resize": "bilinear"`` while it was the default: resumed without --resize they keep
    it (a new run takes torchvision); asking for another filter on --resume is refused."""
    from dcgan_ms import config as config_module
    from dcgan_ms.train import parse_args
    assert parse_args(["--dataset", "sample"]).resize == "torchvision"
    saved = parse_args(["--dataset", "sample", "--resize", "bilinear"]).flags()
    assert config_module.resumed(parse_args(["--dataset", "sample"]), saved).resize == "bilinear"
    with pytest.raises(UserError, match="--resize torchvision differs from the run being resumed"):
        config_module.resumed(parse_args(["--dataset", "sample", "--resize", "torchvision"]), saved)


@pytest.mark.parametrize("in_memory", [True, False], ids=["decoded-once", "streamed"])
def test_every_listed_format_decodes_to_the_same_pixels(tmp_path, in_memory):
    """README: ``.jpg .jpeg .png .bmp .tif .tiff``, any case. One image saved in each: the lossless ones
    give exactly the PNG's pixels, the JPEGs nearly."""
    from PIL import Image
    picture = Image.open(os.path.join(SAMPLE_DIR, "7.jpg")).convert("RGB")
    names = ["a.png", "b.bmp", "c.tif", "d.TIFF", "e.jpeg", "f.JPG", "g.Png", "h.jpg"]
    for name in names:
        picture.save(tmp_path / name, **({"quality": 95} if name.lower().endswith(("jpg", "jpeg")) else {}))
    dataset = create_dataset(str(tmp_path), len(names), shuffle=False, num_parallel_workers=1, in_memory=in_memory)
    assert sorted(os.path.basename(p) for p in find_images(str(tmp_path))) == names
    x = next(dataset.dataset.create_tuple_iterator(num_epochs=1, output_numpy=True))[0]
    decoded = dict(zip(sorted(names), x))  # the files in the order they are listed (sorted by name)
    for name in ("b.bmp", "c.tif", "d.TIFF", "g.Png"):
        np.testing.assert_array_equal(decoded[name], decoded["a.png"], err_msg=name)
    for name in ("e.jpeg", "f.JPG", "h.jpg"):
        assert np.abs(decoded[name] - decoded["a.png"]).mean() < 0.03, name


def test_a_missing_or_empty_folder_or_one_smaller_than_a_batch_is_one_clear_error(tmp_path, flat_images):
    with pytest.raises(UserError, match="does not exist"):
        create_dataset(str(tmp_path / "nope"), 8)
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(UserError, match="no images"):
        create_dataset(str(tmp_path), 8)
    with pytest.raises(UserError, match="fewer than one batch of 128"):
        create_dataset(flat_images, 128)


def test_synth_is_reproducible_per_image(tmp_path):
    a = np.asarray(draw_avatar(random.Random(7)))
    assert a.shape == (96, 96, 3)
    assert (a == np.asarray(draw_avatar(random.Random(7)))).all()
    assert (a != np.asarray(draw_avatar(random.Random(8)))).any()
    make_avatars(str(tmp_path / "s"), 3, seed=0, progress=False)
    assert sorted(os.listdir(tmp_path / "s")) == ["0.jpg", "1.jpg", "2.jpg"]
    # The shipped sample is this module's output with seed 0: image 2 is the same picture.
    from PIL import Image
    made = np.asarray(Image.open(tmp_path / "s" / "2.jpg"), dtype=np.int16)
    shipped = np.asarray(Image.open(os.path.join(SAMPLE_DIR, "2.jpg")), dtype=np.int16)
    assert np.abs(made - shipped).mean() < 3  # JPEG quality differs (85 shipped, 90 here)


def test_grayscale_alpha_palette_and_odd_sizes_just_work(tmp_path):
    from PIL import Image
    src = Image.open(os.path.join(SAMPLE_DIR, "5.jpg"))
    src.convert("L").save(tmp_path / "gray.jpg")
    src.convert("LA").save(tmp_path / "gray_alpha.png")
    src.convert("RGBA").save(tmp_path / "rgba.png")
    src.convert("P").save(tmp_path / "palette.png")
    src.resize((120, 80)).save(tmp_path / "wide.jpg")
    src.resize((50, 70)).save(tmp_path / "small.png")
    x, _ = first_batch(str(tmp_path), 6)
    assert x.shape == (6, 3, 64, 64) and x.dtype == np.float32
    assert x.min() >= -1 - 1e-6 and x.max() <= 1 + 1e-6


HOLD_A_FOLDER = """
import sys, time
from dcgan_ms.data.image_files import ImageFiles
files = ImageFiles([sys.argv[1]], [0])
print(files.root, flush=True)
time.sleep(600)
"""


def test_the_image_folders_of_killed_runs_are_removed_and_live_ones_kept(tmp_path, monkeypatch):
    """A killed run cannot remove its temporary folder of links; the next run of the same user does, and
    leaves alone the folder of a run still alive (it holds its lock)."""
    import signal
    import subprocess
    import sys
    import tempfile
    from dcgan_ms.data import image_files
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    image = os.path.join(SAMPLE_DIR, "0.jpg")
    runs = [subprocess.Popen([sys.executable, "-c", HOLD_A_FOLDER, image], stdout=subprocess.PIPE, text=True)
            for _ in range(2)]
    try:
        killed, alive = (run.stdout.readline().strip() for run in runs)
        runs[0].send_signal(signal.SIGKILL)
        runs[0].wait()
        old_unlocked = tmp_path / f"{image_files.FOLDER_PREFIX}old"  # from before the lock, or never locked
        old_unlocked.mkdir()
        os.utime(old_unlocked, (time.time() - 7200, time.time() - 7200))
        new_unlocked = tmp_path / f"{image_files.FOLDER_PREFIX}new"  # a run between making it and locking it
        new_unlocked.mkdir()
        assert os.path.isdir(killed) and os.path.isdir(alive)
        mine = image_files.ImageFiles([image], [0])  # a new run cleans up first
        assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in (alive, mine.root, new_unlocked))
    finally:
        runs[1].kill()
        runs[1].wait()


def png_claiming(path, width, height):
    """A valid 1x1 PNG whose header is rewritten to claim ``width`` x ``height`` (its CRC mended)."""
    import io
    import struct
    import zlib
    from PIL import Image
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    struct.pack_into(">II", data, 16, width, height)  # IHDR's data follows the 8-byte signature and 8 bytes
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("width, height, says", [
    (20000, 20000, "more pixels than Pillow will decode"),  # Pillow's DecompressionBombError, before
    (8000, 8000, "8000x8000 pixels"),  # under Pillow's bound, over ours
], ids=["bomb", "too-large"])
def test_an_image_whose_header_claims_too_many_pixels_is_named_before_anything_decodes_it(tmp_path, width, height,
                                                                                         says):
    copy_sample_images(tmp_path / "set", 20)
    png_claiming(tmp_path / "set" / "huge.png", width, height)
    with pytest.raises(UserError, match=rf"^image {re.escape(str(tmp_path / 'set' / 'huge.png'))} claims {says}, "
                                        r"more than the 40,000,000 a training image may have"):
        create_dataset(str(tmp_path / "set"), 4)


def test_a_truncated_transparent_image_is_named(tmp_path):
    """Images with transparency are composited with Pillow before MindSpore reads them: a broken one is
    named as MindSpore's decoder names the others, not a traceback from Pillow."""
    from PIL import Image
    copy_sample_images(tmp_path / "set", 20)
    rgba = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 4), dtype=np.uint8), "RGBA")
    rgba.save(tmp_path / "set" / "clear.png")
    data = (tmp_path / "set" / "clear.png").read_bytes()
    (tmp_path / "set" / "clear.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=rf"^cannot decode image {re.escape(str(tmp_path / 'set' / 'clear.png'))} "
                                        r"\(truncated, empty or not an image\): remove or replace that file"):
        create_dataset(str(tmp_path / "set"), 4)
