"""hubmgr.train.events: one base class, a class-level kind, JSON round trips, and the run registry's
metric history read from the event stream."""

from __future__ import annotations

from hubmgr.train.events import (
    CheckpointSaved,
    EvalLogged,
    EvalProgress,
    Event,
    StepLogged,
    TrainFinished,
    TrainStarted,
    event_from_dict,
    event_to_dict,
)


def _step(loss: float | None) -> StepLogged:
    return StepLogged(
        step=4,
        total_steps=10,
        epoch=0.5,
        loss=loss,
        learning_rate=0.001 if loss else None,
        samples_per_second=12.0,
        eta_seconds=3.0,
        grad_norm=None,
    )


def test_every_event_has_a_class_level_kind_and_round_trips_through_json() -> None:
    events = [
        TrainStarted(
            run_id="r",
            task="t",
            model="m",
            output_dir="o",
            total_steps=10,
            num_train_examples=8,
            num_eval_examples=2,
            trainable_params=1,
            total_params=2,
            device="cpu",
        ),
        _step(0.7),
        EvalLogged(step=4, epoch=0.5, metrics={"accuracy": 0.5}),
        CheckpointSaved(step=4, path="p"),
        TrainFinished(run_id="r", status="completed", output_dir="o"),
        EvalProgress(name="base", done=1, total=2),
    ]
    kinds = [type(e).kind for e in events]
    assert kinds == ["train_started", "step", "eval", "checkpoint", "train_finished", "eval_progress"]
    for event in events:
        assert isinstance(event, Event)
        data = event_to_dict(event)
        assert data["kind"] == event.kind and list(data)[-1] == "kind"  # the JSON-lines format keeps its shape
        assert event_from_dict(data) == event
    assert event_from_dict({"kind": "from-a-newer-hubmgr"}) is None
    assert event_from_dict({**event_to_dict(_step(0.5)), "new_field": 1}) == _step(0.5)


def test_history_points_are_what_the_registry_records() -> None:
    assert _step(0.7).history_point() == ("train", 4, {"loss": 0.7, "learning_rate": 0.001, "epoch": 0.5})
    assert _step(None).history_point() is None  # a progress tick between logging steps
    assert EvalLogged(step=8, epoch=1.0, metrics={"f1": 0.4}).history_point() == ("eval", 8, {"f1": 0.4})
    assert CheckpointSaved(step=4, path="p").history_point() is None


def test_the_run_store_records_the_event_stream(tmp_path) -> None:
    from hubmgr.runs.store import RunStore

    store = RunStore(tmp_path / "runs.db")
    run = store.create_run(
        run_id="20261203-120000-abcd", task="t", model="m", revision=None, config={}, output_dir=str(tmp_path / "o")
    )
    for event in (
        _step(0.7),
        _step(None),
        EvalLogged(step=4, epoch=0.5, metrics={"accuracy": 0.5}),
        CheckpointSaved(step=4, path="p"),
    ):
        store.record_event(run.id, event)
    points = [(p.split, p.step, p.name, p.value) for p in store.metrics_history(run.id)]
    assert sorted(points) == sorted(
        [
            ("train", 4, "loss", 0.7),
            ("train", 4, "learning_rate", 0.001),
            ("train", 4, "epoch", 0.5),
            ("eval", 4, "accuracy", 0.5),
        ]
    )
