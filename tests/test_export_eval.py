"""evaluate, interpolation and export from the command line, on a trained checkpoint."""
import json
import os
import re
import stat

import numpy as np
import pytest
import mindspore as ms

from conftest import run_cli
from dcgan_ms import checkpoint, files
from dcgan_ms.errors import UserError
from dcgan_ms.export import export_generator, load_mindir
from dcgan_ms.data import SAMPLE_DIR
from dcgan_ms.images import generated_images, interpolate, real_images
from dcgan_ms.swd import diversity, swd


@pytest.mark.slow
def test_mindir_export_reloads_and_matches_the_cell(tiny_run, tmp_path):
    out, _ = tiny_run
    proc = run_cli("dcgan_ms.export", "--ckpt", os.path.join(out, "generator.ckpt"), "--out",
                   str(tmp_path / "g.mindir"), "--batch_size", "8")
    assert proc.returncode == 0, proc.stderr
    graph = load_mindir(str(tmp_path / "g.mindir"))
    g = checkpoint.load_generator(os.path.join(out, "generator.ckpt"))
    g.set_train(False)
    z = np.random.default_rng(0).standard_normal((8, g.nz, 1, 1)).astype(np.float32)
    np.testing.assert_allclose(graph(ms.Tensor(z)).asnumpy(), g(ms.Tensor(z)).asnumpy(), atol=1e-5)
    # MindSpore writes it read-only: it gets the user's file mode, and exporting again replaces it.
    assert stat.S_IMODE(os.stat(tmp_path / "g.mindir").st_mode) == files.user_file_mode()
    before = os.stat(tmp_path / "g.mindir").st_mtime_ns
    export_generator(checkpoint.load_generator(os.path.join(out, "generator.ckpt"), conv=None),
                     str(tmp_path / "g.mindir"), batch_size=8)
    assert os.stat(tmp_path / "g.mindir").st_mtime_ns != before


@pytest.mark.slow
def test_onnx_export_from_the_command_line_runs_in_onnxruntime(tiny_run, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in requirements-test.txt")
    ckpt = os.path.join(tiny_run[0], "generator.ckpt")
    shared = tmp_path / "shared"  # a class's folder: MindSpore alone would make it 0700, or fail in it
    shared.mkdir()
    shared.chmod(0o775)
    path = str(shared / "g.onnx")  # the README's command line, at a batch of 4
    proc = run_cli("dcgan_ms.export", "--ckpt", ckpt, "--format", "ONNX", "--out", path, "--batch_size", "4")
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o775 and os.listdir(shared) == ["g.onnx"]
    assert stat.S_IMODE(os.stat(path).st_mode) == files.user_file_mode()
    session = ort.InferenceSession(path)
    g = checkpoint.load_generator(ckpt)  # the compiled CPU kernels where they build: the same images
    z = np.random.default_rng(1).standard_normal((4, g.nz, 1, 1)).astype(np.float32)
    got = session.run(None, {session.get_inputs()[0].name: z})[0]
    g.set_train(False)
    np.testing.assert_allclose(got, g(ms.Tensor(z)).asnumpy(), atol=1e-4)


def test_export_refuses_the_compiled_kernels_with_a_clear_error(tiny_run, tmp_path):
    g = checkpoint.load_generator(os.path.join(tiny_run[0], "generator.ckpt"), conv="compiled")
    with pytest.raises(UserError, match=re.escape("load_generator(path, conv=None)")):
        export_generator(g, str(tmp_path / "g.mindir"))


@pytest.mark.slow
def test_evaluate_writes_swd_json(tiny_run, flat_images):
    out, _ = tiny_run
    proc = run_cli("dcgan_ms.evaluate", "--ckpt", os.path.join(out, "generator.ckpt"), "--data_root", flat_images,
                   "--num", "16")
    assert proc.returncode == 0, proc.stderr
    report = json.load(open(os.path.join(out, "swd.json")))
    assert report["num"] == 16 and set(report["swd_x1e3"]["per_level"]) == {"16", "32", "64"}
    assert report["resize"] == json.load(open(os.path.join(out, "config.json")))["resize"]  # the run's own
    assert f"mean {report['swd_x1e3']['mean']:.1f}" in proc.stdout
    # The scores are the metric's for the checkpoint's images against the folder's (seed 0, as run) ...
    real = real_images(flat_images, 16, seed=0)
    fake = generated_images(checkpoint.load_generator(os.path.join(out, "generator.ckpt")), 16, seed=0)
    expected = swd(real, fake, seed=0)
    assert report["swd_x1e3"]["mean"] == pytest.approx(expected["mean"], rel=1e-5)
    levels = {str(k): v for k, v in expected["levels"].items()}
    assert report["swd_x1e3"]["per_level"] == pytest.approx(levels, rel=1e-5)
    assert report["diversity"] == pytest.approx(diversity(real, fake), rel=1e-5)
    # ... and a 2-step Generator is far from them: further than 16 other real images are.
    others = real_images(SAMPLE_DIR, 16, seed=5)
    assert report["swd_x1e3"]["mean"] > 2 * swd(real, others, seed=0)["mean"]
    proc = run_cli("dcgan_ms.evaluate", "--ckpt", os.path.join(out, "generator.ckpt"), "--data_root", flat_images,
                   "--num", "100")
    assert proc.returncode == 2 and "fewer than --num 100" in proc.stderr


def test_interpolation_grid_and_gif(tiny_run, tmp_path):
    from PIL import Image
    proc = run_cli("dcgan_ms.generate", "--ckpt", os.path.join(tiny_run[0], "generator.ckpt"), "--interpolate",
                   "slerp", "--steps", "5", "--rows", "3", "--out", str(tmp_path / "walk.png"))
    assert proc.returncode == 0, proc.stderr
    assert Image.open(tmp_path / "walk.png").size == (5 * 66 + 2, 3 * 66 + 2)
    gif = Image.open(tmp_path / "walk.gif")
    assert gif.n_frames == 5 + 3  # there and back


def test_interpolate_ends_and_norms():
    rng = np.random.default_rng(0)
    z0, z1 = rng.standard_normal((100, 1, 1)), rng.standard_normal((100, 1, 1))
    for method in ("linear", "slerp"):
        path = interpolate(z0, z1, 7, method)
        assert path.shape == (7, 100, 1, 1)
        np.testing.assert_allclose(path[0], z0, atol=1e-6)
        np.testing.assert_allclose(path[-1], z1, atol=1e-6)
    norms = np.linalg.norm(interpolate(z0, z1, 7, "slerp").reshape(7, -1), axis=1)
    lin = np.linalg.norm(interpolate(z0, z1, 7, "linear").reshape(7, -1), axis=1)
    assert norms[3] > lin[3]  # slerp keeps the length typical of noise; the straight line sags
