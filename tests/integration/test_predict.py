"""``hubmgr predict`` / ``hubmgr.predict``: an adapter tried on a few inputs, with the base model beside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hubmgr.errors import ModelError, UsageError

from .test_eval import make_adapter, make_base

TEXTS = ["good great wonderful the movie", "bad awful the movie", "fun nice loved loved the movie"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    base = make_base(root / "base")
    return {"root": root, "base": base, "adapter": make_adapter(base, root / "adapter", seed=0)}


def _expected(base: Path, adapter: Path | None, texts: list[str]) -> list[str]:
    """What the predictions must say, computed directly with transformers and peft."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(base)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    out = []
    with torch.no_grad():
        for text in texts:
            probs = model(**tok([text], return_tensors="pt")).logits.softmax(-1)[0]
            i = int(probs.argmax())
            out.append(f"{['neg', 'pos'][i]} ({float(probs[i]):.2f})")
    return out


def test_predictions_match_the_model_with_and_without_the_adapter(hf_env, setup) -> None:
    import hubmgr

    preds = hubmgr.predict(setup["adapter"], TEXTS, compare=True, batch_size=2)
    assert [p.input for p in preds] == TEXTS
    assert [p.prediction for p in preds] == _expected(setup["base"], setup["adapter"], TEXTS)
    assert [p.base_prediction for p in preds] == _expected(setup["base"], None, TEXTS)
    assert [p.prediction for p in preds] != [p.base_prediction for p in preds]
    assert hubmgr.predict(setup["adapter"], TEXTS[:1])[0].base_prediction is None


def test_cli_table_json_stdin_and_file(hf_env, setup, cli_runner, tmp_path: Path) -> None:
    adapter = str(setup["adapter"])
    expected = _expected(setup["base"], setup["adapter"], TEXTS)

    result = cli_runner("predict", adapter, *TEXTS, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["prediction"] for r in rows] == expected and "base_prediction" not in rows[0]

    result = cli_runner("predict", adapter, "--compare", input="\n".join(TEXTS) + "\n\n")
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[-4] == "input\tbase model\twith the adapter"
    assert [line.split("\t")[2] for line in lines[-3:]] == expected

    listing = tmp_path / "inputs.txt"
    listing.write_text("\n".join(TEXTS[:2]) + "\n", encoding="utf-8")
    result = cli_runner("predict", adapter, "--file", str(listing), "--json")
    assert result.exit_code == 0, result.output
    assert [r["input"] for r in json.loads(result.output)] == TEXTS[:2]


def test_pair_separator_makes_text_pairs(hf_env, setup, cli_runner) -> None:
    result = cli_runner(
        "predict", str(setup["adapter"]), "good movie ||| great acting", "--pair-separator", " ||| ", "--json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["input"] == ["good movie", "great acting"]
    result = cli_runner("predict", str(setup["adapter"]), "no separator here", "--pair-separator", " ||| ")
    assert result.exit_code == 2 and "has no ' ||| '" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{adapter}"], "There are no inputs"),
        (["{adapter}", "--file", "{missing}"], "does not exist"),
        (["{root}/no-such-adapter", "some text"], "no-such-adapter"),
    ],
)
def test_user_errors_are_one_line(hf_env, setup, cli_runner, args: list[str], message: str) -> None:
    values = {"adapter": setup["adapter"], "root": setup["root"], "missing": setup["root"] / "missing.txt"}
    result = cli_runner("predict", *[a.format(**values) for a in args], input="")
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_python_api_errors(hf_env, setup) -> None:
    import hubmgr

    with pytest.raises(UsageError, match="at least one input"):
        hubmgr.predict(setup["adapter"], [])
    with pytest.raises(ModelError):
        hubmgr.predict(setup["root"] / "nothing-here", ["text"])


def test_predictor_loads_once_and_the_tui_backend_keeps_it(hf_env, setup) -> None:
    from hubmgr.eval.predict import Predictor
    from hubmgr.tui.backend import Backend

    predictor = Predictor(setup["adapter"])
    first = predictor(TEXTS[:1])
    again = predictor(TEXTS[:1], compare=True)
    assert first[0].prediction == again[0].prediction and again[0].base_prediction is not None

    backend = Backend()
    backend.predict(str(setup["adapter"]), TEXTS[:1])
    kept = backend._predictor
    preds = backend.predict(str(setup["adapter"]), TEXTS[1:2])
    assert backend._predictor is kept
    assert preds[0].prediction == _expected(setup["base"], setup["adapter"], TEXTS[1:2])[0]
