"""Download throughput and resume: hubmgr.hub.download.download_repo against
huggingface_hub.snapshot_download, both fetching the same repo (about 20 files, about 500 MB) from the
Hub double (hubmgr.testing.HubServer) on loopback, files streamed from disk.

1. Throughput: each client downloads the whole repo into an empty cache; arms alternate, repeated; the
   ratio of median throughputs is reported (target >= 1.0).
2. Kill and resume: a client is SIGKILLed when half the bytes are on its disk, then run again; the
   bytes the server sends the second run must be at most what was missing plus 5% of the repo.

    python benchmarks/bench_download.py [--quick]
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

NAME = "download"
REPO_ID = "bench/big-model"


def make_repo_files(folder: Path, *, total_bytes: int, shards: int) -> dict[str, Path]:
    """Random (incompressible) weight shards plus the small files a model repo has: ~shards+4 files."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    small = {
        "config.json": b'{"model_type": "bert", "hidden_size": 1024}\n',
        "README.md": b"---\nlicense: apache-2.0\n---\n# bench model\n",
        "tokenizer_config.json": b'{"model_max_length": 512}\n',
        "generation_config.json": b'{"do_sample": false}\n',
    }
    for name, content in small.items():
        p = folder / name
        p.write_bytes(content)
        files[name] = p
    tok = folder / "tokenizer.json"
    tok.write_bytes(os.urandom(2 * 1024 * 1024))
    files["tokenizer.json"] = tok
    shard = (total_bytes - 2 * 1024 * 1024) // shards
    for i in range(shards):
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        p = folder / name
        with open(p, "wb") as fh:
            left = shard + (i * 4099)  # uneven sizes
            while left > 0:
                n = min(left, 8 * 1024 * 1024)
                fh.write(os.urandom(n))
                left -= n
        files[name] = p
    return files


def dir_bytes(folder: Path) -> int:
    total = 0
    if not folder.exists():
        return 0
    for root, _dirs, names in os.walk(folder):
        for n in names:
            p = Path(root) / n
            if not p.is_symlink():
                try:
                    total += p.stat().st_size
                except OSError:
                    pass
    return total


# -- the child side -----------------------------------------------------------------------------------
def arm_main(args: Any) -> None:
    t0 = time.perf_counter()
    if args.arm == "hubmgr":
        from hubmgr.hub.download import download_repo

        t_import = time.perf_counter() - t0
        t1 = time.perf_counter()
        result = download_repo(REPO_ID)
        seconds = time.perf_counter() - t1
        out = {"files": len(result.files), "transferred_bytes": result.transferred_bytes, "path": str(result.path)}
    elif args.arm == "snapshot_download":
        from huggingface_hub import snapshot_download

        t_import = time.perf_counter() - t0
        t1 = time.perf_counter()
        path = snapshot_download(REPO_ID)
        seconds = time.perf_counter() - t1
        out = {"path": path}
    else:
        raise SystemExit(f"unknown arm {args.arm}")
    out.update(download_seconds=seconds, import_seconds=t_import)
    C.write_arm_result(args.arm_out, out)


# -- the parent side ----------------------------------------------------------------------------------
def client_env(tmp: Path, url: str, threads: int) -> dict[str, str]:
    env = C.isolated_env(tmp, threads, offline=False)
    env["HF_ENDPOINT"] = url
    return env


def kill_and_resume(
    script: Path, server: Any, arm: str, work: Path, total: int, threads: int, log: Any
) -> dict[str, Any]:
    """SIGKILL ``arm`` half way through, then run it again; count the bytes the server sends again."""
    home = work / f"resume-{arm}"
    shutil.rmtree(home, ignore_errors=True)
    env = client_env(home, server.url, threads)
    server.reset_counters()
    arm_out = work / f"resume-{arm}.json"
    cmd = [C.PYTHON, str(script), "--arm", arm, "--arm-out", str(arm_out)]
    proc = subprocess.Popen(cmd, env=env, cwd=str(C.REPO), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    half = total // 2
    # "Half way" is judged on the client side: bytes the client has written to disk. The server's count
    # runs ahead of it by what sits in the loopback socket buffers (megabytes per connection), which a
    # killed client never received. A client that keeps nothing on disk until a file is complete is
    # killed once the server has sent 90% instead (recorded as the trigger).
    deadline = time.monotonic() + 600
    trigger = "half the bytes on the client's disk"
    while True:
        on_disk = dir_bytes(home / "hf_home")
        if on_disk >= half:
            break
        if server.bytes_sent(REPO_ID) >= 0.9 * total:
            trigger = "90% of the bytes sent by the server (the client had less than half on disk)"
            break
        if proc.poll() is not None:
            raise RuntimeError(f"{arm} ended before half the bytes were sent: {proc.stderr.read()[-2000:]!r}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{arm} did not reach half the bytes in 10 minutes")
        time.sleep(0.003)
    os.kill(proc.pid, signal.SIGKILL)
    sent_at_kill = server.bytes_sent(REPO_ID)
    proc.wait()
    time.sleep(0.5)  # let the server notice the closed connections
    sent_first = server.bytes_sent(REPO_ID)
    on_disk = dir_bytes(home / "hf_home")
    log(f"  [{arm}] killed at {C.human_bytes(sent_at_kill)} sent by the server, {C.human_bytes(on_disk)} on disk")
    server.reset_counters()
    res = C.run_child(cmd, env=env, timeout=900)
    if res["returncode"] != 0:
        raise RuntimeError(f"{arm} resume failed: {res['stderr_tail'][-2000:]}")
    resent = server.bytes_sent(REPO_ID)
    missing = total - on_disk
    limit = missing + 0.05 * total
    log(f"  [{arm}] resumed: {C.human_bytes(resent)} sent again (limit {C.human_bytes(limit)})")
    shutil.rmtree(home, ignore_errors=True)
    return {
        "sent_at_kill_bytes": sent_at_kill,
        "sent_by_first_run_bytes": sent_first,
        "bytes_on_disk_after_kill": on_disk,
        "resent_bytes": resent,
        "resent_fraction_of_repo": resent / total,
        "missing_after_kill_bytes": missing,
        "kill_trigger": trigger,
        "limit_bytes": limit,
        "within_limit": resent <= limit,
        "command": C.display_command(cmd[:2]),
    }


def body(record: dict[str, Any], args: Any) -> dict[str, Any]:
    from hubmgr.testing import HubServer

    script = Path(__file__).resolve()
    total_target = (100 if args.quick else 500) * 1024 * 1024
    shards = 6 if args.quick else 15
    reps = 1 if args.quick else 3
    log = print
    with tempfile.TemporaryDirectory(prefix="hubmgr-bench-dl-") as tmp_s:
        work = Path(tmp_s)
        files = make_repo_files(work / "source", total_bytes=total_target, shards=shards)
        total = sum(p.stat().st_size for p in files.values())
        log(f"download: repo of {len(files)} files, {C.human_bytes(total)}")
        with HubServer() as server:
            server.add_repo(REPO_ID, files=files, library_name="transformers")
            arms = ["hubmgr", "snapshot_download"]
            runs: dict[str, list[dict[str, Any]]] = {a: [] for a in arms}
            for rep in range(reps):
                order = arms if rep % 2 == 0 else list(reversed(arms))
                for arm in order:
                    home = work / f"home-{arm}"
                    shutil.rmtree(home, ignore_errors=True)
                    server.reset_counters()
                    data = C.run_arm(
                        script, arm, [], env=client_env(home, server.url, args.threads), timeout=900, log=log
                    )
                    data["server_bytes_sent"] = server.bytes_sent(REPO_ID)
                    data["throughput_bytes_per_s"] = total / data["download_seconds"]
                    runs[arm].append(data)
                    shutil.rmtree(home, ignore_errors=True)
            med = {a: C.median(r["throughput_bytes_per_s"] for r in runs[a]) for a in arms}
            ratio = med["hubmgr"] / med["snapshot_download"]
            record["commands"] += [runs[a][0]["command"] for a in arms]
            resume = {a: kill_and_resume(script, server, a, work, total, args.threads, log) for a in arms}
    record["results"] = {
        "repo": {"files": len(files), "bytes": total},
        "repetitions": reps,
        "throughput": {
            a: {
                "median_bytes_per_s": med[a],
                "median_MiB_per_s": med[a] / 2**20,
                "runs_bytes_per_s": [r["throughput_bytes_per_s"] for r in runs[a]],
                "runs_download_seconds": [r["download_seconds"] for r in runs[a]],
                "peak_rss_bytes": max(r["peak_rss_bytes"] or 0 for r in runs[a]),
                "server_bytes_sent": [r["server_bytes_sent"] for r in runs[a]],
            }
            for a in arms
        },
        "throughput_ratio_hubmgr_over_snapshot_download": ratio,
        "resume": resume,
    }
    record["targets"] = [
        C.target(
            "download throughput ratio", goal=">= 1.0 x snapshot_download", value=round(ratio, 3), met=ratio >= 1.0
        ),
        C.target(
            "bytes sent again after a kill at half way",
            goal="<= bytes missing at the kill (about half) + 5% of the repo",
            value=f"{resume['hubmgr']['resent_fraction_of_repo']:.3f} of the repo",
            met=bool(resume["hubmgr"]["within_limit"]),
        ),
    ]
    record["notes"].append(
        "Server and client share the machine's cores (loopback); the server is the Python Hub double, so"
        " absolute MiB/s are bounded by it for both clients alike."
    )
    return record


def main() -> int:
    parser = C.base_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    if args.arm:
        arm_main(args)
        return 0
    return C.run_benchmark(NAME, args, lambda rec: body(rec, args), title="Download from the Hub double")


if __name__ == "__main__":
    sys.exit(main())
