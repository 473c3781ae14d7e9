"""The small public API of ``import hubmgr``: lazy, light, and callable in any import order."""

import subprocess
import sys


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_hubmgr_is_light():
    code = "import sys, hubmgr; print(sorted(m for m in ('torch','transformers','peft','datasets','textual') if m in sys.modules))"
    assert _run(code) == "[]"


def test_train_stays_callable_after_its_submodules_are_imported():
    code = (
        "import hubmgr\n"
        "config_cls = hubmgr.TrainConfig  # imports hubmgr.train.config, binding the package to hubmgr.train\n"
        "import hubmgr.train.runner\n"
        "print(callable(hubmgr.train), hubmgr.train.runner.train.__name__)"
    )
    assert _run(code) == "True train"


def test_every_public_name_resolves():
    code = "import hubmgr; missing = [n for n in hubmgr.__all__ if getattr(hubmgr, n, None) is None]; print(missing)"
    assert _run(code) == "[]"


def test_the_static_import_block_matches_the_lazy_table():
    """What type checkers and editors see (the TYPE_CHECKING block) is what ``hubmgr.X`` gives at run time."""
    import ast
    from pathlib import Path

    import hubmgr

    tree = ast.parse(Path(hubmgr.__file__).read_text(encoding="utf-8"))
    block = next(
        node for node in tree.body if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
    )
    static = {
        alias.asname or alias.name: (imp.module, alias.name)
        for imp in block.body
        if isinstance(imp, ast.ImportFrom)
        for alias in imp.names
    }
    static.pop("train", None)
    assert static == hubmgr._EXPORTS


def test_every_hubmgr_error_is_defined_in_errors_py():
    """One home for the error hierarchy: a user's ``except hubmgr.errors.X`` finds every X."""
    import importlib
    import pkgutil

    import hubmgr
    from hubmgr.errors import HubmgrError

    for info in pkgutil.walk_packages(hubmgr.__path__, "hubmgr."):
        if info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
    seen, todo = set(), [HubmgrError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub not in seen and sub.__module__.startswith("hubmgr."):
                seen.add(sub)
                todo.append(sub)
    elsewhere = sorted(f"{c.__module__}.{c.__name__}" for c in seen if c.__module__ != "hubmgr.errors")
    assert elsewhere == []
