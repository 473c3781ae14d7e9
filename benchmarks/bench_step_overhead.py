"""The engine's fixed cost per step: ``hubmgr.train`` against a plain PyTorch + peft loop on a model whose
math is nearly free, so that what remains is what each framework adds to a step.

Model: hubmgr.testing's tiny random BERT (hidden 32, 2 layers) with a new 2-label head. Data: 3,200
synthetic examples of exactly 16 tokens each (14 words from the tiny tokenizer's vocabulary, plus [CLS]
and [SEP]), so that padding and length grouping favour neither side. Both arms: batch 32, float32, one
thread, one epoch (100 steps), the same LoRA settings (hubmgr's defaults: r 8 on every linear layer of
the blocks, the head trained in full, the model's own dropout off), AdamW at lr 1e-3.

* ``hubmgr``: ``hubmgr.train(TrainConfig(..., epochs=1, batch_size=32, dtype="float32",
  eval_fraction=0))``; its samples/s is the Trainer's (the training loop, without loading and
  tokenising).
* ``plain``: the same peft model, tokenised once into one tensor, a shuffled index per epoch, and a loop
  of forward, backward, ``AdamW.step()``, ``zero_grad(set_to_none=True)``; timed around the loop.

The arms alternate in one process (plain, hubmgr, plain, hubmgr, ...) so that load from other processes
hits both alike; the ratio is the median of the rounds' ratios. A cProfile of one more hubmgr run says
where its time per step goes.

    python benchmarks/bench_step_overhead.py [--quick] [--rounds N]
"""

from __future__ import annotations

import cProfile
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

NAME = "step_overhead"
N_EXAMPLES = 3200
WORDS_PER_EXAMPLE = 14  # + [CLS] and [SEP] = 16 tokens
BATCH = 32
LR = 1e-3
GOAL = 0.9

#: where a step's time goes: (label, a function of the cProfile table matched by "file:function")
PROFILE_PARTS = [
    ("forward (model and loss)", "hubmgr/train/_trainer.py:compute_loss"),
    ("backward", "torch/_tensor.py:backward"),
    ("optimizer step", "torch/optim/optimizer.py:wrapper"),
    ("gradient clipping", "hubmgr/train/_trainer.py:_clip_grad_norm"),
    ("zero_grad", "hubmgr/train/_trainer.py:zero_grad"),
    ("FLOP count", "hubmgr/train/_trainer.py:floating_point_ops"),
    ("batches (sampler, collation)", "transformers/trainer.py:get_batch_samples"),
    ("moving inputs to the device", "transformers/trainer.py:_prepare_inputs"),
    ("callbacks at step end", "transformers/trainer_callback.py:on_step_end"),
    ("log / save / evaluate checks", "transformers/trainer.py:_maybe_log_save_evaluate"),
    ("learning-rate scheduler", "torch/optim/lr_scheduler.py:step"),
]


def make_data(path: Path, n: int) -> Path:
    from hubmgr.testing.models import VOCAB_WORDS

    words = [w for w in VOCAB_WORDS if w.isalpha()]
    rng = random.Random(0)
    rows = [
        {"text": " ".join(rng.choice(words) for _ in range(WORDS_PER_EXAMPLE)), "label": rng.randrange(2)}
        for _ in range(n)
    ]
    return C.write_jsonl(path, rows)


def _peft_model(model_dir: Path) -> Any:
    """The plain arm's model, built as hubmgr builds it for text classification with its defaults."""
    from peft import get_peft_model
    from transformers import AutoModelForSequenceClassification

    from hubmgr.plugins import get_task
    from hubmgr.train.config import TrainConfig
    from hubmgr.train.lora import build_lora_config

    task = get_task("text-classification")
    config = TrainConfig(task="text-classification", model=str(model_dir), data="unused")
    model = AutoModelForSequenceClassification.from_pretrained(
        str(model_dir), num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )
    defaults = task.lora_defaults(model, task.make_options({}))
    return get_peft_model(model, build_lora_config(config, defaults, model=model))


def plain_run(model_dir: Path, data: Path) -> dict[str, Any]:
    import torch
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    rows = C.read_jsonl(data)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    enc = tok([r["text"] for r in rows], padding="longest", return_tensors="pt")
    lengths = set(enc["attention_mask"].sum(1).tolist())
    labels = torch.tensor([int(r["label"]) for r in rows])
    model = _peft_model(model_dir)
    model.train()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR)
    order = torch.randperm(len(rows))
    t0 = time.perf_counter()
    losses = []
    for start in range(0, len(rows), BATCH):
        idx = order[start : start + BATCH]
        out = model(input_ids=enc["input_ids"][idx], attention_mask=enc["attention_mask"][idx], labels=labels[idx])
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(out.loss.detach())
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "samples_per_second": len(rows) / seconds,
        "steps": len(losses),
        "final_loss": float(losses[-1]),
        "token_lengths": sorted(lengths),
        "trainable_parameters": trainable,
    }


def hubmgr_run(model_dir: Path, data: Path, out: Path) -> dict[str, Any]:
    import hubmgr
    from hubmgr import TrainConfig

    cfg = TrainConfig(
        task="text-classification",
        model=str(model_dir),
        data=str(data),
        output_dir=str(out),
        epochs=1,
        batch_size=BATCH,
        learning_rate=LR,
        dtype="float32",
        eval_fraction=0.0,
    )
    seen: dict[str, Any] = {}

    def on_event(event: Any) -> None:
        if getattr(event, "kind", "") == "train_started":
            seen["trainable_parameters"] = getattr(event, "trainable_params", None)

    t0 = time.perf_counter()
    result = hubmgr.train(cfg, on_event=on_event)
    wall = time.perf_counter() - t0
    m = result.metrics
    return {
        "seconds": float(m["train_runtime"]),
        "samples_per_second": float(m["train_samples_per_second"]),
        "steps": int(m.get("step") or 0),
        "train_loss": float(m["train_loss"]),
        "call_seconds": wall,
        "trainable_parameters": seen.get("trainable_parameters"),
    }


def profile_parts(stats: pstats.Stats, steps: int, loop_seconds: float) -> list[dict[str, Any]]:
    """Cumulative time of each of PROFILE_PARTS in a cProfile table, per step and as a share of the loop."""
    out = []
    table = stats.stats  # type: ignore[attr-defined]
    for label, key in PROFILE_PARTS:
        file_part, func = key.rsplit(":", 1)
        total = 0.0
        calls = 0
        for (filename, _line, name), (_cc, nc, _tt, ct, _callers) in table.items():
            if name == func and filename.replace("\\", "/").endswith(file_part):
                total += ct
                calls += nc
        out.append(
            {
                "part": label,
                "function": key,
                "calls": calls,
                "ms_per_step": 1000 * total / max(1, steps),
                "share_of_loop": total / loop_seconds if loop_seconds else None,
            }
        )
    return out


def body(record: dict[str, Any], args: Any) -> dict[str, Any]:
    import torch

    C.set_threads(1)
    torch.set_num_threads(1)
    from hubmgr.testing.models import tiny_bert_dir

    rounds = 1 if args.quick else args.rounds
    with tempfile.TemporaryDirectory(prefix="hubmgr-bench-step-") as tmp_s:
        tmp = Path(tmp_s)
        model_dir = tiny_bert_dir(tmp / "tiny-bert")
        data = make_data(tmp / "train.jsonl", N_EXAMPLES)
        # one untimed run of each warms up imports, kernels and the allocator
        plain_run(model_dir, data)
        hubmgr_run(model_dir, data, tmp / "warm")
        runs = []
        for i in range(rounds):
            p = plain_run(model_dir, data)
            h = hubmgr_run(model_dir, data, tmp / f"out-{i}")
            runs.append({"plain": p, "hubmgr": h, "ratio": h["samples_per_second"] / p["samples_per_second"]})
            print(
                f"  round {i + 1}: plain {p['samples_per_second']:.0f} samples/s, hubmgr"
                f" {h['samples_per_second']:.0f} samples/s, ratio {runs[-1]['ratio']:.3f}"
            )
        prof = cProfile.Profile()
        prof.enable()
        profiled = hubmgr_run(model_dir, data, tmp / "profiled")
        prof.disable()
        parts = profile_parts(pstats.Stats(prof), profiled["steps"], profiled["seconds"])
    ratio = C.median(r["ratio"] for r in runs)
    plain_sps = C.median(r["plain"]["samples_per_second"] for r in runs)
    hub_sps = C.median(r["hubmgr"]["samples_per_second"] for r in runs)
    extra_ms = 1000 * BATCH * (1 / hub_sps - 1 / plain_sps)
    record["commands"] = [C.display_command([C.PYTHON, *sys.argv])]
    record["results"] = {
        "examples": N_EXAMPLES,
        "tokens_per_example": WORDS_PER_EXAMPLE + 2,
        "batch_size": BATCH,
        "threads": 1,
        "dtype": "float32",
        "model": "hubmgr.testing tiny_bert_dir (hidden 32, 2 layers)",
        "rounds": runs,
        "plain_samples_per_second": plain_sps,
        "hubmgr_samples_per_second": hub_sps,
        "ratio": ratio,
        "extra_ms_per_step": extra_ms,
        "profile": {"loop_seconds": profiled["seconds"], "steps": profiled["steps"], "parts": parts},
    }
    record["targets"] = [
        C.target(
            "hubmgr.train samples/s / plain PyTorch + peft loop (tiny BERT, 1 thread)",
            goal=f">= {GOAL}",
            value=round(ratio, 3),
            met=ratio >= GOAL,
            detail=f"{hub_sps:.0f} vs {plain_sps:.0f} samples/s; {extra_ms:.2f} ms extra a step",
        )
    ]
    record["notes"].append(
        "cProfile adds its own cost to every Python call, so the profile's shares are larger for"
        " Python-heavy parts than they are without it; they say where to look, the ratio says"
        " how much it costs."
    )
    return record


def main() -> int:
    parser = C.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of the two arms (default 5)")
    args = parser.parse_args()
    args.threads = 1  # both arms run on one thread (the record's machine line says so)
    return C.run_benchmark(NAME, args, lambda rec: body(rec, args), title="Fixed cost per training step")


if __name__ == "__main__":
    sys.exit(main())
