"""``hubmgr train --dry-run`` against the real run: does the trial predict peak memory and wall time?

For each case, two processes, one after the other, with the same flags:

* ``trial``: ``hubmgr train TASK --model M --data TRAIN [--eval-data EVAL] --epochs 1 --dry-run --json``;
  its wall time (the trial's cost to a user) and its prediction;
* ``real``: the same command without ``--dry-run`` (``--output`` in a scratch folder); its wall time and peak
  resident memory from ``wait4``.

Cases: all-MiniLM-L6-v2 on SST-2 (6,920 sentences) and CLINC150 (15,000 queries, 150 intents), SmolLM2-135M
on Tiny Shakespeare (240,000 characters, as bench_causal_lm.py); one epoch each (a fixed budget, so the
prediction is one number; under ``--epochs auto`` the trial gives the range the budget may stop in).
``--quick`` takes 800 / 1,500 examples and 40,000 characters.

Targets (issue 15): peak memory within 10%, wall time within 15%, trial under 30 s.

    python benchmarks/bench_trial.py [--quick] [--threads 2] [--only sst2,clinc150,tinyshakespeare]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import bench_causal_lm as CLM  # noqa: E402

NAME = "trial"
CASES = ("sst2", "clinc150", "tinyshakespeare")
QUICK_ROWS = {"sst2": 800, "clinc150": 1500}
MEMORY_GOAL, TIME_GOAL, TRIAL_GOAL = 0.10, 0.15, 30.0


def _case_data(key: str, tmp: Path, quick: bool) -> dict[str, Any]:
    """Model, task, files and flags of one case (in ``tmp``)."""
    if key == "tinyshakespeare":
        folder = C.dataset_dir("tinyshakespeare", "input.txt")
        gguf = C.smollm2_gguf()
        model = CLM.converted_model_dir()
        if not (model / "config.json").is_file():
            CLM.convert(gguf, model)
        text = (folder / "input.txt").read_text(encoding="utf-8")
        train_text, held, _ = CLM.split_text(text, train_chars=40_000 if quick else 240_000, eval_chars=10_000)
        train, evalf = tmp / "ts_train.txt", tmp / "ts_eval.txt"
        train.write_text(train_text, encoding="utf-8")
        evalf.write_text(held, encoding="utf-8")
        return {"task": "causal-lm", "model": model, "train": train, "eval": evalf, "flags": []}
    folder = C.dataset_dir(key, "train.jsonl")
    eval_name = "dev.jsonl" if key == "sst2" else "validation.jsonl"
    train, evalf = folder / "train.jsonl", folder / eval_name
    if quick:
        train = C.write_jsonl(tmp / f"{key}_train.jsonl", C.read_jsonl(train, limit=QUICK_ROWS[key]))
        evalf = C.write_jsonl(tmp / f"{key}_eval.jsonl", C.read_jsonl(evalf, limit=400))
    return {"task": "text-classification", "model": C.minilm_path(), "train": train, "eval": evalf, "flags": []}


def _within(predicted: float, actual: float) -> float:
    return abs(predicted - actual) / actual if actual else float("inf")


def body(record: dict[str, Any], args: Any) -> dict[str, Any]:
    keys = [k.strip() for k in (args.only or ",".join(CASES)).split(",") if k.strip()]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hubmgr-bench-trial-") as tmp_name:
        tmp = Path(tmp_name)
        for key in keys:
            try:
                case = _case_data(key, tmp, args.quick)
            except C.Skip as exc:
                results[key] = {"status": "skipped", "reason": str(exc)}
                print(f"  [{key}] skipped: {exc}")
                continue
            env = C.isolated_env(tmp / key, args.threads)
            base = [C.PYTHON, "-m", "hubmgr", "train", case["task"], "--model", str(case["model"])]
            base += ["--data", str(case["train"]), "--eval-data", str(case["eval"]), "--epochs", "1", *case["flags"]]
            trial_cmd = [*base, "--dry-run", "--json"]
            real_cmd = [*base, "--output", str(tmp / key / "adapter"), "--json"]
            record["commands"] += [C.display_command(trial_cmd), C.display_command(real_cmd)]
            print(f"  [{key}] trial: {C.display_command(trial_cmd)}")
            trial = C.run_child(trial_cmd, env=env)
            if trial["returncode"] != 0:
                results[key] = {"status": "error", "stage": "trial", "stderr": trial["stderr_tail"][-2000:]}
                continue
            prediction = json.loads(trial["stdout"])
            print(f"  [{key}] real run: {C.display_command(real_cmd)}")
            real = C.run_child(real_cmd, env=env)
            if real["returncode"] != 0:
                results[key] = {"status": "error", "stage": "real", "stderr": real["stderr_tail"][-2000:]}
                continue
            predicted_s = float(prediction["seconds_high"])
            entry = {
                "status": "ok",
                "task": case["task"],
                "n_train": prediction["n_train"],
                "n_eval": prediction["n_eval"],
                "batch_size": prediction["batch_size"],
                "steps": prediction["steps_high"],
                "trial_wall_s": trial["wall_s"],
                "trial_peak_rss_bytes": trial["peak_rss_bytes"],
                "predicted_seconds": predicted_s,
                "predicted_parts": {
                    k: prediction[k]
                    for k in ("startup_seconds", "epoch_train_seconds", "epoch_eval_seconds", "final_eval_seconds")
                },
                "real_wall_s": real["wall_s"],
                "predicted_peak_bytes": prediction["peak_memory_bytes"],
                "real_peak_rss_bytes": real["peak_rss_bytes"],
            }
            entry["time_error"] = _within(predicted_s, real["wall_s"])
            entry["memory_error"] = _within(float(prediction["peak_memory_bytes"]), float(real["peak_rss_bytes"]))
            results[key] = entry
            print(
                f"  [{key}] time {predicted_s:.0f}s predicted / {real['wall_s']:.0f}s real"
                f" ({entry['time_error']:.1%}); peak {C.human_bytes(prediction['peak_memory_bytes'])} /"
                f" {C.human_bytes(real['peak_rss_bytes'])} ({entry['memory_error']:.1%}); trial {trial['wall_s']:.0f}s"
            )
    record["results"] = {"cases": results}
    done = [r for r in results.values() if r.get("status") == "ok"]
    if done:
        worst_t = max(r["time_error"] for r in done)
        worst_m = max(r["memory_error"] for r in done)
        slowest = max(r["trial_wall_s"] for r in done)
        record["targets"] = [
            C.target("wall time", goal=f"within {TIME_GOAL:.0%}", value=round(worst_t, 3), met=worst_t <= TIME_GOAL),
            C.target(
                "peak memory", goal=f"within {MEMORY_GOAL:.0%}", value=round(worst_m, 3), met=worst_m <= MEMORY_GOAL
            ),
            C.target("trial time", goal=f"< {TRIAL_GOAL:g} s", value=round(slowest, 1), met=slowest < TRIAL_GOAL),
        ]
    return record


def main() -> int:
    parser = C.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help=f"comma-separated cases: {', '.join(CASES)}")
    args = parser.parse_args()
    return C.run_benchmark(NAME, args, lambda rec: body(rec, args), title="Trial run: predicted against real")


if __name__ == "__main__":
    raise SystemExit(main())
