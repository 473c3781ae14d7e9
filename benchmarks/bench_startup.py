"""Start-up: `hubmgr --help` and the TUI's first interactive frame, against `python -c pass` and
`hf --help` measured in the same run; the modules each one imports (torch must be absent).

* command start-up: wall time of each command, median of N runs, the commands interleaved;
* TUI: `hubmgr` (no arguments) in a pseudo-terminal of 120x36, timed from spawn until the first
  frame (the navigation bar with its last tab, "Plugins") has been written to the terminal; then
  ctrl+q. A second probe opens the same app and records ``sys.modules`` when Textual reports the
  first frame displayed (its ``Ready`` event);
* modules: ``python -X importtime -m hubmgr --help``: count, slowest imports, heavy libraries.

    python benchmarks/bench_startup.py [--quick]
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

NAME = "startup"
HEAVY = (
    "torch",
    "transformers",
    "peft",
    "datasets",
    "accelerate",
    "numpy",
    "pandas",
    "pyarrow",
    "sklearn",
    "textual",
    "httpx",
    "requests",
    "huggingface_hub",
)
ANSI = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|[@-Z\\-_])")
FIRST_FRAME_MARKER = b"Plugins"

PROBE = r"""
import json, sys
from pathlib import Path
import hubmgr.tui.app as app_module
from hubmgr.tui.app import HubmgrApp

class Probe(HubmgrApp):
    CSS_PATH = str(Path(app_module.__file__).with_name(HubmgrApp.CSS_PATH))

    def on_ready(self) -> None:
        mods = sorted(sys.modules)
        with open(sys.argv[1], "w") as fh:
            json.dump({"modules": mods}, fh)
        self.exit()

Probe().run()
"""


def venv_bin(name: str) -> str | None:
    cand = Path(C.PYTHON).parent / name
    if cand.exists():
        return str(cand)
    return shutil.which(name)


def hubmgr_cmd() -> list[str]:
    exe = venv_bin("hubmgr")
    return [exe] if exe else [C.PYTHON, "-m", "hubmgr"]


def time_command(cmd: list[str], env: dict[str, str]) -> float:
    res = C.run_child(cmd, env=env, timeout=120)
    if res["returncode"] != 0:
        raise RuntimeError(f"{C.display_command(cmd)} failed: {res['stderr_tail'][-1500:]}")
    return res["wall_s"]


def pty_first_frame(
    cmd: list[str],
    env: dict[str, str],
    *,
    marker: bytes = FIRST_FRAME_MARKER,
    timeout: float = 60.0,
    cols: int = 120,
    rows: int = 36,
) -> dict[str, Any]:
    """Spawn ``cmd`` on a pseudo-terminal; time until ``marker`` appears in its output (escape codes
    stripped); then send ctrl+q and wait for it to exit."""
    env = dict(env)
    env["TERM"] = "xterm-256color"
    env["COLUMNS"], env["LINES"] = str(cols), str(rows)
    t0 = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # child
        try:
            os.execve(cmd[0], cmd, env)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    buf = b""
    seen = None
    try:
        while time.perf_counter() - t0 < timeout:
            r, _, _ = select.select([fd], [], [], 0.05)
            if not r:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            if marker in ANSI.sub(b"", buf):
                seen = time.perf_counter() - t0
                break
        quit_t = time.perf_counter()
        if seen is not None:
            os.write(fd, b"\x11")  # ctrl+q
        exited = False
        while time.perf_counter() - quit_t < 10:
            try:
                r, _, _ = select.select([fd], [], [], 0.05)
                if r:
                    os.read(fd, 65536)
            except OSError:
                pass
            done, _status = os.waitpid(pid, os.WNOHANG)
            if done:
                exited = True
                break
        quit_s = time.perf_counter() - quit_t if exited else None
    finally:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if not done:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        os.close(fd)
    if seen is None:
        text = ANSI.sub(b"", buf).decode("utf-8", "replace")
        raise RuntimeError(f"no first frame within {timeout}s; output: {text[-800:]!r}")
    return {"first_frame_s": seen, "quit_s": quit_s, "bytes_written": len(buf)}


def importtime(cmd_args: list[str], env: dict[str, str]) -> dict[str, Any]:
    rows = []
    for line in _full_stderr([C.PYTHON, "-X", "importtime", *cmd_args], env):
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m:
            rows.append(
                {
                    "self_us": int(m.group(1)),
                    "cumulative_us": int(m.group(2)),
                    "depth": len(m.group(3)) // 2,
                    "module": m.group(4),
                }
            )
    modules = sorted({r["module"] for r in rows})
    top_level = [r for r in rows if r["depth"] == 0]
    slowest = sorted(top_level, key=lambda r: -r["cumulative_us"])[:12]
    return {
        "command": C.display_command([C.PYTHON, "-X", "importtime", *cmd_args]),
        "module_count": len(modules),
        "heavy_imported": {h: any(m == h or m.startswith(h + ".") for m in modules) for h in HEAVY},
        "slowest_top_level": [{"module": r["module"], "cumulative_ms": r["cumulative_us"] / 1000} for r in slowest],
        "slowest_self": [
            {"module": r["module"], "self_ms": r["self_us"] / 1000}
            for r in sorted(rows, key=lambda r: -r["self_us"])[:12]
        ],
        "total_import_ms": sum(r["self_us"] for r in rows) / 1000,
    }


def _full_stderr(cmd: list[str], env: dict[str, str]) -> list[str]:
    import subprocess

    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=str(C.REPO))
    if proc.returncode != 0:
        raise RuntimeError(f"{C.display_command(cmd)} failed: {proc.stderr[-1500:]}")
    return proc.stderr.splitlines()


def body(record: dict[str, Any], args: Any) -> dict[str, Any]:
    reps = 3 if args.quick else 7
    with tempfile.TemporaryDirectory(prefix="hubmgr-bench-start-") as tmp_s:
        tmp = Path(tmp_s)
        env = C.isolated_env(tmp, args.threads, offline=True)
        hf = venv_bin("hf")
        commands: dict[str, list[str]] = {
            "python -c pass": [C.PYTHON, "-c", "pass"],
            "hubmgr --help": [*hubmgr_cmd(), "--help"],
        }
        if hf:
            commands["hf --help"] = [hf, "--help"]
        else:
            record["notes"].append("`hf` is not installed: its start-up was not measured.")
        tui_cmd = hubmgr_cmd()
        times: dict[str, list[float]] = {k: [] for k in commands}
        times["hubmgr TUI first frame"] = []
        # warm the OS file cache and byte-code caches once
        for cmd in commands.values():
            time_command(cmd, env)
        pty_first_frame(tui_cmd, env)
        for _ in range(reps):
            for name, cmd in commands.items():
                times[name].append(time_command(cmd, env))
            times["hubmgr TUI first frame"].append(pty_first_frame(tui_cmd, env)["first_frame_s"])
            print("  " + ", ".join(f"{k}: {v[-1] * 1000:.0f} ms" for k, v in times.items()))

        probe_out = tmp / "probe.json"
        pty_cmd = [C.PYTHON, "-c", PROBE, str(probe_out)]
        probe_env = dict(env)
        _probe = _run_probe(pty_cmd, probe_env, probe_out)
        tui_modules = _probe["modules"]
        imports = {"hubmgr --help": importtime(["-m", "hubmgr", "--help"], env)}
        if hf:
            imports["hf --help"] = importtime([hf, "--help"], env)
    med = {k: C.median(v) for k, v in times.items()}
    base = med["python -c pass"]
    tui_heavy = {h: any(m == h or m.startswith(h + ".") for m in tui_modules) for h in HEAVY}
    record["commands"] = [C.display_command(c) for c in commands.values()] + [
        C.display_command(tui_cmd) + "  (in a 120x36 pty, until the first frame)",
        "python -X importtime -m hubmgr --help",
        "python -c <probe: HubmgrApp subclass that records sys.modules on Textual's Ready event>",
    ]
    record["results"] = {
        "repetitions": reps,
        "median_seconds": med,
        "runs_seconds": times,
        "over_python_startup_seconds": {k: v - base for k, v in med.items()},
        "ratios": {
            "hubmgr_help_over_hf_help": (med["hubmgr --help"] / med["hf --help"]) if "hf --help" in med else None,
            "hubmgr_help_over_python": med["hubmgr --help"] / base,
        },
        "imports": imports,
        "tui_at_first_frame": {
            "module_count": len(tui_modules),
            "heavy_imported": tui_heavy,
        },
    }
    help_torch = imports["hubmgr --help"]["heavy_imported"]["torch"]
    record["targets"] = [
        C.target(
            "`hubmgr --help` does not import torch",
            goal="torch absent",
            value="absent" if not help_torch else "imported",
            met=not help_torch,
        ),
        C.target(
            "TUI first frame does not import torch",
            goal="torch absent",
            value="absent" if not tui_heavy["torch"] else "imported",
            met=not tui_heavy["torch"],
        ),
    ]
    if "hf --help" in med:
        record["targets"].append(
            C.target(
                "`hubmgr --help` start-up vs `hf --help`",
                goal="report (no numeric target)",
                value=f"{med['hubmgr --help'] * 1000:.0f} ms vs {med['hf --help'] * 1000:.0f} ms",
                met=None,
            )
        )
    return record


def _run_probe(cmd: list[str], env: dict[str, str], out: Path) -> dict[str, Any]:
    """Open the app in a pty with a probe that dumps ``sys.modules`` at Textual's Ready event."""
    env = dict(env)
    env["TERM"] = "xterm-256color"
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execve(cmd[0], cmd, env)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
    t0 = time.perf_counter()
    try:
        while time.perf_counter() - t0 < 60:
            r, _, _ = select.select([fd], [], [], 0.05)
            if r:
                try:
                    os.read(fd, 65536)
                except OSError:
                    pass
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                pid = 0
                break
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    if not out.is_file():
        raise RuntimeError("the TUI probe did not report its first frame")
    return json.loads(out.read_text())


def main() -> int:
    parser = C.base_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    return C.run_benchmark(NAME, args, lambda rec: body(rec, args), title="Start-up time and imports")


if __name__ == "__main__":
    sys.exit(main())
