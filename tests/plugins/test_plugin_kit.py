"""The plugin authors' kit: `hubmgr plugins new | install | uninstall` and hubmgr.testing.smoke_test_task.

The end-to-end test installs for real, but into a throw-away virtual environment layered over the
current one (a ``.pth`` file adds this environment's site-packages), so the shared test environment
never sees the scaffolded plugin, and it proves that ``hubmgr plugins install`` puts a plugin into the
environment of the hubmgr that runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from hubmgr import plugin_kit
from hubmgr.errors import PluginError, UsageError
from hubmgr.plugin_kit import (
    PluginSnapshot,
    diff_snapshots,
    find_plugin_distribution,
    install_command,
    plugin_names,
    scaffold_plugin,
    uninstall_command,
)

REPO = Path(__file__).resolve().parents[2]


# -- names ------------------------------------------------------------------------------------------
def test_names_derive_from_the_distribution_name():
    n = plugin_names("hubmgr-my-task")
    assert (n.dist, n.package, n.task, n.entry_point, n.class_name) == (
        "hubmgr-my-task",
        "hubmgr_my_task",
        "my-task",
        "my_task",
        "MyTask",
    )
    n = plugin_names("Acme.Reviews", task_name="review_score")
    assert (n.package, n.task, n.entry_point, n.class_name) == (
        "acme_reviews",
        "review_score",
        "review_score",
        "ReviewScoreTask",
    )


@pytest.mark.parametrize("bad", ["my task", "1bad", "-x", "x-", "a/b", "", "json", "hubmgr", "hubmgr_tasks", "class"])
def test_bad_names_are_refused(bad):
    with pytest.raises(UsageError):
        plugin_names(bad)


def test_bad_task_name_is_refused():
    with pytest.raises(UsageError, match="task name"):
        plugin_names("hubmgr-ok", task_name="Not OK")


# -- scaffold ---------------------------------------------------------------------------------------
def test_scaffold_writes_a_complete_package(tmp_path):
    parent = tmp_path / "work"
    parent.mkdir()
    path = scaffold_plugin("hubmgr-review-score", parent=parent)
    assert path == parent / "hubmgr-review-score"
    files = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())
    assert files == [
        ".gitignore",
        "README.md",
        "hubmgr_review_score/__init__.py",
        "hubmgr_review_score/task.py",
        "pyproject.toml",
        "tests/conftest.py",
        "tests/data/eval.csv",
        "tests/data/train.csv",
        "tests/test_hubmgr_review_score.py",
    ]
    meta = tomllib.loads((path / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "hubmgr-review-score"
    assert meta["project"]["entry-points"]["hubmgr"] == {"review_score": "hubmgr_review_score.task"}
    assert any(dep.startswith("hubmgr") for dep in meta["project"]["dependencies"])
    for py in path.rglob("*.py"):
        compile(py.read_text(), str(py), "exec")
        assert "${" not in py.read_text()
    task_src = (path / "hubmgr_review_score/task.py").read_text()
    assert 'name = "review-score"' in task_src and "class ReviewScoreTask(Task)" in task_src
    assert "from hubmgr import" in task_src and "hubmgr_tasks" not in task_src  # public API only
    assert [p.name for p in parent.iterdir()] == ["hubmgr-review-score"]  # no temp folder left


def test_scaffolded_task_follows_the_contract(tmp_path, monkeypatch):
    path = scaffold_plugin("hubmgr-contract-check", parent=tmp_path)
    monkeypatch.syspath_prepend(str(path))
    from hubmgr_contract_check.task import ContractCheckTask, register_tasks

    from hubmgr.task import Task

    assert issubclass(ContractCheckTask, Task) and ContractCheckTask.name == "contract-check"
    assert all(f.metadata.get("help") for f in ContractCheckTask.option_fields())
    assert ContractCheckTask.main_metric == "rmse" and ContractCheckTask.greater_is_better is False
    got = []
    register_tasks(got.append)
    assert got == [ContractCheckTask]


def test_cli_new_refuses_a_bad_name_and_an_existing_folder(cli_runner, tmp_path):
    result = cli_runner("plugins", "new", "not a name", "--dir", tmp_path)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("error: ")
    (tmp_path / "hubmgr-taken").mkdir()
    (tmp_path / "hubmgr-taken" / "keep.txt").write_text("mine")
    result = cli_runner("plugins", "new", "hubmgr-taken", "--dir", tmp_path)
    assert result.exit_code == 2 and "already exists" in result.output
    assert [p.name for p in (tmp_path / "hubmgr-taken").iterdir()] == ["keep.txt"]


def test_cli_new_json(cli_runner, tmp_path):
    result = cli_runner("plugins", "new", "hubmgr-jsonish", "--dir", tmp_path, "--task-name", "jsonish-score", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["package"] == "hubmgr_jsonish" and out["task"] == "jsonish-score"
    assert Path(out["path"]).is_dir() and "hubmgr_jsonish/task.py" in out["files"]


# -- pip commands -----------------------------------------------------------------------------------
def test_install_command_for_a_name_and_a_path(tmp_path):
    assert install_command("hubmgr-foo>=1.2", upgrade=True) == [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--upgrade",
        "hubmgr-foo>=1.2",
    ]
    project = scaffold_plugin("hubmgr-cmd", parent=tmp_path)
    cmd = install_command(str(project), editable=True, no_deps=True, no_build_isolation=True)
    assert cmd == [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-e", str(project)]
    url = "git+https://example.org/acme/hubmgr-foo.git"
    assert install_command(url, editable=True)[-2:] == ["-e", url]
    assert uninstall_command("hubmgr-cmd") == [sys.executable, "-m", "pip", "uninstall", "-y", "hubmgr-cmd"]


def test_install_command_refusals(tmp_path):
    with pytest.raises(UsageError, match="--editable needs a path"):
        install_command("hubmgr-foo", editable=True)
    with pytest.raises(UsageError, match="No such file"):
        install_command(str(tmp_path / "missing"))
    with pytest.raises(UsageError, match="not a Python project"):
        install_command(str(tmp_path))
    with pytest.raises(UsageError):
        install_command("--index-url=http://evil")


def test_uv_is_used_where_the_environment_has_no_pip(monkeypatch):
    real_find_spec = plugin_kit.importlib.util.find_spec
    monkeypatch.setattr(
        plugin_kit.importlib.util, "find_spec", lambda name, *a: None if name == "pip" else real_find_spec(name, *a)
    )
    monkeypatch.setattr(plugin_kit.shutil, "which", lambda name: "/opt/bin/uv" if name == "uv" else None)
    assert install_command("hubmgr-foo") == ["/opt/bin/uv", "pip", "install", "--python", sys.executable, "hubmgr-foo"]
    assert uninstall_command("hubmgr-foo") == [
        "/opt/bin/uv",
        "pip",
        "uninstall",
        "--python",
        sys.executable,
        "hubmgr-foo",
    ]
    monkeypatch.setattr(plugin_kit.shutil, "which", lambda name: None)
    with pytest.raises(PluginError, match="no pip"):
        install_command("hubmgr-foo")


def test_diff_of_snapshots():
    before = PluginSnapshot(
        plugins={"a": {"version": "1", "error": None}, "b": {"version": "1", "error": None}},
        tasks={"task-a": "a.A", "task-b": "b.B"},
    )
    after = PluginSnapshot(
        plugins={"a": {"version": "2", "error": None}, "c": {"version": "0.1", "error": "ImportError: x"}},
        tasks={"task-a": "a.A", "task-c": "c.C"},
    )
    d = diff_snapshots(before, after, action="install", target="c")
    assert d.plugins_added == [{"name": "c", "version": "0.1"}]
    assert d.plugins_removed == [{"name": "b", "version": "1"}]
    assert d.plugins_changed == [{"name": "a", "old_version": "1", "new_version": "2"}]
    assert (d.tasks_added, d.tasks_removed) == (["task-c"], ["task-b"])
    assert d.errors == [{"name": "c", "error": "ImportError: x"}]
    assert d.changed


def test_uninstall_refuses_hubmgr_builtins_non_plugins_and_unknown_names():
    with pytest.raises(UsageError, match="hubmgr itself"):
        find_plugin_distribution("HubMgr")
    with pytest.raises(UsageError, match="not a hubmgr plugin"):
        find_plugin_distribution("click")
    with pytest.raises(UsageError, match="built into hubmgr"):
        find_plugin_distribution("text_classification")
    with pytest.raises(UsageError, match="No hubmgr plugin named"):
        find_plugin_distribution("hubmgr-no-such-plugin-xyz")


def test_cli_uninstall_hubmgr_is_one_line_and_exit_2(cli_runner):
    result = cli_runner("plugins", "uninstall", "hubmgr", "--yes")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: Refusing to uninstall hubmgr itself; use the tool that installed it (pip, pipx, uv)."
    ]


def test_cli_install_pip_failure_is_one_line(cli_runner, monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(plugin_kit, "snapshot_plugins", lambda **kw: PluginSnapshot())

    def fake_run(cmd, echo):
        calls.append(cmd)
        echo("ERROR: No matching distribution found for hubmgr-nope")
        return 1

    monkeypatch.setattr(plugin_kit, "_run_streaming", fake_run)
    result = cli_runner("plugins", "install", "hubmgr-nope")
    assert result.exit_code == PluginError.exit_code
    lines = result.output.strip().splitlines()
    assert lines == [
        "ERROR: No matching distribution found for hubmgr-nope",
        "error: pip could not install hubmgr-nope (exit code 1); see its output above.",
    ]
    assert calls == [[sys.executable, "-m", "pip", "install", "hubmgr-nope"]]


def test_cli_install_reports_what_was_added(cli_runner, monkeypatch):
    snaps = iter(
        [
            PluginSnapshot(plugins={"a": {"version": "1", "error": None}}, tasks={"task-a": "a.A"}),
            PluginSnapshot(
                plugins={"a": {"version": "1", "error": None}, "new": {"version": "0.3", "error": None}},
                tasks={"task-a": "a.A", "shiny": "new.Shiny"},
            ),
        ]
    )
    monkeypatch.setattr(plugin_kit, "snapshot_plugins", lambda **kw: next(snaps))
    monkeypatch.setattr(plugin_kit, "_run_streaming", lambda cmd, echo: (echo("Successfully installed new-0.3"), 0)[1])
    result = cli_runner("plugins", "install", "hubmgr-new", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["plugins_added"] == [{"name": "new", "version": "0.3"}] and out["tasks_added"] == ["shiny"]
    assert "Successfully installed" in result.stderr and "Successfully installed" not in result.stdout


def test_cli_uninstall_asks_first(cli_runner, monkeypatch):
    monkeypatch.setattr(
        plugin_kit,
        "find_plugin_distribution",
        lambda name: plugin_kit.PluginDistribution(name="hubmgr-x", version="1.0", entry_points=("x",)),
    )
    ran = []
    monkeypatch.setattr(plugin_kit, "uninstall_plugin", lambda name, echo=None: ran.append(name))
    result = cli_runner("plugins", "uninstall", "x", input="n\n")
    assert result.exit_code != 0 and not ran
    assert "Uninstall hubmgr-x 1.0" in result.output


def test_snapshot_sees_the_builtin_tasks():
    snap = plugin_kit.snapshot_plugins()
    assert "text-classification" in snap.tasks
    assert "text_classification" in snap.plugins


# -- smoke_test_task --------------------------------------------------------------------------------
def test_smoke_test_registers_an_unregistered_task_class_for_the_duration(tiny_bert, write_csv, tmp_path):
    from hubmgr_tasks.text_classification import TextClassificationTask

    from hubmgr.plugins import get_tasks
    from hubmgr.testing.smoke import smoke_test_task

    class KitSmokeTask(TextClassificationTask):
        name = "kit-smoke"

    words = ["good great fun movie", "bad awful boring film"]
    data = write_csv("d.csv", ["text", "label"], [[words[i % 2], "pos" if i % 2 == 0 else "neg"] for i in range(16)])
    result = smoke_test_task(
        KitSmokeTask,
        model_dir=tiny_bert,
        train_file=data,
        tmp_dir=tmp_path / "smoke",
        max_steps=2,
        predict_inputs=["good movie"],
    )
    assert result["task"] == "kit-smoke" and result["global_step"] == 2
    assert set(result["eval"]) == {"base", "adapter"} and "accuracy" in result["eval"]["adapter"]
    assert result["peft"]["lora_tensors"] > 0 and len(result["predictions"]) == 1
    assert (Path(result["adapter_path"]) / "adapter_model.safetensors").is_file()
    assert "kit-smoke" not in get_tasks()  # unregistered afterwards


def test_smoke_test_refuses_a_class_that_reuses_a_taken_name(tmp_path):
    from hubmgr.errors import PluginError
    from hubmgr.task import Task
    from hubmgr.testing.smoke import smoke_test_task

    class Impostor(Task):
        name = "text-classification"

    with pytest.raises(AssertionError, match="already registered"):
        smoke_test_task(Impostor, model_dir=tmp_path, train_file=tmp_path / "x.csv", tmp_dir=tmp_path)
    with pytest.raises(PluginError, match="Unknown task"):
        smoke_test_task("no-such-task", model_dir=tmp_path, train_file=tmp_path / "x.csv", tmp_dir=tmp_path)


# -- end to end: scaffold, install, run its tests, uninstall -----------------------------------------
def _overlay_venv(root: Path) -> Path:
    """A venv whose interpreter also sees this environment's packages; what pip installs lands in it alone."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    python = root / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    parent = sysconfig.get_paths()["purelib"]
    Path(site, "_hubmgr_test_parent.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    return python


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HUBMGR_LOAD_PLUGINS"))}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INDEX="1", TOKENIZERS_PARALLELISM="false", COLUMNS="200")
    return env


def test_new_plugin_installs_passes_its_own_tests_and_uninstalls(tmp_path):
    python = _overlay_venv(tmp_path / "venv")
    env = _env()

    def hubmgr(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(python), "-m", "hubmgr", *args], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path
        )

    made = hubmgr("plugins", "new", "hubmgr-kit-demo", "--dir", str(tmp_path), "--json")
    assert made.returncode == 0, made.stderr
    project = Path(json.loads(made.stdout)["path"])

    installed = hubmgr("plugins", "install", "--editable", "--no-deps", "--no-build-isolation", str(project), "--json")
    assert installed.returncode == 0, installed.stderr[-3000:]
    report = json.loads(installed.stdout)
    assert report["plugins_added"] == [{"name": "kit_demo", "version": "0.1.0"}]
    assert report["tasks_added"] == ["kit-demo"] and report["errors"] == []
    assert "Successfully installed hubmgr-kit-demo" in installed.stderr
    # installed into the environment of the hubmgr that ran pip, not into this one
    from importlib.metadata import PackageNotFoundError, distribution

    with pytest.raises(PackageNotFoundError):
        distribution("hubmgr-kit-demo")

    listed = hubmgr("plugins", "--json")
    assert any(p["name"] == "kit_demo" and p["tasks"] == ["kit-demo"] for p in json.loads(listed.stdout))

    tests = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=400,
    )
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert "5 passed" in tests.stdout

    removed = hubmgr("plugins", "uninstall", "kit_demo", "--yes", "--json")
    assert removed.returncode == 0, removed.stderr
    report = json.loads(removed.stdout)
    assert report["plugins_removed"] == [{"name": "kit_demo", "version": "0.1.0"}]
    assert report["tasks_removed"] == ["kit-demo"]


def test_snapshot_records_a_plugin_whose_register_commands_fails(capsys):
    """The install summary's snapshot builds the CLI, so a crashing register_commands shows up as an error."""
    import hubmgr.cli  # noqa: F401 - the snapshot code imports it; import it once so a reset rebuilds it
    from hubmgr.hookspecs import hookimpl
    from hubmgr.plugins import registered

    class Broken:
        @hookimpl
        def register_commands(self, cli):
            raise RuntimeError("no commands today")

    with registered(Broken(), name="broken-cmds"):
        saved = sys.modules.pop("hubmgr.cli")  # the snapshot's fresh process imports it for the first time
        try:
            exec(plugin_kit._SNAPSHOT_CODE, {})
        finally:
            import hubmgr

            sys.modules["hubmgr.cli"] = saved
            hubmgr.cli = saved
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(plugin_kit._SNAPSHOT_MARK))
    data = json.loads(line[len(plugin_kit._SNAPSHOT_MARK) :])
    assert data["plugins"]["broken-cmds"]["error"] == "register_commands raised RuntimeError: no commands today"
