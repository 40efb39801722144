"""The layers the networks are built from: MindSpore's, in faster forms of the same mathematics.

Each keeps the weights, shapes and parameter names of the MindSpore layer it replaces, so checkpoints
are interchangeable, and gives its results to float rounding (``tests/test_models.py``). The two
whole-kernel layers are matrix products on every device; the others use the compiled CPU kernels
(``kernels/``) when ``Layers(compiled=True)``, MindSpore's own kernels otherwise. ``choose_layers``
makes that choice once, from ``--conv`` and the device; docs/speed.md has the timings.
"""
from functools import lru_cache

import numpy as np
from mindspore import Tensor, nn, ops

from . import kernels
from .runtime import current_device


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

    def __init__(self, num_features, alpha, gamma_init="ones"):
        super().__init__(num_features, gamma_init=gamma_init)
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
    computed by the compiled CPU kernel, same weight and gradients."""

    def __init__(self, in_channels, out_channels, weight_init=None, compiled=False):
        super().__init__(in_channels, out_channels, 4, 2, "pad", 1, weight_init=weight_init)
        self.use_cpu_kernel = compiled
        self.cpu_kernel = kernels.conv2d_operator() if compiled else None

    def construct(self, x):
        if self.use_cpu_kernel:
            return self.cpu_kernel(x, self.weight)
        return self.conv2d(x, self.weight)


class StridedConv2dTranspose(nn.Conv2dTranspose):
    """``nn.Conv2dTranspose(cin, cout, 4, 2, "pad", 1)``, doubling height and width; with
    ``compiled=True`` computed by the compiled CPU kernel, same weight and gradients."""

    def __init__(self, in_channels, out_channels, weight_init=None, compiled=False):
        super().__init__(in_channels, out_channels, 4, 2, "pad", 1, weight_init=weight_init)
        self.use_cpu_kernel = compiled
        self.cpu_kernel = kernels.conv2d_transpose_operator() if compiled else None

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


class Layers:
    """Makers of the networks' layers, all computed by the compiled CPU kernels (``compiled=True``) or
    none. With them, BatchNorm and its activation are one layer and an ``nn.Identity`` holds the
    activation's place, so that the layers keep their numbers and the parameters their names."""

    def __init__(self, compiled):
        self.compiled = compiled

    def conv(self, in_channels, out_channels, weight_init):
        return StridedConv2d(in_channels, out_channels, weight_init=weight_init, compiled=self.compiled)

    def conv_transpose(self, in_channels, out_channels, weight_init):
        return StridedConv2dTranspose(in_channels, out_channels, weight_init=weight_init, compiled=self.compiled)

    def leaky_relu(self, alpha=0.2):
        return LeakyReLU(alpha, self.compiled)

    def batch_norm_relu(self, channels, gamma_init):
        """BatchNorm2d, then ReLU: two layers."""
        return self.batch_norm_leaky_relu(channels, gamma_init, alpha=0.0)

    def batch_norm_leaky_relu(self, channels, gamma_init, alpha=0.2):
        """BatchNorm2d, then LeakyReLU(alpha) (ReLU when alpha is 0): two layers."""
        if self.compiled:
            return [BatchNormActivation(channels, alpha, gamma_init=gamma_init), nn.Identity()]
        return [nn.BatchNorm2d(channels, gamma_init=gamma_init), nn.ReLU() if alpha == 0 else LeakyReLU(alpha)]


def choose_layers(conv="auto"):
    """The Layers for ``conv`` ("auto", "compiled" or "builtin", ``kernels.choice``) on the current device."""
    return Layers(compiled=kernels.use_compiled(conv))


@lru_cache(maxsize=None)
def _default_layers(device):
    return choose_layers("auto")


def default_layers():
    """``choose_layers("auto")`` on the current device, decided once per device in a process."""
    return _default_layers(current_device())
