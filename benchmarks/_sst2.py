"""The two ways of training on SST-2 that several benchmarks compare, each run inside an arm process.

* :func:`trainer_run` - a plain script with transformers' ``Trainer`` (and peft for LoRA), the way
  common tutorials write it: every example padded to ``max_length`` (128), random batches. The same
  function also trains a randomly initialised model in full (data-efficiency benchmark) and can use
  dynamic padding with length-grouped batches.
* :func:`hubmgr_run` - ``hubmgr.train(hubmgr.TrainConfig(...))`` with the defaults a user gets;
  only what the benchmark names is set.

Both return a dict with the training-loop time (first step begins -> last step ends, evaluation
excluded), samples/s, the evaluations seen (time, step, accuracy) and the final dev accuracy.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

TUTORIAL_LORA = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.1, "target_modules": ["query", "value"]}


def text_label_rows(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                rows.append({"text": row["text"], "label": int(row["label"])})
                if limit is not None and len(rows) >= limit:
                    break
    return rows


def trainer_run(
    model_path: str,
    train_path: Path,
    dev_path: Path,
    *,
    out_dir: Path,
    epochs: float = 1.0,
    batch_size: int = 32,
    learning_rate: float = 3e-4,
    max_length: int = 128,
    padding: str = "max_length",
    group_by_length: bool = False,
    lora: bool = True,
    random_init: bool = False,
    warmup_ratio: float = 0.0,
    eval_steps: int | None = None,
    eval_each_epoch: bool = False,
    stop_at_accuracy: float | None = None,
    max_seconds: float | None = None,
    seed: int = 42,
    t_process: float | None = None,
) -> dict[str, Any]:
    """Train with a plain ``Trainer``; evaluate on dev at the end (and every ``eval_steps`` if given).

    Args:
        padding: ``"max_length"`` (tutorial style) or ``"longest"`` (dynamic, by the collator).
        group_by_length: length-grouped batches (transformers' ``train_sampling_strategy``).
        lora: wrap the model with peft LoRA (``TUTORIAL_LORA``); False trains every weight.
        random_init: build the model from its config with random weights (same architecture).
        stop_at_accuracy: stop once a dev evaluation reaches it (time-to-accuracy).
        max_seconds: stop training after this many seconds of the loop.
        t_process: ``time.perf_counter()`` at process start, to time evaluations from there.
    """
    import numpy as np
    import torch
    from datasets import Dataset
    from transformers import (
        AutoConfig,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    t_process = t_process if t_process is not None else time.perf_counter()
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    train_rows = text_label_rows(train_path)
    dev_rows = text_label_rows(dev_path)

    def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
        if padding == "max_length":
            return tokenizer(batch["text"], padding="max_length", truncation=True, max_length=max_length)
        return tokenizer(batch["text"], truncation=True, max_length=max_length)

    train_ds = Dataset.from_list(train_rows).map(encode, batched=True, remove_columns=["text"])
    dev_ds = Dataset.from_list(dev_rows).map(encode, batched=True, remove_columns=["text"])
    if group_by_length:
        train_ds = train_ds.map(lambda b: {"length": [len(x) for x in b["input_ids"]]}, batched=True)
    if random_init:
        config = AutoConfig.from_pretrained(model_path, num_labels=2)
        model = AutoModelForSequenceClassification.from_config(config)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    if lora:
        from peft import LoraConfig, TaskType, get_peft_model

        model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, **TUTORIAL_LORA))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    evals: list[dict[str, Any]] = []
    timing: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):  # noqa: ANN001
            timing["begin"] = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
            timing["last_step_end"] = time.perf_counter()
            timing["steps"] = state.global_step
            if max_seconds is not None and time.perf_counter() - timing["begin"] > max_seconds:
                control.should_training_stop = True

        def on_evaluate(self, args, state, control, metrics=None, **kw):  # noqa: ANN001
            acc = (metrics or {}).get("eval_accuracy")
            evals.append(
                {
                    "t_process": time.perf_counter() - t_process,
                    "step": state.global_step,
                    "samples": state.global_step * batch_size,
                    "accuracy": acc,
                    "eval_runtime": (metrics or {}).get("eval_runtime"),
                }
            )
            if stop_at_accuracy is not None and acc is not None and acc >= stop_at_accuracy:
                control.should_training_stop = True

    def compute_metrics(p: Any) -> dict[str, float]:
        preds = np.argmax(p.predictions, axis=-1)
        return {"accuracy": float((preds == p.label_ids).mean())}

    kwargs: dict[str, Any] = {}
    if group_by_length:
        kwargs.update(train_sampling_strategy="group_by_length", length_column_name="length")
    args = TrainingArguments(
        output_dir=str(out_dir),
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=64,
        learning_rate=learning_rate,
        num_train_epochs=epochs,
        warmup_steps=warmup_ratio,
        eval_strategy="steps" if eval_steps else ("epoch" if eval_each_epoch else "no"),
        eval_steps=eval_steps,
        save_strategy="no",
        logging_steps=50,
        report_to=[],
        use_cpu=True,
        seed=seed,
        disable_tqdm=True,
        **kwargs,
    )
    collator = DataCollatorWithPadding(tokenizer) if padding != "max_length" or group_by_length else None
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=dev_ds,
        compute_metrics=compute_metrics,
        callbacks=[Clock()],
        data_collator=collator,
    )
    trainer.train()
    loop = timing["last_step_end"] - timing["begin"]
    steps = int(timing.get("steps", 0))
    if steps >= trainer.state.max_steps:  # the whole run: the last batch of an epoch may be short
        samples = int(round(len(train_ds) * epochs))
    else:
        samples = steps * batch_size
    final = trainer.evaluate()
    padded_tokens = None
    if padding == "max_length":
        padded_tokens = samples * max_length
    return {
        "train_examples": len(train_ds),
        "epochs": epochs,
        "steps": steps,
        "samples_seen": samples,
        "loop_seconds": loop,
        "samples_per_second": samples / loop if loop > 0 else None,
        "dev_accuracy": final.get("eval_accuracy"),
        "best_dev_accuracy": max(
            [e["accuracy"] for e in evals if e["accuracy"] is not None] + [final.get("eval_accuracy") or 0.0]
        ),
        "evals": evals,
        "trainable_params": trainable,
        "padded_tokens": padded_tokens,
        "torch_threads": torch.get_num_threads(),
        "settings": {
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "max_length": max_length,
            "padding": padding,
            "group_by_length": group_by_length,
            "lora": TUTORIAL_LORA if lora else None,
            "random_init": random_init,
            "warmup_ratio": warmup_ratio,
            "epochs": epochs,
        },
    }


def hubmgr_run(
    model_path: str,
    train_path: Path,
    dev_path: Path | None,
    *,
    out_dir: Path,
    overrides: dict[str, Any] | None = None,
    task: str = "text-classification",
    stop_when: Callable[[dict[str, float]], bool] | None = None,
    t_process: float | None = None,
) -> dict[str, Any]:
    """``hubmgr.train(hubmgr.TrainConfig(task, model, data, eval_data, output_dir, **overrides))`` with
    every other field at its default; events are timed as they arrive."""
    import threading

    import torch

    import hubmgr

    t_process = t_process if t_process is not None else time.perf_counter()
    cancel = threading.Event()
    events: list[tuple[float, Any]] = []

    def on_event(event: Any) -> None:
        now = time.perf_counter()
        events.append((now, event))
        if stop_when is not None and getattr(event, "kind", "") == "eval" and stop_when(event.metrics):
            cancel.set()

    values = dict(task=task, model=model_path, data=str(train_path), output_dir=str(out_dir))
    if dev_path is not None:
        values["eval_data"] = str(dev_path)
    values.update(overrides or {})
    config = hubmgr.TrainConfig(**values)
    t0 = time.perf_counter()
    result = hubmgr.train(config, on_event=on_event, cancel=cancel)
    total = time.perf_counter() - t0
    started = next(t for t, e in events if e.kind == "train_started")
    steps = [(t, e) for t, e in events if e.kind == "step"]
    last_t, last = steps[-1]
    start_event = next(e for _, e in events if e.kind == "train_started")
    n_train = start_event.num_train_examples
    epochs_done = last.epoch
    loop = last_t - started
    samples = n_train * epochs_done
    evals = [
        {"t_process": t - t_process, "step": e.step, "epoch": e.epoch, **e.metrics}
        for t, e in events
        if e.kind == "eval"
    ]
    return {
        "status": result.status,
        "train_examples": n_train,
        "eval_examples": start_event.num_eval_examples,
        "steps": last.step,
        "total_steps": last.total_steps,
        "epochs_done": epochs_done,
        "loop_seconds": loop,
        "samples_per_second": samples / loop if loop > 0 else None,
        "metrics": result.metrics,
        "evals": evals,
        "train_seconds_total": total,
        "trainable_params": start_event.trainable_params,
        "total_params": start_event.total_params,
        "device": start_event.device,
        "precision": start_event.precision,
        "torch_threads": torch.get_num_threads(),
        "config": {k: v for k, v in config.to_dict().items() if k in values},
        "effective_config": config.to_dict(),
        "adapter_path": str(result.adapter_path) if result.adapter_path else None,
        "time_to_train_started": started - t_process,
    }


def token_stats(model_path: str, train_path: Path, *, max_length: int = 128) -> dict[str, int]:
    """Real (unpadded) token counts of a file as the model's tokenizer sees it: examples, tokens, sum(len^2)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    rows = text_label_rows(train_path)
    lengths = [len(ids) for ids in tok([r["text"] for r in rows], truncation=True, max_length=max_length)["input_ids"]]
    return {
        "examples": len(lengths),
        "tokens": sum(lengths),
        "seq_sq_sum": sum(n * n for n in lengths),
        "max_len": max(lengths),
        "mean_len": sum(lengths) / len(lengths),
    }


def subset_file(src: Path, dst: Path, n: int | None, *, seed: int = 42) -> Path:
    """Write the first ``n`` rows of ``src`` after a seeded shuffle to ``dst`` (a temp folder, never the
    repository); ``n=None`` copies all rows in their order."""
    import random

    lines = [line for line in src.read_text(encoding="utf-8").splitlines() if line.strip()]
    if n is not None and n < len(lines):
        rng = random.Random(seed)
        rng.shuffle(lines)
        lines = lines[:n]
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dst
