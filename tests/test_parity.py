"""dcgan_ms's train step is PyTorch's (pytorch/examples' DCGAN, benchmarks/torch_dcgan.py) step for step:
from the same weights, on the same images, z and instance noise, the two give the same losses and
the same updates, with dcgan_ms's layers or MindSpore's own, compiled or eager. Where the frameworks
really differ (Adam's epsilon), the test shows how much. What is left between their learning curves
is the data and the random numbers (benchmarks/parity.py, docs/recipe.md)."""
import json
import os
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest

from conftest import REPO, run_cli

torch = pytest.importorskip("torch", reason="the PyTorch reference needs torch (requirements-test.txt)")
sys.path.insert(0, os.path.join(REPO, "benchmarks"))
import torch_dcgan  # noqa: E402

from dcgan_ms.layers import speed_up  # noqa: E402
from dcgan_ms.models import Discriminator, Generator  # noqa: E402
from dcgan_ms.step import make_optimizers, make_train_step  # noqa: E402

NZ, WIDTH, BATCH, NOISE = 100, 8, 16, 0.1
from torch_dcgan import torch_name  # noqa: E402


def both_sides(conv, jit):
    """The PyTorch step and nets, and dcgan_ms's step and nets holding the same initial weights."""
    torch.manual_seed(0)
    torch_step, torch_g, torch_d = torch_dcgan.make_train_step(NZ, WIDTH, WIDTH, seed=0, noise=NOISE)
    g, d = Generator(NZ, WIDTH), Discriminator(WIDTH)
    for ours, theirs in ((g, torch_g), (d, torch_d)):
        state = theirs.state_dict()
        for p in ours.get_parameters():
            p.set_data(ms.Tensor(state[torch_name(p.name)].numpy().copy()))
        if conv:
            speed_up(ours, conv)
        ours.set_train()
    step = make_train_step(g, d, *make_optimizers(g, d), jit=jit, instance_noise=NOISE)
    return (torch_step, torch_g, torch_d), (step, g, d)


def inputs(rng):
    real = rng.uniform(-1, 1, (BATCH, 3, 64, 64)).astype(np.float32)
    z = rng.standard_normal((BATCH, NZ, 1, 1)).astype(np.float32)
    noises = [(NOISE * rng.standard_normal(real.shape)).astype(np.float32) for _ in range(3)]
    return real, z, noises


def updates(net, before, torch_net):
    """(ours, theirs): each parameter's change since ``before`` on both sides, by PyTorch's names."""
    state = torch_net.state_dict()
    return {torch_name(p.name): (p.asnumpy() - before[torch_name(p.name)], state[torch_name(p.name)].numpy()
                                 - before[torch_name(p.name)]) for p in net.get_parameters()}


@pytest.mark.parametrize("conv, jit", [("compiled", True), pytest.param("builtin", True, marks=pytest.mark.slow),
                                       pytest.param(None, False, marks=pytest.mark.slow)],
                         ids=["dcgan_ms-graph", "mindspore-convolutions-graph", "tutorials-layers-pynative"])
def test_one_step_from_the_same_state_is_pytorchs_step(conv, jit):
    (torch_step, torch_g, torch_d), (step, g, d) = both_sides(conv, jit)
    before = [{k: v.numpy().copy() for k, v in net.state_dict().items()} for net in (torch_g, torch_d)]
    real, z, noises = inputs(np.random.default_rng(0))
    theirs = torch_step(torch.from_numpy(real), torch.from_numpy(z), [torch.from_numpy(n) for n in noises])
    ours = [float(v) for v in step(ms.Tensor(real), ms.Tensor(z), *(ms.Tensor(n) for n in noises))]
    np.testing.assert_allclose(ours, theirs, rtol=2e-5)  # G's loss, D's loss, D(x), D(G(z))
    gradients = {f"{net} {name}": p.grad.numpy() for net, module in (("G", torch_g), ("D", torch_d))
                 for name, p in module.named_parameters()}  # G's from G's step, D's from D's
    changes = [(f"G {name}", *pair) for name, pair in updates(g, before[0], torch_g).items()]
    changes += [(f"D {name}", *pair) for name, pair in updates(d, before[1], torch_d).items()]
    assert len(changes) == (5 + 4 * 4) + (5 + 3 * 4)  # G, D: every convolution, BatchNorm gamma, beta, statistics
    for name, mine, reference in changes:
        if "running" in name:  # BatchNorm's statistics: the same averages
            np.testing.assert_allclose(mine, reference, rtol=1e-4, atol=1e-6, err_msg=name)
            continue
        # Adam's first step moves each weight by -lr * g / (|g| + eps'), g its gradient: PyTorch's eps' is
        # eps = 1e-8; MindSpore's is eps / sqrt(1 - beta2) = 3.2e-7 (its epsilon is added before the bias
        # correction). That is the one difference: both updates are that formula of PyTorch's gradients.
        # (Gradients below 1e-6, a few in a thousand, are left out: there the two frameworks' own rounding
        # of the gradient is as large as it.)
        g = gradients[name]
        sure = np.abs(g) > 1e-6
        assert sure.mean() > 0.99, name
        for update, eps in ((reference, 1e-8), (mine, 1e-8 / np.sqrt(1 - 0.999))):
            np.testing.assert_allclose(update[sure], -2e-4 * g[sure] / (np.abs(g[sure]) + eps), rtol=1e-2,
                                       err_msg=name)  # the two eps' differ by 30% at |g| = 1e-6
        assert np.abs(reference).max() > 1e-4, name  # it moved


@pytest.mark.slow
def test_the_losses_stay_together_for_several_steps():
    """Ten steps from the same state on the same inputs: the two runs' losses part only as float rounding
    grows (GAN training amplifies it), not by a different rule."""
    (torch_step, _, _), (step, _, _) = both_sides("compiled", True)
    rng = np.random.default_rng(1)
    gaps = []
    for _ in range(10):
        real, z, noises = inputs(rng)
        theirs = torch_step(torch.from_numpy(real), torch.from_numpy(z), [torch.from_numpy(n) for n in noises])
        ours = [float(v) for v in step(ms.Tensor(real), ms.Tensor(z), *(ms.Tensor(n) for n in noises))]
        gaps.append(np.max(np.abs(np.array(ours) - theirs) / np.abs(theirs)))
    assert gaps[0] < 2e-5 and max(gaps) < 0.02, gaps


@pytest.mark.parametrize("p", [1e-7, 1e-4, 0.3, 1 - 1e-4, 1 - 1e-7])
@pytest.mark.parametrize("target", [0.0, 1.0])
def test_bce_and_its_gradient_near_saturation_are_pytorchs(p, target):
    """D's outputs near 0 and 1: MindSpore's BCELoss and its gradient as PyTorch's (where D is sure of
    itself, a clamp or an epsilon in either would change G's push). The losses agree to 1e-7: PyTorch
    takes log1p(-p) where MindSpore takes log(1 - p), whose float32 rounding shows only on losses that
    small; the gradients, which are what training uses, agree to 1e-4."""
    from mindspore import nn
    x = np.full((4, 1), p, np.float32)
    y = np.full((4, 1), target, np.float32)
    loss_fn = nn.BCELoss(reduction="mean")
    ours, grad = ms.value_and_grad(loss_fn)(ms.Tensor(x), ms.Tensor(y))
    tx = torch.tensor(x, requires_grad=True)
    theirs = torch.nn.functional.binary_cross_entropy(tx, torch.tensor(y))
    theirs.backward()
    np.testing.assert_allclose(float(ours), theirs.item(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(grad.asnumpy(), tx.grad.numpy(), rtol=1e-4)


@pytest.mark.slow
def test_pytorch_on_dcgan_ms_inputs_takes_dcgan_ms_first_step(tmp_path, flat_images):
    """benchmarks/torch_train.py --inputs dcgan_ms (parity.py's swap): the same initial weights, batches,
    z and instance noise as ``python -m dcgan_ms.train`` with the same seed, so its first step's losses
    and D outputs are dcgan_ms's; later steps part only by rounding."""
    settings = ["--data_root", flat_images, "--batch_size", "8", "--ngf", "8", "--ndf", "8", "--instance_noise", "0.1",
                "--epochs", "1", "--max_steps", "2", "--seed", "3"]
    ours = run_cli("dcgan_ms.train", *settings, "--output_dir", str(tmp_path / "ours"), "--no_progress")
    assert ours.returncode == 0, ours.stderr[-2000:]
    theirs = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "torch_train.py"), *settings,
                             "--output_dir", str(tmp_path / "theirs"), "--inputs", "dcgan_ms"],
                            capture_output=True, text=True, timeout=600)
    assert theirs.returncode == 0, theirs.stderr[-2000:]
    rows = [np.loadtxt(tmp_path / side / "log.csv", delimiter=",", skiprows=1)[:, 2:6] for side in ("ours", "theirs")]
    np.testing.assert_allclose(rows[1][0], rows[0][0], rtol=2e-5)  # G's loss, D's loss, D(x), D(G(z))
    np.testing.assert_allclose(rows[1][1], rows[0][1], rtol=1e-2)


def test_parity_says_how_often_random_splits_of_the_seeds_differ_as_much():
    """benchmarks/parity.py's permutation test: whether two sides' seeds differ by more than luck."""
    import parity
    assert parity.chance_of_a_gap([1.0, 1.1, 0.9], [0.95, 1.05, 1.0]) > 0.5  # interleaved: luck
    separated = parity.chance_of_a_gap([1.0, 1.1, 1.2, 1.15], [0.5, 0.6, 0.55, 0.52])
    assert separated == pytest.approx(2 / 70, abs=0.01)  # only this split and its mirror, of C(8, 4) = 70


def test_parity_summarizes_runs_saved_at_different_times_once_each(tmp_path):
    """parity.py --summarize: seeds run in several batches, one summary; a side's seed found twice counts
    once (the later file's)."""
    def row(side, seed, swd):
        score = {"swd": swd, "levels": {"64": swd, "32": swd, "16": swd}, "diversity": 1.0}
        return {"side": side, "seed": seed, "scores": {"bilinear": score}}
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_text(json.dumps({"results": [row("torch", s, 50.0) for s in (1, 2, 3)]
                                 + [row("dcgan_ms", s, 80.0) for s in (1, 2, 3)]}))
    second.write_text(json.dumps({"results": [row("torch", s, 90.0) for s in (1, 2, 3)]}))
    for side, loss in (("torch", 3.0), ("dcgan_ms", 4.0)):  # each run's log, in --runs_dir
        for seed in (1, 2, 3):
            (tmp_path / "runs" / f"{side}-seed{seed}").mkdir(parents=True)
            (tmp_path / "runs" / f"{side}-seed{seed}" / "log.csv").write_text(
                "step,g_loss\n" + "".join(f"{step},{9.0 if step <= 2 else loss + seed / 100}\n" for step in (1, 2, 3, 4)))
    proc = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "parity.py"), "--summarize", str(first),
                           str(second), "--runs_dir", str(tmp_path / "runs")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "torch: SWD x1e3 mean 90.0 (90.0-90.0)" in proc.stdout, proc.stdout
    assert "dcgan_ms - torch: SWD -10.0" in proc.stdout and "SWD p = 0.10" in proc.stdout, proc.stdout
    assert "G's loss over the second half 3.020" in proc.stdout and "G's late loss p = 0.10" in proc.stdout, proc.stdout
