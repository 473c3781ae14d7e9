"""Evaluation speed: `hubmgr eval` against transformers' pipeline() on SST-2 dev, samples/s.

A LoRA adapter is trained first with hubmgr (defaults, on a subset of SST-2 train). Then, each in its
own process:

* ``hubmgr eval text-classification --model M --adapter A --data dev.jsonl --json`` - it evaluates the
  base model and the adapter side by side (two passes over dev, length-sorted batches of 32); the
  adapter row's inference-loop samples/s is compared;
* ``pipeline("text-classification", model=merged, tokenizer=tok)`` on the same adapter merged into the
  base (``PeftModel.from_pretrained(...).merge_and_unload()``, as tutorials do for inference), called
  on the dev texts with the default batch size (1) and with ``batch_size=32``.

End-to-end process times (loading included) are reported too.

    python benchmarks/bench_eval_speed.py [--quick]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import _sst2 as S  # noqa: E402

NAME = "eval_speed"


def pipeline_arm(model_path: str, adapter: str, dev: Path) -> dict[str, Any]:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(model_path)
    base = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    model = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    model.eval()
    clf = pipeline("text-classification", model=model, tokenizer=tok, device="cpu")
    load_s = time.perf_counter() - t0
    rows = S.text_label_rows(dev)
    texts = [r["text"] for r in rows]
    gold = [r["label"] for r in rows]
    out: dict[str, Any] = {"load_seconds": load_s, "examples": len(rows), "torch_threads": torch.get_num_threads()}
    for name, kwargs in (("batch_size_1", {}), ("batch_size_32", {"batch_size": 32})):
        t1 = time.perf_counter()
        preds = clf(texts, truncation=True, max_length=128, **kwargs)
        secs = time.perf_counter() - t1
        ids = [int(str(p["label"]).rsplit("_", 1)[-1]) for p in preds]
        out[name] = {
            "seconds": secs,
            "samples_per_second": len(rows) / secs,
            "accuracy": sum(int(a == b) for a, b in zip(ids, gold)) / len(gold),
        }
    return out


def arm_main(args: Any) -> None:
    C.set_threads(args.threads)
    if args.arm == "train":
        out = S.hubmgr_run(
            args.model, Path(args.train), None, out_dir=Path(args.adapter), overrides={"eval_strategy": "no"}
        )
    elif args.arm == "pipeline":
        out = pipeline_arm(args.model, args.adapter, Path(args.dev))
    else:
        raise SystemExit(f"unknown arm {args.arm}")
    C.write_arm_result(args.arm_out, out)


def hubmgr_cli() -> list[str]:
    exe = Path(C.PYTHON).parent / "hubmgr"
    return [str(exe)] if exe.exists() else [C.PYTHON, "-m", "hubmgr"]


def body(record: dict[str, Any], args: Any) -> dict[str, Any]:
    model = str(C.minilm_path())
    data = C.dataset_dir("sst2", "train.jsonl", "dev.jsonl")
    script = Path(__file__).resolve()
    n_train = 320 if args.quick else 2000
    with tempfile.TemporaryDirectory(prefix="hubmgr-bench-eval-") as tmp_s:
        tmp = Path(tmp_s)
        env = C.isolated_env(tmp, args.threads)
        train = S.subset_file(data / "train.jsonl", tmp / "train.jsonl", n_train)
        dev = S.subset_file(data / "dev.jsonl", tmp / "dev.jsonl", 300) if args.quick else data / "dev.jsonl"
        adapter = tmp / "adapter"
        common = [
            "--threads",
            str(args.threads),
            "--model",
            model,
            "--train",
            str(train),
            "--dev",
            str(dev),
            "--adapter",
            str(adapter),
        ]
        trained = C.run_arm(script, "train", common, env=env, timeout=3 * 3600)
        cmd = [
            *hubmgr_cli(),
            "eval",
            "text-classification",
            "--model",
            model,
            "--adapter",
            str(adapter),
            "--data",
            str(dev),
            "--json",
        ]
        print(f"  [hubmgr eval] {C.display_command(cmd)}")
        res = C.run_child(cmd, env=env, timeout=3600)
        if res["returncode"] != 0:
            raise RuntimeError(f"hubmgr eval failed: {res['stderr_tail'][-2000:]}")
        report = json.loads(res["stdout"])
        pipe = C.run_arm(script, "pipeline", common, env=env, timeout=3600)
    rows = {r["name"] if i else "base": r for i, r in enumerate(report["rows"])}
    adapter_row = report["rows"][1]
    hub_sps = adapter_row["samples_per_second"]
    ratio_1 = hub_sps / pipe["batch_size_1"]["samples_per_second"]
    ratio_32 = hub_sps / pipe["batch_size_32"]["samples_per_second"]
    record["commands"] = [trained["command"], C.display_command(cmd), pipe["command"]]
    record["results"] = {
        "dev_examples": report["num_examples"],
        "adapter_trained_on": n_train,
        "hubmgr_eval": {
            "adapter_samples_per_second": hub_sps,
            "base_samples_per_second": report["rows"][0]["samples_per_second"],
            "adapter_accuracy": adapter_row["metrics"].get("accuracy"),
            "base_accuracy": report["rows"][0]["metrics"].get("accuracy"),
            "report_seconds": report.get("seconds"),
            "process_wall_s": res["wall_s"],
            "peak_rss_bytes": res["peak_rss_bytes"],
            "rows": list(rows),
        },
        "pipeline": {
            **{k: pipe[k] for k in ("batch_size_1", "batch_size_32", "load_seconds")},
            "process_wall_s": pipe["process_wall_s"],
            "peak_rss_bytes": pipe["peak_rss_bytes"],
        },
        "ratio_vs_pipeline_batch_1": ratio_1,
        "ratio_vs_pipeline_batch_32": ratio_32,
    }
    record["targets"] = [
        C.target(
            "eval samples/s vs pipeline() (default batch size 1)", goal="report", value=round(ratio_1, 2), met=None
        ),
        C.target("eval samples/s vs pipeline(batch_size=32)", goal="report", value=round(ratio_32, 2), met=None),
    ]
    return record


def main() -> int:
    parser = C.base_parser(__doc__.splitlines()[0])
    for name in ("--model", "--train", "--dev", "--adapter"):
        parser.add_argument(name, help=C.argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        arm_main(args)
        return 0
    return C.run_benchmark(NAME, args, lambda rec: body(rec, args), title="Evaluation speed (SST-2 dev)")


if __name__ == "__main__":
    sys.exit(main())
