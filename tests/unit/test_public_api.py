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
