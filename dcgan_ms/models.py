"""The DCGAN Generator and Discriminator of the MindSpore tutorial (Radford et al. 2016), for 64x64 RGB.

The tutorial's code, with MindSpore's own layers in its order and with its arguments: the layers sit
in a SequentialCell named ``generator`` / ``discriminator``, so the parameter names
("generator.0.weight", "discriminator.3.gamma", ...) are the tutorial's and its checkpoints load here.
One fix: the tutorial sizes the Discriminator's BatchNorm with ``ngf``; we use ``ndf`` (the same
shapes when both are 64). Training swaps some layers for faster forms of the same mathematics after
the networks are built (``layers.speed_up``); these classes stay what a learner reads and copies.
"""
from mindspore import nn
from mindspore.common.initializer import Normal

NZ, NGF, NDF, NC = 100, 64, 64, 3  # the tutorial's sizes
IMAGE_SIZE = 64


def weight_init():
    """Conv weights ~ Normal(0, 0.02), as the DCGAN paper prescribes."""
    return Normal(sigma=0.02, mean=0.0)


def gamma_init():
    """BatchNorm scale ~ Normal(1, 0.02); BatchNorm shift starts at 0."""
    return Normal(sigma=0.02, mean=1.0)


class Generator(nn.Cell):
    """Maps noise z of shape (N, nz, 1, 1) to images (N, nc, 64, 64) in [-1, 1]."""

    def __init__(self, nz=NZ, ngf=NGF, nc=NC):
        super().__init__()
        self.nz = nz
        self.generator = nn.SequentialCell(
            nn.Conv2dTranspose(nz, ngf * 8, 4, 1, "valid", weight_init=weight_init()),  # 1x1 -> 4x4
            nn.BatchNorm2d(ngf * 8, gamma_init=gamma_init()),
            nn.ReLU(),
            nn.Conv2dTranspose(ngf * 8, ngf * 4, 4, 2, "pad", 1, weight_init=weight_init()),  # 8x8
            nn.BatchNorm2d(ngf * 4, gamma_init=gamma_init()),
            nn.ReLU(),
            nn.Conv2dTranspose(ngf * 4, ngf * 2, 4, 2, "pad", 1, weight_init=weight_init()),  # 16x16
            nn.BatchNorm2d(ngf * 2, gamma_init=gamma_init()),
            nn.ReLU(),
            nn.Conv2dTranspose(ngf * 2, ngf, 4, 2, "pad", 1, weight_init=weight_init()),  # 32x32
            nn.BatchNorm2d(ngf, gamma_init=gamma_init()),
            nn.ReLU(),
            nn.Conv2dTranspose(ngf, nc, 4, 2, "pad", 1, weight_init=weight_init()),  # 64x64
            nn.Tanh(),
        )

    def construct(self, x):
        return self.generator(x)


class Discriminator(nn.Cell):
    """Maps images (N, nc, 64, 64) to the probability (N, 1) that each one is real."""

    def __init__(self, ndf=NDF, nc=NC):
        super().__init__()
        self.discriminator = nn.SequentialCell(
            nn.Conv2d(nc, ndf, 4, 2, "pad", 1, weight_init=weight_init()),  # 64x64 -> 32x32
            nn.LeakyReLU(0.2),
            nn.Conv2d(ndf, ndf * 2, 4, 2, "pad", 1, weight_init=weight_init()),  # 16x16
            nn.BatchNorm2d(ndf * 2, gamma_init=gamma_init()),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, "pad", 1, weight_init=weight_init()),  # 8x8
            nn.BatchNorm2d(ndf * 4, gamma_init=gamma_init()),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, "pad", 1, weight_init=weight_init()),  # 4x4
            nn.BatchNorm2d(ndf * 8, gamma_init=gamma_init()),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ndf * 8, 1, 4, 1, "valid", weight_init=weight_init()),  # 1x1
        )
        self.adv_layer = nn.Sigmoid()

    def construct(self, x):
        out = self.discriminator(x)
        out = out.reshape(out.shape[0], -1)
        return self.adv_layer(out)


def running_stats(*nets):
    """BatchNorm's running means and variances: the parameters no optimizer updates."""
    return [p for net in nets for p in net.get_parameters() if not p.requires_grad]
