"""Built-in task: image classification from class folders or a table of image paths; accuracy.

Images go through the model's transformers image processor (PIL backend); torchvision is not used.
Images are opened lazily: ``preprocess`` keeps a reference to each image (path or bytes) in the
``pixel_values`` column, and the collator opens, optionally flips, and processes each batch. The column
keeps the model's input name so that the Trainer's unused-column removal leaves it alone.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from hubmgr.data import IMAGE_EXTENSIONS
from hubmgr.errors import DataError
from hubmgr.hookspecs import hookimpl
from hubmgr.task import DataSource, LoraDefaults, Task, TaskData

from hubmgr_tasks import _common


@dataclass
class ImageClassificationOptions:
    """Options of the image-classification task."""

    image_column: str = field(
        default="image", metadata={"help": "Table data: the column with image paths (relative to the table file)."}
    )
    label_column: str = field(
        default="label", metadata={"help": "Table data: the column with the label (name or integer)."}
    )
    random_flip: bool = field(
        default=False, metadata={"help": "Flip training images left-right at random (a simple augmentation)."}
    )


def _is_class_folder_root(folder: Path) -> bool:
    return any(
        child.is_dir() and any(f.suffix.lower() in IMAGE_EXTENSIONS for f in child.rglob("*") if f.is_file())
        for child in folder.iterdir()
    )


def _split_folder(folder: Path, split: str) -> Path | None:
    from hubmgr.data import SPLIT_ALIASES

    for name in SPLIT_ALIASES.get(split, (split,)):
        candidate = folder / name
        if candidate.is_dir() and _is_class_folder_root(candidate):
            return candidate
    return None


def _load_images(path_or_id: str, split: str, options: ImageClassificationOptions) -> tuple[Any, str]:
    """One split as a Dataset with the option's image and label columns, and its display name."""
    from hubmgr.data import check_columns, load_image_folder, load_table

    path = Path(path_or_id).expanduser()
    name = _common.source_name(path_or_id)
    if path.is_dir() and not any(c.suffix.lower() in _table_exts() for c in path.iterdir() if c.is_file()):
        root = _split_folder(path, split)
        if root is None:
            if any(_split_folder(path, s) for s in ("train", "validation", "test")):
                raise DataError(f"Image folder {path} has no {split!r} split.")
            root = path
        ds = load_image_folder(root)
        renames = {"image": options.image_column, "label": options.label_column}
        renames = {k: v for k, v in renames.items() if k != v}
        if renames:
            ds = ds.rename_columns(renames)
        return ds, name
    ds = load_table(path_or_id, split=split)
    check_columns(ds, {"image_column": options.image_column, "label_column": options.label_column}, source=name)
    if path.is_file():
        ds = _resolve_paths(ds, options.image_column, path.parent, source=name)
    return ds, name


def _table_exts() -> tuple[str, ...]:
    from hubmgr.data import BUILDERS

    return tuple(BUILDERS)


def _resolve_paths(ds: Any, column: str, base: Path, *, source: str) -> Any:
    """Image paths relative to the table's folder made absolute; a missing image is a DataError."""
    from datasets import Value

    feature = ds.features.get(column)
    if not (isinstance(feature, Value) and "string" in feature.dtype):
        return ds  # already images (a Hub dataset's Image feature)
    resolved = []
    for i, value in enumerate(ds[column]):
        if not value:
            raise DataError(f"Row {i + 1} of {source} has no image path in column {column!r}.")
        p = Path(str(value)).expanduser()
        p = p if p.is_absolute() else base / p
        if not p.is_file():
            raise DataError(f"Image file {value} (row {i + 1} of {source}) does not exist.")
        resolved.append(str(p.resolve()))
    return ds.remove_columns(column).add_column(column, resolved)


def open_image(ref: Any) -> Any:
    """A PIL RGB image from a path, a PIL image, or a ``{"bytes", "path"}`` dict.

    Raises:
        DataError: the file cannot be opened as an image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        if isinstance(ref, Image.Image):
            img = ref
        elif isinstance(ref, dict):
            if ref.get("bytes"):
                img = Image.open(io.BytesIO(ref["bytes"]))
            else:
                img = Image.open(ref["path"])
        else:
            img = Image.open(str(ref))
        img.load()
    except (OSError, UnidentifiedImageError, KeyError, TypeError) as exc:
        where = ref.get("path") if isinstance(ref, dict) else ref
        raise DataError(f"Cannot open image {where}: {exc}.") from None
    return img.convert("RGB") if img.mode != "RGB" else img


class ImageCollator:
    """Open each example's image, flip it at random where the example says so, run the image processor.

    A top-level class so that DataLoader workers can pickle it.
    """

    def __init__(self, processor: Any, *, seed: int | None = None) -> None:
        self.processor = processor
        self.rng = random.Random(seed)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch
        from PIL import Image

        images = []
        for f in features:
            ref = f["pixel_values"]
            augment = False
            if isinstance(ref, dict) and "augment" in ref:
                augment = bool(ref.get("augment"))
                ref = {"path": ref.get("path"), "bytes": ref.get("bytes")}
            img = open_image(ref)
            if augment and self.rng.random() < 0.5:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            images.append(img)
        batch = dict(self.processor(images=images, return_tensors="pt"))
        if features and "labels" in features[0]:
            batch["labels"] = torch.tensor([int(f["labels"]) for f in features], dtype=torch.long)
        return batch


class ImageClassificationTask(Task):
    """Classify images into labels taken from class folders or a label column."""

    name = "image-classification"
    description = "Classify images from class folders or a CSV/JSONL of paths and labels; accuracy."
    pipeline_tags = ("image-classification", "image-feature-extraction")
    options_class = ImageClassificationOptions
    main_metric = "accuracy"
    auto_model_class = "AutoModelForImageClassification"
    greater_is_better = True

    def check_source(self, source: str, *, split: str = "train", settings: Any = None) -> list[str] | None:
        """Class folders pass when the split has at least one class folder of images (no columns to check
        there); tables and Hub ids are checked as any task's.

        Raises:
            DataError: a folder with neither images in class folders nor data files.
        """
        path = Path(source).expanduser()
        if path.is_dir() and not any(c.suffix.lower() in _table_exts() for c in path.iterdir() if c.is_file()):
            if _split_folder(path, split) is not None:
                return None
            if any(_split_folder(path, s) for s in ("train", "validation", "test")):  # as _load_images says
                raise DataError(f"Image folder {path} has no {split!r} split.")
            if not _is_class_folder_root(path):
                raise DataError(
                    f"Folder {path} has neither class folders of images (folder/<class>/*.png) nor data files."
                )
            return None
        return super().check_source(source, split=split, settings=settings)

    def load_data(self, source: DataSource, options: ImageClassificationOptions) -> TaskData:
        """Load class folders (``folder/<class>/*.png``; ``train/`` and ``validation/`` sub-folders give
        the splits) or a table of image paths (relative to the table) and labels.

        Raises:
            DataError: missing folder, file, column or image, or eval labels unseen in training.
        """
        from hubmgr.data import sample, split_train_eval

        train, train_name = _load_images(source.train, source.train_split, options)
        eval_ds, eval_name = None, ""
        if source.eval:
            eval_ds, eval_name = _load_images(source.eval, source.eval_split, options)
        else:
            path = Path(source.train).expanduser()
            if path.is_dir() and _split_folder(path, source.eval_split) is not None:
                eval_ds, eval_name = _load_images(source.train, source.eval_split, options)
                eval_name = f"the {source.eval_split} split of {train_name}"
        train = sample(train, source.max_train_samples, source.seed)
        info = _common.label_info(
            train, eval_ds, options.label_column, train_source=train_name, eval_source=eval_name or train_name
        )
        if eval_ds is None:
            train, eval_ds = split_train_eval(train, source.eval_fraction, source.seed)
        if eval_ds is not None:
            eval_ds = sample(eval_ds, source.max_eval_samples, source.seed)
        return TaskData(train=train, eval=eval_ds, info=info)

    def load_model(self, model_path: str, options: Any, data: TaskData, load_kwargs: dict[str, Any]) -> tuple[Any, Any]:
        """AutoModelForImageClassification with a head sized to the labels, and its image processor.

        Raises:
            ModelError: the architecture has no image-classification head, or no image processor.
        """
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        from hubmgr.errors import ModelError

        info = data.info
        model = _common.load_auto_model(
            AutoModelForImageClassification,
            model_path,
            "image classification",
            load_kwargs,
            id2label={int(k): v for k, v in info["id2label"].items()},
            label2id=dict(info["label2id"]),
            ignore_mismatched_sizes=True,
        )
        try:
            processor = AutoImageProcessor.from_pretrained(model_path, **_common.processor_kwargs(load_kwargs))
        except (OSError, ValueError, TypeError, ImportError) as exc:
            raise ModelError(
                f"Model {_common.model_label(model_path)} has no usable image processor: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from None
        return model, processor

    def lora_defaults(self, model: Any, options: Any) -> LoraDefaults:
        # peft has no task type for image classification: the plain LoraModel, head kept trainable
        return LoraDefaults(
            task_type=None,
            target_modules=_common.target_modules(model),
            modules_to_save=_common.head_modules(model),
        )

    def preprocess(
        self, dataset: Any, processor: Any, options: ImageClassificationOptions, max_length: int, data: TaskData
    ) -> Any:
        """Keep an image reference per row in ``pixel_values`` (``{"path", "bytes", "augment"}``), map
        labels to ids, add ``length`` (1). Images are opened by the collator. ``augment`` is set on the
        training split (``dataset is data.train``) when ``random_flip`` is on. ``max_length`` is unused.

        Raises:
            DataError: a label that the training data did not have.
        """
        from datasets import Image as ImageFeature

        info = data.info
        names = info["label_names"]
        label2id: dict[str, int] = info["label2id"]
        img_col, label_col = options.image_column, options.label_column
        feature = dataset.features.get(label_col)
        class_label = bool(getattr(feature, "names", None))
        augment = bool(options.random_flip) and dataset is data.train
        if isinstance(dataset.features.get(img_col), ImageFeature):
            dataset = dataset.cast_column(img_col, ImageFeature(decode=False))

        def encode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
            refs, labels = [], []
            for ref, value in zip(batch[img_col], batch[label_col]):
                if isinstance(ref, dict):
                    refs.append({"path": ref.get("path"), "bytes": ref.get("bytes"), "augment": augment})
                else:
                    refs.append({"path": str(ref), "bytes": None, "augment": augment})
                key = _common.label_key(value, names, class_label)
                if key not in label2id:
                    raise DataError(f"Label {key!r} is not one of the training labels: {', '.join(names)}.")
                labels.append(label2id[key])
            return {"pixel_values": refs, "labels": labels, "length": [1] * len(labels)}

        return _common.map_rows(dataset, encode)

    def collator(self, processor: Any, options: Any) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
        return ImageCollator(processor)

    def compute_metrics(self, predictions: Any, labels: Any, data: TaskData) -> dict[str, float]:
        """Accuracy from predicted class ids (argmax) and label ids."""
        import numpy as np

        preds = np.asarray(predictions).reshape(-1)
        refs = np.asarray(labels).reshape(-1)
        keep = refs != -100
        if not keep.any():
            return {"accuracy": float("nan")}
        return {"accuracy": float((preds[keep] == refs[keep]).mean())}

    def predict(self, model: Any, processor: Any, inputs: Sequence[Any], options: Any, data: TaskData) -> list[str]:
        """Label each image (a path, a PIL image or ``{"bytes"}``): ``"cat (0.87)"``."""
        import torch

        if not inputs:
            return []
        images = [open_image(x) for x in inputs]
        batch = processor(images=images, return_tensors="pt")
        device = _common.model_device(model)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                logits = model(pixel_values=batch["pixel_values"].to(device)).logits
        finally:
            model.train(was_training)
        probs = _common.softmax_rows(logits)
        names = data.info.get("label_names") if data and data.info else None
        id2label = getattr(model.config, "id2label", None) or {}
        out = []
        for row in probs:
            idx = int(row.argmax())
            label = names[idx] if names and idx < len(names) else id2label.get(idx, str(idx))
            out.append(f"{label} ({float(row[idx]):.2f})")
        return out


@hookimpl
def register_tasks(register: Callable[[type[Task]], None]) -> None:
    register(ImageClassificationTask)
