"""The `eval`, `runs`, `adapters` and `merge` commands, through click, with --json parsed."""

from __future__ import annotations

import json

import pytest

from tests.integration.test_eval import _write_csv, make_adapter, make_base


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_runs")
    base = make_base(root / "base")
    return {
        "base": base,
        "data": _write_csv(root / "eval.csv", n=16),
        "trained": make_adapter(base, root / "trained", seed=0),
    }


@pytest.fixture()
def registry(hf_env, models, tmp_path):
    """A run registry with one completed run (own adapter copy) and one failed run."""
    import shutil

    from hubmgr.runs.store import RunStore

    store = RunStore()
    adapter = shutil.copytree(models["trained"], tmp_path / "run1" / "adapter")
    store.create_run(
        run_id="20260101-120000-aaaa",
        task="text-classification",
        model=str(models["base"]),
        revision="0" * 40,
        config={"lr": 0.001, "epochs": 1},
        output_dir=tmp_path / "run1",
    )
    store.log_metrics("20260101-120000-aaaa", 1, {"loss": 0.9, "learning_rate": 1e-3})
    store.log_metrics("20260101-120000-aaaa", 2, {"loss": 0.5, "learning_rate": 5e-4})
    store.log_metrics("20260101-120000-aaaa", 2, {"accuracy": 0.75}, split="eval")
    store.finish("20260101-120000-aaaa", status="completed", metrics={"accuracy": 0.75}, adapter_path=adapter)
    store.create_run(
        run_id="20260102-120000-bbbb",
        task="text-classification",
        model="org/other",
        revision=None,
        config={},
        output_dir=tmp_path / "run2",
    )
    store.set_status("20260102-120000-bbbb", "failed", error="NaN loss at step 3.")
    return store


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_runs_list_and_show(cli_runner, registry):
    runs = _json(cli_runner("runs", "--json"))
    assert [r["id"] for r in runs] == ["20260102-120000-bbbb", "20260101-120000-aaaa"]
    assert runs[0]["status"] == "failed" and runs[0]["error"] == "NaN loss at step 3."
    assert [r["id"] for r in _json(cli_runner("runs", "--json", "--limit", "1"))] == ["20260102-120000-bbbb"]
    assert [r["id"] for r in _json(cli_runner("runs", "--json", "--status", "completed"))] == ["20260101-120000-aaaa"]

    shown = _json(cli_runner("runs", "show", "20260101", "--json"))
    assert shown["id"] == "20260101-120000-aaaa" and shown["config"] == {"lr": 0.001, "epochs": 1}
    assert shown["revision"] == "0" * 40 and shown["adapter_path"].endswith("adapter")
    loss = next(s for s in shown["metrics_summary"] if s["name"] == "loss")
    assert (loss["count"], loss["first"], loss["last"], loss["min"]) == (2, 0.9, 0.5, 0.5)
    assert len(shown["history"]) == 5

    text = cli_runner("runs")
    assert text.exit_code == 0 and "20260101-120000-aaaa" in text.stdout and "accuracy=0.7500" in text.stdout
    text = cli_runner("runs", "show", "20260101-120000-aaaa")
    assert text.exit_code == 0 and "metrics over time" not in text.stderr  # tables go to stdout
    assert "loss" in text.stdout and '"lr": 0.001' in text.stdout


def test_runs_lead_with_the_main_metric(cli_runner, hf_env, tmp_path):
    """A multi-label run's micro-F1 comes first in `hubmgr runs` and `runs show`, not in alphabetical place."""
    from hubmgr.runs.store import RunStore

    store = RunStore()
    store.create_run(
        run_id="20260103-120000-cccc",
        task="text-classification",
        model="org/m",
        revision=None,
        config={},
        output_dir=tmp_path / "r",
    )
    store.finish(
        "20260103-120000-cccc",
        status="completed",
        adapter_path=None,
        main_metric="micro_f1",
        metrics={"eval_accuracy": 0.9, "eval_macro_f1": 0.5, "eval_micro_f1": 0.61, "eval_loss": 0.2},
    )
    listed = cli_runner("runs")
    assert listed.exit_code == 0 and "micro_f1=0.6100 accuracy=0.9000 macro_f1=0.5000" in listed.stdout
    shown = cli_runner("runs", "show", "20260103-120000-cccc").stdout
    assert shown.index("eval_micro_f1") < shown.index("eval_accuracy") < shown.index("eval_loss")


def test_runs_errors_are_one_line(cli_runner, registry):
    result = cli_runner("runs", "show", "2099")
    assert result.exit_code != 0 and result.stderr.strip().startswith("error: No run")
    assert len(result.stderr.strip().splitlines()) == 1
    result = cli_runner("runs", "show", "2026")
    assert result.exit_code == 2 and "several" in result.stderr


def test_runs_rm(cli_runner, registry):
    assert _json(cli_runner("runs", "rm", "20260102", "--yes", "--json"))["id"] == "20260102-120000-bbbb"
    assert [r["id"] for r in _json(cli_runner("runs", "--json"))] == ["20260101-120000-aaaa"]


def test_adapters_list_and_rm(cli_runner, registry):
    adapters = _json(cli_runner("adapters", "--json"))
    assert len(adapters) == 1
    ad = adapters[0]
    assert (ad["id"], ad["exists"], ad["task"]) == ("20260101-120000-aaaa", True, "text-classification")
    result = cli_runner("adapters", "rm", "20260101", input="n\n")
    assert result.exit_code != 0  # declined
    assert _json(cli_runner("adapters", "--json"))[0]["exists"]
    assert _json(cli_runner("adapters", "rm", "20260101", "--yes", "--json"))["id"] == ad["id"]
    assert _json(cli_runner("adapters", "--json")) == []
    from pathlib import Path

    assert not Path(ad["path"]).exists()
    assert _json(cli_runner("runs", "--json"))[1]["status"] == "completed"  # the run stays


def test_eval_json_with_run_id_and_no_model(cli_runner, registry, models):
    report = _json(cli_runner("eval", "--adapter", "20260101-120000-aaaa", "--data", models["data"], "--json"))
    assert report["task"] == "text-classification" and report["num_examples"] == 16
    assert [r["name"] for r in report["rows"]] == ["base", "20260101-120000-aaaa"]
    assert {"accuracy", "macro_f1", "loss"} <= set(report["rows"][1]["metrics"])


def test_eval_table(cli_runner, hf_env, models):
    result = cli_runner(
        "eval",
        "text-classification",
        "--model",
        models["base"],
        "--adapter",
        models["trained"],
        "--data",
        models["data"],
        "--option",
        "text_column=text",
        "--max-samples",
        "8",
    )
    assert result.exit_code == 0, result.output
    header, base, trained = result.stdout.strip().splitlines()
    assert header.split("\t")[:3] == ["model", "accuracy", "macro_f1"]
    assert base.startswith("base") and trained.startswith("trained")


def test_eval_bad_adapter_is_one_line(cli_runner, hf_env, models, tmp_path):
    result = cli_runner(
        "eval",
        "text-classification",
        "--model",
        models["base"],
        "--adapter",
        tmp_path / "nope",
        "--data",
        models["data"],
    )
    assert result.exit_code == 9
    assert result.stderr.strip() == f"error: Adapter folder {tmp_path / 'nope'} does not exist."
    result = cli_runner(
        "eval", "text-classification", "--model", models["base"], "--data", models["data"], "--option", "oops"
    )
    assert result.exit_code == 2 and "KEY=VALUE" in result.stderr
    result = cli_runner("eval", "--data", models["data"])
    assert result.exit_code == 2 and "--model" in result.stderr


def test_merge_cli(cli_runner, hf_env, models, tmp_path):
    out = tmp_path / "merged"
    result = _json(cli_runner("merge", models["trained"], "--output", out, "--json"))
    assert result["output"] == str(out.resolve()) and (out / "model.safetensors").is_file()
    assert (out / "tokenizer.json").is_file()
    again = cli_runner("merge", models["trained"], "--output", out)
    assert again.exit_code == 2 and "not empty" in again.stderr
