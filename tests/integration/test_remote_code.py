"""A base model with its own code (``auto_map`` in config.json): eval, predict and merge follow train's rule.

Without ``--trust-remote-code`` such a model is refused with one sentence (it is never loaded with the
built-in class in silence); with it, the code runs, and ``merge`` copies the code files its configs name,
so the merged folder never has an ``auto_map`` that points at code it lacks.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from hubmgr.errors import ModelError

from .test_eval import _write_csv, make_adapter, make_base

# auto_map: AutoModelForSequenceClassification is the repo's own class (transformers loads and saves its code
# when trusted); AutoModel names a second module that nothing here loads, so only hubmgr can copy it.
AUTO_MAP = {
    "AutoModel": "modeling_extra.CustomBertModel",
    "AutoModelForSequenceClassification": "modeling_custom.CustomBertForSequenceClassification",
}
CODE = {
    "modeling_custom.py": """
        from transformers import BertForSequenceClassification

        from .custom_helpers import MARK


        class CustomBertForSequenceClassification(BertForSequenceClassification):
            mark = MARK
        """,
    "custom_helpers.py": 'MARK = "custom code ran"\n',
    "modeling_extra.py": """
        from transformers import BertModel

        from .custom_helpers import MARK


        class CustomBertModel(BertModel):
            mark = MARK
        """,
}


def _with_auto_map(base: Path, folder: Path, *, code: bool = True) -> Path:
    shutil.copytree(base, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = AUTO_MAP
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    if code:
        for name, text in CODE.items():
            (folder / name).write_text(textwrap.dedent(text))
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("remote_code")
    base = make_base(root / "base")
    custom = _with_auto_map(base, root / "custom")
    return {
        "root": root,
        "base": base,
        "custom": custom,
        "data": _write_csv(root / "eval.csv", n=8),
        # the adapter records the custom base as its base model
        "adapter": make_adapter(base, root / "adapter", seed=0),
    }


@pytest.fixture()
def adapter(setup, tmp_path):
    """A copy of the adapter whose run record names the custom base."""
    folder = shutil.copytree(setup["adapter"], tmp_path / "adapter")
    meta = json.loads((folder / "hubmgr_run.json").read_text())
    meta["model"] = str(setup["custom"])
    (folder / "hubmgr_run.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture()
def modules_cache(tmp_path, monkeypatch):
    """transformers copies trusted code into HF_MODULES_CACHE (read at its import): keep it in tmp_path."""
    import transformers.dynamic_module_utils as dmu

    monkeypatch.setattr(dmu, "HF_MODULES_CACHE", str(tmp_path / "hf_modules"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in [m for m in sys.modules if m.split(".")[0] == "transformers_modules"]:
        monkeypatch.delitem(sys.modules, name)  # else the package still lives in an earlier test's folder
    return tmp_path / "hf_modules"


def _refused(exc_info, name: str) -> None:
    text = str(exc_info.value)
    assert "auto_map" in text and "--trust-remote-code" in text and name in text, text
    assert "\n" not in text


def test_eval_refuses_remote_code_unless_trusted(setup, adapter, hf_env, modules_cache, cli_runner):
    from hubmgr.eval.runner import evaluate

    with pytest.raises(ModelError) as err:
        evaluate(None, [adapter], task=None, data=str(setup["data"]))
    _refused(err, str(setup["custom"]))
    with pytest.raises(ModelError):  # the base row alone, named directly
        evaluate(setup["custom"], [], task="text-classification", data=str(setup["data"]))

    result = cli_runner("eval", "--adapter", adapter, "--data", setup["data"])
    assert result.exit_code == ModelError.exit_code, result.output
    assert result.output.count("\n") == 1 and "--trust-remote-code" in result.output

    report = evaluate(None, [adapter], task=None, data=str(setup["data"]), trust_remote_code=True)
    assert [row.name for row in report.rows] == ["base", "adapter"]


def test_predict_refuses_remote_code_unless_trusted(setup, adapter, hf_env, modules_cache, cli_runner):
    from hubmgr.eval.predict import predict

    with pytest.raises(ModelError) as err:
        predict(adapter, ["good fun movie"])
    _refused(err, str(setup["custom"]))

    result = cli_runner("predict", adapter, "good fun movie")
    assert result.exit_code == ModelError.exit_code, result.output
    assert result.output.count("\n") == 1 and "--trust-remote-code" in result.output

    preds = predict(adapter, ["good fun movie"], trust_remote_code=True)
    assert len(preds) == 1 and preds[0].prediction.split()[0] in ("neg", "pos")


def test_merge_refuses_remote_code_unless_trusted(setup, adapter, hf_env, modules_cache, tmp_path, cli_runner):
    from hubmgr.eval.merge import merge_adapter

    out = tmp_path / "merged"
    with pytest.raises(ModelError) as err:
        merge_adapter(adapter, output=out)
    _refused(err, str(setup["custom"]))
    assert not out.exists()

    result = cli_runner("merge", adapter, "--output", out)
    assert result.exit_code == ModelError.exit_code, result.output
    assert result.output.count("\n") == 1 and "--trust-remote-code" in result.output
    assert not out.exists()


def test_merge_with_trusted_code_copies_it(setup, adapter, hf_env, modules_cache, tmp_path):
    from transformers import AutoModel, AutoModelForSequenceClassification

    from hubmgr.eval.merge import merge_adapter
    from hubmgr.safety import auto_map_of, local_code_modules

    out = tmp_path / "merged"
    result = merge_adapter(adapter, output=out, trust_remote_code=True)
    auto_map = auto_map_of(out / "config.json")
    assert auto_map == AUTO_MAP
    for name in local_code_modules(auto_map) | {"custom_helpers.py"}:
        assert (out / name).is_file(), f"{name} was not copied"
    assert "modeling_extra.py" in result.code_files  # the module only hubmgr copies
    meta = json.loads((out / "hubmgr_merge.json").read_text())
    assert meta["trust_remote_code"] is True

    # the merged folder loads on its own, as the base did, without the base folder
    moved = shutil.move(str(out), str(tmp_path / "elsewhere"))
    shutil.move(str(setup["custom"]), str(setup["root"] / "custom-away"))
    try:
        model = AutoModelForSequenceClassification.from_pretrained(moved, trust_remote_code=True)
        assert type(model).__name__ == "CustomBertForSequenceClassification" and model.mark == "custom code ran"
        encoder = AutoModel.from_pretrained(moved, trust_remote_code=True)
        assert type(encoder).__name__ == "CustomBertModel"
    finally:
        shutil.move(str(setup["root"] / "custom-away"), str(setup["custom"]))


def test_merge_refuses_an_auto_map_whose_code_is_missing(setup, hf_env, modules_cache, tmp_path):
    """Trusted, but the repo lacks the module its AutoModel entry names: no folder with a dangling auto_map."""
    from hubmgr.eval.merge import merge_adapter

    base = _with_auto_map(setup["base"], tmp_path / "no-code", code=False)
    config = json.loads((base / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_gone.GoneModel"}  # the classification class stays built in
    (base / "config.json").write_text(json.dumps(config))
    out = tmp_path / "merged"
    with pytest.raises(ModelError, match="modeling_gone.py"):
        merge_adapter(setup["adapter"], output=out, base_model=str(base), trust_remote_code=True)
    assert not out.exists()
    assert not any(p.name.startswith(".merged.tmp") for p in tmp_path.iterdir())


def test_check_remote_code_rule(tmp_path):
    from hubmgr.safety import check_remote_code, local_code_modules

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert check_remote_code(tmp_path, trust_remote_code=False) is False
    (tmp_path / "config.json").write_text(json.dumps({"auto_map": AUTO_MAP}))
    with pytest.raises(ModelError, match="org/model needs its own Python code"):
        check_remote_code(tmp_path, trust_remote_code=False, model="org/model")
    assert check_remote_code(tmp_path, trust_remote_code=True) is True
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        check_remote_code(tmp_path, trust_remote_code=True)
    assert local_code_modules(
        {
            "AutoTokenizer": ["tokenization_x.XTokenizer", None],
            "AutoModel": "other/repo--modeling_y.Y",
            "AutoConfig": "configuration_x.XConfig",
        }
    ) == {"tokenization_x.py", "configuration_x.py"}
