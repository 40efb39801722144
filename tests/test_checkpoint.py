"""Checkpoints: exact round trip, the tutorial's own checkpoints, clear errors, and saving as an ordinary user."""
import errno
import os
import re
import stat
import subprocess
import sys

import numpy as np
import pytest
import mindspore as ms
import mindspore.ops as ops
from mindspore import nn
from mindspore.common.initializer import Normal

from dcgan_ms import checkpoint, files
from dcgan_ms.errors import UserError
from dcgan_ms.images import generate
from dcgan_ms.models import Discriminator, Generator
from dcgan_ms.step import make_optimizers, make_train_step

# ---- The tutorial's code, as published (sizes shrunk so the test is fast) --------------------
nz, ngf, ndf, nc, lr, beta1 = 100, 16, 16, 3, 0.0002, 0.5
weight_init = Normal(mean=0, sigma=0.02)
gamma_init = Normal(mean=1, sigma=0.02)


class TutorialGenerator(nn.Cell):
    def __init__(self):
        super(TutorialGenerator, self).__init__()
        self.generator = nn.SequentialCell(
            nn.Conv2dTranspose(nz, ngf * 8, 4, 1, 'valid', weight_init=weight_init),
            nn.BatchNorm2d(ngf * 8, gamma_init=gamma_init),
            nn.ReLU(),
            nn.Conv2dTranspose(ngf * 8, ngf * 4, 4, 2, 'pad', 1, weight_init=weight_init),
            nn.BatchNorm2d(ngf * 4, gamma_init=gamma_init),
            nn.ReLU(),
            nn.Conv2dTranspose(ngf * 4, ngf * 2, 4, 2, 'pad', 1, weight_init=weight_init),
            nn.BatchNorm2d(ngf * 2, gamma_init=gamma_init),
            nn.ReLU(),
            nn.Conv2dTranspose(ngf * 2, ngf, 4, 2, 'pad', 1, weight_init=weight_init),
            nn.BatchNorm2d(ngf, gamma_init=gamma_init),
            nn.ReLU(),
            nn.Conv2dTranspose(ngf, nc, 4, 2, 'pad', 1, weight_init=weight_init),
            nn.Tanh()
        )

    def construct(self, x):
        return self.generator(x)


class TutorialDiscriminator(nn.Cell):
    def __init__(self):
        super(TutorialDiscriminator, self).__init__()
        self.discriminator = nn.SequentialCell(
            nn.Conv2d(nc, ndf, 4, 2, 'pad', 1, weight_init=weight_init),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 'pad', 1, weight_init=weight_init),
            nn.BatchNorm2d(ngf * 2, gamma_init=gamma_init),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 'pad', 1, weight_init=weight_init),
            nn.BatchNorm2d(ngf * 4, gamma_init=gamma_init),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 'pad', 1, weight_init=weight_init),
            nn.BatchNorm2d(ngf * 8, gamma_init=gamma_init),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ndf * 8, 1, 4, 1, 'valid', weight_init=weight_init),
        )
        self.adv_layer = nn.Sigmoid()

    def construct(self, x):
        out = self.discriminator(x)
        out = out.reshape(out.shape[0], -1)
        return self.adv_layer(out)


@pytest.fixture(scope="module")
def tutorial_checkpoints(tmp_path_factory):
    """Train the tutorial's cells for one step with the tutorial's optimizers, then save as it does."""
    ms.set_seed(5)
    generator, discriminator = TutorialGenerator(), TutorialDiscriminator()
    generator.set_train()
    discriminator.set_train()
    adversarial_loss = nn.BCELoss(reduction='mean')
    optimizer_D = nn.Adam(discriminator.trainable_params(), learning_rate=lr, beta1=beta1)
    optimizer_G = nn.Adam(generator.trainable_params(), learning_rate=lr, beta1=beta1)
    optimizer_G.update_parameters_name('optim_g.')
    optimizer_D.update_parameters_name('optim_d.')

    def generator_forward(real_imgs, valid):
        z = ops.standard_normal((real_imgs.shape[0], nz, 1, 1))
        gen_imgs = generator(z)
        g_loss = adversarial_loss(discriminator(gen_imgs), valid)
        return g_loss, gen_imgs

    def discriminator_forward(real_imgs, gen_imgs, valid, fake):
        real_loss = adversarial_loss(discriminator(real_imgs), valid)
        fake_loss = adversarial_loss(discriminator(gen_imgs), fake)
        return (real_loss + fake_loss) / 2

    grad_generator_fn = ms.value_and_grad(generator_forward, None, optimizer_G.parameters, has_aux=True)
    grad_discriminator_fn = ms.value_and_grad(discriminator_forward, None, optimizer_D.parameters)

    @ms.jit
    def train_step(imgs):
        valid = ops.ones((imgs.shape[0], 1), ms.float32)
        fake = ops.zeros((imgs.shape[0], 1), ms.float32)
        (g_loss, gen_imgs), g_grads = grad_generator_fn(imgs, valid)
        optimizer_G(g_grads)
        d_loss, d_grads = grad_discriminator_fn(imgs, gen_imgs, valid, fake)
        optimizer_D(d_grads)
        return g_loss, d_loss, gen_imgs

    train_step(ms.Tensor(np.random.default_rng(0).uniform(0, 1, (8, 3, 64, 64)).astype(np.float32)))
    folder = tmp_path_factory.mktemp("tutorial")
    ms.save_checkpoint(generator, str(folder / "generator.ckpt"))
    ms.save_checkpoint(discriminator, str(folder / "discriminator.ckpt"))
    generator.set_train(False)
    discriminator.set_train(False)
    return folder, generator, discriminator


def test_tutorial_checkpoint_loads_and_generates_the_same(tutorial_checkpoints):
    folder, tut_g, tut_d = tutorial_checkpoints
    assert "optim_g.generator.0.weight" in ms.load_checkpoint(str(folder / "generator.ckpt"))
    z = np.random.default_rng(1).standard_normal((4, nz, 1, 1)).astype(np.float32)
    expected = tut_g(ms.Tensor(z)).asnumpy()
    # Our layers compute the tutorial's in faster forms (models.py): the same numbers to float rounding.
    # Their sums run in another order, which also depends on the CPU's instruction set (the images were
    # equal to the bit on an AVX2 machine, not on an AVX-512 one), so the comparison allows rounding.
    same = dict(rtol=1e-5, atol=1e-7)
    ours = checkpoint.load_generator(str(folder / "generator.ckpt"))  # sizes read from the file
    assert ours.nz == nz and tuple(ours.generator[0].weight.shape) == (nz, ngf * 8, 4, 4)
    np.testing.assert_allclose(generate(ours, z, bn="moving"), expected, **same)
    # ...and MindSpore's own load_checkpoint into a fresh Generator, as a tutorial reader would do.
    plain = Generator(nz, ngf)
    ms.load_checkpoint(str(folder / "generator.ckpt"), plain)
    plain.set_train(False)
    np.testing.assert_allclose(plain(ms.Tensor(z)).asnumpy(), expected, **same)
    untrained = Generator(nz, ngf)  # the check can fail: other weights give other images
    untrained.set_train(False)
    assert not np.allclose(untrained(ms.Tensor(z)).asnumpy(), expected, **same)
    d = checkpoint.load_discriminator(str(folder / "discriminator.ckpt"))
    d.set_train(False)
    np.testing.assert_array_equal(d(tut_g(ms.Tensor(z))).asnumpy(), tut_d(tut_g(ms.Tensor(z))).asnumpy())


def test_round_trip_after_training_is_exact(tmp_path):
    ms.set_seed(2)
    g, d = Generator(16, 8), Discriminator(8)
    g.set_train()
    d.set_train()
    step = make_train_step(g, d, *make_optimizers(g, d))
    x = ms.Tensor(np.random.default_rng(0).uniform(-1, 1, (4, 3, 64, 64)).astype(np.float32))
    step(x, ms.Tensor(np.random.default_rng(1).standard_normal((4, 16, 1, 1)).astype(np.float32)))
    checkpoint.save(g, str(tmp_path / "g.ckpt"))
    checkpoint.save(d, str(tmp_path / "d.ckpt"))
    g2, d2 = checkpoint.load_generator(str(tmp_path / "g.ckpt")), checkpoint.load_discriminator(str(tmp_path / "d.ckpt"))
    for a, b in ((g, g2), (d, d2)):
        pa = {checkpoint.canonical_name(p.name): p.asnumpy() for p in a.get_parameters()}
        pb = {p.name: p.asnumpy() for p in b.get_parameters()}
        assert pa.keys() == pb.keys()
        for k in pa:
            np.testing.assert_array_equal(pa[k], pb[k])
    assert not list(tmp_path.glob(".*tmp*")), "the temporary file of the atomic save must be gone"


def test_wrong_size_and_wrong_file_are_clear_errors(tutorial_checkpoints, tmp_path):
    folder = tutorial_checkpoints[0]
    with pytest.raises(UserError, match=r"generator.0.weight has shape \(100, 128, 4, 4\) in the checkpoint "
                                        r"but \(100, 512, 4, 4\) in the model"):
        checkpoint.load_generator(str(folder / "generator.ckpt"), ngf=64)
    with pytest.raises(UserError, match="not a Generator checkpoint"):
        checkpoint.load_generator(str(folder / "discriminator.ckpt"))
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a readable MindSpore checkpoint"):
        checkpoint.load_generator(str(tmp_path / "junk.ckpt"))
    with pytest.raises(UserError, match="does not exist"):
        checkpoint.load_generator(str(tmp_path / "missing.ckpt"))


# ---- Saving as an ordinary user: the owner's file, on disk, and a failure that says why ---------------
def small_net():
    return [{"name": "w", "data": ms.Tensor(np.arange(1000, dtype=np.float32))}]


def test_a_saved_checkpoint_is_on_disk_and_stays_its_owners_to_rewrite(tmp_path, monkeypatch):
    """MindSpore leaves what it writes read-only (0400); a run rewrites generator.ckpt every epoch, so the
    file gets the mode of the user's other files; the file and then its folder entry are fsynced."""
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd)))
    path = tmp_path / "generator.ckpt"
    for _ in range(2):  # the second save replaces the first
        checkpoint.save(small_net(), str(path))
    assert stat.S_IMODE(os.stat(path).st_mode) == files.user_file_mode() == 0o666 & ~current_umask()
    assert os.stat(path).st_mode & stat.S_IWUSR
    with open(path, "r+b"):  # what failed for every ordinary user
        pass
    written, folder = synced[:2]  # the file in written_whole's private folder, then the run's folder
    assert re.fullmatch(re.escape(str(tmp_path)) + r"/\.generator\.ckpt\.tmp-\w+/generator\.ckpt", written)
    assert folder == str(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["generator.ckpt"]
    np.testing.assert_array_equal(ms.load_checkpoint(str(path))["w"].asnumpy(), np.arange(1000))


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


SAVE_UNDER_A_FILE_SIZE_LIMIT = """
import resource, signal, sys
import mindspore as ms, numpy as np
from dcgan_ms import checkpoint, files
from dcgan_ms.errors import UserError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))
try:
    checkpoint.save([{"name": "w", "data": ms.Tensor(np.zeros(10000, np.float32))}], sys.argv[1])
except UserError as e:
    print(e)
"""


def test_a_save_that_fails_leaves_no_temporary_file_and_names_the_cause(tmp_path):
    """A write cut short (here by a file size limit, as by a full disk) leaves neither our temporary file
    nor MindSpore's own (``.tmp``), and says what stopped it, not a guess."""
    proc = subprocess.run([sys.executable, "-c", SAVE_UNDER_A_FILE_SIZE_LIMIT, str(tmp_path / "g.ckpt")],
                          capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip() == f"could not write checkpoint {tmp_path / 'g.ckpt'}: the file is larger than " \
                                  "this process may write (ulimit -f)", proc.stdout + proc.stderr
    assert "CRITICAL" not in proc.stderr  # MindSpore's own line before ours is muted
    assert os.listdir(tmp_path) == []


def test_a_folder_the_user_cannot_write_is_named_as_such(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders: run the suite as an ordinary user (CI does)")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(UserError, match=r"^could not write checkpoint .*locked/g\.ckpt: permission denied: choose a "
                                        r"folder you can write$"):
        checkpoint.save(small_net(), str(locked / "g.ckpt"))


@pytest.mark.parametrize("number, cause", [(errno.ENOSPC, "the disk is full: free some space"),
                                           (errno.EROFS, "the file system is read-only: choose a folder on a "
                                                         "writable disk"),
                                           (errno.EIO, "[Errno 5] Input/output error")])
def test_the_cause_of_a_failed_write_comes_from_its_error_number(number, cause):
    assert files.why_not_written(OSError(number, os.strerror(number))) == cause


def test_a_checkpoint_whose_data_does_not_fill_its_shape_is_refused(tmp_path):
    """MindSpore loads 4 bytes for a (100, 512, 4, 4) weight as zeros, which passes every shape check."""
    from mindspore.train.checkpoint_pb2 import Checkpoint
    from dcgan_ms import resume
    path = tmp_path / "generator.ckpt"
    checkpoint.save(Generator(16, 8), str(path))
    proto = Checkpoint()
    proto.ParseFromString(path.read_bytes())
    first = next(v for v in proto.value if v.tag == "generator.0.weight")
    assert tuple(first.tensor.dims) == (16, 64, 4, 4)
    first.tensor.tensor_content = first.tensor.tensor_content[:4]
    path.write_bytes(proto.SerializeToString())
    assert not ms.load_checkpoint(str(path))["generator.0.weight"].asnumpy()[0, 0, 0, 1:].any()  # MindSpore's zeros
    with pytest.raises(UserError, match=r"generator\.ckpt is damaged \(generator\.0\.weight holds 4 bytes where its "
                                        r"shape needs 65,536\): use another checkpoint"):
        checkpoint.load_generator(str(path))
    with pytest.raises(UserError, match=r"is damaged or truncated \(generator\.0\.weight holds 4 bytes"):
        resume.read_state(str(path))


def test_the_weight_files_carry_a_crc_that_is_checked_on_load(tiny_run):
    out, _ = tiny_run
    data = open(os.path.join(out, "generator.ckpt"), "rb").read()
    assert data[-17:-10] == b"crc_num"
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0xFF  # a bit flipped in the middle of a weight: the file still parses
    broken = os.path.join(os.path.dirname(out), "flipped.ckpt")
    open(broken, "wb").write(bytes(damaged))
    with pytest.raises(UserError, match=r"flipped\.ckpt is damaged \(its CRC does not match its contents\): use "
                                        r"another checkpoint"):
        checkpoint.load_generator(broken)
