"""Load a base model and its adapters' context: one public home for evaluation, predict, merge and the
TUI's Try tab.

* :func:`resolve_model_path` - a base model reference (a folder, or a repo id in the cache) as a folder;
* :func:`resolve_base` - the snapshot the adapters were trained on when it is cached, else the default;
* :func:`resolve_task` / :func:`resolve_options` - the task and its options, from what was given and
  the adapters' run records;
* :func:`load_kwargs` - ``from_pretrained`` keywords (local files only, dtype, remote code);
* :func:`pick_device` - :func:`hubmgr.device.pick_device`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubmgr.device import pick_device
from hubmgr.errors import HubmgrError, ModelError, NotCachedError, UsageError
from hubmgr.eval.adapters import AdapterInfo

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.config import Settings
    from hubmgr.task import Task

__all__ = ["load_kwargs", "pick_device", "resolve_base", "resolve_model_path", "resolve_options", "resolve_task"]


def resolve_model_path(model: str | Path, *, revision: str | None = None, settings: "Settings | None" = None) -> Path:
    """A base model reference (local folder or cached repo id) as a local folder.

    Raises:
        ModelError: not a folder and not in the cache.
    """
    path = Path(str(model)).expanduser()
    if path.is_dir():
        return path.resolve()
    from hubmgr.hub.cache import resolve_local

    try:
        return Path(resolve_local(str(model), revision=revision, settings=settings))
    except NotCachedError as exc:
        raise ModelError(f"{exc}") from None


def resolve_base(model: Any, trained_revision: str | None, settings: Any) -> Path:
    """The base folder: the snapshot the adapters were trained on when it is cached, else the default one."""
    if trained_revision and not Path(str(model)).expanduser().exists():
        try:
            return resolve_model_path(model, revision=trained_revision, settings=settings)
        except ModelError:
            pass  # not cached at that revision: use the default snapshot (a warning follows)
    return resolve_model_path(model, settings=settings)


def resolve_task(task: "str | Task | type[Task] | None", infos: list[AdapterInfo]) -> "Task":
    from hubmgr.task import Task

    if isinstance(task, Task):
        return task
    if isinstance(task, type) and issubclass(task, Task):
        return task()
    name = task or next((i.task for i in infos if i.task), None)
    if not name:
        raise UsageError("Name the task (e.g. text-classification): the adapters do not record it.")
    from hubmgr.plugins import get_task, normalize_task_name

    provider = next(
        (
            i.task_provider
            for i in infos
            if i.task_provider and i.task and normalize_task_name(i.task) == normalize_task_name(str(name))
        ),
        None,
    )
    return get_task(str(name), provided_by=provider)


def resolve_options(task: "Task", options: Any, infos: list[AdapterInfo]) -> Any:
    opt_cls = task.options_class
    if options is not None and not isinstance(options, dict):
        return options  # already the dataclass
    saved = next((i.options for i in infos if i.options), {})
    known = {f.name for f in task.option_fields()}
    values = {k: v for k, v in saved.items() if k in known}
    values.update(options or {})
    try:
        from hubmgr.fields import coerce_options

        values = coerce_options(opt_cls, values, source=f"the options of task {task.name!r}")
    except HubmgrError:
        raise
    except Exception:  # noqa: BLE001 - an options class the field reader cannot describe: take the values as given
        pass
    try:
        return task.make_options(values)
    except HubmgrError:
        raise
    except (TypeError, ValueError) as exc:
        raise UsageError(f"Bad options for task {task.name!r} ({opt_cls.__name__}): {exc}.") from None


def load_kwargs(dtype: str | None, trust_remote_code: bool) -> dict[str, Any]:
    """``from_pretrained`` keywords for loading a base model to evaluate or predict with."""
    import torch

    load_kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code, "local_files_only": True}
    if dtype:
        dt = getattr(torch, str(dtype).replace("torch.", ""), None)
        if not isinstance(dt, torch.dtype) or not dt.is_floating_point:
            raise UsageError(f"Unknown dtype {dtype!r}; use float32, bfloat16 or float16.")
        load_kwargs["dtype"] = dt
    return load_kwargs
