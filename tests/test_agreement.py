"""How the ranks of a data-parallel run agree (``distributed.Agreement``, ``agree_to_start``), with the
all-reduce replaced by a stand-in that adds what the other rank would send; the real one runs in
test_distributed.py under msrun."""
import numpy as np
import pytest

from dcgan_ms import distributed
from dcgan_ms.distributed import Agreement, agree_to_start
from dcgan_ms.errors import UserError
from dcgan_ms.loop import AGREED, Stop, StopTraining, train_loop
from conftest import FakeStep, Recorder, noise


class OtherRank:
    """Stands in for ``sum_over_devices``: adds rank 1's word, which asks for ``reason`` from call ``at``."""

    def __init__(self, reason=None, at=0):
        self.reason, self.at, self.calls = reason, at, 0

    def __call__(self, word):
        other = np.zeros_like(word)
        self.calls += 1
        if self.reason is not None and self.calls > self.at and len(word) == 2 * len(AGREED) + 1:
            i = AGREED.index(self.reason)
            other[2 * i:2 * i + 2] = 1, 1  # one rank asks: rank 1
        return np.asarray(word, np.float32) + other


def test_a_stop_asked_on_another_rank_is_this_ranks_stop_too(monkeypatch):
    monkeypatch.setattr(distributed, "sum_over_devices", OtherRank(Stop.DATA_ERROR))
    agreement = Agreement(rank=0, devices=2)
    stop = agreement.combine()
    assert (stop.reason, stop.save) == (Stop.DATA_ERROR, True)
    assert stop.message == "rank 1 could not decode an image of its shard (its log names the file)"


def test_the_most_pressing_stop_wins_and_a_rank_keeps_its_own_message(monkeypatch):
    monkeypatch.setattr(distributed, "sum_over_devices", OtherRank(Stop.INTERRUPTED))
    agreement = Agreement(rank=0, devices=2)
    own = StopTraining(Stop.NON_FINITE_LOSS, "losses became non-finite at step 7 (G nan, D 0.5)")
    agreement.request(own)
    assert agreement.combine() is own
    monkeypatch.setattr(distributed, "sum_over_devices", OtherRank(Stop.NON_FINITE_LOSS))
    stop = Agreement(rank=0, devices=2).combine()
    assert (stop.reason, stop.save, stop.message) == (Stop.NON_FINITE_LOSS, False, "losses became non-finite on rank 1")


def test_the_clock_is_rank_0s_on_every_rank(monkeypatch):
    monkeypatch.setattr(distributed, "sum_over_devices", OtherRank())
    lead, other = Agreement(rank=0, devices=2), Agreement(rank=1, devices=2)
    assert lead.clock() == other.clock() == 0.0  # before the first step: the same start
    lead.started -= 90
    assert lead.combine() is None and 90 <= lead.clock() < 100
    assert other.combine() is None and other.clock() == 0.0  # its own clock is not sent: rank 0's alone counts


def test_every_rank_stops_after_the_step_where_another_rank_asked(monkeypatch, dataset):
    monkeypatch.setattr(distributed, "sum_over_devices", OtherRank(Stop.INTERRUPTED, at=2))  # 1 call at start, 1 a step
    recorder = Recorder()
    stop = train_loop(FakeStep(), dataset, total_steps=9, noise=noise(), callbacks=[recorder],
                      agreement=Agreement(rank=0, devices=2))
    assert stop.reason is Stop.INTERRUPTED and stop.save
    assert [e[1] for e in recorder.events if e[0] == "step"] == [1, 2]  # step 2 ran, and was told, everywhere
    assert recorder.events[-1] == ("end", 2, "interrupted")


def test_a_callbacks_stop_waits_for_the_next_agreement(monkeypatch, dataset):
    """On one rank a callback's stop (Ctrl-C seen after step 2) is requested, not taken: the ranks agree at
    the next step, and all stop after it."""
    monkeypatch.setattr(distributed, "sum_over_devices", OtherRank())

    class StopAt2(Recorder):
        def on_step_end(self, position, losses, real_imgs):
            super().on_step_end(position, losses, real_imgs)
            if position.step == 2:
                raise StopTraining(Stop.INTERRUPTED)

    recorder = StopAt2()
    stop = train_loop(FakeStep(), dataset, total_steps=9, noise=noise(), callbacks=[recorder],
                      agreement=Agreement(rank=1, devices=2))
    assert stop.reason is Stop.INTERRUPTED and recorder.events[-1] == ("end", 3, "interrupted")


def test_a_rank_that_cannot_start_stops_every_rank(monkeypatch):
    monkeypatch.setattr(distributed, "sum_over_devices", lambda word: np.asarray(word) + np.array([1, 0, 0, -1]))
    with pytest.raises(UserError, match=r"^rank\(s\) 0 could not start"):  # rank 0 failed: rank 1 hears it
        agree_to_start(1, 2, None, None)
    own = UserError("no readable checkpoint in runs/x/checkpoints")
    with pytest.raises(UserError) as raised:
        agree_to_start(1, 2, own, None)
    assert raised.value is own


def test_ranks_resuming_from_different_checkpoints_are_refused(monkeypatch):
    monkeypatch.setattr(distributed, "sum_over_devices", lambda word: np.asarray(word) + np.array([0, 0, 30, 0]))
    with pytest.raises(UserError, match=r"do not see the same resume checkpoint \(rank 0: step 30, rank 1: no "
                                        r"checkpoint\): every node must read the same --output_dir"):
        agree_to_start(1, 2, None, None)
    agree_to_start(1, 2, None, 30)  # the same step on both: no error


def test_a_rank_joins_the_cluster_after_choosing_its_device_and_before_any_operator(monkeypatch):
    """MindSpore's documented order (communication.init before any operator, needed on Ascend)."""
    from dcgan_ms import runtime, session
    from dcgan_ms.config import TrainConfig
    calls = []
    monkeypatch.setattr(distributed, "require_msrun", lambda: calls.append("msrun checked"))
    monkeypatch.setattr(runtime, "select_device", lambda target, device_id=None: calls.append(f"select {target}"))
    monkeypatch.setattr(distributed, "init_distributed", lambda: calls.append("init") or (0, 2))

    def first_operator(target):
        calls.append("first operator")
        raise UserError("stop here")

    monkeypatch.setattr(runtime, "check_device", first_operator)
    with pytest.raises(UserError, match="stop here"):
        session.setup(TrainConfig(dataset="sample", distributed=True, device_target="Ascend", output_dir="unused"))
    assert calls == ["msrun checked", "select Ascend", "init", "first operator"]


def test_the_all_reduce_is_compiled_once_per_process():
    assert distributed._summed() is distributed._summed()


def test_the_ranks_of_a_run_say_what_differs_between_them():
    """One process writes, trains on every image, logs to log.csv and stops alone; a rank of msrun's
    run (here rank 1 of 2) trains its shard, logs to its own file, agrees with the others and averages
    BatchNorm's statistics before every save; rank 0 writes."""
    from dcgan_ms.distributed import Ranks
    from dcgan_ms.loop import Alone
    alone, other, lead = Ranks(), Ranks(1, 2, parallel=True), Ranks(0, 2, parallel=True)
    assert (alone.writes, alone.shard(), alone.log_name(), alone.before_save(())) == (True, {}, "log.csv", None)
    assert type(alone.agreement()) is Alone
    assert (other.writes, other.shard(), other.log_name()) == (False, {"num_shards": 2, "shard_id": 1}, "log_rank1.csv")
    assert isinstance(other.agreement(), Agreement) and other.before_save(()).args == ((), 2)
    assert lead.writes and lead.log_name() == "log_rank0.csv"
