"""The SWD metric behaves: ~0 for one set against itself, growing with blur and noise, max for noise."""
import numpy as np
import pytest

from dcgan_ms.data import SAMPLE_DIR
from dcgan_ms.images import real_images
from dcgan_ms.swd import _blur, _descriptors, _positions, between, laplacian_pyramid, side, swd


@pytest.fixture(scope="module")
def halves():
    images = real_images(SAMPLE_DIR, 800, seed=0)
    return images[:400], images[400:]


def blurred(images, times):
    x = images.transpose(0, 3, 1, 2).astype(np.float32)
    for _ in range(times):
        x = _blur(x)
    return np.clip(x.transpose(0, 2, 3, 1) + 0.5, 0, 255).astype(np.uint8)


def noised(images, std, seed=1):
    noise = np.random.default_rng(seed).normal(0, std, images.shape)
    return np.clip(images + noise, 0, 255).astype(np.uint8)


def test_pyramid_reconstructs_the_image():
    x = np.random.default_rng(0).uniform(0, 1, (2, 3, 64, 64))
    levels = laplacian_pyramid(x)
    assert [lv.shape[-1] for lv in levels] == [64, 32, 16]
    from dcgan_ms.swd import _up
    rebuilt = levels[-1]
    for detail in reversed(levels[:-1]):
        rebuilt = detail + _up(rebuilt, detail.shape)
    np.testing.assert_allclose(rebuilt, x, atol=1e-9)


@pytest.mark.slow
def test_swd_orders_sets_by_how_far_they_are(halves):
    a, b = halves[0][:200], halves[1][:200]  # 25,600 patches a level; at 100 two halves score over 20
    result = swd(a, b)
    same = result["mean"]
    assert swd(a, a)["mean"] < 20  # not 0: each set's patches are drawn at random positions
    blur = [swd(a, blurred(b, n))["mean"] for n in (1, 3)]
    noise = [swd(a, noised(b, s))["mean"] for s in (8, 30)]
    rand = swd(a, np.random.default_rng(2).integers(0, 256, b.shape, dtype=np.uint8))["mean"]
    assert same < 20, same  # two halves of one set: small
    assert same * 2 < blur[0] < blur[1], blur
    assert same * 2 < noise[0] < noise[1], noise
    assert rand > max(blur + noise), (rand, blur, noise)
    assert sorted(result["levels"]) == [16, 32, 64] and result["mean"] == pytest.approx(np.mean(list(result["levels"].values())))


def test_swd_rejects_mismatched_sets(halves):
    with pytest.raises(ValueError, match="same number of images"):
        swd(halves[0], halves[1][:10])


def test_each_sets_half_is_worked_out_alone_and_the_draws_keep_their_order(monkeypatch):
    """A Scorer works out the real images' half of the SWD once, before the generated ones exist: a set's
    half must not depend on the other set, and the SWD must stay what it was when both sets were drawn
    in one pass (the value below was recorded so, with the positions, the subsets past MAX_DESCRIPTORS
    and the directions drawn in turn from one generator, each channel's statistics in float64: another
    order moves it by far more than the tolerance). MAX_DESCRIPTORS is lowered so that 16 images take
    the subset's path quickly."""
    import dcgan_ms.swd
    monkeypatch.setattr(dcgan_ms.swd, "MAX_DESCRIPTORS", 1024)
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (16, 64, 64, 3), dtype=np.uint8)  # 2,048 patches a level: a subset is drawn
    b = rng.integers(0, 256, (16, 64, 64, 3), dtype=np.uint8)
    b[:8] = a[:8] // 2
    first, second = side(a, 3, first=True), side(b, 3, first=False)
    assert between(first, second)["mean"] == pytest.approx(240.32673488060632, rel=1e-6)
    assert between(first, second) == swd(a, b, 3)
    with pytest.raises(ValueError, match="first set's side and the second's"):
        between(second, first)
    with pytest.raises(ValueError, match="same number of images"):
        between(first, side(b[:10], 3, first=False))


def test_each_channel_of_the_descriptors_is_normalised_to_float32_precision(halves):
    """32,768 descriptors of 49 pixels: 1.6 million values a channel. Summed one after another in float32
    their mean and spread came out about 1e-3 off, enough to move an SWD of 20 by 0.04."""
    level = laplacian_pyramid(halves[0][:256].transpose(0, 3, 1, 2).astype(np.float32) / 255.0)[0]
    desc = _descriptors(level, *_positions(np.random.default_rng(0), level.shape)).astype(np.float64)
    channels = desc.reshape(-1, 3)
    np.testing.assert_allclose(channels.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(channels.std(axis=0), 1, atol=1e-5)


def test_diversity_is_about_one_for_real_images_and_near_zero_for_a_collapsed_set(halves):
    from dcgan_ms.swd import diversity
    a, b = halves
    assert 0.8 < diversity(a, b) < 1.25
    collapsed = noised(np.repeat(b[:4], 100, axis=0), 3)  # four images, each repeated with a little noise
    assert diversity(a, collapsed) < 0.3
    assert diversity(a, blurred(b, 1)) < diversity(a, b)  # blur brings images closer to each other too


def test_the_compiled_sort_gives_numpys_sorted_rows_to_the_bit():
    """The SWD sorts its projections with kernels.sort_rows (a radix sort on the floats' bits): the same
    values in the same order as np.sort, for signed zeros, infinities, ties and rows of any length."""
    from dcgan_ms.kernels import noise_source
    from dcgan_ms.kernels.sort import sort_rows
    if noise_source() != "compiled":
        pytest.skip("the kernels cannot be built here: sort_rows is np.sort itself")
    rng = np.random.default_rng(0)
    for cols in (1, 2, 3, 100, 4097):
        x = (rng.standard_normal((5, cols)) * 10.0 ** rng.integers(-30, 30, (5, cols))).astype(np.float32)
        x[0, : cols // 2] = np.round(x[0, : cols // 2])  # ties
        if cols > 8:
            x[1, :4], x[2, :4], x[3, :3] = 0.0, -0.0, (np.inf, -np.inf, np.float32(1e-45))
        expected = np.sort(x, axis=1)
        got = sort_rows(x.copy())
        np.testing.assert_array_equal(got, expected)
        zeros = expected == 0  # np.sort leaves -0.0 and 0.0 in any order: compare the rest bit for bit
        assert np.array_equal(got.view(np.uint32)[~zeros], expected.view(np.uint32)[~zeros])
    strided = rng.standard_normal((6, 6)).astype(np.float32)[:, ::2]  # not C-ordered: NumPy's own sort
    expected = np.sort(strided, axis=1)
    np.testing.assert_array_equal(sort_rows(strided), expected)
