"""The plugin manager: loading, isolation of broken plugins, HUBMGR_LOAD_PLUGINS, hooks, and the CLI listings."""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import re
import sys
import types

import pytest

from hubmgr import hookspecs, plugins
from hubmgr.errors import PluginError
from hubmgr.hookspecs import RunInfo, hookimpl
from hubmgr.plugins import PluginWarning, registered
from hubmgr.task import Task

BUILTIN_TASKS = {"text-classification", "token-classification", "causal-lm", "image-classification"}
BUILTIN_PLUGINS = {"text_classification", "token_classification", "causal_lm", "image_classification"}


@pytest.fixture(autouse=True)
def _only_builtin_entry_points(monkeypatch: pytest.MonkeyPatch):
    """Third-party plugins installed in the test environment (the example plugin) are hidden here,
    so these tests see exactly the built-ins plus what each test adds."""
    real = importlib.metadata.entry_points

    def builtins_only(**kwargs):
        found = real(**kwargs)
        if kwargs.get("group") == "hubmgr":
            return [ep for ep in found if ep.name in BUILTIN_PLUGINS]
        return found

    monkeypatch.setattr(importlib.metadata, "entry_points", builtins_only)
    plugins.reset_plugin_manager()
    yield
    plugins.reset_plugin_manager()


def _with_extra_entry_points(monkeypatch: pytest.MonkeyPatch, *extra: importlib.metadata.EntryPoint) -> None:
    real = importlib.metadata.entry_points

    def fake(**kwargs):
        found = list(real(**kwargs))
        if kwargs.get("group") == "hubmgr":
            found.extend(extra)
        return found

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    plugins.reset_plugin_manager()


def _info(name: str) -> plugins.PluginInfo:
    return {p.name: p for p in plugins.list_plugins()}[name]


class DummyTask(Task):
    name = "dummy-task"
    description = "A task for tests."


def test_builtins_load_through_entry_points():
    assert set(plugins.get_tasks()) == BUILTIN_TASKS
    infos = {p.name: p for p in plugins.list_plugins()}
    assert BUILTIN_PLUGINS <= set(infos)
    tc = infos["text_classification"]
    assert tc.error is None and tc.hooks == ["register_tasks"] and tc.tasks == ["text-classification"]
    assert tc.version == importlib.metadata.version("hubmgr")


def test_get_task_returns_instance_and_accepts_underscores():
    task = plugins.get_task("text_classification")
    assert isinstance(task, Task) and task.name == "text-classification"


def test_unknown_task_lists_available():
    with pytest.raises(PluginError, match=r"Unknown task 'nope'\. Available: causal-lm, image-classification"):
        plugins.get_task("nope")


def test_plugin_raising_in_register_tasks_is_recorded_and_skipped():
    class Broken:
        @hookimpl
        def register_tasks(self, register):
            register(DummyTask)
            raise RuntimeError("boom")

    with registered(Broken(), name="broken"):
        tasks = plugins.get_tasks()
        assert set(tasks) == BUILTIN_TASKS  # the half-registered DummyTask is dropped too
        info = _info("broken")
        assert info.error == "register_tasks raised RuntimeError: boom"
        assert info.tasks == []
    assert "broken" not in {p.name for p in plugins.list_plugins()}


def test_registered_plugin_adds_a_task():
    class Good:
        @hookimpl
        def register_tasks(self, register):
            register(DummyTask)

    with registered(Good(), name="good"):
        assert plugins.get_task("dummy-task").description == "A task for tests."
        assert _info("good").tasks == ["dummy-task"]
    assert "dummy-task" not in plugins.get_tasks()


def test_registering_a_non_task_is_an_error():
    class Wrong:
        @hookimpl
        def register_tasks(self, register):
            register(object)

    with registered(Wrong(), name="wrong"):
        assert set(plugins.get_tasks()) == BUILTIN_TASKS
        assert "subclass of hubmgr.task.Task" in _info("wrong").error


def test_duplicate_task_name_reports_the_later_plugin():
    from hubmgr_tasks.text_classification import TextClassificationTask

    class Copy(TextClassificationTask):
        description = "an impostor"

    class Dup:
        @hookimpl
        def register_tasks(self, register):
            register(Copy)
            register(DummyTask)

    with registered(Dup(), name="dup"):
        tasks = plugins.get_tasks()
        assert tasks["text-classification"] is TextClassificationTask
        assert tasks["dummy-task"] is DummyTask  # its other task still counts
        info = _info("dup")
        assert "task 'text-classification' is already a built-in task; ignored" in info.error
        assert info.tasks == ["dummy-task"]
        assert _info("text_classification").error is None


def test_task_names_clash_as_get_task_compares_them():
    class Hyphen(Task):
        name = "multi-label"

    class Underscore(Task):
        name = "Multi_Label"

    class First:
        @hookimpl
        def register_tasks(self, register):
            register(Hyphen)

    class Second:
        @hookimpl
        def register_tasks(self, register):
            register(Underscore)

    with registered(First(), name="first"), registered(Second(), name="second"):
        tasks = plugins.get_tasks()
        assert tasks.get("multi-label") is Hyphen and "Multi_Label" not in tasks
        assert type(plugins.get_task("multi_label")) is Hyphen
        info = _info("second")
        assert info.tasks == [] and info.error == (
            "task 'Multi_Label' is already registered by plugin 'first' as 'multi-label' (names match without"
            " regard to case, _ and -); ignored"
        )
        assert _info("first").error is None


def test_builtin_task_names_are_reserved_whatever_the_entry_point_order(monkeypatch):
    """A third-party entry point that comes before the built-ins cannot take over a built-in name; the
    refusal is reported against it, not against the built-in."""
    from hubmgr_tasks.text_classification import TextClassificationTask

    module = types.ModuleType("hubmgr_rel_dup_plugin")

    class Impostor(TextClassificationTask):
        description = "an impostor"

    @hookimpl
    def register_tasks(register):
        register(Impostor)

    module.register_tasks = register_tasks
    monkeypatch.setitem(sys.modules, module.__name__, module)
    ep = importlib.metadata.EntryPoint(name="rel_dup", value=module.__name__, group="hubmgr")
    real = importlib.metadata.entry_points

    def first(**kwargs):
        found = list(real(**kwargs))
        return [ep, *found] if kwargs.get("group") == "hubmgr" else found

    monkeypatch.setattr(importlib.metadata, "entry_points", first)
    plugins.reset_plugin_manager()
    assert plugins.get_tasks()["text-classification"] is TextClassificationTask
    assert type(plugins.get_task("text-classification")) is TextClassificationTask
    assert _info("rel_dup").error == "task 'text-classification' is already a built-in task; ignored"
    assert _info("text_classification").error is None


def test_broken_entry_point_is_reported_and_the_rest_loads(monkeypatch):
    ep = importlib.metadata.EntryPoint(name="broken_ep", value="hubmgr_no_such_module_xyz", group="hubmgr")
    _with_extra_entry_points(monkeypatch, ep)
    assert set(plugins.get_tasks()) == BUILTIN_TASKS
    info = _info("broken_ep")
    assert info.error.startswith("ModuleNotFoundError: No module named 'hubmgr_no_such_module_xyz'")
    assert info.hooks == [] and info.tasks == []


def test_entry_point_with_unknown_hook_is_refused(monkeypatch):
    module = types.ModuleType("hubmgr_typo_plugin")

    @hookimpl
    def register_taskz(register):  # a typo: no such hook
        raise AssertionError("never called")

    module.register_taskz = register_taskz
    monkeypatch.setitem(sys.modules, "hubmgr_typo_plugin", module)
    ep = importlib.metadata.EntryPoint(name="typo", value="hubmgr_typo_plugin", group="hubmgr")
    _with_extra_entry_points(monkeypatch, ep)
    assert set(plugins.get_tasks()) == BUILTIN_TASKS
    assert "unknown hook 'register_taskz'" in _info("typo").error
    plugins.get_plugin_manager().check_pending()  # nothing pending: the plugin was unregistered


def test_entry_point_with_bad_hook_signature_is_refused(monkeypatch):
    module = types.ModuleType("hubmgr_badsig_plugin")

    @hookimpl
    def register_tasks(register, extra):  # asks for an argument the hook does not give
        raise AssertionError("never called")

    module.register_tasks = register_tasks
    monkeypatch.setitem(sys.modules, "hubmgr_badsig_plugin", module)
    _with_extra_entry_points(
        monkeypatch, importlib.metadata.EntryPoint(name="badsig", value="hubmgr_badsig_plugin", group="hubmgr")
    )
    assert set(plugins.get_tasks()) == BUILTIN_TASKS
    assert "PluginValidationError" in _info("badsig").error


def test_load_plugins_env_limits_entry_points(monkeypatch):
    monkeypatch.setenv("HUBMGR_LOAD_PLUGINS", "text_classification, causal_lm")
    assert set(plugins.get_tasks()) == {"text-classification", "causal-lm"}
    assert {p.name for p in plugins.list_plugins()} == {"text_classification", "causal_lm"}


def test_load_plugins_empty_loads_none(monkeypatch):
    monkeypatch.setenv("HUBMGR_LOAD_PLUGINS", "")
    assert plugins.get_tasks() == {}
    assert plugins.list_plugins() == []
    with pytest.raises(PluginError, match="Available: none"):
        plugins.get_task("text-classification")


def test_run_hooks_isolate_failures():
    calls = []

    class Bad:
        @hookimpl
        def on_run_start(self, run):
            raise ValueError("cannot log")

    class Good:
        @hookimpl
        def on_run_start(self, run):
            calls.append(run.run_id)
            return "ok"

        @hookimpl
        def on_run_end(self, run, result):
            calls.append(("end", result))

    run = RunInfo(run_id="r1", task="text-classification", model="m", output_dir="/tmp/x", config={})
    with registered(Bad(), name="bad"), registered(Good(), name="good"):
        with pytest.warns(PluginWarning, match="Plugin 'bad': on_run_start raised ValueError: cannot log"):
            results = plugins.call_run_hook("on_run_start", run=run)
        assert results == ["ok"]
        assert calls == ["r1"]
        assert _info("bad").error == "on_run_start raised ValueError: cannot log"
        plugins.call_run_hook("on_run_end", run=run, result={"status": "completed"})
        assert calls[-1] == ("end", {"status": "completed"})
        plugins.call_run_hook("on_run_log", run=run, event=object())  # nobody implements it: fine
        # training silences library warnings; a plugin's warning still comes through
        from hubmgr._quiet import quiet

        import warnings

        with warnings.catch_warnings(record=True) as again:
            warnings.simplefilter("always")
            plugins.call_run_hook("on_run_start", run=run)
        assert again == [], "the same failure in the same run is said once"
        other = RunInfo(run_id="r2", task="text-classification", model="m", output_dir="/tmp/x", config={})
        with pytest.warns(PluginWarning, match="Plugin 'bad': on_run_start raised"), quiet():
            plugins.call_run_hook("on_run_start", run=other)
        with pytest.raises(ValueError):
            plugins.call_run_hook("on_no_such_hook", run=run)


def test_register_plugin_commands_isolates_failures():
    import click

    class Adds:
        @hookimpl
        def register_commands(self, cli):
            @cli.command("hello-plugin")
            def hello():
                click.echo("hi")

    class Raises:
        @hookimpl
        def register_commands(self, cli):
            raise RuntimeError("no commands today")

    group = click.Group("test")
    with registered(Adds(), name="adds"), registered(Raises(), name="raises"):
        plugins.register_plugin_commands(group)
        assert "hello-plugin" in group.commands
        assert _info("raises").error == "register_commands raised RuntimeError: no commands today"
        assert _info("adds").error is None


def test_register_commands_cannot_replace_an_existing_command():
    import click

    group = click.Group("test")

    @group.command("train")
    def original():
        click.echo("original")

    class Hijacks:
        @hookimpl
        def register_commands(self, cli):
            @cli.command("train")
            def hijacked():
                click.echo("hijacked")

    with registered(Hijacks(), name="hijacks"):
        plugins.register_plugin_commands(group)
        assert group.commands["train"] is original
        assert "tried to replace existing command(s): train" in _info("hijacks").error


def test_hookspecs_are_typed_and_documented():
    names = {"register_tasks", "register_commands", "on_run_start", "on_run_log", "on_run_end"}
    for name in names:
        func = getattr(hookspecs, name)
        assert func.__doc__ and len(func.__doc__.strip().splitlines()) == 1
        sig = inspect.signature(func)
        assert all(p.annotation is not inspect.Parameter.empty for p in sig.parameters.values())
    pm = plugins.get_plugin_manager()
    assert names <= {n for n in vars(pm.hook) if not n.startswith("_")}


# -- CLI ----------------------------------------------------------------------------------------------
def test_cli_plugins_json(cli_runner):
    for args in (("plugins", "--json"), ("plugins", "list", "--json")):
        result = cli_runner(*args)
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        by_name = {p["name"]: p for p in data}
        assert BUILTIN_PLUGINS <= set(by_name)
        assert set(by_name["causal_lm"]) == {"name", "version", "hooks", "tasks", "error", "package"}
        assert by_name["causal_lm"]["package"] == "hubmgr"
        assert by_name["causal_lm"]["tasks"] == ["causal-lm"]


def test_cli_plugins_shows_a_broken_plugin(cli_runner):
    class Broken:
        @hookimpl
        def register_tasks(self, register):
            raise RuntimeError("boom")

    with registered(Broken(), name="broken"):
        result = cli_runner("plugins", "--json")
    assert result.exit_code == 0
    by_name = {p["name"]: p for p in json.loads(result.stdout)}
    assert by_name["broken"]["error"] == "register_tasks raised RuntimeError: boom"
    plain = cli_runner("plugins")
    assert plain.exit_code == 0 and "text_classification" in plain.stdout


def test_cli_tasks_json(cli_runner):
    result = cli_runner("tasks", "--json")
    assert result.exit_code == 0, result.output
    tasks = {t["name"]: t for t in json.loads(result.stdout)}
    assert set(tasks) == BUILTIN_TASKS
    tc = tasks["text-classification"]
    assert "text-classification" in tc["pipeline_tags"]
    assert tc["main_metric"] == "accuracy"
    options = {o["name"]: o for o in tc["options"]}
    assert options["text_column"] == {
        "name": "text_column",
        "type": "str",
        "default": "text",
        "help": "Column holding the text to classify.",
    }
    assert options["text_pair_column"]["type"] == "str | None" and options["text_pair_column"]["default"] is None
    assert {o["name"]: o["type"] for o in tasks["image-classification"]["options"]}["random_flip"] == "bool"
    plain = cli_runner("tasks")
    assert plain.exit_code == 0 and "token-classification" in plain.stdout
    # piped, each option row still names its task
    assert any(line.split("\t")[:2] == ["text-classification", "text_column"] for line in plain.stdout.splitlines())


def test_cli_tasks_respects_load_plugins(cli_runner):
    result = cli_runner("tasks", "--json", env={"HUBMGR_LOAD_PLUGINS": "causal_lm"})
    assert result.exit_code == 0
    assert [t["name"] for t in json.loads(result.stdout)] == ["causal-lm"]


def test_cli_import_does_not_load_heavy_libraries():
    import subprocess

    code = (
        "import sys, hubmgr.cli, hubmgr.plugins; hubmgr.plugins.get_tasks();"
        "print(','.join(m for m in ('torch', 'transformers', 'datasets', 'peft') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_trace_plugins_prints_each_hook_call_with_plugin_and_time(monkeypatch, capsys):
    """HUBMGR_TRACE_PLUGINS=1: one stderr line per hook call, naming the hook, the plugin, its time, outcome."""
    from hubmgr.hookspecs import RunInfo, hookimpl
    from hubmgr.plugins import call_run_hook, registered
    from hubmgr.train.events import StepLogged

    class Tracked:
        @hookimpl
        def on_run_log(self, run, event):
            return None

    class Failing:
        @hookimpl
        def on_run_start(self, run):
            raise RuntimeError("down")

    run = RunInfo(run_id="r", task="t", model="m", output_dir="/tmp/x", config={})
    event = StepLogged(
        step=1, total_steps=2, epoch=0.5, loss=0.1, learning_rate=1e-3, samples_per_second=1.0, eta_seconds=1.0
    )
    with registered(Tracked(), name="tracked"), registered(Failing(), name="failing"):
        call_run_hook("on_run_log", run=run, event=event)  # not traced without the variable
        assert "plugin trace" not in capsys.readouterr().err
        monkeypatch.setenv("HUBMGR_TRACE_PLUGINS", "1")
        call_run_hook("on_run_log", run=run, event=event)
        with pytest.warns(Warning):
            call_run_hook("on_run_start", run=run)
    err = capsys.readouterr().err
    assert re.search(r"hubmgr plugin trace: on_run_log \(step\) -> tracked: [0-9.]+ ms, ok", err)
    assert re.search(r"hubmgr plugin trace: on_run_start -> failing: [0-9.]+ ms, raised RuntimeError: down", err)
