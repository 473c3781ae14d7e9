"""Time to accuracy: wall time from starting `hubmgr train` until SST-2 dev accuracy >= 0.85.

* ``hubmgr``: the CLI, ``hubmgr train text-classification --model M --data train --eval-data dev
  --eval-steps 20 --json``, run as a process; its JSON events are read as they come and timed from
  the moment the process was spawned. Once an evaluation reaches the threshold the run is stopped
  (SIGINT, a graceful cancel). The only non-default flag is ``--eval-steps`` (to look at the accuracy
  every 640 examples); the time spent in those evaluations is counted and also reported apart.
* ``baseline``: the tutorial Trainer script (every example padded to 128 tokens) with the same
  evaluation cadence, timed from its process start, capped in time.

    python benchmarks/bench_time_to_accuracy.py [--quick]
"""

from __future__ import annotations

import json
import os
import selectors
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import _sst2 as S  # noqa: E402

NAME = "time_to_accuracy"
THRESHOLD = 0.85
EVAL_STEPS = 20
T_PROCESS = time.perf_counter()


def process_age() -> float:
    """Seconds since this process was created (so arm timings include interpreter start-up)."""
    try:
        import psutil

        return time.time() - psutil.Process().create_time()
    except Exception:  # noqa: BLE001
        return 0.0


T_OFFSET = process_age()


def arm_main(args: Any) -> None:
    C.set_threads(args.threads)
    if args.arm != "baseline":
        raise SystemExit(f"unknown arm {args.arm}")
    out = S.trainer_run(
        args.model,
        Path(args.train),
        Path(args.dev),
        out_dir=Path(args.work) / "baseline",
        padding="max_length",
        eval_steps=EVAL_STEPS,
        stop_at_accuracy=THRESHOLD,
        max_seconds=args.max_seconds,
        t_process=T_PROCESS - T_OFFSET,
    )
    C.write_arm_result(args.arm_out, out)


def hubmgr_cli() -> list[str]:
    exe = Path(C.PYTHON).parent / "hubmgr"
    return [str(exe)] if exe.exists() else [C.PYTHON, "-m", "hubmgr"]


def run_hubmgr(
    model: str,
    train: Path,
    dev: Path,
    out: Path,
    env: dict[str, str],
    max_seconds: float,
    extra: list[str] | None = None,
) -> dict[str, Any]:
    cmd = [
        *hubmgr_cli(),
        "train",
        "text-classification",
        "--model",
        model,
        "--data",
        str(train),
        "--eval-data",
        str(dev),
        "--eval-steps",
        str(EVAL_STEPS),
        "--output",
        str(out),
        "--json",
        *(extra or []),
    ]
    print(f"  [hubmgr] {C.display_command(cmd)}")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=str(C.REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    events: list[tuple[float, dict[str, Any]]] = []
    reached = None
    stopped = False
    while True:
        if time.perf_counter() - t0 > max_seconds and not stopped:
            proc.send_signal(signal.SIGINT)
            stopped = True
        ready = sel.select(timeout=0.2)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                now = time.perf_counter() - t0
                events.append((now, ev))
                if ev.get("kind") == "eval" and reached is None:
                    acc = (ev.get("metrics") or {}).get("accuracy")
                    if acc is not None and acc >= THRESHOLD:
                        reached = now
                        if not stopped:
                            proc.send_signal(signal.SIGINT)
                            stopped = True
        elif proc.poll() is not None:
            break
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    stderr = proc.stderr.read().decode("utf-8", "replace")
    evals = []
    step_times: dict[int, float] = {}
    started = None
    for t, ev in events:
        kind = ev.get("kind")
        if kind == "train_started":
            started = t
        elif kind == "step":
            step_times[int(ev["step"])] = t
        elif kind == "eval":
            step = int(ev["step"])
            evals.append(
                {
                    "t_process": t,
                    "step": step,
                    "samples": step * 32,
                    "accuracy": (ev.get("metrics") or {}).get("accuracy"),
                    "eval_seconds": t - step_times[step] if step in step_times else None,
                }
            )
    if not events:
        raise RuntimeError(f"hubmgr train printed no events: {stderr[-2000:]}")
    eval_before = sum(e["eval_seconds"] or 0.0 for e in evals if reached is not None and e["t_process"] <= reached)
    return {
        "command": C.display_command(cmd),
        "reached_seconds": reached,
        "time_to_train_started": started,
        "evals": evals,
        "eval_seconds_before_reached": eval_before,
        "returncode": proc.returncode,
    }


def body(record: dict[str, Any], args: Any) -> dict[str, Any]:
    model = str(C.minilm_path())
    data = C.dataset_dir("sst2", "train.jsonl", "dev.jsonl")
    script = Path(__file__).resolve()
    cap_h = args.max_seconds or (300 if args.quick else 900)
    cap_b = args.max_seconds or (240 if args.quick else 1500)
    with tempfile.TemporaryDirectory(prefix="hubmgr-bench-tta-") as tmp_s:
        tmp = Path(tmp_s)
        env = C.isolated_env(tmp, args.threads)
        train, dev = data / "train.jsonl", data / "dev.jsonl"
        hub = run_hubmgr(model, train, dev, tmp / "hubmgr-out", env, cap_h)
        r = hub["reached_seconds"]
        print(f"  [hubmgr] reached {THRESHOLD} in {r:.1f}s" if r else f"  [hubmgr] not reached in {cap_h}s")
        whatif = {}
        for i, flags in enumerate(args.whatif or []):
            extra = shlex.split(flags)
            w = run_hubmgr(model, train, dev, tmp / f"whatif-{i}", env, cap_h, extra)
            w["reached_seconds_without_evaluations"] = (
                None if w["reached_seconds"] is None else w["reached_seconds"] - w["eval_seconds_before_reached"]
            )
            whatif[flags] = w
            print(f"  [hubmgr {flags}] reached in {w['reached_seconds']}")
        base = None
        if not args.skip_baseline:
            common = [
                "--threads",
                str(args.threads),
                "--model",
                model,
                "--train",
                str(train),
                "--dev",
                str(dev),
                "--work",
                str(tmp),
                "--max-seconds",
                str(cap_b),
            ]
            base = C.run_arm(script, "baseline", common, env=env, timeout=cap_b + 900)
    base_reached = None
    if base is not None:
        hit = [e for e in base["evals"] if e["accuracy"] is not None and e["accuracy"] >= THRESHOLD]
        base_reached = hit[0]["t_process"] if hit else None
    record["commands"] = [hub["command"]] + ([base["command"]] if base else [])
    record["results"] = {
        "threshold": THRESHOLD,
        "eval_every_steps": EVAL_STEPS,
        "hubmgr": hub,
        "whatif": whatif,
        "baseline": None
        if base is None
        else {
            "reached_seconds": base_reached,
            "evals": base["evals"],
            "cap_seconds": cap_b,
            "settings": base["settings"],
            "loop_seconds": base["loop_seconds"],
            "samples_seen": base["samples_seen"],
        },
    }
    r = hub["reached_seconds"]
    net = None if r is None else r - hub["eval_seconds_before_reached"]
    hub["reached_seconds_without_evaluations"] = net
    record["targets"] = [
        C.target(
            "time from `hubmgr train` start to dev accuracy >= 0.85",
            goal="< 60 s on 2 CPU cores",
            value=None if r is None else f"{r:.1f} s",
            met=(r is not None and r < 60.0),
            detail=(
                f"not reached within {cap_h} s"
                if r is None
                else f"{net:.1f} s without the {hub['eval_seconds_before_reached']:.1f} s spent in the evaluations"
            ),
        )
    ]
    if base is not None:
        record["notes"].append(
            "Baseline: "
            + (
                f"reached {THRESHOLD} after {base_reached:.0f} s"
                if base_reached
                else f"did not reach {THRESHOLD} in {base['samples_seen']} examples (at most one epoch,"
                f" capped at {cap_b:.0f} s; {base['loop_seconds']:.0f} s of training)"
            )
        )
    return record


def main() -> int:
    parser = C.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--max-seconds", type=float, default=None, help="cap on each arm's training time")
    parser.add_argument("--skip-baseline", action="store_true", help="time only hubmgr")
    parser.add_argument(
        "--whatif",
        action="append",
        default=None,
        metavar="FLAGS",
        help="also time `hubmgr train` with these extra flags (repeatable; not counted for the target)",
    )
    for name in ("--model", "--train", "--dev", "--work"):
        parser.add_argument(name, help=C.argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        arm_main(args)
        return 0
    return C.run_benchmark(NAME, args, lambda rec: body(rec, args), title="Time to 0.85 SST-2 dev accuracy")


if __name__ == "__main__":
    sys.exit(main())
