"""hubmgr.device: one rule for the device of training, evaluation and predict."""

from __future__ import annotations

import pytest

from hubmgr.device import pick_device
from hubmgr.errors import UsageError


def test_auto_is_the_cpu_without_a_gpu_and_a_missing_gpu_is_one_clear_error(monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == "cpu" and pick_device(None) == "cpu" and pick_device(" CPU ") == "cpu"
    for wanted in ("cuda", "cuda:1"):
        with pytest.raises(UsageError, match="no CUDA GPU"):
            pick_device(wanted)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == "cuda" and pick_device("cuda:1") == "cuda:1"
    monkeypatch.setenv("ACCELERATE_USE_CPU", "1")  # accelerate launch --cpu
    assert pick_device("auto") == "cpu"


def test_training_and_evaluation_ask_the_same_rule(monkeypatch) -> None:
    import hubmgr.device
    from hubmgr.eval import runner as eval_runner
    from hubmgr.train import runner as train_runner
    from hubmgr.train.config import TrainConfig

    from hubmgr.eval import loading

    # evaluation, predict and merge load through hubmgr.eval.loading, which is hubmgr.device's rule
    assert eval_runner.pick_device is loading.pick_device is hubmgr.device.pick_device
    calls = []
    monkeypatch.setattr(
        hubmgr.device, "pick_device", lambda wanted, world_size=1: calls.append((wanted, world_size)) or "x"
    )
    assert (
        train_runner._pick_device(
            TrainConfig(task="t", model="m", data="d", device="cpu"), train_runner._Dist(world_size=2)
        )
        == "x"
    )
    assert calls == [("cpu", 2)]
