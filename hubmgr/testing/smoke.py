"""A smoke test for task plugins: train a few steps, evaluate base against adapter, load it with plain peft.

Plugin authors call it from their own tests::

    from hubmgr.testing import smoke_test_task, tiny_bert_dir

    def test_my_task(tmp_path):
        model = tiny_bert_dir(tmp_path / "model")
        result = smoke_test_task(MyTask, model_dir=model, train_file="tests/data/train.csv", tmp_dir=tmp_path)
        assert result["eval"]["adapter"]["rmse"] >= 0

Every check failure raises ``AssertionError`` with a message saying what is wrong; errors hubmgr raises
itself (a bad option, a missing column) propagate as they are. torch, transformers and peft load inside
the function.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.task import Task

__all__ = ["smoke_test_task"]


def _make_plugin(task_cls: "type[Task]") -> object:
    from hubmgr.hookspecs import hookimpl

    class Plugin:
        @hookimpl
        def register_tasks(self, register: "Callable[[type[Task]], None]") -> None:
            register(task_cls)

    return Plugin()


def _resolve(task: "str | type[Task]") -> tuple[str, "type[Task]", bool]:
    """(task name, task class, whether it must be registered for the duration)."""
    from hubmgr.plugins import get_task, get_tasks, normalize_task_name
    from hubmgr.task import Task

    if isinstance(task, str):
        cls = type(get_task(task))  # PluginError for an unknown name
        return cls.name, cls, False
    if not (isinstance(task, type) and issubclass(task, Task)):
        raise TypeError(f"smoke_test_task() takes a task name or a Task subclass, not {task!r}")
    if not task.name:
        raise AssertionError(f"Task class {task.__name__} has no name (set the class attribute `name`).")
    for name, cls in get_tasks().items():
        if normalize_task_name(name) == normalize_task_name(task.name):
            if cls is task:
                return name, task, False
            raise AssertionError(
                f"The task name {task.name!r} is already registered by {cls.__module__}.{cls.__qualname__};"
                f" {task.__module__}.{task.__qualname__} needs another name."
            )
    return task.name, task, True


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def smoke_test_task(
    task: "str | type[Task]",
    *,
    model_dir: str | os.PathLike[str],
    train_file: str | os.PathLike[str],
    eval_file: str | os.PathLike[str] | None = None,
    options: dict[str, Any] | None = None,
    max_steps: int = 3,
    tmp_dir: str | os.PathLike[str],
    batch_size: int = 8,
    max_length: int = 64,
    train_overrides: dict[str, Any] | None = None,
    predict_inputs: list[Any] | None = None,
) -> dict[str, Any]:
    """Train a task for a few steps with hubmgr's engine, evaluate it, and load the adapter with plain peft.

    A task class that no installed plugin registers is registered for the duration through a plugin
    object that implements ``register_tasks`` (as an installed plugin would).

    Checks, each an ``AssertionError`` with a clear message when it fails:

    1. training completes and writes ``adapter_config.json`` and ``adapter_model.safetensors``;
    2. the adapter's LoRA weights moved away from their zero start (training updated them);
    3. ``evaluate`` scores the base model and the adapter, and every metric is a finite number
       (``nan`` is allowed only where the base row has it too, such as a correlation of constants);
    4. ``peft.PeftModel.from_pretrained`` on a freshly loaded base (the task's ``load_model``) loads
       exactly the saved tensors, and a forward pass on a collated batch gives finite outputs;
    5. with ``predict_inputs``, ``predict`` on the loaded adapter returns one prediction per input.

    Args:
        task: a registered task name, or a Task subclass (registered temporarily when needed).
        model_dir: a local model folder (e.g. :func:`hubmgr.testing.tiny_bert_dir`).
        train_file: training data (file or folder).
        eval_file: evaluation data (default: the training data is evaluated).
        options: task options, e.g. ``{"text_column": "sentence"}``.
        max_steps: optimizer steps to train.
        tmp_dir: a folder for the adapter and an isolated hubmgr data dir (run registry).
        batch_size: training batch size.
        max_length: truncation length.
        train_overrides: other :class:`hubmgr.train.config.TrainConfig` fields (``learning_rate``...).
        predict_inputs: raw inputs for the task's ``predict`` (texts, pairs...); None skips that check.

    Returns:
        ``{"task", "adapter_path", "train_metrics", "global_step", "eval": {"base": {...}, "adapter": {...}},
        "eval_extras": {"base": {...}, "adapter": {...}} (what extra_eval returned), "eval_tables" (the
        per-label metrics compute_metrics returned, the same way), "eval_warnings", "main_metric",
        "peft": {"tensors", "lora_tensors", "output_shape"},
        "predictions", "seconds"}``.

    Raises:
        AssertionError: a check above failed.
        HubmgrError: hubmgr refused the input (bad options, data or model) as it would for a user.
    """
    from hubmgr.plugins import registered

    t0 = time.perf_counter()
    name, task_cls, needs_registration = _resolve(task)
    tmp = Path(tmp_dir)
    tmp.mkdir(parents=True, exist_ok=True)
    if needs_registration:
        with registered(_make_plugin(task_cls), name=f"smoke-test-{name}"):
            result = _run(
                name,
                task_cls,
                model_dir=model_dir,
                train_file=train_file,
                eval_file=eval_file,
                options=options,
                max_steps=max_steps,
                tmp=tmp,
                batch_size=batch_size,
                max_length=max_length,
                train_overrides=train_overrides,
                predict_inputs=predict_inputs,
            )
    else:
        result = _run(
            name,
            task_cls,
            model_dir=model_dir,
            train_file=train_file,
            eval_file=eval_file,
            options=options,
            max_steps=max_steps,
            tmp=tmp,
            batch_size=batch_size,
            max_length=max_length,
            train_overrides=train_overrides,
            predict_inputs=predict_inputs,
        )
    result["seconds"] = round(time.perf_counter() - t0, 2)
    return result


def _run(
    name: str,
    task_cls: "type[Task]",
    *,
    model_dir: str | os.PathLike[str],
    train_file: str | os.PathLike[str],
    eval_file: str | os.PathLike[str] | None,
    options: dict[str, Any] | None,
    max_steps: int,
    tmp: Path,
    batch_size: int,
    max_length: int,
    train_overrides: dict[str, Any] | None,
    predict_inputs: list[Any] | None,
) -> dict[str, Any]:
    from hubmgr.config import get_settings
    from hubmgr.eval.runner import evaluate
    from hubmgr.train.config import TrainConfig
    from hubmgr.train.runner import train

    settings = get_settings().with_(data_dir=tmp / "hubmgr-home")
    out = tmp / f"smoke-{name}-adapter"
    i = 2
    while out.exists():
        out, i = tmp / f"smoke-{name}-adapter-{i}", i + 1
    values: dict[str, Any] = {
        "task": name,
        "model": str(model_dir),
        "data": str(train_file),
        "eval_data": str(eval_file) if eval_file is not None else None,
        "options": dict(options or {}),
        "max_steps": max_steps,
        "batch_size": batch_size,
        "max_length": max_length,
        "eval_strategy": "no",
        "save_steps": 0,
        "logging_steps": 1,
        "warmup": 0,
        "seed": 0,
        "output_dir": str(out),
    }
    values.update(train_overrides or {})
    config = TrainConfig(**values)

    # 1. train
    result = train(config, settings=settings)
    assert result.status == "completed", f"Training of task {name!r} ended with status {result.status!r}."
    adapter = Path(result.adapter_path or result.output_dir or out)
    for needed in ("adapter_config.json", "adapter_model.safetensors"):
        assert (adapter / needed).is_file(), f"Training of task {name!r} did not write {needed} in {adapter}."
    assert result.global_step >= 1, f"Training of task {name!r} did no optimizer step."

    # 2. the LoRA weights moved
    from safetensors.torch import load_file

    saved = load_file(str(adapter / "adapter_model.safetensors"))
    lora_b = {k: v for k, v in saved.items() if "lora_B" in k}
    assert lora_b, (
        f"The adapter of task {name!r} holds no LoRA weights (no lora_B tensors in adapter_model.safetensors)."
    )
    assert any(bool(v.abs().sum() > 0) for v in lora_b.values()), (
        f"Training of task {name!r} left every LoRA B matrix at zero: the adapter did not learn anything"
        " (is the loss connected to the model's output?)."
    )

    # 3. evaluate base vs adapter
    report = evaluate(
        str(model_dir),
        [str(adapter)],
        task=name,
        data=str(eval_file or train_file),
        options=options,
        max_length=max_length,
        device="cpu",
        settings=settings,
    )
    assert len(report.rows) == 2, f"evaluate() returned {len(report.rows)} rows for base + 1 adapter, not 2."
    base_row, adapter_row = report.rows
    assert report.main_metric in adapter_row.metrics, (
        f"Task {name!r} declares main_metric {report.main_metric!r}, but compute_metrics returned only"
        f" {', '.join(adapter_row.metrics) or 'nothing'}."
    )
    for metric, value in adapter_row.metrics.items():
        if (
            isinstance(value, float)
            and math.isnan(value)
            and isinstance(base_row.metrics.get(metric), float)
            and math.isnan(base_row.metrics[metric])
        ):
            continue
        assert _finite(value), f"Metric {metric!r} of task {name!r} is {value!r} after training, not a finite number."
    assert _finite(adapter_row.metrics[report.main_metric]), (
        f"The main metric {report.main_metric!r} of task {name!r} is {adapter_row.metrics[report.main_metric]!r}."
    )

    # 4. plain peft on a freshly loaded base
    peft_info, predictions = _check_plain_peft(
        task_cls,
        name,
        model_dir=model_dir,
        adapter=adapter,
        saved=saved,
        train_file=train_file,
        eval_file=eval_file,
        options=options,
        max_length=max_length,
        predict_inputs=predict_inputs,
    )
    return {
        "task": name,
        "adapter_path": str(adapter),
        "train_metrics": dict(result.metrics),
        "global_step": result.global_step,
        "eval": {"base": dict(base_row.metrics), "adapter": dict(adapter_row.metrics)},
        "eval_extras": {"base": dict(base_row.extras), "adapter": dict(adapter_row.extras)},
        "eval_tables": {"base": dict(base_row.tables), "adapter": dict(adapter_row.tables)},
        "eval_warnings": list(report.warnings),
        "main_metric": report.main_metric,
        "peft": peft_info,
        "predictions": predictions,
    }


def _check_plain_peft(
    task_cls: "type[Task]",
    name: str,
    *,
    model_dir: str | os.PathLike[str],
    adapter: Path,
    saved: dict[str, Any],
    train_file: str | os.PathLike[str],
    eval_file: str | os.PathLike[str] | None,
    options: dict[str, Any] | None,
    max_length: int,
    predict_inputs: list[Any] | None,
) -> tuple[dict[str, Any], list[Any]]:
    import inspect

    import torch
    from peft import PeftModel
    from peft.utils import get_peft_model_state_dict

    from hubmgr.task import DataSource

    task_obj = task_cls()
    opts = task_obj.make_options(options)
    data = task_obj.load_data(
        DataSource(train=str(train_file), eval=str(eval_file) if eval_file is not None else None, eval_fraction=0.0),
        opts,
    )
    # The label set the adapter was trained with (written by the engine), as evaluate() does.
    try:
        from hubmgr.eval.adapters import read_adapter_info

        info = read_adapter_info(adapter, name="adapter")
        if getattr(info, "data_info", None):
            data.info.update(info.data_info)
    except Exception:  # the folder may lack the run files; the task's own info is then used
        pass
    base, processor = task_obj.load_model(str(model_dir), opts, data, {"local_files_only": True})
    try:
        model = PeftModel.from_pretrained(base, str(adapter), is_trainable=False)
    except Exception as exc:
        raise AssertionError(f"peft could not load the adapter of task {name!r} from {adapter}: {exc}") from exc
    loaded = get_peft_model_state_dict(model)
    missing = sorted(set(saved) - set(loaded))
    assert not missing, f"peft did not load these saved tensors of task {name!r}: {', '.join(missing[:5])}."
    differ = [k for k, v in saved.items() if not torch.equal(loaded[k].detach().cpu().to(v.dtype), v)]
    assert not differ, f"peft loaded different values than saved for task {name!r}: {', '.join(differ[:5])}."

    # a forward pass on a collated batch of real examples
    dataset = data.eval if data.eval is not None else data.train
    assert dataset is not None, f"task {name!r} loaded no data from {train_file}."
    dataset = dataset.select(range(min(4, len(dataset))))
    processed = task_obj.preprocess(dataset, processor, opts, max_length, data)
    params = inspect.signature(model.get_base_model().forward).parameters
    keep = {n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    # what training hands the collator: the model's inputs and labels (the ``length`` column dropped)
    features = [{k: v for k, v in row.items() if k in keep} for row in processed]
    batch = task_obj.collator(processor, opts)(features)
    batch = {k: v for k, v in batch.items() if k in keep}
    model.eval()
    with torch.no_grad():
        output = model(**batch)
    logits = output.logits if hasattr(output, "logits") else output[0]
    assert torch.isfinite(logits.float()).all(), f"The adapter of task {name!r} gives non-finite outputs."

    predictions: list[Any] = []
    if predict_inputs is not None:
        predictions = list(task_obj.predict(model, processor, list(predict_inputs), opts, data))
        assert len(predictions) == len(predict_inputs), (
            f"predict() of task {name!r} returned {len(predictions)} predictions for {len(predict_inputs)} inputs."
        )
    return (
        {"tensors": len(saved), "lora_tensors": sum("lora_" in k for k in saved), "output_shape": list(logits.shape)},
        predictions,
    )
