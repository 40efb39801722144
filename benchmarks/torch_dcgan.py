"""The same DCGAN in PyTorch, structured as pytorch/examples' dcgan/main.py: the reference the
benchmark and the learning comparison run against. Benchmark-only: needs requirements-bench.txt.

Same architecture, init (N(0, 0.02) weights, N(1, 0.02) BatchNorm gamma, zero beta), BCE loss,
two Adam(lr, beta1) optimizers; G's step then D's step on the same G(z), as dcgan_ms.step does.
``precision="bf16"``: the forward passes and losses under PyTorch's one-line mixed precision,
``torch.autocast("cpu", dtype=torch.bfloat16)`` (weights, gradients and Adam stay float32).
"""
import contextlib

import torch
from torch import nn


TORCH_NAMES = {"weight": "weight", "gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
               "moving_variance": "running_var"}


def torch_name(name):
    """dcgan_ms's parameter name ("generator.3.gamma", perhaps with an optimizer's prefix) as this module's
    ("main.3.weight"): the layers are numbered alike."""
    index, kind = name.split(".")[-2:]
    return f"main.{index}.{TORCH_NAMES[kind]}"


def weights_init(m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Generator(nn.Module):
    def __init__(self, nz=100, ngf=64, nc=3):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z):
        return self.main(z)


class Discriminator(nn.Module):
    def __init__(self, ndf=64, nc=3):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, x):
        return self.main(x).view(-1, 1)


class MindSporeAdam(torch.optim.Optimizer):
    """Adam as MindSpore's ``nn.Adam`` (its ApplyAdam kernel) computes it: the bias corrections folded into
    the learning rate, lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps), so that eps stands
    where PyTorch's eps / sqrt(1 - beta2^t) would (32x PyTorch's at step 1, equal in the long run).
    For the learning comparison (``parity.py``): the one place the two frameworks' steps differ."""

    def __init__(self, params, lr, betas, eps=1e-8):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                state = self.state[p]
                if not state:
                    state.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                state["t"] += 1
                t, m, v = state["t"], state["m"], state["v"]
                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                step_size = group["lr"] * (1 - beta2 ** t) ** 0.5 / (1 - beta1 ** t)
                p.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-step_size)


def make_train_step(nz=100, ngf=64, ndf=64, lr=2e-4, beta1=0.5, seed=0, noise=0.0, precision="fp32", adam="pytorch"):
    """Returns (train_step(real, z) -> (g_loss, d_loss, d_real, d_fake), netG, netD). ``adam``: "pytorch"
    (``torch.optim.Adam``) or "mindspore" (``MindSporeAdam``, MindSpore's placement of epsilon)."""
    torch.manual_seed(seed)
    netG, netD = Generator(nz, ngf), Discriminator(ndf)
    netG.apply(weights_init)
    netD.apply(weights_init)
    criterion = nn.BCELoss()
    optimizer = {"pytorch": torch.optim.Adam, "mindspore": MindSporeAdam}[adam]
    opt_g = optimizer(netG.parameters(), lr=lr, betas=(beta1, 0.999))
    opt_d = optimizer(netD.parameters(), lr=lr, betas=(beta1, 0.999))

    given = []  # instance noises passed to train_step, used in order instead of drawing them

    def noisy(x):
        if given:
            return x + given.pop(0)
        return x + noise * torch.randn_like(x) if noise else x

    def mixed():
        if precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_step(real, z, noises=()):
        """``noises``: the instance noise of G's step and of D's real and fake images (drawn when empty)."""
        given[:] = list(noises)
        valid = torch.ones(real.shape[0], 1)
        fake_label = torch.zeros(real.shape[0], 1)
        opt_g.zero_grad()
        with mixed():
            fake = netG(z)
            g_loss = criterion(netD(noisy(fake)), valid)
        g_loss.backward()
        opt_g.step()
        opt_d.zero_grad()
        with mixed():
            d_real = netD(noisy(real))
            d_fake = netD(noisy(fake.detach()))
            d_loss = (criterion(d_real, valid) + criterion(d_fake, fake_label)) / 2
        d_loss.backward()
        opt_d.step()
        return g_loss.item(), d_loss.item(), d_real.mean().item(), d_fake.mean().item()

    return train_step, netG, netD
