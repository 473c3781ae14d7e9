"""Where training time goes: MiniLM + LoRA training steps on SST-2 batches, CPU, 2 threads.

Supports the analysis of the training-speed targets with numbers measured here:

1. ``variants`` - the same LoRA training step under different settings, interleaved batch by batch in
   one process (so that load from other processes hits every variant alike): the model's own dropout
   on or off, LoRA on query/value or on every linear layer, batch 32 or 64, float32 or bfloat16
   autocast, and the tutorial's padding to 128 tokens. Every variant trains once on the same examples, in
   length-grouped batches like hubmgr's sampler (batch order shuffled).
2. ``ops`` - a torch.profiler table of the top operators for dropout on and off.
3. ``eval_order`` - ``Trainer.evaluate`` on SST-2 dev in file order and sorted by length (what the
   evaluations during training cost, and what sorting the evaluation set would save).

    python benchmarks/bench_profile_train.py [--quick]
"""

from __future__ import annotations

import contextlib
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import _sst2 as S  # noqa: E402

NAME = "profile_train"

QV = ["query", "value"]
ALL = ["query", "key", "value", "dense"]
VARIANTS: dict[str, dict[str, Any]] = {
    "fp32, batch 32, model dropout on, LoRA q,v": dict(bs=32, pad=False, drop=True, bf16=False, targets=QV),
    "fp32, batch 32, model dropout off, LoRA q,v": dict(bs=32, pad=False, drop=False, bf16=False, targets=QV),
    "fp32, batch 32, model dropout off, LoRA q,k,v,dense": dict(bs=32, pad=False, drop=False, bf16=False, targets=ALL),
    "fp32, batch 64, model dropout off, LoRA q,v": dict(bs=64, pad=False, drop=False, bf16=False, targets=QV),
    "bf16 autocast, batch 32, model dropout off, LoRA q,v": dict(bs=32, pad=False, drop=False, bf16=True, targets=QV),
    "bf16 autocast, batch 32, model dropout off, LoRA q,k,v,dense, fused (SDPA) attention": dict(
        bs=32, pad=False, drop=False, bf16=True, targets=ALL
    ),
    "bf16 autocast, batch 32, model dropout off, LoRA q,k,v,dense, eager attention (hubmgr defaults)": dict(
        bs=32, pad=False, drop=False, bf16=True, targets=ALL, eager=True
    ),
    "fp32, batch 32, model dropout off, LoRA q,k,v,dense, eager attention": dict(
        bs=32, pad=False, drop=False, bf16=False, targets=ALL, eager=True
    ),
    "tutorial: fp32, batch 32, padded to 128, dropout on, LoRA q,v": dict(
        bs=32, pad=True, drop=True, bf16=False, targets=QV
    ),
}


def _model(
    path: str, dropout: bool, targets: list[str] | None = None, w16: bool = False, eager: bool = False
) -> tuple[Any, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    kw = {} if dropout else {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    if eager:
        kw["attn_implementation"] = "eager"
    m = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2, **kw)
    m = get_peft_model(
        m, LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=0.0, target_modules=targets or QV)
    )
    if w16:  # frozen weights in bfloat16; what trains stays float32
        m.to(torch.bfloat16)
        for p in m.parameters():
            if p.requires_grad:
                p.data = p.data.float()
    m.train()
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-3)
    return m, opt


def _batches(ids: list[list[int]], labels: list[int], bs: int, pad: bool, seed: int = 1) -> list[tuple[Any, Any, Any]]:
    """Length-grouped batches (sorted by length, then the batch order shuffled), padded to the
    longest example of each batch or to 128."""
    import torch

    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    groups = [order[i : i + bs] for i in range(0, len(order), bs)]
    random.Random(seed).shuffle(groups)
    out = []
    for g in groups:
        width = 128 if pad else max(len(ids[i]) for i in g)
        x = torch.zeros(len(g), width, dtype=torch.long)
        a = torch.zeros_like(x)
        for j, i in enumerate(g):
            x[j, : len(ids[i])] = torch.tensor(ids[i])
            a[j, : len(ids[i])] = 1
        out.append((x, a, torch.tensor([labels[i] for i in g])))
    return out


def variants(model_path: str, train: Path, samples: int) -> dict[str, Any]:
    import torch
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    rows = S.text_label_rows(train)
    random.Random(0).shuffle(rows)
    rows = rows[:samples]  # every variant trains on exactly these examples, once
    ids = tok([r["text"] for r in rows], truncation=True, max_length=128)["input_ids"]
    labels = [r["label"] for r in rows]
    state = {}
    for name, v in VARIANTS.items():
        m, opt = _model(model_path, v["drop"], v["targets"], v.get("w16", False), v.get("eager", False))
        state[name] = {
            "m": m,
            "opt": opt,
            "b": _batches(ids, labels, v["bs"], v["pad"]),
            "i": 0,
            "t": 0.0,
            "cpu": 0.0,
            "n": 0,
            "tokens": 0,
        }
    # one warm-up step each (on the shortest batch)
    for name, s in state.items():
        x, a, y = min(s["b"], key=lambda b: b[0].shape[1])
        with torch.autocast("cpu", dtype=torch.bfloat16) if VARIANTS[name]["bf16"] else contextlib.nullcontext():
            loss = s["m"](input_ids=x, attention_mask=a, labels=y).loss
        loss.backward()
        s["opt"].zero_grad()
    busy = True
    while busy:
        busy = False
        for name, s in state.items():
            if s["i"] >= len(s["b"]):
                continue
            busy = True
            x, a, y = s["b"][s["i"]]
            s["i"] += 1
            ctx = torch.autocast("cpu", dtype=torch.bfloat16) if VARIANTS[name]["bf16"] else contextlib.nullcontext()
            t, c = time.perf_counter(), time.process_time()
            with ctx:
                loss = s["m"](input_ids=x, attention_mask=a, labels=y).loss
            loss.backward()
            s["opt"].step()
            s["opt"].zero_grad()
            s["t"] += time.perf_counter() - t
            s["cpu"] += time.process_time() - c
            s["n"] += len(y)
            s["tokens"] += int(a.sum())
    out = {}
    for name, s in state.items():
        out[name] = {
            "settings": VARIANTS[name],
            "samples": s["n"],
            "seconds": s["t"],
            "samples_per_second": s["n"] / s["t"],
            "samples_per_cpu_second": s["n"] / s["cpu"],
            "real_tokens": s["tokens"],
        }
    return out


def ops(model_path: str, train: Path, steps: int) -> dict[str, Any]:
    import torch
    import torch.profiler as tp
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    rows = S.text_label_rows(train)[:2048]
    ids = tok([r["text"] for r in rows], truncation=True, max_length=128)["input_ids"]
    labels = [r["label"] for r in rows]
    out = {}
    for key, drop, bf16, targets, eager in (
        ("dropout_on", True, False, QV, False),
        ("dropout_off", False, False, QV, False),
        ("bf16_sdpa", False, True, ALL, False),
        ("bf16_defaults", False, True, ALL, True),
    ):
        m, opt = _model(model_path, drop, targets, eager=eager)
        batches = _batches(ids, labels, 32, False)

        def step(x: Any, a: Any, y: Any) -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
                loss = m(input_ids=x, attention_mask=a, labels=y).loss
            loss.backward()
            opt.step()
            opt.zero_grad()

        for x, a, y in batches[:2]:
            step(x, a, y)
        with tp.profile(activities=[tp.ProfilerActivity.CPU]) as prof:
            for x, a, y in batches[2 : 2 + steps]:
                step(x, a, y)
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:14]
        out[key] = {
            "steps": steps,
            "total_self_cpu_ms": total / 1000,
            "top_ops": [
                {
                    "op": e.key,
                    "self_cpu_ms": e.self_cpu_time_total / 1000,
                    "share": e.self_cpu_time_total / total,
                    "calls": e.count,
                }
                for e in top
            ],
        }
    return out


def eval_order(model_path: str, dev: Path, reps: int) -> dict[str, Any]:
    """``Trainer.evaluate`` on SST-2 dev (batch 64, dynamic padding) in file order vs sorted by length,
    alternated ``reps`` times: what in-training evaluation costs, and what sorting saves."""
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    tok = AutoTokenizer.from_pretrained(model_path)
    rows = S.text_label_rows(dev)
    ds = Dataset.from_list(rows).map(
        lambda b: tok(b["text"], truncation=True, max_length=128), batched=True, remove_columns=["text"]
    )
    ds = ds.map(lambda b: {"length": [len(x) for x in b["input_ids"]]}, batched=True)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp, per_device_eval_batch_size=64, use_cpu=True, report_to=[], disable_tqdm=True
        )
        collator = DataCollatorWithPadding(tok)
        times: dict[str, list[float]] = {"file order": [], "sorted by length": []}
        for _ in range(reps):
            for name, d in (("file order", ds), ("sorted by length", ds.sort("length"))):
                trainer = Trainer(
                    model=model, args=args, eval_dataset=d.remove_columns(["length"]), data_collator=collator
                )
                t = time.perf_counter()
                trainer.evaluate()
                times[name].append(time.perf_counter() - t)
    return {
        "examples": len(ds),
        "batch_size": 64,
        "seconds": times,
        "median_seconds": {k: C.median(v) for k, v in times.items()},
        "torch_threads": torch.get_num_threads(),
    }


def arm_main(args: Any) -> None:
    C.set_threads(args.threads)
    if args.arm == "variants":
        out = variants(args.model, Path(args.train), args.samples)
    elif args.arm == "ops":
        out = ops(args.model, Path(args.train), args.steps)
    elif args.arm == "eval_order":
        out = eval_order(args.model, Path(args.dev), 2 if args.steps < 8 else 3)
    else:
        raise SystemExit(f"unknown arm {args.arm}")
    C.write_arm_result(args.arm_out, out)


def body(record: dict[str, Any], args: Any) -> dict[str, Any]:
    model = str(C.minilm_path())
    data = C.dataset_dir("sst2", "train.jsonl", "dev.jsonl")
    script = Path(__file__).resolve()
    samples = 192 if args.quick else 768
    steps = 3 if args.quick else 8
    with tempfile_dir() as tmp:
        env = C.isolated_env(tmp, args.threads)
        common = [
            "--threads",
            str(args.threads),
            "--model",
            model,
            "--train",
            str(data / "train.jsonl"),
            "--dev",
            str(data / "dev.jsonl"),
            "--samples",
            str(samples),
            "--steps",
            str(steps),
        ]
        var = C.run_arm(script, "variants", common, env=env, timeout=3 * 3600)
        opx = C.run_arm(script, "ops", common, env=env, timeout=3600)
        evo = C.run_arm(script, "eval_order", common, env=env, timeout=3600)
    for key in ("process_wall_s", "peak_rss_bytes", "command"):
        var.pop(key, None)
        opx.pop(key, None)
        evo.pop(key, None)
    base = next(v for k, v in var.items() if k.startswith("tutorial"))["samples_per_second"]
    first = next(iter(var.values()))["samples_per_second"]
    for v in var.values():
        v["x_tutorial"] = v["samples_per_second"] / base
        v["x_first"] = v["samples_per_second"] / first
    record["commands"] = [
        C.display_command([C.PYTHON, str(script), "--arm", "variants", *common]),
        C.display_command([C.PYTHON, str(script), "--arm", "ops", *common]),
        C.display_command([C.PYTHON, str(script), "--arm", "eval_order", *common]),
    ]
    record["results"] = {"samples_per_variant": samples, "variants": var, "ops": opx, "eval_order": evo}
    return record


@contextlib.contextmanager
def tempfile_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="hubmgr-bench-prof-") as tmp:
        yield Path(tmp)


def main() -> int:
    parser = C.base_parser(__doc__.splitlines()[0])
    for name in ("--model", "--train", "--dev"):
        parser.add_argument(name, help=C.argparse.SUPPRESS)
    parser.add_argument("--samples", type=int, default=768, help=C.argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=8, help=C.argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        arm_main(args)
        return 0
    return C.run_benchmark(NAME, args, lambda rec: body(rec, args), title="Training-step profile (what costs time)")


if __name__ == "__main__":
    sys.exit(main())
