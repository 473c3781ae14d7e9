"""Evaluation of a base model and LoRA adapters side by side, and merging an adapter, on a tiny BERT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hubmgr.errors import DataError, ModelError, UsageError

LABELS = ["neg", "pos"]
DATA_INFO = {
    "label_names": LABELS,
    "label2id": {n: i for i, n in enumerate(LABELS)},
    "id2label": {str(i): n for i, n in enumerate(LABELS)},
    "num_labels": 2,
    "class_label": False,
}
WORDS_POS = "good great wonderful excellent fun nice loved".split()
WORDS_NEG = "bad awful terrible boring worst hated hate".split()


def _write_csv(path: Path, n: int = 40) -> Path:
    import csv

    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            pos = i % 2 == 0
            words = WORDS_POS if pos else WORDS_NEG
            # varying lengths so that sorting/padding matters
            text = " ".join(words[(i + k) % len(words)] for k in range(1 + i % 7)) + " the movie"
            w.writerow([text, "pos" if pos else "neg"])
    return path


def make_base(path: Path) -> Path:
    """A tiny BERT saved *with* a classification head, so loading it has no random init."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hubmgr.testing.models import tiny_bert_dir

    raw = tiny_bert_dir(path.parent / (path.name + "_raw"))
    torch.manual_seed(1)
    model = AutoModelForSequenceClassification.from_pretrained(
        raw, num_labels=2, id2label={0: "neg", 1: "pos"}, label2id={"neg": 0, "pos": 1}
    )
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(raw).save_pretrained(path)
    return path


def make_adapter(
    base: Path, out: Path, *, seed: int | None, hidden: int | None = None, task: str = "text-classification"
) -> Path:
    """Save a LoRA adapter; ``seed=None`` leaves it untouched (lora_B = 0: same outputs as the base)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification, BertConfig

    if hidden is None:
        model = AutoModelForSequenceClassification.from_pretrained(base)
    else:  # another architecture size: the adapter does not fit `base`
        model = AutoModelForSequenceClassification.from_config(
            BertConfig(
                vocab_size=300,
                hidden_size=hidden,
                num_hidden_layers=1,
                num_attention_heads=2,
                intermediate_size=hidden * 2,
                num_labels=2,
            )
        )
    cfg = LoraConfig(
        task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["query", "value"], modules_to_save=["classifier"]
    )
    peft_model = get_peft_model(model, cfg)
    if seed is not None:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_B" in name or ("modules_to_save" in name and "classifier" in name):
                    param.add_(torch.randn(param.shape, generator=gen) * 0.5)
    peft_model.save_pretrained(out)
    (out / "hubmgr_run.json").write_text(
        json.dumps(
            {
                "run_id": None,
                "task": task,
                "model": str(base),
                "revision": None,
                "options": {"text_column": "text", "label_column": "label"},
                "data_info": DATA_INFO,
                "max_length": 64,
            }
        )
    )
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    base = make_base(root / "base")
    return {
        "root": root,
        "base": base,
        "data": _write_csv(root / "eval.csv"),
        "trained": make_adapter(base, root / "trained", seed=0),
        "other": make_adapter(base, root / "other", seed=1),
        "untouched": make_adapter(base, root / "untouched", seed=None),
    }


@pytest.fixture()
def task():
    from hubmgr_tasks.text_classification import TextClassificationTask

    return TextClassificationTask()


def _manual_logits(base: Path, adapter: Path | None, texts: list[str]):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(base)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    enc = tok(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        return model(**enc).logits


def test_base_and_two_adapters(setup, task, hf_env):
    import csv

    import numpy as np

    from hubmgr.eval.runner import evaluate
    from hubmgr.train.events import EvalProgress

    events = []
    report = evaluate(
        str(setup["base"]),
        [str(setup["trained"]), str(setup["other"])],
        task=task,
        data=str(setup["data"]),
        batch_size=8,
        on_event=events.append,
    )
    assert [r.name for r in report.rows] == ["base", "trained", "other"]
    assert report.num_examples == 40 and report.task == "text-classification"
    assert report.warnings == []
    for row in report.rows:
        assert set(row.metrics) >= {"accuracy", "macro_f1", "loss"}
        assert row.samples_per_second > 0
    assert report.rows[1].metrics["loss"] != report.rows[0].metrics["loss"]
    assert report.metric_names()[0] == "accuracy"
    assert report.best() is not None
    assert all(isinstance(e, EvalProgress) for e in events)
    assert {e.name for e in events} == {"base", "trained", "other"}
    assert [e.done for e in events if e.name == "trained"][-1] == 40
    assert len(report.samples) == 5 and set(report.samples[0]["predictions"]) == {"base", "trained", "other"}
    assert report.samples[0]["label"] in LABELS
    json.dumps(report.to_dict())

    # the batched, length-sorted loop agrees with plain peft on one padded batch
    with open(setup["data"]) as f:
        rows = list(csv.DictReader(f))
    texts = [r["text"] for r in rows]
    refs = np.array([LABELS.index(r["label"]) for r in rows])
    for name, adapter in (("base", None), ("trained", setup["trained"]), ("other", setup["other"])):
        logits = _manual_logits(setup["base"], adapter, texts)
        acc = float((logits.argmax(-1).numpy() == refs).mean())
        row = next(r for r in report.rows if r.name == name)
        assert row.metrics["accuracy"] == pytest.approx(acc)
        import torch

        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(refs)).item()
        assert row.metrics["loss"] == pytest.approx(loss, rel=1e-4)
        assert report.samples[3]["predictions"][name] == LABELS[int(logits[3].argmax())]


def test_untouched_adapter_warns(setup, task, hf_env):
    from hubmgr.eval.runner import evaluate

    report = evaluate(
        setup["base"], [setup["untouched"], setup["trained"]], task=task, data=str(setup["data"]), max_samples=12
    )
    assert report.num_examples == 12
    assert report.warnings == ["Adapter untouched gives the same outputs as the base model: was it trained?"]
    assert report.rows[1].metrics == report.rows[0].metrics


def test_base_and_task_from_adapter_record(setup, hf_env, monkeypatch):
    """No base model and no task given: both come from hubmgr_run.json (the task through the plugins)."""
    from hubmgr.eval.runner import evaluate

    report = evaluate(None, [setup["trained"]], task=None, data=str(setup["data"]), max_samples=8)
    assert report.base_model == str(setup["base"]) and [r.name for r in report.rows] == ["base", "trained"]


def test_adapter_id_from_registry(setup, task, hf_env):
    from hubmgr.eval.runner import evaluate
    from hubmgr.runs.store import RunStore

    store = RunStore()
    store.create_run(
        run_id="20260101-000000-abcd",
        task="text-classification",
        model=str(setup["base"]),
        revision=None,
        config={},
        output_dir=setup["trained"],
    )
    store.finish("20260101-000000-abcd", status="completed", metrics={}, adapter_path=setup["trained"])
    report = evaluate(setup["base"], ["20260101"], task=task, data=str(setup["data"]), max_samples=4)
    assert report.rows[1].name == "20260101-000000-abcd"
    assert report.rows[1].path == str(setup["trained"].resolve())


def test_bad_adapters(setup, task, hf_env, tmp_path):
    from hubmgr.eval.runner import evaluate

    with pytest.raises(ModelError, match="does not exist"):
        evaluate(setup["base"], [tmp_path / "missing"], task=task, data=str(setup["data"]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="not an adapter folder"):
        evaluate(setup["base"], [tmp_path / "empty"], task=task, data=str(setup["data"]))
    with pytest.raises(ModelError, match="neither an adapter folder nor"):
        evaluate(setup["base"], ["nosuchid"], task=task, data=str(setup["data"]))
    with pytest.raises(DataError):
        evaluate(setup["base"], [], task=task, data=str(tmp_path / "nope.csv"))


def test_adapter_for_another_base(setup, task, hf_env, tmp_path):
    from hubmgr.eval.runner import evaluate

    wrong = make_adapter(setup["base"], tmp_path / "wrong", seed=0, hidden=16)
    with pytest.raises(ModelError) as err:
        evaluate(setup["base"], [wrong], task=task, data=str(setup["data"]), max_samples=4)
    assert "does not fit the base model" in str(err.value) and "\n" not in str(err.value)


def test_adapter_trained_for_another_task(setup, task, hf_env, tmp_path):
    from hubmgr.eval.runner import evaluate

    odd = make_adapter(setup["base"], tmp_path / "odd", seed=0, task="token-classification")
    with pytest.raises(ModelError, match="trained for task"):
        evaluate(setup["base"], [odd], task=task, data=str(setup["data"]), max_samples=4)


def test_base_named_differently_warns(setup, task, hf_env, tmp_path):
    import shutil

    from hubmgr.eval.runner import evaluate

    copy = shutil.copytree(setup["base"], tmp_path / "renamed-base")
    report = evaluate(copy, [setup["trained"]], task=task, data=str(setup["data"]), max_samples=4)
    assert any("was trained on" in w for w in report.warnings)


def test_bad_options(setup, task, hf_env):
    from hubmgr.eval.runner import evaluate

    with pytest.raises(UsageError):
        evaluate(setup["base"], [], task=task, data=str(setup["data"]), options={"nope": 1})
    with pytest.raises(DataError):
        evaluate(setup["base"], [], task=task, data=str(setup["data"]), options={"text_column": "missing"})


def test_merge_gives_same_logits(setup, hf_env, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hubmgr.eval.merge import merge_adapter

    out = tmp_path / "merged"
    result = merge_adapter(setup["trained"], output=out)
    assert Path(result.output) == out.resolve() and result.size_bytes > 0
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert not any(p.name.startswith(".merged.tmp") for p in tmp_path.iterdir())
    merged = AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert merged.config.id2label == {0: "neg", 1: "pos"}
    tok = AutoTokenizer.from_pretrained(out)
    texts = ["good fun movie", "awful boring worst plot ever"]
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        got = merged(**enc).logits
    want = _manual_logits(setup["base"], setup["trained"], texts)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)

    with pytest.raises(UsageError, match="not empty"):
        merge_adapter(setup["trained"], output=out)


def _cache_repo(hf_env, base: Path, repo_id: str, sha: str) -> Path:
    import shutil

    folder = hf_env.hub_cache / ("models--" + repo_id.replace("/", "--"))
    snap = folder / "snapshots" / sha
    shutil.copytree(base, snap)
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(sha)
    return snap


def test_cached_repo_base_and_revision(setup, task, hf_env, tmp_path):
    """A base named by repo id resolves to its cache snapshot; a revision that is not cached falls back with a warning."""
    import shutil

    from hubmgr.eval.runner import evaluate

    sha = "a" * 40
    _cache_repo(hf_env, setup["base"], "acme/tiny-bert", sha)
    adapter = shutil.copytree(setup["trained"], tmp_path / "cached-adapter")
    meta = json.loads((adapter / "hubmgr_run.json").read_text())
    meta.update(model="acme/tiny-bert", revision=sha)
    (adapter / "hubmgr_run.json").write_text(json.dumps(meta))
    report = evaluate(None, [adapter], task=task, data=str(setup["data"]), max_samples=4)
    assert report.base_model == "acme/tiny-bert" and report.base_path.endswith(sha)
    assert report.warnings == []

    meta.update(revision="b" * 40)
    (adapter / "hubmgr_run.json").write_text(json.dumps(meta))
    report = evaluate(None, [adapter], task=task, data=str(setup["data"]), max_samples=4)
    assert report.base_path.endswith(sha)
    assert len(report.warnings) == 1 and "revision bbbbbbbbbb" in report.warnings[0]

    with pytest.raises(ModelError, match="download"):
        evaluate("acme/not-here", [], task=task, data=str(setup["data"]))


def test_cancel(setup, task, hf_env):
    import threading

    from hubmgr.eval.runner import EvalCancelled, evaluate

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(EvalCancelled):
        evaluate(setup["base"], [], task=task, data=str(setup["data"]), cancel=cancel)


def test_per_class_matches_sklearn_and_the_cli(setup, task, hf_env, cli_runner):
    import csv

    from sklearn.metrics import precision_recall_fscore_support

    from hubmgr.eval.runner import evaluate

    report = evaluate(str(setup["base"]), [str(setup["trained"])], task=task, data=str(setup["data"]), per_class=True)
    with open(setup["data"]) as f:
        rows = list(csv.DictReader(f))
    refs = [LABELS.index(r["label"]) for r in rows]
    for name, adapter in (("base", None), ("trained", setup["trained"])):
        preds = _manual_logits(setup["base"], adapter, [r["text"] for r in rows]).argmax(-1).numpy()
        p, r, f, s = precision_recall_fscore_support(refs, preds, labels=[0, 1], zero_division=0)
        got = next(row for row in report.rows if row.name == name).per_class
        assert [c["label"] for c in got] == LABELS
        assert [c["support"] for c in got] == list(s) == [20, 20]
        assert [c["precision"] for c in got] == pytest.approx(list(p))
        assert [c["recall"] for c in got] == pytest.approx(list(r))
        assert [c["f1"] for c in got] == pytest.approx(list(f))
    assert evaluate(str(setup["base"]), [], task=task, data=str(setup["data"]), max_samples=4).rows[0].per_class is None

    result = cli_runner(
        "eval",
        "--model",
        str(setup["base"]),
        "--adapter",
        str(setup["trained"]),
        "--data",
        str(setup["data"]),
        "--per-class",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rows"][1]["per_class"] == report.to_dict()["rows"][1]["per_class"]
    result = cli_runner(
        "eval",
        "--model",
        str(setup["base"]),
        "--adapter",
        str(setup["trained"]),
        "--data",
        str(setup["data"]),
        "--per-class",
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = lines.index("model\tlabel\tprecision\trecall\tf1\tsupport")
    assert [line.split("\t")[:2] for line in lines[header + 1 : header + 5]] == [
        ["base", "neg"],
        ["base", "pos"],
        ["trained", "neg"],
        ["trained", "pos"],
    ]


def test_eval_data_with_one_label_is_scored(setup, task, hf_env, tmp_path):
    """Refusing one-label data is for training: a file of only positive reviews can still be evaluated."""
    from hubmgr.eval.runner import evaluate

    only_pos = tmp_path / "pos.csv"
    only_pos.write_text("text,label\ngood great the movie,pos\nwonderful fun,pos\n")
    report = evaluate(str(setup["base"]), [str(setup["trained"])], task=task, data=str(only_pos))
    assert report.num_examples == 2 and 0 <= report.rows[1].metrics["accuracy"] <= 1


def test_adapter_of_an_uninstalled_plugin_names_the_package(setup, hf_env, tmp_path, cli_runner):
    """The run record keeps which package provided the task; once it is gone, eval says what to install."""
    from hubmgr.errors import PluginError
    from hubmgr.eval.runner import evaluate

    gone = make_adapter(setup["base"], tmp_path / "gone", seed=0, task="multi-label-x")
    meta = json.loads((gone / "hubmgr_run.json").read_text())
    meta["task_provider"] = {"plugin": "multilabel_x", "package": "hubmgr-multilabel-x", "version": "0.3.1"}
    (gone / "hubmgr_run.json").write_text(json.dumps(meta))
    with pytest.raises(
        PluginError,
        match=r"Unknown task 'multi-label-x': it came from the plugin package"
        r" hubmgr-multilabel-x 0\.3\.1, which is not installed here"
        r" \(`pip install hubmgr-multilabel-x`\)",
    ):
        evaluate(setup["base"], [gone], task=None, data=str(setup["data"]), max_samples=4)
    result = cli_runner("eval", "--adapter", str(gone), "--data", str(setup["data"]))
    assert result.exit_code == 11
    assert "pip install hubmgr-multilabel-x" in result.stderr and "Traceback" not in result.output


def test_the_run_record_names_the_package_that_provided_the_task(hf_env, tmp_path):
    import hubmgr
    from hubmgr.plugins import task_provider
    from hubmgr.train.config import TrainConfig

    from tests.integration.test_train import write_reviews

    assert task_provider("text_classification")["package"] == "hubmgr"
    assert task_provider("no-such-task") == {}
    data = write_reviews(tmp_path / "train.csv", n=40)
    base = make_base(tmp_path / "base")
    result = hubmgr.train(
        TrainConfig(
            task="text-classification",
            model=str(base),
            data=str(data),
            output_dir=str(tmp_path / "out"),
            max_steps=1,
            batch_size=8,
        )
    )
    meta = json.loads((result.adapter_path / "hubmgr_run.json").read_text())
    assert meta["task_provider"]["plugin"] == "text_classification"
    assert meta["task_provider"]["package"] == "hubmgr" and meta["task_provider"]["version"] == hubmgr.__version__


def test_extra_eval_gets_the_same_kind_of_data_in_training_and_in_eval(hf_env, tmp_path):
    """data.eval is the scored raw rows (--max-samples applied); predictions and labels are this model's,
    row for row with the preprocessed split, whether training or `hubmgr eval` calls it."""
    import hubmgr
    from hubmgr_tasks.text_classification import TextClassificationTask

    from hubmgr.hookspecs import hookimpl
    from hubmgr.plugins import registered
    from hubmgr.train.config import TrainConfig

    from tests.integration.test_train import write_reviews

    seen = []

    class Inspecting(TextClassificationTask):
        name = "inspecting"

        def extra_eval(self, model, processor, options, data, predictions=None, labels=None, split=None):
            seen.append(
                {
                    "train": None if data.train is None else len(data.train),
                    "eval": len(data.eval),
                    "predictions": len(predictions),
                    "split": len(split),
                    "labels_match": list(labels) == list(split["labels"]),
                }
            )
            return {"rows": len(data.eval)}

    class Plugin:
        @hookimpl
        def register_tasks(self, register):
            register(Inspecting)

    train = write_reviews(tmp_path / "train.csv", n=40)
    held = write_reviews(tmp_path / "eval.csv", n=24)
    base = make_base(tmp_path / "base")
    with registered(Plugin(), name="inspecting_plugin"):
        result = hubmgr.train(
            TrainConfig(
                task="inspecting",
                model=str(base),
                data=str(train),
                eval_data=str(held),
                output_dir=str(tmp_path / "out"),
                max_steps=2,
                batch_size=8,
            )
        )
        report = hubmgr.evaluate(None, [str(result.adapter_path)], task=None, data=str(held), max_samples=10)
    assert seen[0] == {"train": 40, "eval": 24, "predictions": 24, "split": 24, "labels_match": True}
    assert seen[1:] == [{"train": None, "eval": 10, "predictions": 10, "split": 10, "labels_match": True}] * 2
    assert [row.extras for row in report.rows] == [{"rows": 10}, {"rows": 10}]


def test_a_four_argument_extra_eval_still_works_and_a_crashing_one_costs_only_the_extras(setup, hf_env, monkeypatch):
    import hubmgr
    from hubmgr_tasks.text_classification import TextClassificationTask

    def old(self, model, processor, options, data):
        return {"n": len(data.eval)}

    def crashing(self, model, processor, options, data, predictions=None, labels=None, split=None):
        raise ZeroDivisionError("plugin bug")

    monkeypatch.setattr(TextClassificationTask, "extra_eval", old)
    old_report = hubmgr.evaluate(
        str(setup["base"]), [str(setup["trained"])], task="text-classification", data=str(setup["data"])
    )
    monkeypatch.setattr(TextClassificationTask, "extra_eval", crashing)
    crash = hubmgr.evaluate(
        str(setup["base"]), [str(setup["trained"])], task="text-classification", data=str(setup["data"])
    )
    assert [row.extras for row in old_report.rows] == [{"n": 40}, {"n": 40}]
    assert all(row.extras == {} and "accuracy" in row.metrics for row in crash.rows)
    assert any("could not compute its extras" in w and "ZeroDivisionError" in w for w in crash.warnings)


@pytest.mark.parametrize("where", ["load_data", "collator", "compute_metrics", "predict"])
def test_a_crash_inside_a_plugin_task_in_eval_or_predict_is_charged_to_the_plugin(
    hf_env, tmp_path, cli_runner, monkeypatch, where
):
    """`hubmgr eval` and `hubmgr predict` name the task, the plugin and the place, exit 11, no traceback."""
    import hubmgr
    from hubmgr_tasks.text_classification import TextClassificationTask

    from hubmgr.hookspecs import hookimpl
    from hubmgr.plugins import registered
    from hubmgr.train.config import TrainConfig

    from tests.integration.test_train import write_reviews

    class Crashy(TextClassificationTask):
        name = "crashy-eval"
        crash_in: str | None = None

        def load_data(self, source, options):
            if Crashy.crash_in == "load_data":
                return {}["no such column"]
            return super().load_data(source, options)

        def collator(self, processor, options):
            inner = super().collator(processor, options)

            def collate(rows):
                if Crashy.crash_in == "collator":
                    return len(rows) / 0
                return inner(rows)

            return collate

        def compute_metrics(self, predictions, labels, data, options=None):
            if Crashy.crash_in == "compute_metrics":
                raise ValueError("bad metric")
            return super().compute_metrics(predictions, labels, data, options)

        def predict(self, model, processor, inputs, options, data):
            if Crashy.crash_in == "predict":
                raise RuntimeError("cannot predict")
            return super().predict(model, processor, inputs, options, data)

    class Plugin:
        @hookimpl
        def register_tasks(self, register):
            register(Crashy)

    data = write_reviews(tmp_path / "train.csv", n=24)
    with registered(Plugin(), name="crashy_eval_plugin"):
        result = hubmgr.train(
            TrainConfig(
                task="crashy-eval",
                model=str(make_base(tmp_path / "base")),
                data=str(data),
                output_dir=str(tmp_path / "out"),
                max_steps=1,
                batch_size=8,
            )
        )
        Crashy.crash_in = where
        if where == "predict":
            run = cli_runner("predict", result.adapter_path, "great movie")
        else:
            run = cli_runner("eval", "--adapter", result.adapter_path, "--data", data)
    assert run.exit_code == 11, run.output
    line = run.stderr.strip().splitlines()[-1]
    func = {"collator": "collate"}.get(where, where)
    assert line.startswith(f"error: Task 'crashy-eval' of plugin 'crashy_eval_plugin' failed in {func} (test_eval.py:")
    assert "Traceback" not in run.output
