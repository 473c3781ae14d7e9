"""hubmgr.data: loading tables through datasets, with one clear DataError for each bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hubmgr.data import check_columns, load_image_folder, load_splits, load_table, sample, split_train_eval
from hubmgr.errors import DataError, HubUnreachableError
from hubmgr.task import DataSource


@pytest.fixture(autouse=True)
def _env(hf_env):
    return hf_env


def _csv(path: Path, n: int = 10) -> Path:
    path.write_text("text,label\n" + "".join(f"row {i},{'pos' if i % 2 else 'neg'}\n" for i in range(n)))
    return path


def test_formats(tmp_path):
    import pandas as pd

    rows = [{"text": f"t{i}", "label": i % 2} for i in range(4)]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "a.json").write_text(json.dumps(rows))
    (tmp_path / "a.tsv").write_text("text\tlabel\n" + "".join(f"t{i}\t{i % 2}\n" for i in range(4)))
    pd.DataFrame(rows).to_parquet(tmp_path / "a.parquet")
    _csv(tmp_path / "a.csv", 4)
    for name in ("a.jsonl", "a.json", "a.tsv", "a.parquet", "a.csv"):
        ds = load_table(tmp_path / name)
        assert ds.column_names == ["text", "label"] and len(ds) == 4, name
    (tmp_path / "a.txt").write_text("first line\nsecond line\n")
    txt = load_table(str(tmp_path / "a.txt"))
    assert txt.column_names == ["text"] and txt["text"] == ["first line", "second line"]


def test_nothing_lands_in_the_datasets_cache(tmp_path, hf_env):
    load_table(_csv(tmp_path / "a.csv"))
    cache = hf_env.hf_home / "datasets"
    assert not cache.exists() or not any(cache.rglob("*.arrow"))


def test_folder_with_split_files(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    _csv(folder / "train.csv", 6)
    _csv(folder / "validation.csv", 3)
    assert len(load_table(folder)) == 6
    assert len(load_table(folder, split="validation")) == 3
    with pytest.raises(DataError, match=r"has no 'test' split"):
        load_table(folder, split="test")
    train, eval_ds = load_splits(DataSource(train=str(folder)))
    assert (len(train), len(eval_ds)) == (6, 3)


def test_folder_of_plain_files_is_one_train_split(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    _csv(folder / "part1.csv", 2)
    _csv(folder / "part2.csv", 3)
    assert len(load_table(folder)) == 5
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="has no data files"):
        load_table(empty)


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataError, match=f"Data file {missing} does not exist."):
        load_table(missing)


def test_unknown_extension(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_text("x")
    with pytest.raises(DataError, match=r"unsupported extension '\.xlsx'; use \.csv"):
        load_table(path)


def test_unreadable_file(tmp_path):
    import os

    path = _csv(tmp_path / "secret.csv")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):  # running as root
            pytest.skip("root can read anything")
        with pytest.raises(DataError, match="cannot be read"):
            load_table(path)
    finally:
        path.chmod(0o644)


def test_empty_file_and_empty_split(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="is empty"):
        load_table(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("text,label\n")
    with pytest.raises(DataError, match="has no rows"):
        load_table(tmp_path / "header.csv")


def test_parse_errors(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(DataError, match=r"could not be read as JSON lines: .*parse error"):
        load_table(tmp_path / "bad.jsonl")
    (tmp_path / "bad.csv").write_text('a,b\n1,2\n"unterminated\n')
    with pytest.raises(DataError, match="could not be read as CSV"):
        load_table(tmp_path / "bad.csv")


def test_hub_id_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        HubUnreachableError, match="'someone/some-data:config' is not a local file or folder, and the Hub is offline"
    ):
        load_table("someone/some-data:config")


def test_check_columns_message(tmp_path):
    ds = load_table(_csv(tmp_path / "data.csv"))
    check_columns(ds, {"text_column": "text", "label_column": "label", "text_pair_column": None})
    with pytest.raises(DataError) as err:
        check_columns(ds, {"text_column": "txt"}, source="data.csv")
    assert str(err.value) == "Column 'txt' (text_column) is not in data.csv; columns are: text, label."


def test_split_train_eval(tmp_path):
    ds = load_table(_csv(tmp_path / "a.csv", 20))
    train, eval_ds = split_train_eval(ds, 0.25, seed=1)
    assert (len(train), len(eval_ds)) == (15, 5)
    again = split_train_eval(ds, 0.25, seed=1)[1]
    assert eval_ds["text"] == again["text"]
    assert split_train_eval(ds, 0, seed=1) == (ds, None)
    tiny = split_train_eval(ds.select(range(2)), 0.01, seed=1)
    assert (len(tiny[0]), len(tiny[1])) == (1, 1)
    with pytest.raises(DataError, match="from 1 row"):
        split_train_eval(ds.select(range(1)), 0.5)
    with pytest.raises(DataError, match="below 1"):
        split_train_eval(ds, 1.0)


def test_load_splits_sampling_and_columns(tmp_path):
    train_file = _csv(tmp_path / "train.csv", 20)
    eval_file = _csv(tmp_path / "eval.csv", 10)
    train, eval_ds = load_splits(
        DataSource(train=str(train_file), eval=str(eval_file), max_train_samples=5, max_eval_samples=3)
    )
    assert (len(train), len(eval_ds)) == (5, 3)
    with pytest.raises(DataError, match=r"Column 'text' \(text_column\) is not in eval.csv; columns are: body, label"):
        (tmp_path / "eval.csv").write_text("body,label\nx,pos\n")
        load_splits(DataSource(train=str(train_file), eval=str(eval_file)), required={"text_column": "text"})
    assert len(sample(train, None, 0)) == 5


def test_load_image_folder(tmp_path):
    from PIL import Image

    for cls in ("cat", "dog"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        Image.new("RGB", (4, 4)).save(tmp_path / "imgs" / cls / "a.png")
    (tmp_path / "imgs" / "dog" / "notes.txt").write_text("not an image")
    ds = load_image_folder(tmp_path / "imgs")
    assert ds["label"] == ["cat", "dog"]
    assert all(Path(p).is_absolute() and p.endswith("a.png") for p in ds["image"])
    with pytest.raises(DataError, match="has no class folders with images"):
        load_image_folder(tmp_path / "imgs" / "cat")


def test_hub_dataset_uses_its_validation_split(hub_server):
    from hubmgr.data import load_splits
    from hubmgr.task import DataSource

    hub_server.add_repo(
        "acme/reviews",
        {
            "train.csv": "text,label\n" + "".join(f"good film {i},pos\n" for i in range(8)),
            "validation.csv": "text,label\nbad film,neg\nfine film,pos\n",
        },
        repo_type="dataset",
    )
    train, eval_ds = load_splits(DataSource(train="acme/reviews"), required={"text_column": "text"})
    assert len(train) == 8  # nothing held out of train: the dataset's own validation split is used
    assert sorted(eval_ds["text"]) == ["bad film", "fine film"]
