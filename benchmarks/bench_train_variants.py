"""What-if for hubmgr's training defaults: one epoch of MiniLM + LoRA on SST-2 with the defaults, and
with one or two TrainConfig fields changed; dev accuracy and samples/s of each.

Every variant is a ``hubmgr.train(hubmgr.TrainConfig(...))`` run in its own process with only the named
fields set, so each row says what a user would get with that flag. Used to pick defaults that meet
the one-epoch accuracy target (>= 0.86) without giving up speed.

    python benchmarks/bench_train_variants.py [--quick] [--variants name,name]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import _sst2 as S  # noqa: E402

NAME = "train_variants"
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "LoRA on query,key,value,dense": {"target_modules": ["query", "key", "value", "dense"]},
    "learning rate 2e-3": {"learning_rate": 2e-3},
    "batch 64, learning rate 2e-3": {"batch_size": 64, "learning_rate": 2e-3},
    "model dropout kept": {"keep_model_dropout": True},
    "float32 (no bfloat16 autocast)": {"dtype": "float32"},
}
QUICK = ["defaults", "LoRA on query,key,value,dense"]


def arm_main(args: Any) -> None:
    C.set_threads(args.threads)
    overrides = json.loads(args.overrides)
    out = S.hubmgr_run(
        args.model, Path(args.train), Path(args.dev), out_dir=Path(args.work) / "out", overrides=overrides
    )
    C.write_arm_result(args.arm_out, out)


def body(record: dict[str, Any], args: Any) -> dict[str, Any]:
    model = str(C.minilm_path())
    data = C.dataset_dir("sst2", "train.jsonl", "dev.jsonl")
    script = Path(__file__).resolve()
    names = (
        [n.strip() for n in args.variants.split(",")] if args.variants else (QUICK if args.quick else list(VARIANTS))
    )
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; known: {list(VARIANTS)}")
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hubmgr-bench-var-") as tmp_s:
        tmp = Path(tmp_s)
        env = C.isolated_env(tmp, args.threads)
        train = S.subset_file(data / "train.jsonl", tmp / "train.jsonl", 640) if args.quick else data / "train.jsonl"
        dev = S.subset_file(data / "dev.jsonl", tmp / "dev.jsonl", 300) if args.quick else data / "dev.jsonl"
        for name in names:
            work = tmp / f"v{len(rows)}"
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
                str(work),
                "--overrides",
                json.dumps(VARIANTS[name]),
            ]
            try:
                r = C.run_arm(script, "variant", common, env=env, timeout=3 * 3600)
            except RuntimeError as exc:
                rows[name] = {"overrides": VARIANTS[name], "error": str(exc)[-1500:]}
                continue
            rows[name] = {
                "overrides": VARIANTS[name],
                "dev_accuracy": r["metrics"].get("eval_accuracy"),
                "samples_per_second": r["samples_per_second"],
                "loop_seconds": r["loop_seconds"],
                "trainable_params": r["trainable_params"],
                "peak_rss_bytes": r["peak_rss_bytes"],
                "steps": r["steps"],
                "effective_config": r.get("effective_config"),
            }
            print(f"  {name}: dev accuracy {rows[name]['dev_accuracy']}, {r['samples_per_second']:.1f} samples/s")
            record["commands"].append(r["command"])
    record["results"] = {
        "train_examples": 640 if args.quick else 6920,
        "dev_examples": 300 if args.quick else 872,
        "epochs": 1,
        "variants": rows,
    }
    ok = {k: v for k, v in rows.items() if v.get("dev_accuracy") is not None}
    best = max(ok, key=lambda k: ok[k]["dev_accuracy"]) if ok else None
    record["targets"] = [
        C.target(
            "best one-epoch dev accuracy among the variants",
            goal="report",
            value=f"{best}: {ok[best]['dev_accuracy']:.4f}" if best else None,
            met=None,
        )
    ]
    record["notes"].append(
        "One seed per variant; one dev example is 0.11 accuracy points. Arms ran one after another,"
        " so samples/s compare loosely on a shared machine (see profile_train for an interleaved"
        " speed comparison)."
    )
    return record


def main() -> int:
    parser = C.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--variants", default=None, help=f"comma-separated subset of: {', '.join(VARIANTS)}")
    for name in ("--model", "--train", "--dev", "--work", "--overrides"):
        parser.add_argument(name, help=C.argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        arm_main(args)
        return 0
    return C.run_benchmark(NAME, args, lambda rec: body(rec, args), title="Training defaults: what-if variants")


if __name__ == "__main__":
    sys.exit(main())
