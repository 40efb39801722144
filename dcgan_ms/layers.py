"""Faster forms of the tutorial's layers, and ``speed_up``, which rewrites a built network with them.

Each form keeps the weights, shapes and parameter names of the MindSpore layer it replaces and gives
its results to float rounding (``tests/test_models.py``). ``speed_up`` swaps them in after a network
is built, keeping every Parameter object, so checkpoints and optimizers see no difference: the two
whole-kernel layers become matrix products on every device; on CPU, with the compiled kernels
(``kernels/``, ``--conv``), the strided convolutions and LeakyReLU run them, and BatchNorm with its
activation becomes one kernel each way. docs/speed.md has the timings.
"""
import numpy as np
from mindspore import Tensor, nn, ops

from . import kernels


class LeakyReLU(nn.Cell):
    """``nn.LeakyReLU(alpha)`` for 0 <= alpha <= 1, as ``alpha * x + (1 - alpha) * relu(x)``: x where
    x > 0, alpha * x elsewhere, and the same gradient, from faster CPU kernels. With ``compiled=True``
    the same form, bit for bit, in one pass each way."""

    def __init__(self, alpha=0.2, compiled=False):
        super().__init__()
        self.alpha = alpha
        self.use_cpu_kernel = compiled
        self.cpu_kernel = kernels.leaky_relu_operator() if compiled else None
        self.ab = Tensor(np.array([alpha, 1 - alpha], np.float32))  # the two float32 factors of the form

    def construct(self, x):
        if self.use_cpu_kernel:
            return self.cpu_kernel(x, self.ab)
        return self.alpha * x + (1 - self.alpha) * ops.relu(x)


class BatchNormActivation(nn.BatchNorm2d):
    """``nn.BatchNorm2d(num_features)`` followed by ReLU (``alpha=0``) or ``LeakyReLU(alpha)``; in training
    mode one compiled CPU kernel each way, bit for bit MindSpore's BatchNorm and activation (MindSpore 2.10
    on x86_64), moving statistics included. Same parameters as ``nn.BatchNorm2d``. Out of training mode:
    MindSpore's BatchNorm, then the activation."""

    def __init__(self, num_features, alpha, *, eps=1e-5, momentum=0.9, gamma_init="ones"):
        super().__init__(num_features, eps=eps, momentum=momentum, gamma_init=gamma_init)
        self.activation = nn.ReLU() if alpha == 0 else LeakyReLU(alpha, compiled=True)
        self.kernel = kernels.batch_norm_operator()
        self.params = Tensor(np.array([self.eps, self.momentum, alpha, 1 - alpha], np.float32))

    def construct(self, x):
        if not self.training:
            return self.activation(self.bn_infer(x, self.gamma, self.beta, self.moving_mean, self.moving_variance)[0])
        y, _, moving_mean, moving_variance = self.kernel(x, self.gamma, self.beta, self.moving_mean,
                                                         self.moving_variance, self.params)
        ops.assign(self.moving_mean, moving_mean)
        ops.assign(self.moving_variance, moving_variance)
        return y


class StridedConv2d(nn.Conv2d):
    """``nn.Conv2d(cin, cout, 4, 2, "pad", 1)``, halving height and width; with ``compiled=True``
    computed by the compiled CPU kernel, same weight and gradients, its matrix products in
    ``precision`` ("fp32" or "bf16": bfloat16 operands, float32 sums)."""

    def __init__(self, in_channels, out_channels, weight_init=None, compiled=False, precision="fp32"):
        super().__init__(in_channels, out_channels, 4, 2, "pad", 1, weight_init=weight_init)
        self.use_cpu_kernel = compiled
        self.cpu_kernel = kernels.conv2d_operator(precision) if compiled else None

    def construct(self, x):
        if self.use_cpu_kernel:
            return self.cpu_kernel(x, self.weight)
        return self.conv2d(x, self.weight)


class StridedConv2dTranspose(nn.Conv2dTranspose):
    """``nn.Conv2dTranspose(cin, cout, 4, 2, "pad", 1)``, doubling height and width; with
    ``compiled=True`` computed by the compiled CPU kernel, same weight and gradients, its matrix
    products in ``precision`` as ``StridedConv2d``'s."""

    def __init__(self, in_channels, out_channels, weight_init=None, compiled=False, precision="fp32"):
        super().__init__(in_channels, out_channels, 4, 2, "pad", 1, weight_init=weight_init)
        self.use_cpu_kernel = compiled
        self.cpu_kernel = kernels.conv2d_transpose_operator(precision) if compiled else None

    def construct(self, x):
        if self.use_cpu_kernel:
            return self.cpu_kernel(x, self.weight)
        n, _, h, w = x.shape
        return self.conv2d_transpose(x, self.weight, (n, self.out_channels, 2 * h, 2 * w))


class WholeKernelConv2d(nn.Conv2d):
    """``nn.Conv2d(cin, cout, k, 1, "valid")`` on k x k inputs: each output is one pixel, the dot
    product of the whole input with a filter, so the layer is ``x (N, cin*k*k) @ W.T``.
    (Stride and padding are fixed: with any others the product would not be the convolution.)"""

    def __init__(self, in_channels, out_channels, kernel_size, weight_init=None):
        super().__init__(in_channels, out_channels, kernel_size, 1, "valid", weight_init=weight_init)

    def construct(self, x):
        weight = self.weight.reshape(self.weight.shape[0], -1)  # (cout, cin*k*k)
        out = ops.matmul(x.reshape(x.shape[0], -1), weight.T)
        return out.reshape(x.shape[0], -1, 1, 1)


class WholeKernelConv2dTranspose(nn.Conv2dTranspose):
    """``nn.Conv2dTranspose(cin, cout, k, 1, "valid")`` on 1 x 1 inputs: each input pixel spreads
    over a k x k output through the kernel, so the layer is ``z (N, cin) @ W (cin, cout*k*k)``
    (MindSpore stores a transposed conv's weight as (cin, cout, k, k)). Stride and padding are fixed."""

    def __init__(self, in_channels, out_channels, kernel_size, weight_init=None):
        super().__init__(in_channels, out_channels, kernel_size, 1, "valid", weight_init=weight_init)

    def construct(self, x):
        cin, cout, kh, kw = self.weight.shape
        out = ops.matmul(x.reshape(x.shape[0], -1), self.weight.reshape(cin, -1))
        return out.reshape(x.shape[0], cout, kh, kw)


def speed_up(net, conv="auto", precision="fp32"):
    """Rewrite ``net`` (a built Generator or Discriminator) in place with the faster forms, on the
    current device and for ``conv`` ("auto", "compiled" or "builtin", ``kernels.choice``); returns it.
    ``precision`` "bf16": the compiled strided convolutions multiply in bfloat16 where the CPU can
    (``kernels.matmul_precision``); everything else stays float32.
    Every Parameter (object, name, value) stays, so the optimizers, checkpoints and the tutorial's own
    .ckpt files work unchanged. Layers already rewritten, or of another shape, are left as they are."""
    compiled = kernels.use_compiled(conv)
    precision = kernels.matmul_precision(precision, compiled)
    for _, cell in list(net.cells_and_names()):
        if isinstance(cell, nn.SequentialCell):
            _rewrite(cell, compiled, precision)
    return net


def _rewrite(layers, compiled, precision="fp32"):
    """Replace the tutorial's layers of one SequentialCell by their faster forms (see ``faster_form``);
    with ``compiled``, a BatchNorm and the activation after it become one ``BatchNormActivation``, an
    ``nn.Identity`` keeping the activation's place so that the layers keep their numbers."""
    cells = list(layers)
    for i, layer in enumerate(cells):
        after = cells[i + 1] if i + 1 < len(cells) else None
        if compiled and type(layer) is nn.BatchNorm2d and type(after) in (nn.ReLU, nn.LeakyReLU):
            fused = BatchNormActivation(layer.num_features, after.alpha if type(after) is nn.LeakyReLU else 0.0,
                                        eps=layer.eps, momentum=1.0 - layer.momentum)  # it keeps 1 - momentum
            layers[i] = with_parameters_of(layer, fused, "gamma", "beta", "moving_mean", "moving_variance")
            layers[i + 1] = cells[i + 1] = nn.Identity()
            continue
        faster = faster_form(layer, first=i == 0, last=i == len(cells) - 1, compiled=compiled, precision=precision)
        if faster is not None:
            layers[i] = faster


def faster_form(layer, *, first, last, compiled, precision="fp32"):
    """The faster form of one of the tutorial's layers, holding its Parameters; None to keep it."""
    if type(layer) is nn.LeakyReLU:
        return LeakyReLU(layer.alpha, compiled)
    if type(layer) not in (nn.Conv2d, nn.Conv2dTranspose) or layer.has_bias or layer.group != 1 or \
            layer.dilation != (1, 1) or layer.kernel_size != (4, 4):
        return None
    transpose = type(layer) is nn.Conv2dTranspose
    sizes = (layer.in_channels, layer.out_channels)
    if layer.stride == (1, 1) and layer.pad_mode == "valid" and (first if transpose else last):
        # G's first layer (a 1x1 input) and D's last (a 4x4 one): the kernel covers the whole input
        faster = (WholeKernelConv2dTranspose if transpose else WholeKernelConv2d)(*sizes, 4, weight_init="zeros")
    elif layer.stride == (2, 2) and layer.pad_mode == "pad" and layer.padding == 1:
        faster = (StridedConv2dTranspose if transpose else StridedConv2d)(*sizes, weight_init="zeros",
                                                                        compiled=compiled, precision=precision)
    else:
        return None
    return with_parameters_of(layer, faster, "weight")


def with_parameters_of(layer, faster, *names):
    """``faster`` holding ``layer``'s Parameter objects ``names`` in place of its own."""
    for name in names:
        setattr(faster, name, getattr(layer, name))
    return faster
