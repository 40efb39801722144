"""The DCGAN Generator and Discriminator, exactly as in the MindSpore tutorial.

Architecture (Radford et al. 2016, "DCGAN"), for 64x64 RGB images:

    Generator      z (nz x 1 x 1) -> ConvT(ngf*8, k4 s1 valid) 4x4 -> ConvT(ngf*4) 8x8
                   -> ConvT(ngf*2) 16x16 -> ConvT(ngf) 32x32 -> ConvT(nc) 64x64 -> Tanh
                   (BatchNorm2d + ReLU after every transposed conv except the last)
    Discriminator  x (nc x 64 x 64) -> Conv(ndf) 32x32 -> Conv(ndf*2) 16x16 -> Conv(ndf*4) 8x8
                   -> Conv(ndf*8) 4x4 -> Conv(1, k4 s1 valid) 1x1 -> reshape -> Sigmoid
                   (LeakyReLU(0.2) after every conv but the last, BatchNorm2d from the second on)

The layers live in a SequentialCell attribute named ``generator`` / ``discriminator``, as in the
tutorial, so parameter names ("generator.0.weight", "discriminator.3.gamma", ...) are the
tutorial's and a checkpoint saved by the tutorial's own cells loads here without renaming.

One deliberate fix: the tutorial sizes the Discriminator's BatchNorm layers with ``ngf`` instead of
``ndf``. That only works because both are 64 there; we use ``ndf`` (identical shapes when
ngf == ndf, so tutorial checkpoints still load).

Changes of form, for speed, not of mathematics (same weights, same parameter names and shapes,
same results to float rounding: ``tests/test_models.py``; timings from
``python benchmarks/bench_step.py --layers`` on a 2-core CPU, forward + backward at batch 128):
- The two layers whose kernel covers their whole input (G's first transposed conv on the 1x1
  noise, D's last conv on its 4x4 features) are computed as the matrix products they are
  (``WholeKernelConv2dTranspose``, ``WholeKernelConv2d``): 0.01-0.03 s instead of 0.13-0.17 s.
- LeakyReLU(0.2) is computed as ``0.2 * x + 0.8 * relu(x)`` (``LeakyReLU``): MindSpore's CPU
  LeakyReLU kernels take about 0.2 s on D's first activation, this form about 0.07 s; on CPU, with
  the compiled kernels, the same form in one pass each way, bit for bit (four times faster again
  at the quickstart's size).
- On CPU, the eight strided (kernel 4, stride 2, padding 1) convolutions run compiled kernels
  (``StridedConv2d``, ``StridedConv2dTranspose``, ``cpu_conv.py``) unless ``conv="builtin"``:
  forward + backward 0.25-0.37 s on the large layers instead of 0.29-0.43 s.
- With the same compiled kernels, each BatchNorm2d and the activation after it run as one kernel
  each way (``BatchNormActivation``), bit for bit MindSpore's results, about twice as fast;
  an ``nn.Identity`` holds the activation's place, so the layers keep their numbers.
"""
import numpy as np
from mindspore import Tensor, nn, ops
from mindspore.common.initializer import Normal

from . import cpu_conv

NZ, NGF, NDF, NC = 100, 64, 64, 3  # the tutorial's sizes
IMAGE_SIZE = 64


def weight_init():
    """Conv weights ~ Normal(0, 0.02), as the DCGAN paper prescribes."""
    return Normal(sigma=0.02, mean=0.0)


def gamma_init():
    """BatchNorm scale ~ Normal(1, 0.02); BatchNorm shift starts at 0."""
    return Normal(sigma=0.02, mean=1.0)


class LeakyReLU(nn.Cell):
    """``nn.LeakyReLU(alpha)`` for 0 <= alpha <= 1, as ``alpha * x + (1 - alpha) * relu(x)``: x where
    x > 0, alpha * x elsewhere, and the same gradient (1 or alpha), from faster CPU kernels. With
    ``compiled=True`` the same form, bit for bit, in one pass each way (``cpu_conv``)."""

    def __init__(self, alpha=0.2, compiled=False):
        super().__init__()
        self.alpha = alpha
        self.use_cpu_kernel = compiled
        self.cpu_kernel = cpu_conv.leaky_relu_operator() if compiled else None
        self.ab = Tensor(np.array([alpha, 1 - alpha], np.float32))  # the two float32 factors of the form

    def construct(self, x):
        if self.use_cpu_kernel:
            return self.cpu_kernel(x, self.ab)
        return self.alpha * x + (1 - self.alpha) * ops.relu(x)


class BatchNormActivation(nn.BatchNorm2d):
    """``nn.BatchNorm2d(num_features)`` followed by ReLU (``alpha=0``) or ``LeakyReLU(alpha)``; in training
    mode one compiled CPU kernel each way (``cpu_conv``) that gives bit for bit what MindSpore's BatchNorm
    and activation give (MindSpore 2.10 on x86_64, whose order of additions it keeps), moving
    statistics included. Same parameters as ``nn.BatchNorm2d`` (gamma, beta,
    moving_mean, moving_variance). Out of training mode: MindSpore's BatchNorm, then the activation."""

    def __init__(self, num_features, alpha, gamma_init="ones"):
        super().__init__(num_features, gamma_init=gamma_init)
        self.activation = nn.ReLU() if alpha == 0 else LeakyReLU(alpha, compiled=True)
        self.kernel = cpu_conv.batch_norm_operator()
        self.params = Tensor(np.array([self.eps, self.momentum, alpha, 1 - alpha], np.float32))

    def construct(self, x):
        if not self.training:
            return self.activation(self.bn_infer(x, self.gamma, self.beta, self.moving_mean, self.moving_variance)[0])
        y, _, _, moving_mean, moving_variance = self.kernel(x, self.gamma, self.beta, self.moving_mean,
                                                            self.moving_variance, self.params)
        ops.assign(self.moving_mean, moving_mean)
        ops.assign(self.moving_variance, moving_variance)
        return y


class StridedConv2d(nn.Conv2d):
    """``nn.Conv2d(cin, cout, 4, 2, "pad", 1)``, halving height and width; with ``compiled=True``
    computed by the compiled CPU kernel (``cpu_conv``), same weight and gradients."""

    def __init__(self, in_channels, out_channels, weight_init=None, compiled=False):
        super().__init__(in_channels, out_channels, 4, 2, "pad", 1, weight_init=weight_init)
        self.use_cpu_kernel = compiled
        self.cpu_kernel = cpu_conv.operators()[0] if compiled else None

    def construct(self, x):
        if self.use_cpu_kernel:
            return self.cpu_kernel(x, self.weight)
        return self.conv2d(x, self.weight)


class StridedConv2dTranspose(nn.Conv2dTranspose):
    """``nn.Conv2dTranspose(cin, cout, 4, 2, "pad", 1)``, doubling height and width; with
    ``compiled=True`` computed by the compiled CPU kernel (``cpu_conv``), same weight and gradients."""

    def __init__(self, in_channels, out_channels, weight_init=None, compiled=False):
        super().__init__(in_channels, out_channels, 4, 2, "pad", 1, weight_init=weight_init)
        self.use_cpu_kernel = compiled
        self.cpu_kernel = cpu_conv.operators()[1] if compiled else None

    def construct(self, x):
        if self.use_cpu_kernel:
            return self.cpu_kernel(x, self.weight)
        n, _, h, w = x.shape
        return self.conv2d_transpose(x, self.weight, (n, self.out_channels, 2 * h, 2 * w))


def _norm(channels, compiled, alpha=0.0):
    """BatchNorm2d, then ReLU, or LeakyReLU(alpha) when alpha > 0: two layers. With the compiled kernels,
    one ``BatchNormActivation`` and an ``nn.Identity`` in the activation's place, so that the layers
    keep their numbers and the parameters their names."""
    if compiled:
        return [BatchNormActivation(channels, alpha, gamma_init=gamma_init()), nn.Identity()]
    return [nn.BatchNorm2d(channels, gamma_init=gamma_init()), nn.ReLU() if alpha == 0 else LeakyReLU(alpha)]


def _up(cin, cout, compiled):
    """Transposed conv that doubles height and width, then BatchNorm2d and ReLU."""
    return [StridedConv2dTranspose(cin, cout, weight_init=weight_init(), compiled=compiled), *_norm(cout, compiled)]


def _down(cin, cout, compiled):
    """Strided conv that halves height and width, then BatchNorm2d and LeakyReLU(0.2)."""
    return [StridedConv2d(cin, cout, weight_init=weight_init(), compiled=compiled), *_norm(cout, compiled, alpha=0.2)]


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


class Generator(nn.Cell):
    """Maps noise z of shape (N, nz, 1, 1) to images (N, nc, 64, 64) in [-1, 1].
    ``conv``: "auto", "compiled" or "builtin" kernels for the strided convolutions (``cpu_conv``)."""

    def __init__(self, nz=NZ, ngf=NGF, nc=NC, conv="auto"):
        super().__init__()
        self.nz = nz
        compiled = cpu_conv.use_compiled(conv)
        self.generator = nn.SequentialCell(
            WholeKernelConv2dTranspose(nz, ngf * 8, 4, weight_init=weight_init()),
            *_norm(ngf * 8, compiled),
            *_up(ngf * 8, ngf * 4, compiled),
            *_up(ngf * 4, ngf * 2, compiled),
            *_up(ngf * 2, ngf, compiled),
            StridedConv2dTranspose(ngf, nc, weight_init=weight_init(), compiled=compiled),
            nn.Tanh(),
        )

    def construct(self, x):
        return self.generator(x)


class Discriminator(nn.Cell):
    """Maps images (N, nc, 64, 64) to the probability (N, 1) that each one is real.
    ``conv``: "auto", "compiled" or "builtin" kernels for the strided convolutions (``cpu_conv``)."""

    def __init__(self, ndf=NDF, nc=NC, conv="auto"):
        super().__init__()
        compiled = cpu_conv.use_compiled(conv)
        self.discriminator = nn.SequentialCell(
            StridedConv2d(nc, ndf, weight_init=weight_init(), compiled=compiled),
            LeakyReLU(0.2, compiled),
            *_down(ndf, ndf * 2, compiled),
            *_down(ndf * 2, ndf * 4, compiled),
            *_down(ndf * 4, ndf * 8, compiled),
            WholeKernelConv2d(ndf * 8, 1, 4, weight_init=weight_init()),
        )
        self.adv_layer = nn.Sigmoid()

    def construct(self, x):
        out = self.discriminator(x)
        out = out.reshape(out.shape[0], -1)
        return self.adv_layer(out)


def running_stats(*nets):
    """BatchNorm's running means and variances: the parameters no optimizer updates."""
    return [p for net in nets for p in net.get_parameters() if not p.requires_grad]
