"""Merge a LoRA adapter into its base model and save a full model (safetensors) with its tokenizer.

The base is loaded the way the task loads it (so a classification head gets the trained label names);
without a known task, the transformers Auto class that matches the adapter's peft task type is used.
The model is written to a temporary sibling folder and renamed into place, so an interrupted merge
never leaves a folder that looks complete.

A base model with its own Python code (``auto_map`` in its ``config.json``) is refused unless
``trust_remote_code`` is given, as ``train``, ``eval`` and ``predict`` do (:mod:`hubmgr.safety`). When it is
given, the code files that the written configs' ``auto_map`` names are copied into the merged folder, so it
loads the way the base did; a merge never writes an ``auto_map`` that points at code it did not copy.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubmgr.errors import HubmgrError, ModelError, UsageError, disk_full_from
from hubmgr.eval.adapters import AdapterInfo, normalize_model_ref, read_adapter_info, resolve_adapter_ref
from hubmgr.format import first_line
from hubmgr.safety import auto_map_of, check_remote_code, local_code_modules

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.config import Settings

__all__ = ["MergeResult", "merge_adapter"]

_AUTO_BY_TASK_TYPE = {
    "SEQ_CLS": "AutoModelForSequenceClassification",
    "TOKEN_CLS": "AutoModelForTokenClassification",
    "CAUSAL_LM": "AutoModelForCausalLM",
    "SEQ_2_SEQ_LM": "AutoModelForSeq2SeqLM",
    "QUESTION_ANS": "AutoModelForQuestionAnswering",
    "FEATURE_EXTRACTION": "AutoModel",
}
_HEAD_NAMES = ("classifier", "score", "classification_head", "head", "fc")
MERGE_META_FILE = "hubmgr_merge.json"


@dataclass(frozen=True)
class MergeResult:
    """What :func:`merge_adapter` wrote.

    Attributes:
        output: the merged model folder.
        adapter: the adapter folder that was merged.
        base_model: the base model (as recorded or given).
        base_path: the local folder the base was loaded from.
        num_parameters: parameters of the merged model.
        size_bytes: bytes written.
        code_files: the base model's own code files copied with it (only with ``trust_remote_code``).
    """

    output: str
    adapter: str
    base_model: str
    base_path: str
    num_parameters: int
    size_bytes: int
    code_files: tuple[str, ...] = ()


def _check_output(output: Path) -> None:
    if output.exists():
        if not output.is_dir():
            raise UsageError(f"{output} exists and is a file; choose another --output.")
        if any(output.iterdir()):
            raise UsageError(f"{output} already exists and is not empty; choose another --output.")


def _head_size(info: AdapterInfo) -> int | None:
    """Output size of the saved classification head (modules_to_save), if the adapter has one."""
    weights = info.path / "adapter_model.safetensors"
    if not weights.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(weights), framework="pt") as f:
            for key in f.keys():
                parts = key.split(".")
                if (
                    key.endswith(".weight")
                    and any(h in parts for h in _HEAD_NAMES)
                    and "lora_A" not in parts
                    and "lora_B" not in parts
                ):
                    return int(f.get_slice(key).get_shape()[0])
    except Exception:
        return None
    return None


def _load_base(info: AdapterInfo, base_path: Path, *, task: Any, load_kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """(model, processor) for the base, through the task when known."""
    task_name = task or info.task
    if task_name is not None and (info.data_info or not _needs_labels(info)):
        from hubmgr.task import Task, TaskData

        if isinstance(task_name, Task):
            task_obj = task_name
        else:
            from hubmgr.plugins import get_task

            task_obj = get_task(str(task_name), provided_by=info.task_provider if task is None else None)
        known = {f.name for f in task_obj.option_fields()}
        opts = task_obj.make_options({k: v for k, v in info.options.items() if k in known})
        data = TaskData(train=None, eval=None, info=dict(info.data_info))
        return task_obj.load_model(str(base_path), opts, data, load_kwargs)

    import transformers

    task_type = str(info.peft_config.get("task_type") or "").upper()
    cls = getattr(transformers, _AUTO_BY_TASK_TYPE.get(task_type, "AutoModel"))
    extra: dict[str, Any] = {}
    if task_type in ("SEQ_CLS", "TOKEN_CLS"):
        size = _head_size(info)
        if size:
            extra["num_labels"] = size
        names = info.data_info.get("label_names")
        if isinstance(names, list) and len(names) == size:
            extra["id2label"] = {i: str(n) for i, n in enumerate(names)}
            extra["label2id"] = {str(n): i for i, n in enumerate(names)}
    try:
        model = cls.from_pretrained(str(base_path), **load_kwargs, **extra)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"Cannot load the base model {base_path}: {first_line(exc)}") from None
    processor = None
    for source in (info.path, base_path):
        for loader in ("AutoTokenizer", "AutoProcessor"):
            try:
                processor = getattr(transformers, loader).from_pretrained(
                    str(source), trust_remote_code=load_kwargs.get("trust_remote_code", False)
                )
                break
            except Exception:
                continue
        if processor is not None:
            break
    return model, processor


def _needs_labels(info: AdapterInfo) -> bool:
    return str(info.peft_config.get("task_type") or "").upper() in ("SEQ_CLS", "TOKEN_CLS") or bool(
        info.peft_config.get("modules_to_save")
    )


def _copy_code(tmp: Path, sources: list[Path], *, trusted: bool, base: str) -> tuple[str, ...]:
    """Make every ``auto_map`` in the written configs point at code inside ``tmp``: copy the files it names
    (and what they import relatively) from ``sources`` when remote code is trusted, refuse otherwise.

    Raises:
        ModelError: a config names code without ``trusted``, or code that none of ``sources`` has.
    """
    copied: list[str] = []
    for config_file in sorted(tmp.glob("*.json")):
        for rel in sorted(local_code_modules(auto_map_of(config_file))):
            if (tmp / rel).is_file():
                continue  # transformers saved it (a custom class keeps its code with it)
            if not trusted:
                raise ModelError(
                    f"The merged model's {config_file.name} names the repo's own code ({rel}), which merge"
                    f" copies only with --trust-remote-code; pass it only if you trust {base}."
                )
            source = next((folder for folder in sources if (folder / rel).is_file()), None)
            if source is None:
                raise ModelError(
                    f"The merged model's {config_file.name} names code ({rel}) that is in neither"
                    f" {sources[0]} nor the adapter, so the merged model could not load; nothing was written."
                )
            from transformers.dynamic_module_utils import get_relative_import_files

            for file in [source / rel, *map(Path, get_relative_import_files(str(source / rel)))]:
                try:
                    name = file.resolve().relative_to(source.resolve())
                except ValueError:
                    raise ModelError(
                        f"{source / rel} imports code from outside its folder ({file});"
                        " merge cannot copy it with the model."
                    ) from None
                target = tmp / name
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, target)
                    copied.append(name.as_posix())
    return tuple(copied)


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def merge_adapter(
    adapter: str | Path,
    *,
    output: str | Path,
    base_model: str | None = None,
    task: Any = None,
    dtype: str | None = None,
    settings: "Settings | None" = None,
    trust_remote_code: bool = False,
) -> MergeResult:
    """Merge ``adapter`` into its base model and save the full model in safetensors.

    Args:
        adapter: adapter folder, or a run / adapter id from the registry.
        output: the folder to create; it must not exist or be empty.
        base_model: override the base model recorded with the adapter (repo id or folder).
        task: task name or instance; default the one recorded with the adapter.
        dtype: ``float32``, ``bfloat16`` or ``float16`` to load and save in (default: the model's).
        settings: hubmgr settings.
        trust_remote_code: allow a base model with its own Python code (``auto_map`` in ``config.json``),
            which then runs, and copy that code into ``output``; without it such a model is refused.

    Returns:
        :class:`MergeResult`.

    Raises:
        UsageError: the output exists and is not empty, or a bad dtype.
        ModelError: the adapter or base model cannot be found or does not fit; the base model needs its
            own code and ``trust_remote_code`` is false, or the code its configs name cannot be found.
        DiskFullError: no space left while writing.
    """
    from hubmgr._quiet import quiet

    with quiet():
        return _merge(
            adapter,
            output=output,
            base_model=base_model,
            task=task,
            dtype=dtype,
            settings=settings,
            trust_remote_code=trust_remote_code,
        )


def _merge(
    adapter: str | Path,
    *,
    output: str | Path,
    base_model: str | None,
    task: Any,
    dtype: str | None,
    settings: "Settings | None",
    trust_remote_code: bool,
) -> MergeResult:
    from hubmgr.config import get_settings
    from hubmgr.eval.loading import load_kwargs as model_load_kwargs, resolve_base

    settings = settings or get_settings()
    out = Path(output).expanduser().resolve()
    _check_output(out)
    folder, reg_id = resolve_adapter_ref(adapter, settings=settings)
    info = read_adapter_info(folder, name=reg_id)
    base = base_model or info.base_model
    if not base:
        raise UsageError(f"The adapter {info.name} does not record its base model; name it with --model.")
    base_path = resolve_base(base, info.base_revision, settings)
    check_remote_code(base_path, trust_remote_code=trust_remote_code, model=normalize_model_ref(base)[0])
    load_kwargs = model_load_kwargs(dtype, trust_remote_code)

    model, processor = _load_base(info, base_path, task=task, load_kwargs=load_kwargs)
    from peft import PeftModel

    try:
        peft_model = PeftModel.from_pretrained(model, str(info.path), is_trainable=False)
        merged = peft_model.merge_and_unload()
    except HubmgrError:
        raise
    except (RuntimeError, ValueError, KeyError, TypeError, OSError) as exc:
        raise ModelError(
            f"Adapter {info.name} does not fit the base model {normalize_model_ref(base)[0]}: {first_line(exc)}"
        ) from None
    if dtype:
        merged = merged.to(load_kwargs["dtype"])

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{secrets.token_hex(4)}"
    try:
        merged.save_pretrained(str(tmp))
        if processor is not None and hasattr(processor, "save_pretrained"):
            processor.save_pretrained(str(tmp))
        code_files = _copy_code(
            tmp, [Path(base_path), Path(info.path)], trusted=trust_remote_code, base=normalize_model_ref(base)[0]
        )
        meta = {
            "adapter": str(info.path),
            "adapter_id": reg_id,
            "base_model": str(base),
            "base_revision": info.base_revision,
            "task": getattr(task, "name", task) or info.task,
            "dtype": dtype,
            "trust_remote_code": bool(trust_remote_code),
            "code_files": list(code_files),
        }
        (tmp / MERGE_META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        _check_output(out)  # nobody wrote there meanwhile
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        full = disk_full_from(exc, str(out))
        if full is not None:
            raise full from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return MergeResult(
        output=str(out),
        adapter=str(info.path),
        base_model=str(base),
        base_path=str(base_path),
        num_parameters=int(sum(p.numel() for p in merged.parameters())),
        size_bytes=_folder_size(out),
        code_files=code_files,
    )
