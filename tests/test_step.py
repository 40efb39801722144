import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from dcgan_ms.data import SAMPLE_DIR, create_dataset
from dcgan_ms.models import Discriminator, Generator
from dcgan_ms.step import make_optimizers, make_train_step

NZ, WIDTH, BATCH = 16, 8, 16


def real_batches(n):
    dataset = create_dataset(SAMPLE_DIR, BATCH, num_parallel_workers=1)
    it = dataset.dataset.create_tuple_iterator(num_epochs=1)
    return [next(it)[0] for _ in range(n)]


def fresh_step(seed, **kwargs):
    """A new G and D seeded with ``seed``, their train step (``kwargs`` for make_train_step), and a
    fixed real batch and noise batch of 4."""
    ms.set_seed(seed)
    g, d = Generator(NZ, WIDTH), Discriminator(WIDTH)
    g.set_train()
    d.set_train()
    step = make_train_step(g, d, *make_optimizers(g, d), **kwargs)
    x = ms.Tensor(np.random.default_rng(1).uniform(-1, 1, (4, 3, 64, 64)).astype(np.float32))
    z = ms.Tensor(np.random.default_rng(2).standard_normal((4, NZ, 1, 1)).astype(np.float32))
    return step, x, z


def snapshot(net):
    return {p.name: p.asnumpy().copy() for p in net.trainable_params()}


@pytest.mark.slow
def test_jitted_steps_are_finite_and_train_both_networks():
    ms.set_seed(0)
    g, d = Generator(NZ, WIDTH), Discriminator(WIDTH)
    g.set_train()
    d.set_train()
    opt_g, opt_d = make_optimizers(g, d)
    step = make_train_step(g, d, opt_g, opt_d, jit=True)
    g0, d0 = snapshot(g), snapshot(d)
    rng = np.random.default_rng(0)
    for x in real_batches(3):
        z = ms.Tensor(rng.standard_normal((BATCH, NZ, 1, 1)).astype(np.float32))
        g_loss, d_loss, d_real, d_fake = (float(v) for v in step(x, z))
        assert all(np.isfinite([g_loss, d_loss, d_real, d_fake]))
        assert 0 < d_real < 1 and 0 < d_fake < 1
    g1, d1 = snapshot(g), snapshot(d)
    assert all(not np.array_equal(g0[k], g1[k]) for k in g0), "every G parameter should move"
    assert all(not np.array_equal(d0[k], d1[k]) for k in d0), "every D parameter should move"


def test_pynative_step_matches_graph_step():
    results = []
    for jit in (True, False):
        step, x, z = fresh_step(3, jit=jit)
        results.append([float(v) for v in step(x, z)] + [float(step(x, z)[0])])
    np.testing.assert_allclose(results[0], results[1], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_discriminator_alone_learns_real_from_fake():
    """D trained alone on real images vs a fixed G's output must drive its loss down."""
    ms.set_seed(1)
    g, d = Generator(NZ, WIDTH), Discriminator(WIDTH)
    g.set_train()
    d.set_train()
    loss_fn = nn.BCELoss(reduction="mean")
    opt = nn.Adam(d.trainable_params(), learning_rate=2e-4, beta1=0.5)
    rng = np.random.default_rng(0)
    fakes = [g(ms.Tensor(rng.standard_normal((BATCH, NZ, 1, 1)).astype(np.float32))) for _ in range(2)]
    ones, zeros = ms.Tensor(np.ones((BATCH, 1), np.float32)), ms.Tensor(np.zeros((BATCH, 1), np.float32))

    def forward(real, fake):
        return (loss_fn(d(real), ones) + loss_fn(d(fake), zeros)) / 2

    grad_fn = ms.value_and_grad(forward, None, opt.parameters)

    @ms.jit
    def step(real, fake):
        loss, grads = grad_fn(real, fake)
        opt(grads)
        return loss

    reals = real_batches(2)
    losses = [float(step(reals[i % 2], fakes[i % 2])) for i in range(12)]
    assert losses[0] > 0.5, losses  # starts near log(2) = 0.69
    assert np.mean(losses[-3:]) < 0.5 * losses[0], losses


@pytest.mark.slow
def test_instance_noise_reaches_the_discriminator_only_when_asked():
    noise = [ms.Tensor(n) for n in 0.5 * np.random.default_rng(3).standard_normal((3, 4, 3, 64, 64)).astype(np.float32)]
    outputs = []
    for sigma, args in ((0.0, ()), (0.0, ()), (0.5, noise), (0.5, noise), (0.5, [2 * n for n in noise])):
        step, x, z = fresh_step(4, instance_noise=sigma)
        outputs.append([float(v) for v in step(x, z, *args)])
        assert all(np.isfinite(outputs[-1]))
    assert outputs[0] == outputs[1]  # without noise the step is deterministic
    assert outputs[2][2] != outputs[0][2]  # with noise D(x) changes
    assert outputs[2] == outputs[3]  # the noise is an input: the same noise, the same step
    assert outputs[4][2] != outputs[2][2]


@pytest.mark.slow
def test_label_smoothing_changes_only_the_discriminators_target_for_real_images():
    plain, smoothed = [], []
    for eps, out in ((0.0, plain), (0.2, smoothed)):
        step, x, z = fresh_step(5, label_smoothing=eps)
        out.extend([float(v) for v in step(x, z)] + [float(v) for v in step(x, z)])
    g0, d0, real0, fake0, g1 = plain[:5]
    assert smoothed[0] == g0 and smoothed[2] == real0 and smoothed[3] == fake0  # G's step and D's inputs
    assert smoothed[1] != d0  # D's loss has another target for real images
    assert smoothed[4] != g1  # and D's update, so G's next loss, differ


def test_optimizers_take_their_own_learning_rates_and_beta2():
    ms.set_seed(0)
    g, d = Generator(NZ, WIDTH), Discriminator(WIDTH)
    opt_g, opt_d = make_optimizers(g, d, lr=1e-4, beta2=0.99, lr_d=4e-4)
    assert np.isclose(float(opt_g.learning_rate.asnumpy()), 1e-4)
    assert np.isclose(float(opt_d.learning_rate.asnumpy()), 4e-4)
    assert np.isclose(float(opt_g.beta2.asnumpy()), 0.99) and np.isclose(float(opt_d.beta2.asnumpy()), 0.99)
    opt_g, opt_d = make_optimizers(g, d, lr=3e-4)  # the tutorial: one rate for both, Adam's beta2
    assert np.isclose(float(opt_d.learning_rate.asnumpy()), 3e-4) and np.isclose(float(opt_d.beta2.asnumpy()), 0.999)
