"""The DCGAN Generator and Discriminator of the MindSpore tutorial (Radford et al. 2016), for 64x64 RGB.

The layers sit in a SequentialCell named ``generator`` / ``discriminator``, as in the tutorial, so the
parameter names ("generator.0.weight", "discriminator.3.gamma", ...) are the tutorial's and its
checkpoints load here. One fix: the tutorial sizes the Discriminator's BatchNorm with ``ngf``; we use
``ndf`` (the same shapes when both are 64). Each layer comes from ``layers.Layers``: MindSpore's layer
in a faster form, with the same weights and results; which form is chosen once, outside the networks
(``layers.choose_layers``, from ``--conv``).
"""
from mindspore import nn
from mindspore.common.initializer import Normal

from .layers import WholeKernelConv2d, WholeKernelConv2dTranspose, default_layers

NZ, NGF, NDF, NC = 100, 64, 64, 3  # the tutorial's sizes
IMAGE_SIZE = 64


def weight_init():
    """Conv weights ~ Normal(0, 0.02), as the DCGAN paper prescribes."""
    return Normal(sigma=0.02, mean=0.0)


def gamma_init():
    """BatchNorm scale ~ Normal(1, 0.02); BatchNorm shift starts at 0."""
    return Normal(sigma=0.02, mean=1.0)


class Generator(nn.Cell):
    """Maps noise z of shape (N, nz, 1, 1) to images (N, nc, 64, 64) in [-1, 1].
    ``layers``: a ``layers.Layers`` (default: ``layers.default_layers()``)."""

    def __init__(self, nz=NZ, ngf=NGF, nc=NC, *, layers=None):
        super().__init__()
        self.nz = nz
        make = layers or default_layers()
        self.generator = nn.SequentialCell(
            WholeKernelConv2dTranspose(nz, ngf * 8, 4, weight_init=weight_init()),  # 1x1 -> 4x4
            *make.batch_norm_relu(ngf * 8, gamma_init()),
            make.conv_transpose(ngf * 8, ngf * 4, weight_init()),  # 8x8
            *make.batch_norm_relu(ngf * 4, gamma_init()),
            make.conv_transpose(ngf * 4, ngf * 2, weight_init()),  # 16x16
            *make.batch_norm_relu(ngf * 2, gamma_init()),
            make.conv_transpose(ngf * 2, ngf, weight_init()),  # 32x32
            *make.batch_norm_relu(ngf, gamma_init()),
            make.conv_transpose(ngf, nc, weight_init()),  # 64x64
            nn.Tanh(),
        )

    def construct(self, x):
        return self.generator(x)


class Discriminator(nn.Cell):
    """Maps images (N, nc, 64, 64) to the probability (N, 1) that each one is real.
    ``layers``: a ``layers.Layers`` (default: ``layers.default_layers()``)."""

    def __init__(self, ndf=NDF, nc=NC, *, layers=None):
        super().__init__()
        make = layers or default_layers()
        self.discriminator = nn.SequentialCell(
            make.conv(nc, ndf, weight_init()),  # 64x64 -> 32x32
            make.leaky_relu(0.2),
            make.conv(ndf, ndf * 2, weight_init()),  # 16x16
            *make.batch_norm_leaky_relu(ndf * 2, gamma_init(), alpha=0.2),
            make.conv(ndf * 2, ndf * 4, weight_init()),  # 8x8
            *make.batch_norm_leaky_relu(ndf * 4, gamma_init(), alpha=0.2),
            make.conv(ndf * 4, ndf * 8, weight_init()),  # 4x4
            *make.batch_norm_leaky_relu(ndf * 8, gamma_init(), alpha=0.2),
            WholeKernelConv2d(ndf * 8, 1, 4, weight_init=weight_init()),  # 1x1
        )
        self.adv_layer = nn.Sigmoid()

    def construct(self, x):
        out = self.discriminator(x)
        out = out.reshape(out.shape[0], -1)
        return self.adv_layer(out)


def running_stats(*nets):
    """BatchNorm's running means and variances: the parameters no optimizer updates."""
    return [p for net in nets for p in net.get_parameters() if not p.requires_grad]
