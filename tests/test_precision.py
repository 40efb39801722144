"""--precision bf16: the compiled convolutions' matrix products in bfloat16 (kernels/conv.cc), against
their float32 forms; training that follows float32's and repeats itself; where it is refused or falls
back to float32, in one line."""
import json

import mindspore as ms
import numpy as np
import pytest

from conftest import run_cli
from dcgan_ms import config as config_module
from dcgan_ms import kernels
from dcgan_ms.errors import UserError
from dcgan_ms.kernels import choice
from dcgan_ms.layers import StridedConv2d, StridedConv2dTranspose, speed_up
from dcgan_ms.models import Discriminator, Generator, weight_init
from dcgan_ms.step import make_optimizers, make_train_step
from dcgan_ms.train import parse_args
from test_models import outputs_and_gradients

SHAPES = [(StridedConv2d, (3, 3, 64, 64), 8), (StridedConv2d, (37, 8, 8, 8), 16),
          (StridedConv2dTranspose, (37, 16, 4, 4), 8), (StridedConv2dTranspose, (2, 8, 32, 32), 3)]
IDS = ["conv-3ch-64px", "conv-37x8px", "convT-37x4px", "convT-to-3ch-64px"]


def pair(cls, cin, cout):
    """The compiled layer in float32 and in bf16, with the same weight."""
    ms.set_seed(2)
    fp32 = cls(cin, cout, weight_init=weight_init(), compiled=True)
    bf16 = cls(cin, cout, weight_init="zeros", compiled=True, precision="bf16")
    bf16.weight.set_data(fp32.weight.data.copy())
    return fp32, bf16


@pytest.mark.parametrize("cls, shape, cout", SHAPES, ids=IDS)
def test_bf16_kernels_and_both_gradients_follow_fp32_within_bf16s_rounding(cls, shape, cout):
    """Output, input gradient and weight gradient: off float32's by about bfloat16's rounding (2^-9
    relative per operand), no more, and not float32's to the bit (the bf16 products really ran)."""
    fp32, bf16 = pair(cls, shape[1], cout)
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.standard_normal(shape).astype(np.float32))
    probe = ms.Tensor(rng.standard_normal(fp32(x).shape).astype(np.float32))
    reference = outputs_and_gradients(fp32, x, probe, jit=True)
    values = outputs_and_gradients(bf16, x, probe, jit=True)
    for name, value, ref in zip(("output", "input gradient", "weight gradient"), values, reference):
        error = np.linalg.norm(value - ref) / np.linalg.norm(ref)
        assert 1e-4 < error < 1e-2, f"{name}: relative error {error:.1e}"


@pytest.mark.parametrize("cls, shape, cout", SHAPES[1:3], ids=IDS[1:3])
def test_values_bf16_holds_exactly_give_fp32s_results_exactly_and_a_nan_stays_a_nan(cls, shape, cout):
    """Small integers and eighths are exact in bfloat16 and their sums exact in float32: there the bf16
    kernels must equal the float32 ones bit for bit (the operands are rounded, not garbled). A NaN
    input gives NaN outputs, never infinities (rounding must not carry it into the exponent)."""
    fp32, bf16 = pair(cls, shape[1], cout)
    rng = np.random.default_rng(1)
    weight = ms.Tensor(rng.integers(-8, 9, fp32.weight.shape).astype(np.float32) / 8)
    fp32.weight.set_data(weight)
    bf16.weight.set_data(weight.copy())
    x = ms.Tensor(rng.integers(-4, 5, shape).astype(np.float32))
    probe = ms.Tensor(rng.integers(-4, 5, fp32(x).shape).astype(np.float32))
    for value, ref in zip(outputs_and_gradients(bf16, x, probe, jit=True),
                          outputs_and_gradients(fp32, x, probe, jit=True)):
        np.testing.assert_array_equal(value, ref)
    with_nan = x.asnumpy().copy()
    with_nan.view(np.uint32)[0, 0, 1, 1] = 0x7FFFFFFF  # a NaN whose low bits, rounded up, would carry over
    out = bf16(ms.Tensor(with_nan)).asnumpy()
    assert np.isnan(out).any() and not np.isinf(out).any()


def train(precision, steps=4):
    """Losses of ``steps`` train steps of small networks (the same weights, batches and noise whatever
    ``precision``), and G's weights after them."""
    ms.set_seed(4)
    g, d = Generator(16, 8), Discriminator(8)
    speed_up(g, "compiled", precision)
    speed_up(d, "compiled", precision)
    g.set_train()
    d.set_train()
    step = make_train_step(g, d, *make_optimizers(g, d))
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(steps):
        x = ms.Tensor(rng.uniform(-1, 1, (8, 3, 64, 64)).astype(np.float32))
        z = ms.Tensor(rng.standard_normal((8, 16, 1, 1)).astype(np.float32))
        losses.append([float(v) for v in step(x, z)])
    return np.array(losses), [p.asnumpy() for p in g.trainable_params()]


@pytest.fixture
def bf16_cpu(monkeypatch):
    """A CPU with bfloat16 instructions as far as dcgan_ms can tell (oneDNN emulates them elsewhere:
    the same results, slower)."""
    monkeypatch.setattr(choice, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})


@pytest.mark.slow  # 8 training steps, about 30 s on a CPU that emulates bf16
def test_bf16_training_follows_fp32_and_repeats_itself_to_the_bit(bf16_cpu):
    fp32, _ = train("fp32")
    bf16, weights = train("bf16")
    again, weights_again = train("bf16")
    np.testing.assert_array_equal(bf16, again)  # deterministic, as float32 is: resumes stay exact
    for a, b in zip(weights, weights_again):
        np.testing.assert_array_equal(a, b)
    relative = np.abs(bf16 - fp32) / np.abs(fp32)
    assert relative.max() < 0.05, relative  # losses and D's outputs: the same course, step by step
    assert relative.max() > 0  # and not float32's to the bit: bf16 ran


def test_a_cpu_without_bf16_instructions_trains_in_fp32_and_says_so(monkeypatch, capsys):
    choice._say_once.cache_clear()
    monkeypatch.setattr(choice, "cpu_flags", lambda: {"avx512f", "avx2"})
    assert kernels.matmul_precision("bf16", compiled=True) == "fp32"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no bfloat16 instructions (avx512_bf16 or amx_bf16)" in err[0]
    assert "training in fp32" in err[0]
    monkeypatch.setattr(choice, "cpu_flags", lambda: {"avx512f", "amx_bf16"})
    assert kernels.matmul_precision("bf16", compiled=True) == "bf16"
    assert kernels.matmul_precision("fp32", compiled=True) == "fp32"
    choice._say_once.cache_clear()
    assert kernels.matmul_precision("bf16", compiled=False) == "fp32"  # MindSpore's layers: no bf16 kernels
    assert "not in use: training in fp32" in capsys.readouterr().err


@pytest.mark.parametrize("flags, says", [
    (["--conv", "builtin"], "--precision bf16 runs in the compiled kernels, which --conv builtin turns off"),
    (["--device_target", "GPU"], "--precision bf16 is for CPUs (dcgan_ms's compiled kernels), not GPU"),
    (["--device_target", "Ascend"], "not Ascend: use --precision fp32"),
])
def test_bf16_where_it_cannot_run_is_refused_in_one_line(flags, says):
    with pytest.raises(UserError, match=says.replace("(", r"\(").replace(")", r"\)")):
        parse_args(["--dataset", "sample", "--precision", "bf16", *flags])


def test_precision_defines_the_run_and_runs_recorded_before_it_were_fp32():
    """Changing --precision on --resume is refused like other run flags; a run whose record predates the
    flag (and --resize) resumes as it trained: fp32, bilinear."""
    saved = parse_args(["--dataset", "sample", "--precision", "bf16"]).flags()
    again = config_module.resumed(parse_args(["--dataset", "sample"]), saved)
    assert again.precision == "bf16"
    with pytest.raises(UserError, match="--precision fp32 differs from the run being resumed"):
        config_module.resumed(parse_args(["--dataset", "sample", "--precision", "fp32"]), saved)
    old = {k: v for k, v in saved.items() if k not in ("precision", "resize")}
    before = config_module.resumed(parse_args(["--dataset", "sample"]), old)
    assert (before.precision, before.resize) == ("fp32", "bilinear")
    with pytest.raises(UserError, match="--resize antialias differs from the run being resumed"):
        config_module.resumed(parse_args(["--dataset", "sample", "--resize", "antialias"]), old)


@pytest.mark.slow
def test_a_bf16_run_records_its_precision_and_resume_continues_it(tmp_path, flat_images):
    out = tmp_path / "run"
    common = ["dcgan_ms.train", "--data_root", flat_images, "--batch_size", "8", "--ngf", "8", "--ndf", "8",
              "--output_dir", str(out), "--no_progress"]
    proc = run_cli(*common, "--precision", "bf16", "--max_steps", "2")
    assert proc.returncode == 0, proc.stderr
    assert json.load(open(out / "config.json"))["precision"] == "bf16"
    proc = run_cli(*common, "--resume", "--precision", "fp32", "--max_steps", "4")
    assert proc.returncode == 2 and proc.stderr.strip().endswith(
        "--precision fp32 differs from the run being resumed (bf16): leave it out to continue that run, or start a "
        "new one in another --output_dir"), proc.stderr
    proc = run_cli(*common, "--resume", "--max_steps", "4")
    assert proc.returncode == 0, proc.stderr
    assert "done: 2 steps" in proc.stderr
