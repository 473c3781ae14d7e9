"""DDP: `torchrun --nproc_per_node=2 -m hubmgr train ...` and `accelerate launch` on two CPU processes (gloo).

Only rank 0 writes the adapter, talks to the run registry and prints events; the adapter loads with peft.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_train import write_reviews

REPO = Path(__file__).resolve().parents[2]


LAUNCHERS = {
    "torchrun": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "hubmgr"],
    "accelerate": [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "hubmgr",
    ],
}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_ddp_two_cpu_processes(hf_env, tiny_bert: Path, tmp_path: Path, launcher: str) -> None:
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    from hubmgr.config import get_settings
    from hubmgr.runs.store import RunStore

    work = tmp_path / "work"
    work.mkdir()
    data = write_reviews(work / "train.csv", 64)
    out = work / "ddp"
    env = dict(os.environ, ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1", COLUMNS="200")
    cmd = [
        *LAUNCHERS[launcher],
        "train",
        "text-classification",
        "--model",
        str(tiny_bert),
        "--data",
        str(data),
        "--output",
        str(out),
        "--max-steps",
        "4",
        "--batch-size",
        "4",
        "--logging-steps",
        "1",
        "--save-steps",
        "2",
        "--device",
        "cpu",
        "--json",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=540, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    kinds = [line["kind"] for line in lines]
    assert kinds.count("train_started") == 1, "only rank 0 emits events"
    assert kinds.count("result") == 1 and kinds.count("train_finished") == 1
    started = lines[kinds.index("train_started")]
    assert started["device"] == "cpu x2" and started["total_steps"] == 4
    # the logged loss is the mean over processes, not their sum (two labels, random head: about ln 2)
    first_loss = next(line["loss"] for line in lines if line["kind"] == "step" and line["loss"] is not None)
    assert abs(first_loss - math.log(2)) < 0.2, first_loss
    result = lines[-1]
    assert result["status"] == "completed" and result["global_step"] == 4

    # Written once, complete, and nothing left over from the other rank.
    assert sorted(p.name for p in work.iterdir()) == ["ddp", "train.csv"]
    meta = json.loads((out / "hubmgr_run.json").read_text())
    assert meta["status"] == "completed" and meta["world_size"] == 2
    runs = RunStore(get_settings().runs_db).list_runs()
    assert [r.id for r in runs] == [result["run_id"]] and runs[0].status == "completed"
    # rank 0 alone wrote the event log, so `hubmgr runs follow` shows the run once, to its end
    from hubmgr.runs.live import follow

    logged = list(follow(result["run_id"]))
    kinds = [e["kind"] for e in logged]
    assert kinds.count("train_started") == 1 and kinds[-1] == "train_finished" and kinds.count("train_finished") == 1
    assert logged[-1]["status"] == "completed"

    base = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    PeftModel.from_pretrained(base, out)
