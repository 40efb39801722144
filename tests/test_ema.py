"""The moving average of G's weights (--ema): what the step computes, and how it is saved."""
import numpy as np
import mindspore as ms
import pytest

from dcgan_ms import checkpoint
from dcgan_ms.ema import WeightAverage
from dcgan_ms.models import Discriminator, Generator
from dcgan_ms.step import make_optimizers, make_train_step

NZ, WIDTH, DECAY = 16, 8, 0.8


def params(net):
    return [p.asnumpy().copy() for p in net.get_parameters()]


@pytest.mark.slow
def test_the_average_follows_g_as_the_formula_says(tmp_path):
    ms.set_seed(0)
    g, d = Generator(NZ, WIDTH), Discriminator(WIDTH)
    g.set_train()
    d.set_train()
    optimizers = make_optimizers(g, d)
    average = WeightAverage(g, Generator(NZ, WIDTH), DECAY)
    step = make_train_step(g, d, *optimizers, average=average)
    assert [p.name for p in average.ema.get_parameters()][0] == "ema.generator.0.weight"
    expected = params(g)  # it starts as a copy of G
    for a, b in zip(params(average.ema), expected):
        np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(0)
    for t in range(1, 5):
        x = ms.Tensor(rng.uniform(-1, 1, (4, 3, 64, 64)).astype(np.float32))
        step(x, ms.Tensor(rng.standard_normal((4, NZ, 1, 1)).astype(np.float32)))
        decay = min(DECAY, (1 + t) / (10 + t))
        expected = [decay * e + (1 - decay) * w for e, w in zip(expected, params(g))]
    for a, e, w in zip(params(average.ema), expected, params(g)):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-7)
    assert any(not np.allclose(a, w) for a, w in zip(params(average.ema), params(g)))  # not just G again

    path = str(tmp_path / "generator.ckpt")  # saved under G's own names: loads as any Generator
    checkpoint.save(checkpoint.as_saved(average.ema), path)
    assert "generator.0.weight" in ms.load_checkpoint(path)
    loaded = checkpoint.load_generator(path)
    for a, e in zip(params(loaded), params(average.ema)):
        np.testing.assert_array_equal(a, e)


def test_generating_between_steps_leaves_the_step_updating_the_same_parameters():
    """The progress grids generate with BatchNorm in training mode and put the running statistics
    back afterwards; they must be put back in place, or the compiled step goes on updating memory
    the network no longer reads (G's running statistics, and the average, froze at the first grid)."""
    from dcgan_ms.images import generate
    from dcgan_ms.models import running_stats
    ms.set_seed(0)
    g, d = Generator(NZ, WIDTH), Discriminator(WIDTH)
    g.set_train()
    d.set_train()
    average = WeightAverage(g, Generator(NZ, WIDTH), DECAY)
    step = make_train_step(g, d, *make_optimizers(g, d), average=average)
    rng = np.random.default_rng(0)

    def train_once():
        x = ms.Tensor(rng.uniform(-1, 1, (4, 3, 64, 64)).astype(np.float32))
        step(x, ms.Tensor(rng.standard_normal((4, NZ, 1, 1)).astype(np.float32)))

    train_once()
    z = rng.standard_normal((4, NZ, 1, 1)).astype(np.float32)
    for net in (g, average.ema):
        generate(net, z, bn="batch")
    before = params(average.ema) + [p.asnumpy().copy() for p in running_stats(g)]
    train_once()
    after = params(average.ema) + [p.asnumpy().copy() for p in running_stats(g)]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))
