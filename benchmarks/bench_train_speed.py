"""Training speed: all-MiniLM-L6-v2 + LoRA on SST-2 train, CPU, 2 threads.

Arms, each in its own process (so peak RSS is its own), run back to back:

* ``matmul``   - the matrix-multiply peak of this machine with the same threads, in float32 and in
  bfloat16 (measured before and after the training arms; the higher is the peak). hubmgr's model
  FLOPs utilisation is taken against the peak of the precision it trained in (bfloat16 where its
  ``--dtype auto`` picks bfloat16 mixed precision, as on CPUs with AVX512-BF16 or AMX);
* ``baseline`` - a plain transformers ``Trainer`` + peft script that pads every example to 128 tokens,
  as common tutorials do (batch 32, lr 3e-4, LoRA r=8 alpha=16 dropout=0.1 on query/value);
* ``hubmgr``   - ``train(TrainConfig(task, model, data, eval_data))`` with hubmgr's defaults.

Reported: samples/s of the training loop (first step to last step, evaluation excluded), peak RSS,
dev accuracy after one epoch, and model FLOPs utilisation (formula in docs/benchmarks.md).

    python benchmarks/bench_train_speed.py [--quick]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import _sst2 as S  # noqa: E402

NAME = "train_speed"
T_PROCESS = time.perf_counter()


def arm_main(args: Any) -> None:
    C.set_threads(args.threads)
    if args.arm == "matmul":
        out = C.matmul_peak(threads=args.threads, min_seconds=1.0 if args.quick else 2.0)
        try:
            out["bfloat16"] = C.matmul_peak(
                threads=args.threads, dtype="bfloat16", min_seconds=1.0 if args.quick else 2.0
            )
        except Exception as exc:  # a CPU or build without bfloat16 matmul
            out["bfloat16"] = {"error": str(exc)[-500:]}
    elif args.arm == "baseline":
        out = S.trainer_run(
            args.model,
            Path(args.train),
            Path(args.dev),
            out_dir=Path(args.work) / "baseline",
            padding="max_length",
            t_process=T_PROCESS,
        )
    elif args.arm == "hubmgr":
        out = S.hubmgr_run(
            args.model, Path(args.train), Path(args.dev), out_dir=Path(args.work) / "hubmgr", t_process=T_PROCESS
        )
    else:
        raise SystemExit(f"unknown arm {args.arm}")
    C.write_arm_result(args.arm_out, out)


def minilm_flops(model_path: str, stats: dict[str, int], *, epochs: float, lora_params: int) -> dict[str, float]:
    """Model FLOPs of LoRA training over ``stats`` (real tokens), see lora_train_flops."""
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(model_path)
    shape = C.encoder_layer_shapes(cfg)
    h = shape["hidden"]
    n_seq = stats["examples"] * epochs
    head = 4.0 * h * h * n_seq + 6.0 * (h * 2 + 2) * n_seq  # frozen pooler (CLS token), trained classifier
    return C.lora_train_flops(
        matmul_params=C.bert_matmul_params(cfg),
        layers=shape["layers"],
        hidden=h,
        tokens=int(stats["tokens"] * epochs),
        seq_sq_sum=int(stats["seq_sq_sum"] * epochs),
        lora_params=lora_params,
        head_flops=head,
    )


def body(record: dict[str, Any], args: Any) -> dict[str, Any]:
    model = str(C.minilm_path())
    data = C.dataset_dir("sst2", "train.jsonl", "dev.jsonl")
    script = Path(__file__).resolve()
    n_train = args.train_samples or (640 if args.quick else None)
    n_dev = args.dev_samples or (300 if args.quick else None)
    with tempfile.TemporaryDirectory(prefix="hubmgr-bench-train-") as tmp_s:
        tmp = Path(tmp_s)
        train = S.subset_file(data / "train.jsonl", tmp / "train.jsonl", n_train) if n_train else data / "train.jsonl"
        dev = S.subset_file(data / "dev.jsonl", tmp / "dev.jsonl", n_dev) if n_dev else data / "dev.jsonl"
        env = C.isolated_env(tmp, args.threads)
        common = [
            "--threads",
            str(args.threads),
            "--model",
            model,
            "--train",
            str(train),
            "--dev",
            str(dev),
            "--work",
            str(tmp),
        ] + (["--quick"] if args.quick else [])
        arms: dict[str, Any] = {}
        peaks = [C.run_arm(script, "matmul", common, env=env, timeout=600)]
        order = ["hubmgr", "baseline"] if args.hubmgr_first else ["baseline", "hubmgr"]
        for arm in order:
            arms[arm] = C.run_arm(script, arm, common, env=env, timeout=6 * 3600)
        peaks.append(C.run_arm(script, "matmul", common, env=env, timeout=600))
        stats = S.token_stats(model, train)
    peak = max(p["peak_flops"] for p in peaks)  # float32: the baseline trains in float32
    bf16_peaks = [p["bfloat16"]["peak_flops"] for p in peaks if "peak_flops" in p.get("bfloat16", {})]
    bf16_peak = max(bf16_peaks) if bf16_peaks else None
    hub, base = arms["hubmgr"], arms["baseline"]
    hub_bf16 = str(hub.get("precision", "")).startswith("bfloat16")
    peak_h = bf16_peak if hub_bf16 and bf16_peak else peak
    # LoRA parameters (classifier head excluded): hubmgr's own count; the baseline has r=8 on query, value
    lora_h = hub["trainable_params"] - (384 * 2 + 2)
    lora_b = 6 * 2 * (384 * 8 + 8 * 384)
    flops_h = minilm_flops(model, stats, epochs=hub["epochs_done"], lora_params=lora_h)
    flops_b = minilm_flops(model, stats, epochs=base["epochs"], lora_params=lora_b)
    padded = {
        "examples": stats["examples"],
        "tokens": stats["examples"] * 128,
        "seq_sq_sum": stats["examples"] * 128 * 128,
    }
    flops_b_hw = minilm_flops(model, padded, epochs=base["epochs"], lora_params=lora_b)
    mfu_h = flops_h["total"] / hub["loop_seconds"] / peak_h
    mfu_b = flops_b["total"] / base["loop_seconds"] / peak
    hfu_b = flops_b_hw["total"] / base["loop_seconds"] / peak
    speedup = hub["samples_per_second"] / base["samples_per_second"]
    acc_h = hub["metrics"].get("eval_accuracy")
    acc_b = base["dev_accuracy"]
    rss_h, rss_b = hub["peak_rss_bytes"], base["peak_rss_bytes"]
    full_epoch = not n_train
    record["commands"] = [base["command"], hub["command"], peaks[0]["command"]]
    record["results"] = {
        "train_examples": stats["examples"],
        "dev_examples": hub.get("eval_examples"),
        "token_stats": stats,
        "matmul_peak": {"peak_flops": peak, "bfloat16_peak_flops": bf16_peak, "runs": peaks},
        "hubmgr_precision": hub.get("precision"),
        "hubmgr_mfu_against": "bfloat16" if peak_h is not peak else "float32",
        "arms": {
            "baseline": {
                "description": "transformers Trainer + peft, every example padded to 128 tokens (tutorial style)",
                "samples_per_second": base["samples_per_second"],
                "loop_seconds": base["loop_seconds"],
                "dev_accuracy": acc_b,
                "peak_rss_bytes": rss_b,
                "model_flops": flops_b,
                "mfu": mfu_b,
                "hardware_flops_utilisation_padded": hfu_b,
                "process_wall_s": base["process_wall_s"],
                "settings": base["settings"],
                "torch_threads": base["torch_threads"],
            },
            "hubmgr": {
                "description": "hubmgr train(TrainConfig(...)) with its defaults",
                "samples_per_second": hub["samples_per_second"],
                "loop_seconds": hub["loop_seconds"],
                "dev_accuracy": acc_h,
                "peak_rss_bytes": rss_h,
                "model_flops": flops_h,
                "mfu": mfu_h,
                "process_wall_s": hub["process_wall_s"],
                "train_seconds_total": hub["train_seconds_total"],
                "config": hub["config"],
                "effective_config": hub.get("effective_config"),
                "metrics": hub["metrics"],
                "torch_threads": hub["torch_threads"],
                "steps": hub["steps"],
            },
        },
        "speedup_samples_per_second": speedup,
        "equivalent_cli": f"hubmgr train text-classification --model {model} --data {train} --eval-data {dev}",
    }
    record["targets"] = [
        C.target(
            "training speed vs tutorial baseline", goal=">= 5x samples/s", value=round(speedup, 2), met=speedup >= 5.0
        ),
        C.target(
            "model FLOPs utilisation (hubmgr)",
            goal=">= 40% of the measured matmul peak",
            value=f"{mfu_h:.1%}",
            met=mfu_h >= 0.40,
            detail=f"against the {'bfloat16' if peak_h is not peak else 'float32'} matmul peak,"
            f" {peak_h / 1e9:.0f} GFLOP/s (hubmgr trained in {hub.get('precision', 'float32')} precision)",
        ),
        C.target(
            "dev accuracy after one epoch (hubmgr)",
            goal=">= 0.86",
            value=acc_h,
            met=(acc_h is not None and acc_h >= 0.86) if full_epoch else None,
            detail="" if full_epoch else "quick run: a subset, not one epoch of SST-2",
        ),
        C.target(
            "peak RSS (hubmgr vs baseline)",
            goal="<= baseline",
            value=f"{C.human_bytes(rss_h)} vs {C.human_bytes(rss_b)}",
            met=rss_h <= rss_b,
        ),
    ]
    if not full_epoch:
        record["notes"].append(
            f"Quick run: {stats['examples']} training examples, {hub.get('eval_examples')} dev examples."
        )
    return record


def main() -> int:
    parser = C.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--train-samples", type=int, default=None, help="use a seeded subset of SST-2 train")
    parser.add_argument("--dev-samples", type=int, default=None, help="use a seeded subset of SST-2 dev")
    parser.add_argument("--hubmgr-first", action="store_true", help="run the hubmgr arm before the baseline")
    parser.add_argument("--model", help=C.argparse.SUPPRESS)
    parser.add_argument("--train", help=C.argparse.SUPPRESS)
    parser.add_argument("--dev", help=C.argparse.SUPPRESS)
    parser.add_argument("--work", help=C.argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        arm_main(args)
        return 0
    return C.run_benchmark(NAME, args, lambda rec: body(rec, args), title="Training speed (MiniLM + LoRA, SST-2, CPU)")


if __name__ == "__main__":
    sys.exit(main())
