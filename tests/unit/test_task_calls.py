"""hubmgr.task's call_* helpers: options, data, predictions reach the methods that take them, and plugins
written for the older, shorter signatures keep working."""

from __future__ import annotations

from hubmgr.task import Task, TaskData, call_compute_metrics, call_extra_eval, call_reduce_logits


def test_reduce_logits_gets_options_and_data_when_it_takes_them() -> None:
    data = TaskData(train=None, eval=None, info={"threshold": 0.7})

    class New(Task):
        def reduce_logits(self, logits, labels, options=None, data=None):
            return (logits, labels, options, data.info["threshold"])

    class Old(Task):
        def reduce_logits(self, logits, labels):
            return (logits, labels)

    class Kw(Task):
        def reduce_logits(self, logits, labels, **kwargs):
            return sorted(kwargs)

    assert call_reduce_logits(New(), "L", "Y", {"o": 1}, data) == ("L", "Y", {"o": 1}, 0.7)
    assert call_reduce_logits(Old(), "L", "Y", {"o": 1}, data) == ("L", "Y")
    assert call_reduce_logits(Kw(), "L", "Y", None, data) == ["data", "options"]


def test_extra_eval_gets_the_keywords_it_takes() -> None:
    class OnlyPredictions(Task):
        def extra_eval(self, model, processor, options, data, predictions=None):
            return {"n": len(predictions)}

    class Old(Task):
        def extra_eval(self, model, processor, options, data):
            return {"old": True}

    kwargs = dict(predictions=[1, 2, 3], labels=[1, 2, 3], split=None)
    assert call_extra_eval(OnlyPredictions(), None, None, None, None, **kwargs) == {"n": 3}
    assert call_extra_eval(Old(), None, None, None, None, **kwargs) == {"old": True}


def test_compute_metrics_three_and_four_argument_forms() -> None:
    class Three(Task):
        def compute_metrics(self, predictions, labels, data):
            return {"n": float(len(predictions))}

    class Four(Task):
        def compute_metrics(self, predictions, labels, data, options=None):
            return {"t": float(options["t"])}

    assert call_compute_metrics(Three(), [1, 2], [1, 2], None, {"t": 1}) == {"n": 2.0}
    assert call_compute_metrics(Four(), [1, 2], [1, 2], None, {"t": 3}) == {"t": 3.0}
