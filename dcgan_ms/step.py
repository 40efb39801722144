"""One DCGAN training step, written as in the MindSpore tutorial.

    generator_forward      z -> G(z) -> D(G(z)); G's loss is BCE(D(G(z)), 1)   (non-saturating loss)
    discriminator_forward  D's loss is (BCE(D(x), 1) + BCE(D(G(z)), 0)) / 2
    train_step             G's step, then D's step on the same G(z), both under ``ms.jit``

Each network's gradient is taken with respect to its own parameters only (so G(z) is a constant in
D's step, as ``detach()`` makes it in PyTorch). Unlike the tutorial, z is an input of the step, drawn
by the loop (``noise.StepNoise``), so that runs are reproducible and resumable. Options of the
quickstart's recipe, off by default: instance noise, one-sided label smoothing and G's moving average
(``ema.WeightAverage``); docs/design.md says why each is there.
"""
import mindspore as ms
from mindspore import nn, ops

LR, BETA1, BETA2 = 2e-4, 0.5, 0.999  # DCGAN's Adam settings (beta2 is Adam's default)


def make_optimizers(generator, discriminator, *, lr=LR, beta1=BETA1, beta2=BETA2, lr_d=None):
    """Two Adam optimizers, one per network, as in the tutorial. ``lr_d``: D's own learning rate
    (default: ``lr``, as the tutorial); a D faster than G is the two time-scale update rule (TTUR)."""
    optimizer_g = nn.Adam(generator.trainable_params(), learning_rate=lr, beta1=beta1, beta2=beta2)
    optimizer_d = nn.Adam(discriminator.trainable_params(), learning_rate=lr if lr_d is None else lr_d,
                          beta1=beta1, beta2=beta2)
    optimizer_g.update_parameters_name("optim_g.")
    optimizer_d.update_parameters_name("optim_d.")
    return optimizer_g, optimizer_d


def make_train_step(generator, discriminator, optimizer_g, optimizer_d, *, jit=True, instance_noise=0.0,
                    label_smoothing=0.0, average=None, devices=1):
    """Build ``train_step(real_imgs, z, noise_g, noise_real, noise_fake) -> (g_loss, d_loss, d_real, d_fake)``.

    The noises (only with ``instance_noise``): Gaussian noise of std ``instance_noise``, shaped like
    ``real_imgs``, added to what D sees: G(z) in G's step, x and G(z) in D's step. (Three separate
    inputs: slicing one stacked tensor costs a copy of each in the graph.) For
    ``label_smoothing`` and ``average`` see the module's docstring. d_real is the mean of D(x) over
    the batch, d_fake the mean of D(G(z)) before G's update: this device's, as the losses.

    ``devices`` > 1 (data parallel): both networks' gradients are averaged over the devices inside
    the step (``distributed.gradient_mean``), so every device makes the same update.
    """
    adversarial_loss = nn.BCELoss(reduction="mean")
    distributed = devices > 1
    if distributed:
        from .distributed import gradient_mean
        reduce_g = gradient_mean(optimizer_g.parameters, devices)
        reduce_d = gradient_mean(optimizer_d.parameters, devices)

    def noisy(imgs, noise):
        if instance_noise:  # a Python constant: with 0 the graph holds no noise at all
            return imgs + noise
        return imgs

    def generator_forward(z, valid, noise_g):
        gen_imgs = generator(z)
        g_loss = adversarial_loss(discriminator(noisy(gen_imgs, noise_g)), valid)
        return g_loss, gen_imgs

    def discriminator_forward(real_imgs, gen_imgs, real_target, fake, noise_real, noise_fake):
        d_real = discriminator(noisy(real_imgs, noise_real))
        d_fake = discriminator(noisy(gen_imgs, noise_fake))
        real_loss = adversarial_loss(d_real, real_target)
        fake_loss = adversarial_loss(d_fake, fake)
        d_loss = (real_loss + fake_loss) / 2
        return d_loss, d_real.mean(), d_fake.mean()

    grad_generator_fn = ms.value_and_grad(generator_forward, None, optimizer_g.parameters, has_aux=True)
    grad_discriminator_fn = ms.value_and_grad(discriminator_forward, None, optimizer_d.parameters,
                                              has_aux=True)

    def train_step(real_imgs, z, noise_g=None, noise_real=None, noise_fake=None):
        valid = ops.ones((real_imgs.shape[0], 1), ms.float32)
        fake = ops.zeros((real_imgs.shape[0], 1), ms.float32)
        real_target = valid - label_smoothing if label_smoothing else valid  # a Python constant, as above
        (g_loss, gen_imgs), g_grads = grad_generator_fn(z, valid, noise_g)
        if distributed:
            g_grads = reduce_g(g_grads)
        optimizer_g(g_grads)
        if average is not None:
            average()
        (d_loss, d_real, d_fake), d_grads = grad_discriminator_fn(real_imgs, gen_imgs, real_target, fake,
                                                                   noise_real, noise_fake)
        if distributed:
            d_grads = reduce_d(d_grads)
        optimizer_d(d_grads)
        return g_loss, d_loss, d_real, d_fake

    return ms.jit(train_step) if jit else train_step
