"""hubmgr.metrics: which way a metric is better and which metrics lead, and Task.greater_is_better_for."""

from __future__ import annotations

from hubmgr.metrics import best_value, conventional_direction, greater_is_better, headline, ordered, task_directions
from hubmgr.task import Task


class _MultiLabel(Task):
    name = "ml-test"
    main_metric = "micro_f1"
    greater_is_better = True
    metric_directions = {"hamming_loss": False, "coverage_error": False, "calibration_gap": False}


def test_the_convention_is_losses_and_standard_errors_lower_everything_else_higher() -> None:
    assert not conventional_direction("loss") and not conventional_direction("eval_token_loss")
    assert not conventional_direction("perplexity_stderr")
    assert conventional_direction("accuracy") and conventional_direction("eval_macro_f1")
    # a name is not guessed from words inside it: a task declares what the convention gets wrong
    assert conventional_direction("coverage_error")
    assert not greater_is_better("eval_coverage_error", {"coverage_error": False})
    assert greater_is_better("eval_loss", {"eval_loss": True})


def test_a_task_declares_directions_and_its_main_metric_wins() -> None:
    task = _MultiLabel()
    assert task.greater_is_better_for("micro_f1") and task.greater_is_better_for("eval_micro_f1")
    assert not task.greater_is_better_for("eval_hamming_loss")
    assert not task.greater_is_better_for("coverage_error")
    assert task.greater_is_better_for("subset_accuracy") and not task.greater_is_better_for("loss")

    class LowerMain(Task):
        main_metric = "wer"
        greater_is_better = False

    assert not LowerMain().greater_is_better_for("eval_wer")  # the main metric's own direction


def test_task_directions_survive_a_crashing_plugin_method() -> None:
    class Broken(_MultiLabel):
        def greater_is_better_for(self, name, data=None):
            raise ZeroDivisionError("plugin bug")

    got = task_directions(Broken(), None, ["eval_micro_f1", "eval_loss", "eval_accuracy"], main=("micro_f1", True))
    assert got == {"eval_micro_f1": True, "eval_loss": False, "eval_accuracy": True}
    got = task_directions(_MultiLabel(), None, ["eval_calibration_gap", "eval_micro_f1"], main=("micro_f1", True))
    assert got == {"eval_calibration_gap": False, "eval_micro_f1": True}


def test_best_value_follows_the_direction_and_skips_nan() -> None:
    assert best_value([0.3, 0.1, float("nan"), 0.2], "hamming_loss", {"hamming_loss": False}) == 0.1
    assert best_value([0.3, 0.1, 0.2], "accuracy") == 0.3
    assert best_value([None, float("nan")], "accuracy") is None


def test_ordered_puts_the_main_metric_first_then_task_metrics_losses_and_bookkeeping() -> None:
    names = ["eval_runtime", "eval_loss", "eval_accuracy", "epoch", "eval_macro_f1", "eval_f1"]
    assert ordered(names, "f1") == ["eval_f1", "eval_accuracy", "eval_macro_f1", "eval_loss", "epoch", "eval_runtime"]
    assert ordered(["loss", "perplexity", "token_loss"], "perplexity")[0] == "perplexity"


def test_headline_leads_with_the_main_metric_even_when_it_sorts_late() -> None:
    metrics = {
        "eval_accuracy": 0.91,
        "eval_macro_f1": 0.90,
        "eval_micro_f1": 0.62,
        "eval_subset_accuracy": 0.4,
        "eval_loss": 0.3,
        "train_loss": 0.2,
        "eval_runtime": 3.0,
        "epoch": 2.0,
    }
    assert headline(metrics, "micro_f1", 2) == [("micro_f1", 0.62), ("accuracy", 0.91)]
    assert [n for n, _ in headline(metrics, None, 10)] == ["accuracy", "macro_f1", "micro_f1", "subset_accuracy"]
    # losses only when nothing else is there; bookkeeping never
    assert headline({"eval_loss": 0.4, "eval_runtime": 2.0}, None, 3) == [("loss", 0.4)]
    assert headline({"train_loss": 0.7, "epoch": 1.0}, None, 3) == [("train_loss", 0.7)]
    assert headline(
        {"eval_perplexity": 30.0, "eval_token_loss": 3.4, "eval_perplexity_stderr": 1.0}, "perplexity", 3
    ) == [("perplexity", 30.0)]
    assert headline({}, "accuracy") == []


def test_auxiliary_metrics_are_shown_after_the_losses_and_never_best() -> None:
    from hubmgr.metrics import is_auxiliary

    directions = {"mean_confidence": None, "hamming_loss": False}
    assert is_auxiliary("eval_mean_confidence", directions) and not is_auxiliary("hamming_loss", directions)
    assert best_value([0.2, 0.9], "mean_confidence", directions) is None
    assert best_value([0.2, 0.9], "hamming_loss", directions) == 0.2
    names = ["mean_confidence", "loss", "accuracy", "epoch"]
    assert ordered(names, "accuracy", directions) == ["accuracy", "loss", "mean_confidence", "epoch"]
    metrics = {"eval_accuracy": 0.8, "eval_mean_confidence": 0.95, "eval_macro_f1": 0.7}
    assert [n for n, _ in headline(metrics, "accuracy", 3, directions)] == ["accuracy", "macro_f1"]


def test_split_tables_takes_per_label_vectors_out_of_the_scalars() -> None:
    import numpy as np

    from hubmgr.metrics import split_tables

    scalars, tables = split_tables(
        {
            "accuracy": np.float32(0.5),
            "n": 3,
            "f1_per_label": np.array([0.25, 0.75]),
            "recall_per_label": {"b": 1.0, "a": 0.0},
            "support": [4, 5, 6],
            "note": "text",
            "grid": [[1, 2]],
        },
        ["neg", "pos"],
    )
    assert scalars == {"accuracy": 0.5, "n": 3.0}
    # a vector as long as the label names is named by them; other lengths are numbered; dicts keep their keys
    assert tables == {
        "f1_per_label": {"neg": 0.25, "pos": 0.75},
        "recall_per_label": {"b": 1.0, "a": 0.0},
        "support": {"0": 4.0, "1": 5.0, "2": 6.0},
    }
    assert split_tables(None) == ({}, {})


def test_table_labels_keep_the_first_order_and_each_label_once() -> None:
    from hubmgr.metrics import table_labels

    assert table_labels([{"b": 1.0, "a": 2.0}, {"a": 0.5, "c": 0.1}]) == ["b", "a", "c"]
    assert table_labels([]) == []
