"""The training loop's contract with its callbacks, on a real (tiny) dataset and a stand-in train step,
and the shape the loop keeps so that a learner can read it."""
import ast
import glob
import inspect
import os

import numpy as np
import pytest

from conftest import REPO, FakeStep, Recorder, noise
from dcgan_ms.loop import Callback, Position, Stop, StopTraining, train_loop


def test_steps_epochs_and_the_end_are_told_in_order(dataset):
    recorder = Recorder()
    assert train_loop(FakeStep(), dataset, total_steps=5, noise=noise(), callbacks=[recorder]) is None
    steps = [e[1:4] for e in recorder.events if e[0] == "step"]
    assert steps == [(1, 1, 1), (2, 1, 2), (3, 1, 3), (4, 2, 1), (5, 2, 2)]
    kinds = [e[0] for e in recorder.events]
    assert kinds == ["begin", "step", "step", "step", "epoch", "step", "step", "epoch", "end"]
    assert recorder.events[-1] == ("end", 5, None)  # the last epoch ends early, and is told so
    assert all(e[4] == (8, 3, 64, 64) for e in recorder.events if e[0] == "step")


def test_noise_is_a_function_of_the_step_so_a_resumed_loop_draws_the_same(dataset):
    whole, resumed = FakeStep(), FakeStep()
    train_loop(whole, dataset, total_steps=5, noise=noise(seed=3))
    train_loop(resumed, dataset, total_steps=5, noise=noise(seed=3),
               position=Position(step=2, epoch=1, step_in_epoch=2))
    assert len(resumed.z) == 3
    for a, b in zip(whole.z[2:], resumed.z):
        np.testing.assert_array_equal(a, b)
    other_rank = FakeStep()
    train_loop(other_rank, dataset, total_steps=1, noise=noise(seed=3, rank=1))
    assert not np.array_equal(other_rank.z[0], whole.z[0])


def test_instance_noise_fades_linearly_over_its_steps_and_z_does_not(dataset):
    steady, fading = FakeStep(), FakeStep()
    train_loop(steady, dataset, total_steps=6, noise=noise(seed=3, instance_noise=0.1))
    train_loop(fading, dataset, total_steps=6, noise=noise(seed=3, instance_noise=0.1, fade_steps=4))
    for step in range(6):
        np.testing.assert_array_equal(fading.z[step], steady.z[step])
        assert len(fading.noise[step]) == 3 and fading.noise[step][0].shape == (8, 3, 64, 64)
        for a, b in zip(fading.noise[step], steady.noise[step]):
            np.testing.assert_allclose(a, b * max(0.0, 1 - step / 4), rtol=1e-6)
    assert 0.09 < np.std(steady.noise[5][0]) < 0.11 and not np.any(fading.noise[5][0])  # std sigma; faded by step 4
    none = FakeStep()
    train_loop(none, dataset, total_steps=1, noise=noise(seed=3, fade_steps=4))
    assert none.noise == [[]]  # no instance noise: the step takes none, however it would fade


def test_a_callback_stops_training_and_every_callback_hears_why(dataset):
    class StopAtTwo(Callback):
        def on_step_end(self, position, losses, real_imgs):
            if position.step == 2:
                raise StopTraining(Stop.INTERRUPTED)

    recorder = Recorder()
    stop = train_loop(FakeStep(), dataset, total_steps=9, noise=noise(), callbacks=[recorder, StopAtTwo()])
    assert stop.reason is Stop.INTERRUPTED and stop.save
    assert [e[0] for e in recorder.events] == ["begin", "step", "step", "end"]
    assert recorder.events[-1] == ("end", 2, "interrupted")


def test_a_non_finite_loss_stops_before_the_step_is_counted(dataset):
    recorder = Recorder()
    stop = train_loop(FakeStep(bad_at=4), dataset, total_steps=9, noise=noise(), callbacks=[recorder])
    assert stop.reason is Stop.NON_FINITE_LOSS and not stop.save
    assert stop.message.startswith("losses became non-finite at step 4 (G nan, D 0.6)")
    assert recorder.events[-1] == ("end", 3, "non-finite loss")


def test_a_failure_closes_the_callbacks_and_is_raised(dataset):
    class Boom(Callback):
        def on_epoch_end(self, position):
            raise OSError("disk full")

    recorder = Recorder()
    with pytest.raises(OSError, match="disk full"):
        train_loop(FakeStep(), dataset, total_steps=9, noise=noise(), callbacks=[recorder, Boom()])
    assert recorder.events[-1] == ("end", 3, "failed")


def test_the_loop_reads_in_one_screen_and_no_function_is_long():
    source = inspect.getsource(train_loop)
    assert len(source.splitlines()) <= 45, "the loop should read in one screen"
    assert "open(" not in source and "print(" not in source, "the loop does no I/O: callbacks do"
    long = []
    for path in glob.glob(os.path.join(REPO, "dcgan_ms", "**", "*.py"), recursive=True):
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long.append(f"{os.path.relpath(path, REPO)}:{node.lineno} {node.name}")
    assert not long, f"functions over 60 lines: {long}"
