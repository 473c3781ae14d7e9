"""The plugin manager: built-in and third-party plugins, loaded from the ``hubmgr`` entry point group.

Built-in tasks (``plugins/hubmgr_tasks``) are registered through the same entry points as third-party
packages. One broken plugin never takes the program down: a plugin that fails to import, implements a
hook that has no specification, or raises inside a hook is recorded with its name and error (shown by
``hubmgr plugins``) and everything else keeps working.

``HUBMGR_LOAD_PLUGINS="a,b"`` loads only the entry points named ``a`` and ``b``; an empty value loads
none. Callers use the getters here and never touch ``pm.hook`` directly.

Nothing here imports torch, transformers, datasets or a UI.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pluggy

from hubmgr import hookspecs
from hubmgr.errors import HubmgrError, PluginError
from hubmgr.format import error_summary

if TYPE_CHECKING:  # pragma: no cover
    import click

    from hubmgr.task import Task

__all__ = [
    "ENV_LOAD_PLUGINS",
    "PluginInfo",
    "PluginWarning",
    "OptionInfo",
    "TaskInfo",
    "call_run_hook",
    "describe_task",
    "get_plugin_manager",
    "get_task",
    "get_tasks",
    "list_plugins",
    "normalize_task_name",
    "register_plugin_commands",
    "registered",
    "reset_plugin_manager",
    "errors_attributed_to",
    "plugin_error",
    "task_provider",
]

ENV_LOAD_PLUGINS = "HUBMGR_LOAD_PLUGINS"
#: set to 1 to print every hook call (hook, plugin, time, outcome) on stderr
ENV_TRACE_PLUGINS = "HUBMGR_TRACE_PLUGINS"
ENTRY_POINT_GROUP = "hubmgr"

logger = logging.getLogger(__name__)


class PluginWarning(UserWarning):
    """A plugin raised inside a run hook; the run goes on."""


@dataclass
class PluginInfo:
    """One plugin as ``hubmgr plugins`` shows it.

    Attributes:
        name: the entry point name (or the name given at registration).
        version: the version of the distribution that provides it, when known.
        hooks: names of the hooks it implements.
        tasks: names of the tasks it registered.
        error: why it failed to load or what it raised in a hook; ``None`` when all is well.
        package: the distribution (pip package) that provides it, when known (``None`` for a plugin
            registered in code).
    """

    name: str
    version: str | None
    hooks: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    error: str | None = None
    package: str | None = None


@dataclass
class _State:
    pm: pluggy.PluginManager
    env: str | None
    versions: dict[str, str | None] = field(default_factory=dict)
    # entry point name -> the distribution that provides it
    dists: dict[str, str | None] = field(default_factory=dict)
    load_errors: dict[str, str] = field(default_factory=dict)
    # plugin name -> hook name -> error message (the latest call of that hook)
    hook_errors: dict[str, dict[str, str]] = field(default_factory=dict)
    reported: set[str] = field(default_factory=set)
    # (plugin, hook, message, run id) already warned about: a hook that fails at every step warns once a run
    warned: set[tuple[str, str, str, str | None]] = field(default_factory=set)


_lock = threading.RLock()
_state: _State | None = None


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _allowed_names(env: str | None) -> set[str] | None:
    if env is None:
        return None
    return {part.strip() for part in env.split(",") if part.strip()}


#: the distribution whose entry points are the built-in plugins (their task names are reserved)
BUILTIN_DISTRIBUTION = "hubmgr"


def _dist_name(dist: Any) -> str | None:
    if dist is None:
        return None
    try:
        name = dist.metadata["Name"]
    except Exception:  # a broken installation: no name to go by
        name = getattr(dist, "name", None)
    return str(name) if name else None


def _is_builtin(state: _State, plugin_name: str) -> bool:
    dist = state.dists.get(plugin_name)
    return dist is not None and dist.replace("_", "-").lower() == BUILTIN_DISTRIBUTION


def _check_hooks(pm: pluggy.PluginManager, plugin: object) -> None:
    """Refuse a plugin that implements a hook with no specification (a typo in a hook name)."""
    for caller in pm.get_hookcallers(plugin) or []:
        if caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and not impl.optionalhook:
                raise pluggy.PluginValidationError(plugin, f"unknown hook {caller.name!r}")


def _warn_once(state: _State, message: str) -> None:
    if message not in state.reported:
        state.reported.add(message)
        logger.warning("%s (see `hubmgr plugins`)", message)


def _build(env: str | None) -> _State:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    state = _State(pm=pm, env=env)
    allowed = _allowed_names(env)
    try:
        eps = _entry_points()
    except Exception as exc:  # a broken installation must not stop the program
        state.load_errors["<entry points>"] = error_summary(exc)
        eps = []
    for ep in eps:
        if allowed is not None and ep.name not in allowed:
            continue
        if ep.name in state.versions:  # the same name twice: the first one wins
            state.load_errors.setdefault(ep.name, f"another plugin is already installed as {ep.name!r}")
            continue
        dist = getattr(ep, "dist", None)
        state.versions[ep.name] = getattr(dist, "version", None)
        state.dists[ep.name] = _dist_name(dist)
        plugin = None
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
            _check_hooks(pm, plugin)
        except Exception as exc:
            if plugin is not None and pm.is_registered(plugin) and pm.get_name(plugin) == ep.name:
                pm.unregister(plugin)
            state.load_errors[ep.name] = error_summary(exc)
            _warn_once(state, f"Plugin {ep.name!r} failed to load: {error_summary(exc)}")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:  # pragma: no cover - _check_hooks catches these first
        state.load_errors["<hooks>"] = error_summary(exc)
    return state


def _get_state() -> _State:
    global _state
    env = os.environ.get(ENV_LOAD_PLUGINS)
    with _lock:
        if _state is None or _state.env != env:
            _state = _build(env)
        return _state


def get_plugin_manager() -> pluggy.PluginManager:
    """Return the process-wide plugin manager, loading the entry points on the first call.

    The manager is rebuilt when ``HUBMGR_LOAD_PLUGINS`` changed since the last call.

    Returns:
        The pluggy PluginManager with the hubmgr hook specifications.
    """
    return _get_state().pm


def reset_plugin_manager() -> None:
    """Forget the loaded plugins; the next call loads the entry points again (tests use it)."""
    global _state
    with _lock:
        _state = None


@contextlib.contextmanager
def registered(plugin: object, *, name: str | None = None) -> Iterator[object]:
    """Register a plugin object for the duration of a ``with`` block (tests use it).

    Args:
        plugin: a module, class or object with ``@hookimpl`` functions.
        name: the name ``hubmgr plugins`` shows (default: pluggy's name for the object).

    Yields:
        The plugin object.

    Raises:
        pluggy.PluginValidationError: a hook implementation does not match its specification.
    """
    state = _get_state()
    with _lock:
        plugin_name = state.pm.register(plugin, name=name)
        try:
            _check_hooks(state.pm, plugin)
        except Exception:
            state.pm.unregister(plugin)
            raise
    try:
        yield plugin
    finally:
        with _lock:
            if state.pm.is_registered(plugin):
                state.pm.unregister(plugin)
            if plugin_name is not None:
                state.hook_errors.pop(plugin_name, None)


def _record(state: _State, plugin_name: str, hook: str, message: str | None) -> None:
    errors = state.hook_errors.setdefault(plugin_name, {})
    if message is None:
        errors.pop(hook, None)
    else:
        errors[hook] = message


def _impls(pm: pluggy.PluginManager, hook: str) -> list[Any]:
    caller = getattr(pm.hook, hook, None)
    if caller is None:
        raise ValueError(f"unknown hook {hook!r}")
    # registration order; wrappers are not plain calls, skip them
    return [impl for impl in caller.get_hookimpls() if not (impl.wrapper or impl.hookwrapper)]


def _call(impl: Any, kwargs: dict[str, Any]) -> Any:
    """Call one plugin's implementation of a hook (every hook call goes through here); with
    ``HUBMGR_TRACE_PLUGINS=1`` each call is written to stderr: hook, plugin, time and outcome."""
    if os.environ.get(ENV_TRACE_PLUGINS, "").strip().lower() not in ("1", "true", "yes", "on"):
        return impl.function(*[kwargs[name] for name in impl.argnames])
    start = time.perf_counter()
    outcome = "ok"
    try:
        return impl.function(*[kwargs[name] for name in impl.argnames])
    except BaseException as exc:
        outcome = f"raised {error_summary(exc)}"
        raise
    finally:
        ms = (time.perf_counter() - start) * 1000
        event = kwargs.get("event")
        what = f" ({getattr(event, 'kind', type(event).__name__)})" if event is not None else ""
        print(
            f"hubmgr plugin trace: {impl.function.__name__}{what} -> {impl.plugin_name}: {ms:.2f} ms, {outcome}",
            file=sys.stderr,
            flush=True,
        )


def _collect_tasks(state: _State) -> tuple[dict[str, type[Task]], dict[str, str]]:
    """Call each plugin's ``register_tasks`` on its own. Returns (tasks by name, owner plugin by name).

    The built-in plugins register first, whatever order the entry points come in, so their task names
    are reserved. Names are compared as :func:`get_task` looks them up (case and ``_``/``-`` alike): a
    task whose name is taken is refused, and the refusal is recorded against the plugin that tried.
    """
    from hubmgr.task import Task

    tasks: dict[str, type[Task]] = {}
    owners: dict[str, str] = {}
    by_key: dict[str, str] = {}  # normalized name -> registered name
    impls = _impls(state.pm, "register_tasks")
    impls.sort(key=lambda impl: not _is_builtin(state, impl.plugin_name))  # stable: built-ins first
    for impl in impls:
        plugin_name = impl.plugin_name
        mine: list[type[Task]] = []
        problems: list[str] = []

        def register(task_cls: type[Task], _mine: list[type[Task]] = mine) -> None:
            if not (isinstance(task_cls, type) and issubclass(task_cls, Task)):
                raise PluginError(f"register() takes a subclass of hubmgr.task.Task, not {task_cls!r}.")
            if not task_cls.name:
                raise PluginError(f"Task class {task_cls.__name__} has no name.")
            _mine.append(task_cls)

        try:
            _call(impl, {"register": register})
        except Exception as exc:
            message: str | None = f"register_tasks raised {error_summary(exc)}"
            _record(state, plugin_name, "register_tasks", message)
            _warn_once(state, f"Plugin {plugin_name!r}: {message}")
            continue
        for task_cls in mine:
            name = task_cls.name
            taken = by_key.get(normalize_task_name(name))
            if taken is not None and tasks[taken] is not task_cls:
                owner = owners[taken]
                what = "a built-in task" if _is_builtin(state, owner) else f"registered by plugin {owner!r}"
                same = "" if taken == name else f" as {taken!r} (names match without regard to case, _ and -)"
                problems.append(f"task {name!r} is already {what}{same}; ignored")
                continue
            tasks[name] = task_cls
            owners[name] = plugin_name
            by_key[normalize_task_name(name)] = name
        message = "; ".join(problems) or None
        _record(state, plugin_name, "register_tasks", message)
        if message:
            _warn_once(state, f"Plugin {plugin_name!r}: {message}")
    return tasks, owners


def get_tasks() -> dict[str, type[Task]]:
    """Return every registered task class by name.

    A plugin that raises in ``register_tasks`` is recorded and skipped; a task name that is taken (by a
    built-in, or by a plugin that registered earlier; compared as :func:`get_task` compares them) keeps
    the first one and records an error on the plugin that tried to take it.

    Returns:
        ``{task name: Task subclass}``, sorted by name.
    """
    state = _get_state()
    with _lock:
        tasks, _ = _collect_tasks(state)
    return dict(sorted(tasks.items()))


def normalize_task_name(name: str) -> str:
    """``Text_Classification`` -> ``text-classification``."""
    return name.strip().lower().replace("_", "-")


def get_task(name: str, *, provided_by: dict[str, Any] | None = None) -> Task:
    """Return a new instance of the task called ``name`` (underscores work as dashes).

    Args:
        name: a task name such as ``text-classification``.
        provided_by: what :func:`task_provider` said when the task was used (an adapter's run record
            keeps it): an unknown task then names the package to install.

    Returns:
        An instance of the registered Task subclass.

    Raises:
        PluginError: no plugin registered a task with that name.
    """
    tasks = get_tasks()
    wanted = normalize_task_name(name)
    for task_name, task_cls in tasks.items():
        if normalize_task_name(task_name) == wanted:
            return task_cls()
    package = (provided_by or {}).get("package")
    if package and package != BUILTIN_DISTRIBUTION:
        version = (provided_by or {}).get("version")
        raise PluginError(
            f"Unknown task {name!r}: it came from the plugin package {package}"
            f"{f' {version}' if version else ''}, which is not installed here"
            f" (`pip install {package}`)."
        )
    available = ", ".join(tasks) or "none (no task plugin is loaded)"
    raise PluginError(f"Unknown task {name!r}. Available: {available}.")


def task_provider(name: str) -> dict[str, Any]:
    """Which plugin registered the task ``name``, from which package and version (for the run record).

    Returns:
        ``{"plugin": entry point or registration name, "package": distribution name or None,
        "version": its version or None}``; empty when no plugin registered the name.
    """
    state = _get_state()
    with _lock:
        tasks, owners = _collect_tasks(state)
    wanted = normalize_task_name(name)
    for task_name, owner in owners.items():
        if normalize_task_name(task_name) == wanted:
            version = state.versions.get(owner)
            if version is None:
                version = getattr(sys.modules.get(tasks[task_name].__module__), "__version__", None)
            return {"plugin": owner, "package": state.dists.get(owner), "version": version}
    return {}


def _package_dirs(task: Any) -> list[str]:
    """The folders of the top-level package that defines ``task``'s class."""
    top = type(task).__module__.split(".")[0]
    module = sys.modules.get(top)
    dirs = list(getattr(module, "__path__", None) or [])
    file = getattr(module, "__file__", None)
    if not dirs and file:
        dirs = [file]  # a single-module plugin
    return [os.path.realpath(d) for d in dirs]


def plugin_error(exc: BaseException, task: Any) -> PluginError | None:
    """A :class:`PluginError` that names the plugin when ``exc`` was raised inside the code of a
    third-party task (its ``load_data``, its collator at some batch, its metrics); None otherwise (an
    error of hubmgr or of a library it calls, or a built-in task: those stay hubmgr's).

    The message names the task, the plugin and package, where in the plugin's code it raised and the
    error; the original exception is kept as ``__cause__`` for ``HUBMGR_DEBUG=1``.
    """
    if task is None or isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return None
    provider = task_provider(getattr(task, "name", "") or "")
    if provider.get("package") == BUILTIN_DISTRIBUTION:
        return None
    roots = _package_dirs(task)
    if not roots:
        return None
    where = None
    tb = exc.__traceback__
    while tb is not None:  # the innermost frame in the plugin's code
        filename = os.path.realpath(tb.tb_frame.f_code.co_filename)
        if any(filename == root or filename.startswith(root.rstrip(os.sep) + os.sep) for root in roots):
            where = (tb.tb_frame.f_code.co_name, os.path.basename(filename), tb.tb_lineno)
        tb = tb.tb_next
    if where is None:
        return None
    plugin = provider.get("plugin") or type(task).__module__.split(".")[0]
    package = provider.get("package")
    owner = f"plugin {plugin!r}" + (f" (package {package})" if package and package != plugin else "")
    func, filename, line = where
    error = PluginError(
        f"Task {task.name!r} of {owner} failed in {func} ({filename}:{line}): {error_summary(exc)}."
        " Report it to the plugin's author; HUBMGR_DEBUG=1 shows the traceback."
    )
    error.__cause__ = exc
    return error


@contextlib.contextmanager
def errors_attributed_to(task: Any) -> Iterator[None]:
    """Turn an unexpected exception raised inside ``task``'s plugin code into :func:`plugin_error`'s
    :class:`PluginError` (exit 11, names the plugin); hubmgr's own errors and everything else pass as they are.
    Training, evaluation and prediction run a task's methods inside it. ``task`` may be a function that
    returns the task when asked (for code that learns which task it runs only inside the block)."""
    try:
        yield
    except HubmgrError:
        raise
    except Exception as exc:
        error = plugin_error(exc, task() if callable(task) and not hasattr(task, "name") else task)
        if error is None:
            raise
        raise error from exc


@dataclass
class OptionInfo:
    """One field of a task's options dataclass, as ``hubmgr tasks`` shows it."""

    name: str
    type: str
    default: Any
    help: str


@dataclass
class TaskInfo:
    """A task as ``hubmgr tasks`` shows it."""

    name: str
    description: str
    pipeline_tags: list[str]
    main_metric: str
    greater_is_better: bool
    options: list[OptionInfo]


def _type_name(tp: Any) -> str:
    import types
    import typing

    if isinstance(tp, str):
        return tp
    if tp is type(None):
        return "None"
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if args:
        return f"{getattr(typing.get_origin(tp), '__name__', str(tp))}[{', '.join(_type_name(a) for a in args)}]"
    return getattr(tp, "__name__", str(tp))


def describe_task(task_cls: type[Task]) -> TaskInfo:
    """Name, description, pipeline tags, metric and options (type, default, help) of a task class."""
    import typing

    from hubmgr.fields import field_default

    try:
        hints = typing.get_type_hints(task_cls.options_class)
    except Exception:  # unresolvable annotations: fall back to their text
        hints = {}
    options = []
    for f in task_cls.option_fields():
        options.append(
            OptionInfo(
                name=f.name,
                type=_type_name(hints.get(f.name, f.type)),
                default=field_default(f),
                help=f.metadata.get("help", ""),
            )
        )
    return TaskInfo(
        name=task_cls.name,
        description=task_cls.description,
        pipeline_tags=list(task_cls.pipeline_tags),
        main_metric=task_cls.main_metric,
        greater_is_better=task_cls.greater_is_better,
        options=options,
    )


def list_plugins() -> list[PluginInfo]:
    """Describe every plugin: loaded ones, and the ones that failed to load.

    Returns:
        One PluginInfo per plugin, sorted by name.
    """
    state = _get_state()
    with _lock:
        _, owners = _collect_tasks(state)
        infos: dict[str, PluginInfo] = {}
        for name, plugin in state.pm.list_name_plugin():
            if plugin is None:  # blocked
                continue
            hooks = sorted({caller.name for caller in state.pm.get_hookcallers(plugin) or []})
            errors = state.hook_errors.get(name) or {}
            version = state.versions.get(name) if name in state.versions else getattr(plugin, "__version__", None)
            infos[name] = PluginInfo(
                name=name,
                version=version,
                hooks=hooks,
                tasks=sorted(task for task, owner in owners.items() if owner == name),
                error="; ".join(errors.values()) or None,
                package=state.dists.get(name),
            )
        for name, error in state.load_errors.items():
            if name not in infos:
                infos[name] = PluginInfo(
                    name=name, version=state.versions.get(name), error=error, package=state.dists.get(name)
                )
            else:  # e.g. a second distribution installed under a name that is already taken
                info = infos[name]
                joined = "; ".join(e for e in (info.error, error) if e)
                infos[name] = replace(info, error=joined)
    return [infos[name] for name in sorted(infos)]


def register_plugin_commands(cli: click.Group) -> None:
    """Let every plugin add commands to the ``hubmgr`` group; a plugin that raises is recorded and skipped.

    Args:
        cli: the top-level click group.
    """
    state = _get_state()
    for impl in _impls(state.pm, "register_commands"):
        before = dict(cli.commands)
        try:
            _call(impl, {"cli": cli})
        except Exception as exc:
            message = f"register_commands raised {error_summary(exc)}"
            _record(state, impl.plugin_name, "register_commands", message)
            _warn_once(state, f"Plugin {impl.plugin_name!r}: {message}")
            continue
        # a plugin may add commands, never replace one that exists (click's add_command overwrites)
        replaced = sorted(name for name, cmd in before.items() if cli.commands.get(name) is not cmd)
        if replaced:
            for name in replaced:
                cli.commands[name] = before[name]
            message = f"register_commands tried to replace existing command(s): {', '.join(replaced)}"
            _record(state, impl.plugin_name, "register_commands", message)
            _warn_once(state, f"Plugin {impl.plugin_name!r}: {message}")
        else:
            _record(state, impl.plugin_name, "register_commands", None)


def call_run_hook(hook_name: str, *, on_failure: "Callable[[str], None] | None" = None, **kwargs: Any) -> list[Any]:
    """Call a run lifecycle hook on each plugin separately; failures are reported, never raised.

    A plugin that raises gets a :class:`PluginWarning` (once a run for the same hook and error) and a
    log line with the traceback at DEBUG; the other plugins are still called and training goes on.

    Args:
        hook_name: ``on_run_start``, ``on_run_log`` or ``on_run_end`` (any hook name works).
        on_failure: called with ``"Plugin 'x': on_run_log raised ..."`` for each plugin that raised (the
            training engine keeps these as notes of the run, so a detached run's record shows them).
        **kwargs: the hook's arguments by name (``run=RunInfo(...)``, ``event=...``, ``result=...``).

    Returns:
        The non-None return values of the implementations that succeeded.

    Raises:
        ValueError: ``hook_name`` is not a hook.
        TypeError: an argument the hook needs was not given.
    """
    state = _get_state()
    results: list[Any] = []
    for impl in _impls(state.pm, hook_name):
        missing = [name for name in impl.argnames if name not in kwargs]
        if missing:
            raise TypeError(f"{hook_name}() is missing argument(s): {', '.join(missing)}")
        try:
            result = _call(impl, kwargs)
        except Exception as exc:
            message = f"{hook_name} raised {error_summary(exc)}"
            _record(state, impl.plugin_name, hook_name, message)
            logger.debug("Plugin %r raised in %s", impl.plugin_name, hook_name, exc_info=True)
            key = (impl.plugin_name, hook_name, message, getattr(kwargs.get("run"), "run_id", None))
            if key not in state.warned:
                state.warned.add(key)
                warnings.warn(f"Plugin {impl.plugin_name!r}: {message}", PluginWarning, stacklevel=2)
            if on_failure is not None:
                on_failure(f"Plugin {impl.plugin_name!r}: {message}")
            continue
        if result is not None:
            results.append(result)
    return results
