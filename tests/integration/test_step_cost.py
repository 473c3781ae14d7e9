"""hubmgr's Trainer walks only the trainable parameters on each step (zero_grad, gradient clipping, the FLOP
count): what it does must stay what transformers' Trainer does, only cheaper."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubmgr.train.config import TrainConfig
from tests.integration.test_train import write_reviews


def test_each_step_starts_from_cleared_gradients_and_the_model_is_left_as_it_was(
    hf_env, tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    import hubmgr
    from hubmgr.train import _trainer

    seen: dict[str, list] = {"dirty": [], "clipped_sizes": [], "flops": [], "numel": []}
    made: list = []
    original_init = _trainer.HubmgrTrainer.__init__

    def spy_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        made.append(self)

        class Watch(transformers.TrainerCallback):
            def on_step_begin(self_cb, args, state, control, **kw):
                model = made[0].model
                seen["dirty"].append(sum(1 for p in model.parameters() if p.grad is not None))

        self.add_callback(Watch())

    original_clip = _trainer.HubmgrTrainer._clip_grad_norm

    def spy_clip(self, model):
        seen["clipped_sizes"].append(len(self._trainable_parameters()))
        return original_clip(self, model)

    original_flops = _trainer.HubmgrTrainer.floating_point_ops

    def spy_flops(self, inputs):
        value = original_flops(self, inputs)
        seen["flops"].append(value)
        seen["numel"].append(int(inputs["input_ids"].numel()))
        return value

    monkeypatch.setattr(_trainer.HubmgrTrainer, "__init__", spy_init)
    monkeypatch.setattr(_trainer.HubmgrTrainer, "_clip_grad_norm", spy_clip)
    monkeypatch.setattr(_trainer.HubmgrTrainer, "floating_point_ops", spy_flops)
    data = write_reviews(tmp_path / "train.csv", 48)
    result = hubmgr.train(
        TrainConfig(
            task="text-classification",
            model=str(tiny_bert),
            data=str(data),
            output_dir=str(tmp_path / "out"),
            max_steps=4,
            batch_size=8,
            eval_fraction=0.0,
            learning_rate=5e-3,
        )
    )
    assert result.status == "completed"
    trainer = made[0]
    model = trainer.model
    trainable = [p for p in model.parameters() if p.requires_grad]
    # every step began with no gradient left over from the one before
    assert seen["dirty"] == [0, 0, 0, 0]
    # clipping saw exactly the trainable parameters, fewer than all of them
    assert seen["clipped_sizes"] == [len(trainable)] * 4
    assert len(trainable) < len(list(model.parameters()))
    # the FLOP count is the Trainer's formula
    per_token = 6 * model.num_parameters(exclude_embeddings=True)
    assert seen["flops"] == [per_token * n for n in seen["numel"]]
    assert trainer.state.total_flos == pytest.approx(sum(seen["flops"]), rel=1e-6)
    # the instance-level zero_grad is gone once training ends
    assert "zero_grad" not in model.__dict__
    model.zero_grad()  # the module's own method again
