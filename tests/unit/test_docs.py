"""The documentation stays true to the code.

* docs/cli.md and docs/configuration.md are generated (``python -m hubmgr.docgen``); they must equal what
  the generator gives now.
* Every hook in hubmgr/hookspecs.py is documented in docs/plugins.md with its exact signature (as
  datasette's ``test_plugin_hooks_are_documented``).
* The Python examples of docs/plugins.md run: the example task registers, trains a few steps and loads
  with plain peft; every hook example registers against the real hook specifications and runs.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import re
import sys
import types
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PLUGINS_PAGE = DOCS / "plugins.md"

#: Put this HTML comment on the line before a ```python block that must not be run.
SKIP_MARK = "<!-- docs-test: skip -->"
#: A block whose first line is ``# some/module.py`` is run as that module (so later blocks can import it).
_MODULE_HEADER = re.compile(r"^#\s*([\w/]+)\.py\s*$")
_FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)


# --- generated pages ---------------------------------------------------------------------------------
@pytest.mark.parametrize("page", ["docs/cli.md", "docs/configuration.md"])
def test_generated_page_is_up_to_date(page):
    from hubmgr.docgen import GENERATED

    expected = GENERATED[page]()
    path = ROOT / page
    assert path.is_file(), f"{page} is missing: run `python -m hubmgr.docgen`."
    assert path.read_text(encoding="utf-8") == expected, f"{page} is out of date: run `python -m hubmgr.docgen`."


def test_generated_pages_do_not_depend_on_the_terminal(monkeypatch):
    from hubmgr.docgen import cli_markdown

    monkeypatch.setenv("COLUMNS", "40")
    narrow = cli_markdown()
    monkeypatch.setenv("COLUMNS", "250")
    assert cli_markdown() == narrow


def test_generated_pages_hold_no_machine_paths():
    for page in ("cli.md", "configuration.md"):
        text = (DOCS / page).read_text(encoding="utf-8")
        for needle in (str(Path.home()), str(ROOT), "site-packages"):
            assert needle not in text, f"docs/{page} mentions {needle!r}"


def test_cli_reference_lists_every_command():
    import click

    from hubmgr.cli import cli
    from hubmgr.docgen import _is_ours

    text = (DOCS / "cli.md").read_text(encoding="utf-8")

    def walk(group, path):
        for name, cmd in group.commands.items():
            if cmd.hidden or not _is_ours(cmd):
                continue
            yield f"{path} {name}"
            if isinstance(cmd, click.Group):
                yield from walk(cmd, f"{path} {name}")

    for command_path in walk(cli, "hubmgr"):
        assert f"\n## {command_path}\n" in text, f"{command_path} is missing from docs/cli.md"


def test_docgen_check_reports_a_stale_page(tmp_path, capsys):
    from hubmgr import docgen

    (tmp_path / "docs").mkdir()
    for rel, make in docgen.GENERATED.items():
        (tmp_path / rel).write_text(make(), encoding="utf-8")
    assert docgen.main(["--check", "--root", str(tmp_path)]) == 0
    (tmp_path / docgen.CLI_PAGE).write_text("old\n", encoding="utf-8")
    assert docgen.main(["--check", "--root", str(tmp_path)]) == 1
    assert "docs/cli.md is out of date" in capsys.readouterr().err
    assert docgen.main(["--root", str(tmp_path)]) == 0
    assert docgen.main(["--check", "--root", str(tmp_path)]) == 0


# --- hooks ---------------------------------------------------------------------------------------------
def _hookspecs() -> dict[str, list[str]]:
    from hubmgr import hookspecs

    specs = {}
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if getattr(fn, f"{hookspecs.PROJECT}_spec", None) is not None:
            specs[name] = list(inspect.signature(fn).parameters)
    return specs


def test_there_are_hooks_to_check():
    assert {"register_tasks", "register_commands", "on_run_start", "on_run_log", "on_run_end"} <= set(_hookspecs())


@pytest.mark.parametrize("hook", sorted(_hookspecs()))
def test_plugin_hooks_are_documented(hook):
    params = _hookspecs()[hook]
    signature = f"`{hook}({', '.join(params)})`"
    headings = [line for line in PLUGINS_PAGE.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    assert any(signature in line for line in headings), (
        f"docs/plugins.md has no heading with {signature}: document the hook (and keep its signature current)."
    )


# --- runnable examples -----------------------------------------------------------------------------
def _python_blocks(text: str) -> list[tuple[str, bool]]:
    """(code, runnable) for each ```python block, in page order."""
    out = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").splitlines()
        skip = bool(before) and before[-1].strip() == SKIP_MARK
        out.append((match.group(1), not skip))
    return out


@contextlib.contextmanager
def _docs_modules(blocks: list[str]):
    """Run each block as a module (named by its ``# path.py`` header, else ``docs_example_N``)."""
    added: list[str] = []
    modules: list[types.ModuleType] = []
    try:
        for i, code in enumerate(blocks):
            first = code.splitlines()[0] if code.strip() else ""
            header = _MODULE_HEADER.match(first)
            name = header.group(1).replace("/", ".") if header else f"docs_example_{i}"
            parts = name.split(".")
            for j in range(1, len(parts)):  # parent packages, so `from pkg.mod import X` works
                pkg = ".".join(parts[:j])
                if pkg not in sys.modules:
                    package = types.ModuleType(pkg)
                    package.__path__ = []
                    sys.modules[pkg] = package
                    added.append(pkg)
            module = types.ModuleType(name)
            module.__file__ = f"<docs/plugins.md block {i}>"
            sys.modules[name] = module
            added.append(name)
            exec(compile(code, module.__file__, "exec"), module.__dict__)
            if len(parts) > 1:
                setattr(sys.modules[".".join(parts[:-1])], parts[-1], module)
            modules.append(module)
        yield modules
    finally:
        for name in reversed(added):
            sys.modules.pop(name, None)


def _has_hookimpl(module: types.ModuleType) -> bool:
    from hubmgr.hookspecs import PROJECT

    return any(hasattr(obj, f"{PROJECT}_impl") for obj in vars(module).values() if callable(obj))


@pytest.fixture
def plugin_env(hf_env, monkeypatch):
    from hubmgr.plugins import reset_plugin_manager

    monkeypatch.delenv("HUBMGR_LOAD_PLUGINS", raising=False)
    reset_plugin_manager()
    yield
    reset_plugin_manager()


def test_plugin_page_has_runnable_examples():
    blocks = _python_blocks(PLUGINS_PAGE.read_text(encoding="utf-8"))
    assert sum(1 for _, run in blocks if run) >= 5


def test_plugin_page_examples_register_and_run(plugin_env, tmp_path):
    import click
    from click.testing import CliRunner

    from hubmgr.hookspecs import RunInfo
    from hubmgr.plugins import (
        PluginWarning,
        call_run_hook,
        get_tasks,
        list_plugins,
        register_plugin_commands,
        registered,
    )
    from hubmgr.train.events import EvalLogged, StepLogged, TrainFinished

    blocks = [code for code, run in _python_blocks(PLUGINS_PAGE.read_text(encoding="utf-8")) if run]
    with _docs_modules(blocks) as modules, contextlib.ExitStack() as stack:
        plugins = [m for m in modules if _has_hookimpl(m)]
        assert plugins, "no block of docs/plugins.md implements a hook"
        for module in plugins:  # pluggy checks each implementation against its specification
            stack.enter_context(registered(module, name=module.__name__))

        tasks = get_tasks()
        assert "multi-label" in tasks, "the example task of docs/plugins.md did not register"
        errors = {
            p.name: p.error for p in list_plugins() if p.error and p.name.startswith(("docs_", "hubmgr_multilabel"))
        }
        assert not errors, errors

        group = click.Group("hubmgr")
        register_plugin_commands(group)
        documented_commands = set(group.commands)
        for name in documented_commands:
            result = CliRunner().invoke(group, [name, "--help"])
            assert result.exit_code == 0, result.output

        run = RunInfo(
            run_id="20250101-000000-abcd",
            task="multi-label",
            model="tiny",
            output_dir=str(tmp_path / "out"),
            config={"task": "multi-label"},
        )
        events = [
            StepLogged(
                step=1, total_steps=2, epoch=0.5, loss=0.7, learning_rate=1e-3, samples_per_second=10.0, eta_seconds=1.0
            ),
            EvalLogged(step=2, epoch=1.0, metrics={"micro_f1": 0.5}),
            TrainFinished(run_id=run.run_id, status="completed", output_dir=str(tmp_path / "out")),
        ]
        result = types.SimpleNamespace(
            run_id=run.run_id,
            status="completed",
            output_dir=tmp_path / "out",
            adapter_path=tmp_path / "out",
            metrics={"eval_micro_f1": 0.5},
            seconds=1.0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("error", PluginWarning)  # a hook example that raises fails the test
            call_run_hook("on_run_start", run=run)
            for event in events:
                call_run_hook("on_run_log", run=run, event=event)
            call_run_hook("on_run_end", run=run, result=result)


def _multilabel_csv(path: Path, n: int, seed: int) -> Path:
    import random

    rng = random.Random(seed)
    words = {
        "sports": ["goal", "match", "team"],
        "politics": ["vote", "law", "party"],
        "music": ["song", "band", "album"],
    }
    rows = ["text,labels"]
    for _ in range(n):
        labels = rng.sample(sorted(words), rng.randint(1, 2))
        text = " ".join(rng.choice(words[label]) for label in labels for _ in range(2))
        rows.append(f'{text},"{",".join(labels)}"')
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_plugin_page_example_task_trains_and_loads_with_peft(plugin_env, tmp_path, tiny_bert):
    from hubmgr.testing import smoke_test_task

    blocks = [code for code, run in _python_blocks(PLUGINS_PAGE.read_text(encoding="utf-8")) if run]
    with _docs_modules(blocks) as modules:
        task_cls = next(getattr(m, "MultiLabelTask") for m in modules if hasattr(m, "MultiLabelTask"))
        result = smoke_test_task(
            task_cls,
            model_dir=tiny_bert,
            train_file=_multilabel_csv(tmp_path / "train.csv", 48, seed=1),
            eval_file=_multilabel_csv(tmp_path / "eval.csv", 12, seed=2),
            tmp_dir=tmp_path / "smoke",
            max_steps=2,
            predict_inputs=["goal vote", "song"],
        )
    assert result["main_metric"] == "micro_f1"
    assert 0.0 <= result["eval"]["adapter"]["micro_f1"] <= 1.0
    assert 0.0 <= result["eval"]["adapter"]["hamming_loss"] <= 1.0
    assert len(result["predictions"]) == 2
    run = json.loads((Path(result["adapter_path"]) / "hubmgr_run.json").read_text(encoding="utf-8"))
    assert run["metric_directions"]["eval_hamming_loss"] is False and run["metric_directions"]["eval_micro_f1"] is True
    assert run["metric_directions"]["eval_labels_per_text"] is None  # auxiliary
    # F1 per label is a table named by the label names, not a scalar metric
    assert set(result["eval_tables"]["adapter"]["f1_per_label"]) == {"music", "politics", "sports"}
    assert "f1_per_label" not in result["eval"]["adapter"]
    extra = result["eval_extras"]["adapter"]  # extra_eval saw the predictions hubmgr eval had just scored
    assert 0 <= extra["wrong"] <= 12 and len(extra["wrong_examples"]) == min(3, extra["wrong"])


def test_plugin_page_example_options_reach_reduce_logits_and_compute_loss(plugin_env, tmp_path, tiny_bert):
    """The example's threshold decides its metrics (through reduce_logits) and label_smoothing its loss."""
    import hubmgr

    from hubmgr.plugins import registered

    blocks = [code for code, run in _python_blocks(PLUGINS_PAGE.read_text(encoding="utf-8")) if run]
    train = _multilabel_csv(tmp_path / "train.csv", 48, seed=1)
    held = _multilabel_csv(tmp_path / "eval.csv", 12, seed=2)
    with _docs_modules(blocks) as modules, contextlib.ExitStack() as stack:
        for module in (m for m in modules if _has_hookimpl(m)):
            stack.enter_context(registered(module, name=module.__name__))
        losses = {}
        for smoothing in (0.0, 0.4):
            result = hubmgr.train(
                hubmgr.TrainConfig(
                    task="multi-label",
                    model=str(tiny_bert),
                    data=str(train),
                    eval_data=str(held),
                    max_steps=2,
                    batch_size=8,
                    output_dir=str(tmp_path / f"out-{smoothing}"),
                    options={"label_smoothing": smoothing},
                )
            )
            losses[smoothing] = result.metrics["train_loss"]
        assert losses[0.4] != losses[0.0]
        adapter = [str(result.adapter_path)]
        everything = hubmgr.evaluate(None, adapter, task=None, data=str(held), options={"threshold": 0.0})
        nothing = hubmgr.evaluate(None, adapter, task=None, data=str(held), options={"threshold": 1.0})
    # threshold 0 predicts every label, 1 none: exact match is 0 both ways, Hamming loss = share of 0s / 1s
    adapter_all, adapter_none = everything.rows[-1].metrics, nothing.rows[-1].metrics
    assert adapter_all["hamming_loss"] + adapter_none["hamming_loss"] == pytest.approx(1.0)
    assert adapter_none["micro_f1"] == 0.0 and adapter_all["micro_f1"] > 0.0


# --- links ---------------------------------------------------------------------------------------------
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_CODE_BLOCK = re.compile(r"^```.*?^```", re.S | re.M)


def _anchors(path: Path) -> set[str]:
    from hubmgr.docgen import _anchor

    text = _CODE_BLOCK.sub("", path.read_text(encoding="utf-8"))
    return {_anchor(line.lstrip("#").replace("`", "")) for line in text.splitlines() if re.match(r"^#{1,6} ", line)}


@pytest.mark.parametrize("page", ["user-guide.md", "plugins.md", "architecture.md", "cli.md", "configuration.md"])
def test_links_between_doc_pages_resolve(page):
    path = DOCS / page
    text = _CODE_BLOCK.sub("", path.read_text(encoding="utf-8"))
    for target in _LINK.findall(text):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"docs/{page} links to {target}, which does not exist"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"docs/{page} links to {target}: no such heading"
