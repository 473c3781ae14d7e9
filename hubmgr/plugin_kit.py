"""The plugin authors' kit: scaffold a task plugin package, and install or remove plugins with pip.

``hubmgr plugins new``, ``hubmgr plugins install`` and ``hubmgr plugins uninstall`` are thin shells over
the functions here, so a script (or the TUI) can do the same.

Installing runs ``python -m pip`` with hubmgr's *own* interpreter (``sys.executable``): a user who
installed hubmgr with pipx or ``uv tool`` gets the plugin in that tool's environment, where hubmgr sees it.
Where that environment has no pip (``uv tool`` environments), ``uv pip --python <that interpreter>`` is
used instead when ``uv`` is on ``PATH``.

Entry points are read once per process, so what a pip run added or removed is found by asking a fresh
subprocess (``list_plugins()`` and ``get_tasks()``) before and after.

Nothing here imports torch, transformers or a user interface.
"""

from __future__ import annotations

import importlib.util
import json
import keyword
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Callable

from hubmgr.errors import PluginError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from importlib.metadata import EntryPoint
    from importlib.resources.abc import Traversable

__all__ = [
    "PluginNames",
    "PluginSnapshot",
    "PluginChanges",
    "plugin_names",
    "scaffold_plugin",
    "installer_command",
    "install_command",
    "uninstall_command",
    "snapshot_plugins",
    "diff_snapshots",
    "find_plugin_distribution",
    "install_plugin",
    "uninstall_plugin",
]

ENTRY_POINT_GROUP = "hubmgr"

# PEP 508 distribution names (case-insensitive).
_DIST_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
# Task names: lower case words joined by "-" or "_" ("sentence-pair", "text_regression").
_TASK_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
# Packages a plugin must not shadow.
_RESERVED_PACKAGES = {"hubmgr", "hubmgr_tasks", "test", "tests"}

Echo = Callable[[str], None]


# ------------------------------------------------------------------------------------------------
# names
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PluginNames:
    """Every name a new plugin package needs, derived from the one the user typed.

    Attributes:
        dist: distribution (and folder) name, e.g. ``hubmgr-my-task``.
        package: import package, e.g. ``hubmgr_my_task``.
        task: task name users type, e.g. ``my-task``.
        entry_point: name in the ``hubmgr`` entry point group (shown by ``hubmgr plugins``), e.g. ``my_task``.
        class_name: the Task subclass, e.g. ``MyTask``.
    """

    dist: str
    package: str
    task: str
    entry_point: str
    class_name: str


def canonical_dist_name(name: str) -> str:
    """PEP 503 normal form: lower case, runs of ``-_.`` become ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def plugin_names(name: str, *, task_name: str | None = None) -> PluginNames:
    """Derive and check the names of a new plugin.

    Args:
        name: the distribution and folder name (``hubmgr-my-task``).
        task_name: the task's name; default: *name* without a ``hubmgr-`` prefix (``my-task``).

    Returns:
        :class:`PluginNames`.

    Raises:
        UsageError: *name* is not a valid distribution name, gives no usable import package, or would
            shadow hubmgr or the standard library; *task_name* is not lower-case words.
    """
    if not name or not _DIST_NAME.match(name):
        raise UsageError(
            f"{name!r} is not a valid package name: use letters, digits, '-', '_' or '.',"
            " starting and ending with a letter or digit (for example hubmgr-my-task)."
        )
    package = re.sub(r"[-.]+", "_", name).lower()
    if not package.isidentifier() or keyword.iskeyword(package):
        raise UsageError(
            f"{name!r} does not give a valid Python package name ({package!r}); start it with a letter,"
            " for example hubmgr-my-task."
        )
    if package in _RESERVED_PACKAGES or package in sys.stdlib_module_names:
        raise UsageError(
            f"{name!r} would shadow the {package!r} module; choose another name, for example hubmgr-{name}."
        )
    if task_name is None:
        stem = re.sub(r"^hubmgr[-_.]+", "", name.lower()) or name.lower()
        task_name = re.sub(r"[_.]+", "-", stem)
        task_name = re.sub(r"-+", "-", task_name).strip("-")
    if not _TASK_NAME.match(task_name):
        raise UsageError(
            f"{task_name!r} is not a valid task name: use lower-case words joined by '-' or '_',"
            " starting with a letter (for example my-task); pass --task-name."
        )
    entry_point = task_name.replace("-", "_")
    class_name = "".join(part.capitalize() for part in re.split(r"[-_]", task_name))
    if not class_name.endswith("Task"):
        class_name += "Task"
    return PluginNames(dist=name, package=package, task=task_name, entry_point=entry_point, class_name=class_name)


# ------------------------------------------------------------------------------------------------
# scaffold
# ------------------------------------------------------------------------------------------------
# (template file under hubmgr/templates/plugin/, output path; both may use the names as $placeholders)
_SCAFFOLD_FILES: tuple[tuple[str, str], ...] = (
    ("pyproject.toml.tmpl", "pyproject.toml"),
    ("README.md.tmpl", "README.md"),
    ("gitignore.tmpl", ".gitignore"),
    ("package/__init__.py.tmpl", "$package/__init__.py"),
    ("package/task.py.tmpl", "$package/task.py"),
    ("tests/conftest.py.tmpl", "tests/conftest.py"),
    ("tests/test_task.py.tmpl", "tests/test_${package}.py"),
    ("tests/data/train.csv.tmpl", "tests/data/train.csv"),
    ("tests/data/eval.csv.tmpl", "tests/data/eval.csv"),
)


def _template_root() -> Traversable:
    from importlib.resources import files

    return files("hubmgr") / "templates" / "plugin"


def _hubmgr_version() -> str:
    try:
        from importlib.metadata import version

        return version("hubmgr")
    except Exception:  # pragma: no cover - running from a bare checkout
        return "0.1.0"


def scaffold_plugin(name: str, *, parent: str | Path = ".", task_name: str | None = None) -> Path:
    """Write a new, working task plugin package ``PARENT/NAME/``.

    The package installs with ``pip install -e NAME`` and its own tests (``pytest`` in the folder)
    pass out of the box: a text-regression task built on hubmgr's public API, with a README and tests
    that use :mod:`hubmgr.testing`.

    Args:
        name: distribution and folder name (``hubmgr-my-task`` gives package ``hubmgr_my_task``).
        parent: the folder to create it in (must exist).
        task_name: the task's name (default: *name* without ``hubmgr-``).

    Returns:
        The new folder.

    Raises:
        UsageError: a bad name, a missing parent folder, or *NAME* already exists there.
    """
    names = plugin_names(name, task_name=task_name)
    parent = Path(parent).expanduser()
    if not parent.is_dir():
        raise UsageError(f"The folder {str(parent)!r} does not exist.")
    target = parent / names.dist
    if target.exists() or target.is_symlink():
        raise UsageError(f"{str(target)!r} already exists; choose another name or remove it first.")

    values = {
        "dist": names.dist,
        "package": names.package,
        "task": names.task,
        "entry_point": names.entry_point,
        "class_name": names.class_name,
        "hubmgr_version": _hubmgr_version(),
    }
    root = _template_root()
    # Build in a hidden sibling and rename into place: never a half-written plugin folder.
    tmp = Path(tempfile.mkdtemp(prefix=f".{names.dist}.", suffix=".tmp", dir=parent))
    try:
        for template_name, out_name in _SCAFFOLD_FILES:
            text = (root / template_name).read_text(encoding="utf-8")
            try:
                rendered = Template(text).substitute(values)
            except (KeyError, ValueError) as exc:  # a bug in a template, not the user's fault
                raise RuntimeError(f"template {template_name} is broken: {exc}") from exc
            out = tmp / Template(out_name).substitute(values)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(rendered, encoding="utf-8")
        os.chmod(tmp, 0o777 & ~_umask())
        try:
            os.rename(tmp, target)
        except OSError as exc:
            if target.exists():
                raise UsageError(f"{str(target)!r} already exists; choose another name or remove it first.") from exc
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------------------------------------
# pip
# ------------------------------------------------------------------------------------------------
def installer_command() -> list[str]:
    """The installer for hubmgr's own environment.

    Returns:
        ``[sys.executable, "-m", "pip"]``, or ``["uv", "pip"]`` where pip is missing and uv is on PATH
        (the commands built below then add ``--python sys.executable``).

    Raises:
        PluginError: neither pip nor uv is available.
    """
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    uv = shutil.which("uv")
    if uv:
        return [uv, "pip"]
    raise PluginError(
        f"hubmgr's environment ({sys.executable}) has no pip, and uv is not on PATH;"
        " install pip there (python -m ensurepip) or install uv."
    )


def _uses_uv(base: list[str]) -> bool:
    return len(base) >= 2 and base[1] == "pip" and base[0] != sys.executable


def _is_url(target: str) -> bool:
    """A URL or a direct reference (``git+https://...``, ``https://.../x.whl``, ``name @ https://...``)."""
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", target)) or " @ " in target


def _looks_like_path(target: str) -> bool:
    return (
        target.startswith((".", "~", "/"))
        or os.sep in target
        or (os.altsep is not None and os.altsep in target)
        or target.endswith((".whl", ".tar.gz", ".zip"))
        or Path(target).exists()
    )


def install_command(
    target: str,
    *,
    editable: bool = False,
    upgrade: bool = False,
    no_deps: bool = False,
    no_build_isolation: bool = False,
) -> list[str]:
    """Build the install command line (nothing runs).

    Args:
        target: a distribution name (``hubmgr-foo``, ``hubmgr-foo>=1.2``), a path to a project folder,
            wheel or sdist, or a URL (``git+https://...``).
        editable: install a project folder in editable (development) mode.
        upgrade: upgrade if already installed.
        no_deps: do not install dependencies (offline installs).
        no_build_isolation: build with the packages already installed (offline installs).

    Returns:
        The argv list.

    Raises:
        UsageError: an empty target, one that starts with ``-``, a path that does not exist or is not a
            project, or ``--editable`` with something that is not a project folder.
        PluginError: no installer (see :func:`installer_command`).
    """
    target = target.strip()
    if not target or target.startswith("-"):
        raise UsageError(f"{target!r} is not a package name or a path.")
    if _is_url(target):
        if editable and not target.startswith(("git+", "hg+", "svn+", "bzr+")):
            raise UsageError("--editable needs a project folder or a version-control URL (git+https://...).")
        spec = target
    elif _looks_like_path(target):
        path = Path(target).expanduser().resolve()
        if not path.exists():
            raise UsageError(f"No such file or folder: {target}.")
        if path.is_dir() and not ((path / "pyproject.toml").is_file() or (path / "setup.py").is_file()):
            raise UsageError(f"{target} is not a Python project: it has no pyproject.toml or setup.py.")
        if editable and not path.is_dir():
            raise UsageError("--editable needs a project folder, not a file.")
        spec = str(path)
    else:
        if editable:
            raise UsageError("--editable needs a path to a project folder, not a package name.")
        spec = target
    base = installer_command()
    cmd = [*base, "install"]
    if _uses_uv(base):
        cmd += ["--python", sys.executable]
    if upgrade:
        cmd.append("--upgrade")
    if no_deps:
        cmd.append("--no-deps")
    if no_build_isolation:
        cmd.append("--no-build-isolation")
    cmd += ["-e", spec] if editable else [spec]
    return cmd


def uninstall_command(dist_name: str) -> list[str]:
    """Build the uninstall command line for one distribution (non-interactive; nothing runs)."""
    base = installer_command()
    if _uses_uv(base):
        return [*base, "uninstall", "--python", sys.executable, dist_name]
    return [*base, "uninstall", "-y", dist_name]


def _run_streaming(cmd: list[str], echo: Echo | None) -> int:
    """Run *cmd*, passing each output line (stdout and stderr merged) to *echo*; return its exit code."""
    env = dict(os.environ)
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    env["PYTHONUNBUFFERED"] = "1"
    try:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=env,
            bufsize=1,
        )
    except OSError as exc:
        raise PluginError(f"Could not run {cmd[0]}: {exc.strerror or exc}.") from exc
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if echo is not None:
                echo(line.rstrip("\n"))
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc.wait()


# ------------------------------------------------------------------------------------------------
# what is installed
# ------------------------------------------------------------------------------------------------
@dataclass
class PluginSnapshot:
    """Plugins and tasks that a fresh hubmgr process sees.

    Attributes:
        plugins: plugin name -> ``{"version": ..., "error": ...}``.
        tasks: task name -> ``"module.Class"``.
    """

    plugins: dict[str, dict[str, str | None]] = field(default_factory=dict)
    tasks: dict[str, str] = field(default_factory=dict)


@dataclass
class PluginChanges:
    """What an install or uninstall changed.

    Attributes:
        action: ``"install"`` or ``"uninstall"``.
        target: what the user asked for.
        plugins_added / plugins_removed: ``[{"name", "version"}]``.
        plugins_changed: ``[{"name", "old_version", "new_version"}]`` (upgrades, reinstalls).
        tasks_added / tasks_removed: task names.
        errors: ``[{"name", "error"}]`` for plugins that now fail to load.
    """

    action: str
    target: str
    plugins_added: list[dict[str, str | None]] = field(default_factory=list)
    plugins_removed: list[dict[str, str | None]] = field(default_factory=list)
    plugins_changed: list[dict[str, str | None]] = field(default_factory=list)
    tasks_added: list[str] = field(default_factory=list)
    tasks_removed: list[str] = field(default_factory=list)
    errors: list[dict[str, str | None]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(
            self.plugins_added or self.plugins_removed or self.plugins_changed or self.tasks_added or self.tasks_removed
        )


_SNAPSHOT_MARK = "@@hubmgr-plugin-snapshot@@"
_SNAPSHOT_CODE = f"""
import json
import warnings
out = {{"plugins": {{}}, "tasks": {{}}}}
from hubmgr.plugins import list_plugins, get_tasks
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import hubmgr.cli  # builds the command line, so a failing register_commands is recorded like any hook
for p in list_plugins():
    out["plugins"][str(p.name)] = {{"version": p.version and str(p.version),
                                    "error": p.error and str(p.error)}}
try:
    tasks = get_tasks()
except Exception as exc:
    tasks = {{}}
    out["tasks_error"] = str(exc)
for name, cls in tasks.items():
    out["tasks"][str(name)] = getattr(cls, "__module__", "?") + "." + getattr(cls, "__qualname__", "?")
print({_SNAPSHOT_MARK!r} + json.dumps(out))
"""


def snapshot_plugins(*, python: str | None = None, timeout: float = 120) -> PluginSnapshot:
    """Ask a fresh hubmgr process which plugins and tasks it loads (entry points are cached per process).

    ``HUBMGR_LOAD_PLUGINS`` is ignored for this, so everything installed is seen.

    Args:
        python: the interpreter (default: ``sys.executable``, hubmgr's own).
        timeout: seconds to wait.

    Returns:
        :class:`PluginSnapshot`.

    Raises:
        PluginError: the subprocess failed.
    """
    env = dict(os.environ)
    env.pop("HUBMGR_LOAD_PLUGINS", None)
    try:
        proc = subprocess.run(
            [python or sys.executable, "-c", _SNAPSHOT_CODE],
            capture_output=True,
            text=True,
            errors="replace",
            env=env,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PluginError(f"Could not list the installed plugins: {exc}.") from exc
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_SNAPSHOT_MARK):
            data = json.loads(line[len(_SNAPSHOT_MARK) :])
            return PluginSnapshot(plugins=data.get("plugins", {}), tasks=data.get("tasks", {}))
    last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    raise PluginError(f"Could not list the installed plugins: {last}")


def diff_snapshots(before: PluginSnapshot, after: PluginSnapshot, *, action: str, target: str) -> PluginChanges:
    """Compare two snapshots.

    Args:
        before: the snapshot before pip ran.
        after: the snapshot after.
        action: ``"install"`` or ``"uninstall"``.
        target: what the user asked for.

    Returns:
        :class:`PluginChanges`.
    """
    changes = PluginChanges(action=action, target=target)
    for name in sorted(set(after.plugins) - set(before.plugins)):
        changes.plugins_added.append({"name": name, "version": after.plugins[name].get("version")})
    for name in sorted(set(before.plugins) - set(after.plugins)):
        changes.plugins_removed.append({"name": name, "version": before.plugins[name].get("version")})
    for name in sorted(set(before.plugins) & set(after.plugins)):
        old, new = before.plugins[name].get("version"), after.plugins[name].get("version")
        if old != new:
            changes.plugins_changed.append({"name": name, "old_version": old, "new_version": new})
    for name in sorted(after.plugins):
        err = after.plugins[name].get("error")
        if err and err != (before.plugins.get(name) or {}).get("error"):
            changes.errors.append({"name": name, "error": err})
    changes.tasks_added = sorted(set(after.tasks) - set(before.tasks))
    changes.tasks_removed = sorted(set(before.tasks) - set(after.tasks))
    return changes


@dataclass(frozen=True)
class PluginDistribution:
    """An installed distribution that provides hubmgr plugins.

    Attributes:
        name: its distribution name.
        version: its version.
        entry_points: names in the ``hubmgr`` entry point group.
    """

    name: str
    version: str
    entry_points: tuple[str, ...]


def find_plugin_distribution(name: str) -> PluginDistribution:
    """Find the installed distribution behind a plugin, by distribution name or plugin (entry point) name.

    Args:
        name: ``hubmgr-sentence-pair`` (distribution) or ``sentence_pair`` (plugin name).

    Returns:
        :class:`PluginDistribution`.

    Raises:
        UsageError: *name* is hubmgr itself, is installed but is not a hubmgr plugin, or is not installed.
    """
    from importlib.metadata import distributions

    wanted = canonical_dist_name(name)
    if wanted == "hubmgr":
        raise UsageError("Refusing to uninstall hubmgr itself; use the tool that installed it (pip, pipx, uv).")
    by_entry_point: list[PluginDistribution] = []
    seen: set[str] = set()
    for dist in distributions():
        dist_name = dist.metadata["Name"] or ""
        canon = canonical_dist_name(dist_name)
        if not dist_name or canon in seen:
            continue
        seen.add(canon)
        eps = tuple(ep.name for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP)
        info = PluginDistribution(name=dist_name, version=dist.version or "?", entry_points=eps)
        if canon == wanted:
            if not eps:
                raise UsageError(
                    f"{dist_name} is installed but is not a hubmgr plugin (it has no entry point in the"
                    f" {ENTRY_POINT_GROUP!r} group); remove other packages with pip."
                )
            return info
        if name in eps and canon != "hubmgr":
            by_entry_point.append(info)
    if len(by_entry_point) == 1:
        return by_entry_point[0]
    if len(by_entry_point) > 1:
        names = ", ".join(d.name for d in by_entry_point)
        raise UsageError(f"Several packages provide a plugin named {name!r} ({names}); name the package.")
    if name in {ep.name for ep in _hubmgr_entry_points()}:
        raise UsageError(
            f"{name!r} is built into hubmgr and cannot be uninstalled; limit plugins with HUBMGR_LOAD_PLUGINS."
        )
    raise UsageError(f"No hubmgr plugin named {name!r} is installed in hubmgr's environment ({sys.executable}).")


def _hubmgr_entry_points() -> list[EntryPoint]:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        return [ep for ep in distribution("hubmgr").entry_points if ep.group == ENTRY_POINT_GROUP]
    except PackageNotFoundError:  # pragma: no cover
        return []


def install_plugin(
    target: str,
    *,
    editable: bool = False,
    upgrade: bool = False,
    no_deps: bool = False,
    no_build_isolation: bool = False,
    echo: Echo | None = None,
) -> PluginChanges:
    """Install a plugin into hubmgr's environment and report what it added.

    Args:
        target: distribution name or path (see :func:`install_command`).
        editable: editable install of a project folder.
        upgrade: upgrade if already installed.
        no_deps: skip dependencies.
        no_build_isolation: build with what is installed (offline).
        echo: receives each line of pip's output (``None``: discard).

    Returns:
        :class:`PluginChanges`.

    Raises:
        UsageError: a bad target.
        PluginError: pip failed, or the plugins could not be listed.
    """
    cmd = install_command(
        target, editable=editable, upgrade=upgrade, no_deps=no_deps, no_build_isolation=no_build_isolation
    )
    before = snapshot_plugins()
    code = _run_streaming(cmd, echo)
    if code != 0:
        raise PluginError(f"pip could not install {target} (exit code {code}); see its output above.")
    return diff_snapshots(before, snapshot_plugins(), action="install", target=target)


def uninstall_plugin(name: str, *, echo: Echo | None = None) -> PluginChanges:
    """Uninstall a plugin's distribution from hubmgr's environment and report what it removed.

    Args:
        name: distribution name or plugin (entry point) name.
        echo: receives each line of pip's output.

    Returns:
        :class:`PluginChanges`.

    Raises:
        UsageError: hubmgr itself, not a plugin, or not installed.
        PluginError: pip failed.
    """
    dist = find_plugin_distribution(name)
    cmd = uninstall_command(dist.name)
    before = snapshot_plugins()
    code = _run_streaming(cmd, echo)
    if code != 0:
        raise PluginError(f"pip could not uninstall {dist.name} (exit code {code}); see its output above.")
    return diff_snapshots(before, snapshot_plugins(), action="uninstall", target=dist.name)
