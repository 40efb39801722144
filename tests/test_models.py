import platform

import numpy as np
import mindspore as ms
import pytest
from mindspore import nn

from dcgan_ms import checkpoint
from dcgan_ms.layers import (BatchNormActivation, LeakyReLU, StridedConv2d, StridedConv2dTranspose, WholeKernelConv2d,
                             WholeKernelConv2dTranspose, speed_up)
from dcgan_ms.models import Discriminator, Generator, weight_init


def count(net):
    return sum(int(np.prod(p.shape)) for p in net.trainable_params())


def test_the_generator_makes_64px_images_in_tanhs_range_and_d_scores_them_in_0_1():
    g, d = Generator(), Discriminator()
    z = ms.Tensor(np.random.default_rng(0).standard_normal((2, 100, 1, 1)).astype(np.float32))
    img = g(z)
    assert img.shape == (2, 3, 64, 64)
    assert np.abs(img.asnumpy()).max() <= 1.0  # Tanh
    p = d(img).asnumpy()
    assert p.shape == (2, 1)
    assert ((p > 0) & (p < 1)).all()  # Sigmoid


def test_parameter_counts_match_the_dcgan_reference():
    # The same numbers as PyTorch's DCGAN example (nz=100, ngf=ndf=64): same architecture.
    assert count(Generator()) == 3_576_704
    assert count(Discriminator()) == 2_765_568


def test_parameter_names_are_the_tutorials():
    g_names = [p.name for p in Generator().get_parameters()]
    d_names = [p.name for p in Discriminator().get_parameters()]
    assert g_names[:5] == ["generator.0.weight", "generator.1.moving_mean", "generator.1.moving_variance",
                           "generator.1.gamma", "generator.1.beta"]
    assert g_names[-1] == "generator.12.weight"
    assert d_names[0] == "discriminator.0.weight" and d_names[-1] == "discriminator.11.weight"


def test_discriminator_batchnorm_uses_ndf_not_ngf():
    d = Discriminator(ndf=16)
    assert [tuple(p.shape) for p in d.get_parameters() if p.name.endswith("gamma")] == [(32,), (64,), (128,)]


def test_init_statistics():
    ms.set_seed(0)
    g, d = Generator(), Discriminator()
    for net in (g, d):
        weights = np.concatenate([p.asnumpy().ravel() for p in net.trainable_params() if p.name.endswith("weight")])
        gammas = np.concatenate([p.asnumpy().ravel() for p in net.trainable_params() if p.name.endswith("gamma")])
        betas = np.concatenate([p.asnumpy().ravel() for p in net.trainable_params() if p.name.endswith("beta")])
        assert abs(weights.mean()) < 1e-3 and abs(weights.std() - 0.02) < 1e-3
        assert abs(gammas.mean() - 1) < 3e-3 and abs(gammas.std() - 0.02) < 3e-3
        assert (betas == 0).all()


def outputs_and_gradients(layer, x, probe, jit):
    """``layer(x)`` and the gradients of ``sum(layer(x) * probe)`` w.r.t. x and each trainable
    weight, as NumPy arrays; compiled with ``ms.jit`` when ``jit``."""
    weights = layer.trainable_params()

    def loss(inp):  # a closure per layer: graph mode parses no default arguments
        return (layer(inp) * probe).sum()

    grad_fn = ms.value_and_grad(loss, 0, weights if weights else None)
    out = (ms.jit(layer.construct) if jit else layer)(x)
    _, grads = (ms.jit(grad_fn) if jit else grad_fn)(x)
    dx, dws = grads if weights else (grads, ())
    return [out.asnumpy(), dx.asnumpy()] + [dw.asnumpy() for dw in dws]


@pytest.mark.parametrize("jit", [False, True], ids=["pynative", "graph"])
@pytest.mark.parametrize("fast_cls, plain_cls, cin, cout, size", [
    (WholeKernelConv2d, nn.Conv2d, 512, 1, 4),  # D's last layer
    (WholeKernelConv2dTranspose, nn.Conv2dTranspose, 100, 512, 1),  # G's first layer
], ids=["D-last-conv", "G-first-convT"])
def test_whole_kernel_layers_equal_the_plain_convolutions(fast_cls, plain_cls, cin, cout, size, jit):
    """The matrix-product forms compute what nn.Conv2d / nn.Conv2dTranspose compute: outputs, input
    gradients and weight gradients, to float rounding."""
    ms.set_seed(1)
    fast = fast_cls(cin, cout, 4, weight_init=weight_init())
    plain = plain_cls(cin, cout, 4, 1, "valid")
    plain.weight.set_data(fast.weight.data.copy())
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.standard_normal((8, cin, size, size)).astype(np.float32))
    probe = ms.Tensor(rng.standard_normal(plain(x).shape).astype(np.float32))  # a loss touching every output
    fast_values = outputs_and_gradients(fast, x, probe, jit)
    plain_values = outputs_and_gradients(plain, x, probe, jit)
    assert len(fast_values) == len(plain_values) == 3  # output, dx, dw
    for fast_value, plain_value in zip(fast_values, plain_values):
        assert fast_value.shape == plain_value.shape
        np.testing.assert_allclose(fast_value, plain_value, rtol=1e-4, atol=1e-5)
    assert np.abs(fast_values[2]).max() > 0  # a gradient really flowed


@pytest.mark.parametrize("jit", [False, True], ids=["pynative", "graph"])
def test_leaky_relu_equals_mindspores_leaky_relu(jit):
    """0.2 x + 0.8 relu(x) is nn.LeakyReLU(0.2): outputs and input gradients, to float rounding."""
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.standard_normal((4, 8, 16, 16)).astype(np.float32) * 3)
    probe = ms.Tensor(rng.standard_normal((4, 8, 16, 16)).astype(np.float32))
    out, dx = outputs_and_gradients(LeakyReLU(0.2), x, probe, jit)
    ref_out, ref_dx = outputs_and_gradients(nn.LeakyReLU(0.2), x, probe, jit)
    np.testing.assert_allclose(out, ref_out, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-6, atol=1e-6)
    assert (ref_out < 0).any() and (ref_out > 0).any()  # both branches were exercised


@pytest.mark.parametrize("jit", [False, True], ids=["pynative", "graph"])
@pytest.mark.parametrize("shape", [(4, 8, 16, 16), (8, 64, 32, 32)], ids=["one-thread", "split-over-cores"])
def test_compiled_leaky_relu_is_the_same_form_bit_for_bit(shape, jit):
    """The compiled one-pass LeakyReLU (dcgan_ms/kernels) gives exactly what MindSpore's ops give on the form
    0.2 x + 0.8 relu(x), forward and backward: a run trains the same with or without it."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32) * 3
    x.flat[:64] = 0.0  # the boundary: relu(0) = 0, gradient alpha
    x, probe = ms.Tensor(x), ms.Tensor(rng.standard_normal(shape).astype(np.float32))
    out, dx = outputs_and_gradients(LeakyReLU(0.2, compiled=True), x, probe, jit)
    ref_out, ref_dx = outputs_and_gradients(LeakyReLU(0.2), x, probe, jit)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(dx, ref_dx)
    x, probe = x.asnumpy(), probe.asnumpy()  # and both are LeakyReLU(0.2): x or 0.2 x, slope 1 or 0.2 (at 0 too)
    np.testing.assert_allclose(out, np.where(x > 0, x, 0.2 * x), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx, probe * np.where(x > 0, 1.0, 0.2), rtol=1e-6, atol=1e-6)
    assert (ref_out < 0).any() and (ref_out > 0).any()


class NormThenActivation(nn.Cell):
    """MindSpore's own layers: nn.BatchNorm2d, then nn.ReLU or the (bit-exact) compiled LeakyReLU."""

    def __init__(self, channels, alpha):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)
        self.activation = nn.ReLU() if alpha == 0 else LeakyReLU(alpha, compiled=True)

    def construct(self, x):
        return self.activation(self.norm(x))


def train_then_infer(layer, norm, x, probe, jit):
    """Output and gradients in training mode (x, gamma, beta), the moving statistics after two
    training calls, then the output in inference mode."""
    norm.gamma.set_data(ms.Tensor(np.linspace(0.8, 1.2, norm.num_features).astype(np.float32)))
    norm.beta.set_data(ms.Tensor(np.linspace(-0.3, 0.3, norm.num_features).astype(np.float32)))
    norm.moving_mean.set_data(ms.Tensor(np.linspace(-1, 1, norm.num_features).astype(np.float32)))
    layer.set_train(True)
    values = outputs_and_gradients(layer, x, probe, jit)
    layer(x * 2)
    values += [norm.moving_mean.asnumpy(), norm.moving_variance.asnumpy()]
    layer.set_train(False)
    return values + [layer(x).asnumpy()]


@pytest.mark.parametrize("jit", [False, True], ids=["pynative", "graph"])
@pytest.mark.parametrize("alpha", [0, 0.2], ids=["relu", "leaky"])
@pytest.mark.parametrize("shape", [(32, 128, 4, 4), (13, 16, 32, 32), (3, 8, 2, 2)],
                         ids=["4px", "32px-odd-batch", "one-thread"])
def test_compiled_batch_norm_activation_is_mindspores_bit_for_bit(shape, alpha, jit):
    """BatchNormActivation (BatchNorm and its activation in one compiled kernel each way) gives exactly
    what nn.BatchNorm2d and the activation give with MindSpore 2.10's oneDNN on x86_64: outputs,
    gradients for x, gamma and beta, moving statistics, inference outputs. So a run trains bit for
    bit as before (and the README's training figures hold): its sums must add in oneDNN's order, that
    of its x86 build. (MindSpore's BatchNorm on other CPUs may add in another order: there, the same
    values to float rounding.)"""
    rng = np.random.default_rng(1)
    x = ms.Tensor(rng.standard_normal(shape).astype(np.float32) * 3 + 1)
    probe = ms.Tensor(rng.standard_normal(shape).astype(np.float32))
    fused = BatchNormActivation(shape[1], alpha)
    reference = NormThenActivation(shape[1], alpha)
    values = train_then_infer(fused, fused, x, probe, jit)
    expected = train_then_infer(reference, reference.norm, x, probe, jit)
    assert [name for name, _ in fused.parameters_and_names()] == \
        [name for name, _ in reference.norm.parameters_and_names()]  # moving_mean, moving_variance, gamma, beta
    assert len(values) == len(expected) == 7
    if platform.machine() in ("x86_64", "AMD64"):
        for value, ref in zip(values, expected):
            np.testing.assert_array_equal(value, ref)
    else:
        assert_same_values(values, expected)
    assert (values[0] < 0).any() == (alpha > 0) and (values[0] > 0).any()  # the activation's both sides
    assert np.abs(values[3]).max() > 0 and not np.array_equal(values[4], np.zeros(shape[1]))  # not vacuous


def assert_same_values(values, reference):
    assert len(values) == len(reference)
    for value, ref in zip(values, reference):
        assert value.shape == ref.shape
        np.testing.assert_allclose(value, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("jit", [False, True], ids=["pynative", "graph"])
@pytest.mark.parametrize("cls, plain_cls, shape, cout", [
    (StridedConv2d, nn.Conv2d, (3, 3, 64, 64), 8),  # D's first layer: one sample per product
    (StridedConv2d, nn.Conv2d, (37, 8, 8, 8), 16),  # products of 32 samples, then a rest of 5
    (StridedConv2dTranspose, nn.Conv2dTranspose, (37, 16, 4, 4), 8),
    (StridedConv2dTranspose, nn.Conv2dTranspose, (2, 8, 32, 32), 3),  # G's last layer
], ids=["conv-3ch-64px", "conv-37x8px", "convT-37x4px", "convT-to-3ch-64px"])
def test_compiled_strided_layers_equal_mindspores_layers(cls, plain_cls, shape, cout, jit):
    """The compiled CPU kernels (dcgan_ms/kernels) compute what nn.Conv2d / nn.Conv2dTranspose(k4, s2, pad 1)
    compute: outputs, input gradients and weight gradients, to float rounding, in both modes."""
    ms.set_seed(2)
    compiled = cls(shape[1], cout, weight_init=weight_init(), compiled=True)
    plain = plain_cls(shape[1], cout, 4, 2, "pad", 1)
    plain.weight.set_data(compiled.weight.data.copy())
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.standard_normal(shape).astype(np.float32))
    probe = ms.Tensor(rng.standard_normal(plain(x).shape).astype(np.float32))
    values = outputs_and_gradients(compiled, x, probe, jit)
    assert_same_values(values, outputs_and_gradients(plain, x, probe, jit))
    assert all(np.abs(v).max() > 0 for v in values)


def test_the_networks_are_the_tutorials_layers():
    """models.py reads as the tutorial: MindSpore's own layers in its order, nothing of dcgan_ms's."""
    kinds = {net: [type(layer).__name__ for layer in layers]
             for net, layers in (("G", Generator().generator), ("D", Discriminator().discriminator))}
    assert kinds["G"] == ["Conv2dTranspose", "BatchNorm2d", "ReLU"] * 4 + ["Conv2dTranspose", "Tanh"]
    assert kinds["D"] == ["Conv2d", "LeakyReLU"] + ["Conv2d", "BatchNorm2d", "LeakyReLU"] * 3 + ["Conv2d"]
    for net in (Generator(), Discriminator()):
        assert all(type(cell).__module__.startswith("mindspore.") for name, cell in net.cells_and_names() if name), net


def networks(conv):
    """(G, D) at a small size with the same weights whatever ``conv``: as built (None) or rewritten."""
    ms.set_seed(3)
    g, d = Generator(16, 8), Discriminator(8)
    if conv is not None:
        speed_up(g, conv)
        speed_up(d, conv)
    return g, d


def outputs_and_weight_gradients(g, d):
    z = ms.Tensor(np.random.default_rng(0).standard_normal((6, 16, 1, 1)).astype(np.float32))

    def loss(inp):
        return d(g(inp)).sum()

    value, grads = ms.jit(ms.value_and_grad(loss, None, g.trainable_params() + d.trainable_params()))(z)
    return [g(z).asnumpy(), value.asnumpy()] + [grad.asnumpy() for grad in grads]


@pytest.mark.parametrize("conv", ["compiled", "builtin"])
def test_speed_up_keeps_every_parameter_and_the_networks_results(conv):
    """``speed_up`` swaps layers in place: the same Parameter objects under the same names (so the
    optimizers and checkpoints see no change), the same outputs and weight gradients as the tutorial's
    networks to float rounding; a second call changes nothing."""
    plain = networks(None)
    g, d = networks(None)
    before = [[(p.name, id(p)) for p in net.get_parameters()] for net in (g, d)]
    for net in (g, d):
        assert speed_up(net, conv) is net
    assert [[(p.name, id(p)) for p in net.get_parameters()] for net in (g, d)] == before
    kinds = [type(layer).__name__ for layer in g.generator]
    if conv == "compiled":
        assert kinds[:4] == ["WholeKernelConv2dTranspose", "BatchNormActivation", "Identity", "StridedConv2dTranspose"]
        assert all(layer.use_cpu_kernel for layer in d.discriminator if isinstance(layer, (StridedConv2d, LeakyReLU)))
    else:
        assert kinds[:4] == ["WholeKernelConv2dTranspose", "BatchNorm2d", "ReLU", "StridedConv2dTranspose"]
        assert not any(getattr(c, "use_cpu_kernel", False) for net in (g, d) for _, c in net.cells_and_names())
    assert type(d.discriminator[-1]) is WholeKernelConv2d and type(d.discriminator[1]) is LeakyReLU
    layers = [type(c) for net in (g, d) for _, c in net.cells_and_names()]
    for net in (g, d):
        speed_up(net, conv)
    assert [type(c) for net in (g, d) for _, c in net.cells_and_names()] == layers
    assert_same_values(outputs_and_weight_gradients(g, d), outputs_and_weight_gradients(*plain))


def test_a_rewritten_network_saved_loads_into_the_tutorials_and_back(tmp_path):
    g, _ = networks("compiled")
    checkpoint.save(g, str(tmp_path / "fast.ckpt"))
    plain = checkpoint.load_generator(str(tmp_path / "fast.ckpt"), conv=None)
    assert all(type(layer).__module__.startswith("mindspore.") for layer in plain.generator)
    checkpoint.save(plain, str(tmp_path / "plain.ckpt"))
    back = checkpoint.load_generator(str(tmp_path / "plain.ckpt"), conv="compiled")
    assert isinstance(back.generator[1], BatchNormActivation)
    for net in (plain, back):
        assert [(p.name, p.asnumpy().tobytes()) for p in net.get_parameters()] == \
            [(p.name, p.asnumpy().tobytes()) for p in g.get_parameters()]
