"""image-classification with the tiny ViT: class folders, tables of paths, lazy collation, metrics, bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hubmgr.errors import DataError, ModelError
from hubmgr.plugins import get_task
from hubmgr.task import DataSource


def _image(path: Path, color: tuple[int, int, int], size=(20, 24)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


@pytest.fixture
def task():
    return get_task("image-classification")


@pytest.fixture
def class_folders(tmp_path):
    root = tmp_path / "pets"
    for cls, color in (("cat", (200, 10, 10)), ("dog", (10, 10, 200))):
        for i in range(4):
            _image(root / cls / f"{i}.png", color)
    return root


def _load(task, source, **options):
    opts = task.make_options(options)
    return opts, task.load_data(source, opts)


def test_class_folders(task, class_folders):
    _, data = _load(task, DataSource(train=str(class_folders), eval_fraction=0.25))
    assert data.info["label_names"] == ["cat", "dog"]
    assert (len(data.train), len(data.eval)) == (6, 2)
    assert data.train.column_names == ["image", "label"]


def test_split_folders(task, tmp_path):
    for split, n in (("train", 3), ("validation", 2)):
        for cls in ("cat", "dog"):
            for i in range(n):
                _image(tmp_path / "data" / split / cls / f"{i}.jpg", (i * 40, 0, 0))
    _, data = _load(task, DataSource(train=str(tmp_path / "data")))
    assert (len(data.train), len(data.eval)) == (6, 4)


def test_csv_with_relative_paths(task, tmp_path, write_csv):
    _image(tmp_path / "imgs" / "a.png", (255, 0, 0))
    _image(tmp_path / "imgs" / "b.png", (0, 255, 0))
    path = write_csv("images.csv", ["file", "kind"], [("imgs/a.png", "red"), ("imgs/b.png", "green")] * 2)
    _, data = _load(task, DataSource(train=str(path), eval_fraction=0), image_column="file", label_column="kind")
    assert data.info["label_names"] == ["green", "red"]
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in data.train["file"])


def test_missing_image_file(task, tmp_path, write_csv):
    path = write_csv("images.csv", ["image", "label"], [("imgs/missing.png", "red")])
    with pytest.raises(DataError, match=r"Image file imgs/missing.png \(row 1 of images.csv\) does not exist"):
        _load(task, DataSource(train=str(path)))


def test_missing_column(task, tmp_path, write_csv):
    path = write_csv("images.csv", ["path", "label"], [("a.png", "red")])
    with pytest.raises(DataError) as err:
        _load(task, DataSource(train=str(path)))
    assert str(err.value) == "Column 'image' (image_column) is not in images.csv; columns are: path, label."


def test_missing_folder(task, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        _load(task, DataSource(train=str(tmp_path / "nowhere")))


def test_eval_labels_not_in_training(task, class_folders, tmp_path):
    _image(tmp_path / "eval" / "bird" / "0.png", (0, 0, 0))
    with pytest.raises(DataError, match="not in the training data: bird"):
        _load(task, DataSource(train=str(class_folders), eval=str(tmp_path / "eval")))


def test_model_collation_forward_metrics(task, class_folders, tiny_vit):
    opts, data = _load(task, DataSource(train=str(class_folders), eval_fraction=0.25), random_flip=True)
    model, processor = task.load_model(str(tiny_vit), opts, data, {})
    assert type(model).__name__ == "ViTForImageClassification" and model.config.num_labels == 2
    defaults = task.lora_defaults(model, opts)
    assert defaults.task_type is None and defaults.modules_to_save == ["classifier"] and defaults.target_modules

    train = task.preprocess(data.train, processor, opts, 0, data)
    evald = task.preprocess(data.eval, processor, opts, 0, data)
    assert set(train.column_names) == {"pixel_values", "labels", "length"}
    assert train[0]["pixel_values"]["augment"] is True and evald[0]["pixel_values"]["augment"] is False

    batch = task.collator(processor, opts)([train[i] for i in range(3)])
    assert tuple(batch["pixel_values"].shape) == (3, 3, 32, 32) and batch["labels"].tolist() == train["labels"][:3]
    out = model(**batch)
    preds = task.reduce_logits(out.logits, batch["labels"]).numpy()
    metrics = task.compute_metrics(preds, batch["labels"].numpy(), data)
    assert set(metrics) == {"accuracy"}
    labels = task.predict(model, processor, [str(class_folders / "cat" / "0.png")], opts, data)
    assert labels[0].split(" (")[0] in ("cat", "dog")


def test_collator_handles_unreadable_image(task, tmp_path, tiny_vit):
    from hubmgr_tasks.image_classification import ImageCollator
    from transformers import AutoImageProcessor

    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    collate = ImageCollator(AutoImageProcessor.from_pretrained(str(tiny_vit)))
    with pytest.raises(DataError, match="Cannot open image"):
        collate([{"pixel_values": {"path": str(bad), "bytes": None, "augment": False}, "labels": 0}])


def test_compute_metrics_values(task):
    assert task.compute_metrics(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]), None) == {"accuracy": 0.75}


def test_architecture_that_cannot_classify_images(task, class_folders, tiny_bert):
    opts, data = _load(task, DataSource(train=str(class_folders)))
    with pytest.raises(ModelError, match="cannot be used for image classification"):
        task.load_model(str(tiny_bert), opts, data, {})


def test_the_form_check_passes_class_folders_and_refuses_what_load_data_refuses(task, class_folders, tmp_path):
    """A form checks data before a run starts (Task.check_source): class folders have no data files,
    and the generic table check would refuse them."""
    from hubmgr.config import Settings
    from hubmgr.tui.backend import Backend
    from hubmgr.train.config import TrainConfig

    assert task.check_source(str(class_folders)) is None
    for split in ("train", "validation"):
        _image(tmp_path / "splits" / split / "cat" / "0.png", (1, 2, 3))
    assert task.check_source(str(tmp_path / "splits"), split="validation") is None
    with pytest.raises(DataError, match="has no 'test' split"):
        task.check_source(str(tmp_path / "splits"), split="test")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="neither class folders of images"):
        task.check_source(str(tmp_path / "empty"))
    # the Train form's check goes through the task
    backend = Backend(
        Settings(endpoint="http://127.0.0.1:9", offline=True, hub_cache=tmp_path / "hub", data_dir=tmp_path / "home")
    )
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"")
    problems = backend.check_train_inputs(
        TrainConfig(model=str(model), task="image-classification", data=str(class_folders))
    )
    assert "data" not in problems, problems
