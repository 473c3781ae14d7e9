"""Run the benchmarks (each a script that measures hubmgr against a baseline in the same run and writes
benchmarks/results/<name>.json), then regenerate docs/benchmarks.md and its plots.

    python benchmarks/run_all.py                      # everything (long: several hours on 2 cores, most of it
                                                      # bench_generalization.py, which runs last)
    python benchmarks/run_all.py --quick              # short versions (results/quick/), minutes
    python benchmarks/run_all.py --only startup,download
    python benchmarks/run_all.py --report-only        # only regenerate docs/benchmarks.md

The GPU check (benchmarks/gpu_check.sh) runs only where torch sees a CUDA GPU, or with --gpu.
A benchmark that fails or is skipped does not stop the others; the exit code is 1 if any failed.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import report  # noqa: E402

#: cheap first, long last
BENCHMARKS = [
    "startup",
    "download",
    "eval_speed",
    "step_overhead",
    "trial",
    "train_speed",
    "train_variants",
    "profile_train",
    "time_to_accuracy",
    "token_classification",
    "causal_lm",
    "data_efficiency",
    "generalization",
]


def cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    out = subprocess.run(
        [C.PYTHON, "-c", "import torch; print(torch.cuda.is_available())"], capture_output=True, text=True, timeout=120
    )
    return out.stdout.strip() == "True"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="run the short versions")
    p.add_argument("--only", default=None, help=f"comma-separated subset of: {', '.join(BENCHMARKS)}, gpu_check")
    p.add_argument("--skip", default=None, help="comma-separated benchmarks to leave out")
    p.add_argument("--threads", type=int, default=2, help="CPU threads per benchmark (default 2)")
    p.add_argument("--gpu", action="store_true", help="also run benchmarks/gpu_check.sh")
    p.add_argument("--report-only", action="store_true", help="only regenerate docs/benchmarks.md")
    args = p.parse_args()

    names = list(BENCHMARKS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BENCHMARKS + ["gpu_check"]]
        if unknown:
            p.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}, gpu_check")
    if args.skip:
        names = [n for n in names if n not in {s.strip() for s in args.skip.split(",")}]
    failed: list[str] = []
    if not args.report_only:
        run_gpu = "gpu_check" in names or args.gpu or (not args.only and cuda_available())
        for name in [n for n in names if n != "gpu_check"]:
            cmd = [C.PYTHON, str(C.BENCH_DIR / f"bench_{name}.py"), "--threads", str(args.threads)]
            if args.quick:
                cmd.append("--quick")
            print(f"\n=== {name}: {C.display_command(cmd)}", flush=True)
            t0 = time.perf_counter()
            rc = subprocess.call(cmd, cwd=str(C.REPO))
            print(f"=== {name}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
            if rc != 0:
                failed.append(name)
        if run_gpu:
            cmd = ["bash", str(C.BENCH_DIR / "gpu_check.sh")]
            print(f"\n=== gpu_check: {' '.join(cmd)}", flush=True)
            if subprocess.call(cmd, cwd=str(C.REPO)) != 0:
                failed.append("gpu_check")
    path = report.generate()
    print(f"\nwrote {path.relative_to(C.REPO)}")
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
