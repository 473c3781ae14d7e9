"""Opening the TUI must stay light: no torch, transformers, peft or datasets until training starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_opening_the_app_does_not_import_torch() -> None:
    code = (
        "import sys, asyncio\n"
        "from hubmgr.tui.app import HubmgrApp\n"
        "from tests.tui.fakes import FakeBackend\n"
        "async def main():\n"
        "    app = HubmgrApp(FakeBackend())\n"
        "    async with app.run_test() as pilot:\n"
        "        for key in '123456':\n"
        "            await pilot.press(key)\n"
        "            await pilot.pause(0.2)\n"
        "            await app.workers.wait_for_complete()\n"
        "asyncio.run(main())\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'datasets') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
