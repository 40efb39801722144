"""One DCGAN training step, written as in the MindSpore tutorial.

    generator_forward      z -> G(z) -> D(G(z)); G's loss is BCE(D(G(z)), 1)   (non-saturating loss)
    discriminator_forward  D's loss is (BCE(D(x), 1) + BCE(D(G(z)), 0)) / 2
    train_step             G's step, then D's step on the same G(z), both under ``ms.jit``

Why two ``value_and_grad`` functions: each network is trained on its own loss, and each gradient
is taken only with respect to that network's parameters (``optimizer.parameters``). D's loss is
differentiated w.r.t. D's weights only, so G(z) acts as a constant there, as ``detach()`` does in
PyTorch. ``has_aux=True`` makes the first output the loss that is differentiated and passes the
others through untouched: G(z) for D's step, and D(x), D(G(z)) for the logs.

Why ``ms.jit``: it compiles the whole step (both forward passes, both backward passes, both Adam
updates) into one static graph that MindSpore optimises and runs without returning to Python
between operators. ``jit=False`` runs the same code eagerly (PyNative), for debugging.

Unlike the tutorial, the noise z is an input of the step rather than drawn inside it: the training
loop draws it, keyed by (seed, device, step) (``loop.StepNoise``), so a run is reproducible, each device of
a data-parallel run draws its own z, and a resumed run draws exactly what the uninterrupted run
would have (MindSpore's in-graph random operators keep state that cannot be saved or restored).

Optional instance noise (``instance_noise=sigma``, off by default, so the default step is the
tutorial's): D sees its inputs, real and generated, plus fresh Gaussian noise of std ``sigma``
(Sonderby et al. 2016, "Amortised MAP inference"; Arjovsky & Bottou 2017). It keeps D from winning
on tell-tale fine detail early on, when G's images are all noise and the real ones are smooth, and
so lets G learn shapes and colours sooner. The README's quickstart uses it: on the flat-shaded
sample avatars, DCGAN (ours and PyTorch's alike) otherwise stays grey for hundreds of steps.
For the reason above, that noise is an input too: three batches of it (std sigma), one for each
time D looks at images (G(z) in G's step, x and G(z) in D's step). The loop scales them by sigma
while the previous step trains (``loop.StepNoise``): in the step the products cost 3% of a
quickstart step.

Two more options of the quickstart's recipe, off by default: one-sided label smoothing
(``label_smoothing=eps``, Salimans et al. 2016: D's target for real images is 1 - eps, so D is not
pushed to ever more confident verdicts; G's target and D's target for fakes stay 1 and 0), and
``average``, an ``ema.WeightAverage`` of G, updated right after each G update.
"""
import mindspore as ms
from mindspore import nn, ops

LR, BETA1, BETA2 = 2e-4, 0.5, 0.999  # DCGAN's Adam settings (beta2 is Adam's default)


def make_optimizers(generator, discriminator, lr=LR, beta1=BETA1, beta2=BETA2, lr_d=None):
    """Two Adam optimizers, one per network, as in the tutorial. ``lr_d``: D's own learning rate
    (default: ``lr``, as the tutorial); a D faster than G is the two time-scale update rule (TTUR)."""
    optimizer_g = nn.Adam(generator.trainable_params(), learning_rate=lr, beta1=beta1, beta2=beta2)
    optimizer_d = nn.Adam(discriminator.trainable_params(), learning_rate=lr if lr_d is None else lr_d,
                          beta1=beta1, beta2=beta2)
    optimizer_g.update_parameters_name("optim_g.")
    optimizer_d.update_parameters_name("optim_d.")
    return optimizer_g, optimizer_d


def make_train_step(generator, discriminator, optimizer_g, optimizer_d, jit=True, instance_noise=0.0,
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
