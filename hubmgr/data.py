"""Loading tabular training data through ``datasets``, with one clear error for each bad input.

``load_table`` reads a local CSV/TSV/JSON/JSONL/Parquet/TXT file, a folder of such files (one file per
split: ``train.csv``, ``validation.csv``...), or a Hub dataset ``user/name[:config]`` when the Hub is
reachable. Local files are read into memory through a throw-away cache folder, so nothing lands in
``~/.cache`` unless a ``cache_dir`` is given. ``datasets`` is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from hubmgr.errors import DataError, HubUnreachableError

if TYPE_CHECKING:  # pragma: no cover
    import datasets

    from hubmgr.config import Settings
    from hubmgr.task import DataSource

__all__ = [
    "BUILDERS",
    "IMAGE_EXTENSIONS",
    "SPLIT_ALIASES",
    "check_column_names",
    "check_columns",
    "check_source",
    "column_values_as_list",
    "load_image_folder",
    "load_splits",
    "looks_like_hub_id",
    "load_table",
    "quiet_datasets",
    "sample",
    "split_train_eval",
]

#: file extension -> (datasets packaged builder, extra builder kwargs, human name)
BUILDERS: dict[str, tuple[str, dict[str, Any], str]] = {
    ".csv": ("csv", {}, "CSV"),
    ".tsv": ("csv", {"sep": "\t"}, "TSV"),
    ".json": ("json", {}, "JSON"),
    ".jsonl": ("json", {}, "JSON lines"),
    ".ndjson": ("json", {}, "JSON lines"),
    ".parquet": ("parquet", {}, "Parquet"),
    ".txt": ("text", {}, "text"),
}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")

#: other names a split's file may carry in a folder
SPLIT_ALIASES: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "val", "dev", "eval"),
    "test": ("test", "testing"),
}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(:[\w.-]+)?$")


def _supported() -> str:
    exts = list(BUILDERS)
    return ", ".join(exts[:-1]) + " or " + exts[-1]


@contextlib.contextmanager
def quiet_datasets() -> Iterator[Any]:
    """Import ``datasets`` with progress bars off and its own logging silenced for the block."""
    import datasets
    from datasets.utils import logging as ds_logging

    datasets.disable_progress_bars()
    level = ds_logging.get_verbosity()
    ds_logging.set_verbosity(ds_logging.CRITICAL)
    try:
        yield datasets
    finally:
        ds_logging.set_verbosity(level)


def _reason(exc: BaseException) -> str:
    """The most telling one-line reason of a datasets error (its direct cause, usually pandas/pyarrow)."""
    seen = exc.__cause__ or exc
    text = " ".join(str(seen).split())
    return text[:300] or type(seen).__name__


def _check_file(path: Path) -> tuple[str, dict[str, Any], str]:
    """What :func:`_read_file` checks before it parses: a known extension, readable, not empty.

    Returns:
        The file's ``(builder, builder kwargs, human name)`` from :data:`BUILDERS`.
    """
    ext = path.suffix.lower()
    if ext not in BUILDERS:
        raise DataError(f"Data file {path} has an unsupported extension {ext or '(none)'!r}; use {_supported()}.")
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except IsADirectoryError:
        raise DataError(f"Data file {path} is a folder, not a file.") from None
    except OSError as exc:
        raise DataError(f"Data file {path} cannot be read: {exc.strerror or exc}.") from None
    if path.stat().st_size == 0:
        raise DataError(f"Data file {path} is empty.")
    return BUILDERS[ext]


def _read_file(path: Path, *, split_label: str, cache_dir: str | os.PathLike[str] | None) -> datasets.Dataset:
    builder, kwargs, human = _check_file(path)
    return _load_builder(
        builder, [str(path)], kwargs, label=f"{path}", human=human, split_label=split_label, cache_dir=cache_dir
    )


def _load_builder(
    builder: str,
    files: list[str],
    kwargs: dict[str, Any],
    *,
    label: str,
    human: str,
    split_label: str,
    cache_dir: str | os.PathLike[str] | None,
) -> datasets.Dataset:
    with quiet_datasets() as ds, contextlib.ExitStack() as stack:
        if cache_dir is None:
            cache_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="hubmgr-data-"))
            keep_in_memory = True
        else:
            keep_in_memory = False
        try:
            dataset = ds.load_dataset(
                builder,
                data_files={"train": files},
                split="train",
                cache_dir=str(cache_dir),
                keep_in_memory=keep_in_memory,
                **kwargs,
            )
        except ValueError as exc:
            if "corresponds to no data" in str(exc):
                raise DataError(f"The {split_label} data in {label} has no rows.") from None
            raise DataError(f"Data file {label} could not be read as {human}: {_reason(exc)}.") from None
        except Exception as exc:  # pandas/pyarrow parse errors arrive wrapped in DatasetGenerationError
            raise DataError(f"Data file {label} could not be read as {human}: {_reason(exc)}.") from None
    if len(dataset) == 0:
        raise DataError(f"The {split_label} data in {label} has no rows.")
    return dataset


def _split_files(folder: Path, split: str) -> list[Path]:
    names = SPLIT_ALIASES.get(split, (split,))
    found: list[Path] = []
    for child in sorted(folder.iterdir()):
        if not child.is_file() or child.suffix.lower() not in BUILDERS:
            continue
        stem = child.name[: -len(child.suffix)].lower()
        if any(stem == n or stem.startswith(f"{n}-") or stem.startswith(f"{n}_") for n in names):
            found.append(child)
    return found


def _folder_files(folder: Path, split: str) -> list[Path]:
    """The files of one split in a folder, as :func:`_read_folder` reads them (one file type)."""
    files = _split_files(folder, split)
    if not files:
        data_files = [c for c in sorted(folder.iterdir()) if c.is_file() and c.suffix.lower() in BUILDERS]
        named = any(_split_files(folder, s) for s in SPLIT_ALIASES)
        if data_files and not named and split == "train":
            files = data_files  # a folder of plain files is one training split
        elif data_files:
            raise DataError(f"Folder {folder} has no {split!r} split (no file named like {split}.csv).")
        else:
            raise DataError(f"Folder {folder} has no data files ({_supported()}).")
    exts = {f.suffix.lower() for f in files}
    builders = {BUILDERS[e][0] for e in exts}
    if len(builders) > 1:
        raise DataError(f"Folder {folder} mixes file types for the {split!r} split: {', '.join(sorted(exts))}.")
    return files


def _read_folder(folder: Path, *, split: str, cache_dir: str | os.PathLike[str] | None) -> datasets.Dataset:
    files = _folder_files(folder, split)
    builder, kwargs, human = BUILDERS[sorted({f.suffix.lower() for f in files})[0]]
    return _load_builder(
        builder, [str(f) for f in files], kwargs, label=str(folder), human=human, split_label=split, cache_dir=cache_dir
    )


def looks_like_hub_id(source: str) -> bool:
    """``user/name`` or ``user/name:config`` with no known file extension."""
    return bool(_HUB_ID.match(source)) and Path(source.split(":")[0]).suffix.lower() not in BUILDERS


def _check_hub_reachable(source: str, settings: Settings) -> None:
    if settings.offline:
        raise HubUnreachableError(
            f"Data {source!r} is not a local file or folder, and the Hub is offline (HF_HUB_OFFLINE is set),"
            " so it cannot be loaded as a Hub dataset."
        )


def _read_hub(
    source: str, *, split: str, cache_dir: str | os.PathLike[str] | None, settings: Settings | None
) -> datasets.Dataset:
    from hubmgr.config import get_settings

    settings = settings or get_settings()
    repo_id, _, config = source.partition(":")
    _check_hub_reachable(source, settings)
    with quiet_datasets() as ds:
        from datasets import exceptions as ds_exc

        try:
            dataset = ds.load_dataset(
                repo_id,
                config or None,
                split=split,
                cache_dir=str(cache_dir) if cache_dir else None,
                token=settings.token,
            )
        except ds_exc.DatasetNotFoundError:
            raise DataError(f"Data {source!r} is not a local file or folder, and no Hub dataset has that id.") from None
        except (ConnectionError, TimeoutError) as exc:
            raise HubUnreachableError(
                f"The Hub is unreachable, so dataset {source!r} cannot be loaded: {_reason(exc)}."
            ) from None
        except ValueError as exc:
            text = str(exc)
            if "split" in text.lower():
                raise DataError(f"Hub dataset {source!r} has no split {split!r}.") from None
            raise DataError(f"Hub dataset {source!r} could not be loaded: {_reason(exc)}.") from None
        except Exception as exc:
            name = type(exc).__name__.lower()
            if any(word in name for word in ("connect", "timeout", "offline", "network")):
                raise HubUnreachableError(f"The Hub is unreachable, so dataset {source!r} cannot be loaded.") from None
            raise DataError(f"Hub dataset {source!r} could not be loaded: {_reason(exc)}.") from None
    if len(dataset) == 0:
        raise DataError(f"The {split!r} split of Hub dataset {source!r} has no rows.")
    return dataset


def load_table(
    source: str | os.PathLike[str],
    *,
    split: str = "train",
    cache_dir: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
) -> datasets.Dataset:
    """Load one split of tabular data as a ``datasets.Dataset``.

    Args:
        source: a CSV/TSV/JSON/JSONL/Parquet/TXT file (a ``.txt`` file gives one ``text`` row per line),
            a folder holding one file per split (``train.csv``, ``validation.jsonl``...; a folder of plain
            files is one training split), or a Hub dataset id ``user/name[:config]``.
        split: which split to read from a folder or a Hub dataset (a single file is the split itself).
        cache_dir: where ``datasets`` may write its Arrow cache; ``None`` reads into memory through a
            temporary folder that is removed at once (nothing lands in ``~/.cache``).
        settings: Hub settings for a Hub dataset (default: :func:`hubmgr.config.get_settings`).

    Returns:
        The split, with at least one row.

    Raises:
        DataError: the file does not exist, cannot be read or parsed, has an unsupported extension, or
            the split is missing or empty.
        HubUnreachableError: ``source`` is a Hub id and the Hub is offline or does not answer.
    """
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.is_dir():
        return _read_folder(path, split=split, cache_dir=cache_dir)
    if path.exists():
        return _read_file(path, split_label=split, cache_dir=cache_dir)
    if looks_like_hub_id(text) and not text.startswith((".", "/", "~")):
        return _read_hub(text, split=split, cache_dir=cache_dir, settings=settings)
    raise DataError(f"Data file {text} does not exist.")


def check_source(
    source: str | os.PathLike[str], *, split: str = "train", settings: Settings | None = None
) -> list[str] | None:
    """Check, without loading it (no ``datasets``), what :func:`load_table` would refuse before parsing:
    the file or folder exists, has a supported type, is readable and not empty; a Hub id needs the Hub.

    Args:
        source: as for :func:`load_table`.
        split: as for :func:`load_table`.
        settings: Hub settings (offline mode) for a Hub dataset id.

    Returns:
        The column names of its first rows where that is cheap to read (the header of a CSV/TSV file, the
        first record of a JSON lines file, a Parquet file's schema, ``text`` for a TXT file), else None
        (a Hub dataset, a JSON array, a format that does not say).

    Raises:
        DataError: the same sentence :func:`load_table` would raise for these problems.
        HubUnreachableError: ``source`` is a Hub id and the Hub is offline.
    """
    from hubmgr.config import get_settings

    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.is_dir():
        return _peek_columns(_folder_files(path, split)[0])
    if path.exists():
        _check_file(path)
        return _peek_columns(path)
    if looks_like_hub_id(text) and not text.startswith((".", "/", "~")):
        _check_hub_reachable(text, settings or get_settings())
        return None
    raise DataError(f"Data file {text} does not exist.")


def _peek_columns(path: Path) -> list[str] | None:
    """The column names of a data file's first rows, read cheaply; None when that is not cheap or clear."""
    import csv
    import json

    builder, kwargs, _human = BUILDERS[path.suffix.lower()]
    try:
        if builder == "text":
            return ["text"]
        if builder == "csv":
            with path.open(encoding="utf-8-sig", newline="") as fh:
                header = next(csv.reader(fh, delimiter=kwargs.get("sep", ",")), None)
            return [name.strip() for name in header] if header else None
        if builder == "json":
            with path.open(encoding="utf-8-sig") as fh:
                for line in fh:
                    if line.strip():
                        record = json.loads(line)
                        return [str(k) for k in record] if isinstance(record, dict) else None
            return None
        if builder == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
    except (OSError, UnicodeDecodeError, ValueError, csv.Error):
        return None  # the loader says what is wrong with the file when the run reads it
    except Exception:  # noqa: BLE001 - a Parquet file pyarrow cannot read: the same
        return None
    return None


def check_column_names(columns: Sequence[str], required: Mapping[str, str | None], *, source: str = "the data") -> None:
    """Check that each role's column is among ``columns`` (see :func:`check_columns`).

    Raises:
        DataError: e.g. ``Column 'txt' (text_column) is not in data.csv; columns are: a, b.``
    """
    columns = list(columns)
    for role, column in required.items():
        if column is None:
            continue
        if column not in columns:
            raise DataError(
                f"Column {column!r} ({role}) is not in {source}; columns are: {', '.join(columns) or 'none'}."
            )


def check_columns(dataset: datasets.Dataset, required: Mapping[str, str | None], *, source: str = "the data") -> None:
    """Check that each role's column is in the dataset.

    Args:
        dataset: the loaded split.
        required: ``{role: column}`` such as ``{"text_column": "text"}``; a ``None`` column is skipped.
        source: how to name the data in the message (a file name).

    Raises:
        DataError: e.g. ``Column 'txt' (text_column) is not in data.csv; columns are: a, b.``
    """
    check_column_names(dataset.column_names, required, source=source)


def split_train_eval(
    dataset: datasets.Dataset, fraction: float, seed: int = 42, *, contiguous: bool = False
) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    """Hold out a seeded random fraction of ``dataset`` for evaluation (or its last rows, ``contiguous``).

    Args:
        dataset: the training data.
        fraction: share of rows held out, ``0 <= fraction < 1``; 0 holds out nothing.
        seed: shuffling seed (the same seed gives the same split).
        contiguous: hold out the last rows, in order, instead of a random sample. For running text (one
            line a row) a random sample of lines scores the model on the very passages it trains on, which
            keeps improving while the model overfits them; a held-out stretch of text does not.

    Returns:
        ``(train, eval)``; ``eval`` is ``None`` when ``fraction`` is 0. At least one row lands on each side.

    Raises:
        DataError: ``fraction`` is out of range, or there are too few rows to split.
    """
    if not 0 <= fraction < 1:
        raise DataError(f"The eval fraction must be at least 0 and below 1, not {fraction}.")
    if fraction == 0:
        return dataset, None
    n = len(dataset)
    if n < 2:
        raise DataError(
            f"Cannot hold out evaluation data from {n} row(s); give eval data or set the eval fraction to 0."
        )
    n_eval = min(n - 1, max(1, round(n * fraction)))
    if contiguous:
        return dataset.select(range(n - n_eval)), dataset.select(range(n - n_eval, n))
    parts = dataset.train_test_split(test_size=n_eval, seed=seed, shuffle=True)
    return parts["train"], parts["test"]


def sample(dataset: datasets.Dataset, limit: int | None, seed: int) -> datasets.Dataset:
    """The first ``limit`` rows after a seeded shuffle (all rows when ``limit`` is None or larger)."""
    if limit is None or limit >= len(dataset):
        return dataset
    if limit <= 0:
        raise DataError(f"A sample limit must be positive, not {limit}.")
    return dataset.shuffle(seed=seed).select(range(limit)).flatten_indices()


def _source_name(source: str) -> str:
    return Path(source).name if Path(source).exists() else source


def load_splits(
    source: DataSource,
    *,
    required: Mapping[str, str | None] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    hold_out: bool = True,
) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    """Load the train and eval splits a DataSource describes and check their columns.

    The eval split comes from ``source.eval`` when given, else from ``source.eval_split`` of the same
    folder or Hub dataset when that exists, else ``eval_fraction`` is held out of train (when
    ``hold_out``; tasks that must see all labels first pass ``hold_out=False`` and call
    :func:`split_train_eval` themselves).

    Args:
        source: where the data is.
        required: ``{role: column}`` checked on both splits.
        cache_dir: see :func:`load_table`.
        settings: see :func:`load_table`.
        hold_out: split ``eval_fraction`` off train when there is no eval data.

    Returns:
        ``(train, eval)``; ``eval`` may be None (no eval data and a zero fraction, or ``hold_out=False``).

    Raises:
        DataError: any problem :func:`load_table` or :func:`check_columns` reports.
    """
    train = load_table(source.train, split=source.train_split, cache_dir=cache_dir, settings=settings)
    check_columns(train, required or {}, source=_source_name(source.train))
    eval_ds = None
    if source.eval:
        eval_ds = load_table(source.eval, split=source.eval_split, cache_dir=cache_dir, settings=settings)
        check_columns(eval_ds, required or {}, source=_source_name(source.eval))
    elif _has_split(source.train, source.eval_split):
        eval_ds = load_table(source.train, split=source.eval_split, cache_dir=cache_dir, settings=settings)
        check_columns(eval_ds, required or {}, source=f"the {source.eval_split} split of {_source_name(source.train)}")
    train = sample(train, source.max_train_samples, source.seed)
    if eval_ds is None and hold_out:
        train, eval_ds = split_train_eval(train, source.eval_fraction, source.seed)
    if eval_ds is not None:
        eval_ds = sample(eval_ds, source.max_eval_samples, source.seed)
    return train, eval_ds


def _has_split(train: str, split: str) -> bool:
    """Whether a folder, or a Hub dataset, has a split of that name (Hub datasets: asked cheaply)."""
    path = Path(train).expanduser()
    if path.is_dir():
        return bool(_split_files(path, split))
    if path.exists() or not looks_like_hub_id(train):
        return False
    try:
        import datasets

        repo, _, config = train.partition(":")
        return split in datasets.get_dataset_split_names(repo, config or None)
    except Exception:  # noqa: BLE001 - unreachable Hub, no such dataset: the train load says why
        return False


def column_values_as_list(value: Any) -> list[Any]:
    """A list cell as a list: lists stay, strings are split on whitespace (CSV cells), None is []."""
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    return list(value)


def load_image_folder(folder: str | os.PathLike[str]) -> datasets.Dataset:
    """Read class folders (``folder/<class name>/*.png``) into ``image`` (absolute path) and ``label`` (class name).

    Args:
        folder: the folder whose sub-folders are the classes.

    Returns:
        A Dataset with ``image`` and ``label`` string columns, sorted by class then file name.

    Raises:
        DataError: the folder does not exist, has no class folders, or holds no images.
    """
    with quiet_datasets() as ds:
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise DataError(f"Image folder {root} does not exist.")
        images: list[str] = []
        labels: list[str] = []
        for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for file in sorted(class_dir.rglob("*")):
                if file.is_file() and file.suffix.lower() in IMAGE_EXTENSIONS:
                    images.append(str(file.resolve()))
                    labels.append(class_dir.name)
        if not images:
            raise DataError(
                f"Image folder {root} has no class folders with images ({', '.join(IMAGE_EXTENSIONS)});"
                " expected folder/<class name>/<image files>."
            )
        return ds.Dataset.from_dict({"image": images, "label": labels})
