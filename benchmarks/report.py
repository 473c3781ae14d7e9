"""Regenerate docs/benchmarks.md (tables) and docs/img/bench_*.png (plots) from benchmarks/results/*.json.

For each benchmark the full run's result (``results/<name>.json``) is used when it exists, else the
quick run's (``results/quick/<name>.json``), labelled as such. Only measured numbers are written.

    python benchmarks/report.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

DOCS = C.REPO / "docs"
IMG = DOCS / "img"
ORDER = [
    "train_speed",
    "train_variants",
    "time_to_accuracy",
    "data_efficiency",
    "token_classification",
    "causal_lm",
    "download",
    "startup",
    "eval_speed",
    "step_overhead",
    "trial",
    "profile_train",
    "gpu_check",
    "generalization",
]


# ---------------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------------
def load(name: str, results: Path = C.RESULTS_DIR) -> dict[str, Any] | None:
    for path in (results / f"{name}.json", results / "quick" / f"{name}.json"):
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except ValueError:
                continue
            data["_path"] = str(path.relative_to(C.REPO)) if path.is_relative_to(C.REPO) else str(path)
            return data
    return None


# ---------------------------------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------------------------------
def f(x: Any, digits: int = 1, pct: bool = False) -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if pct:
        return f"{x * 100:.{digits}f}%"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:,.{digits}f}"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out) + "\n"


def met_mark(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "-"}[met]


def provenance(r: dict[str, Any]) -> str:
    m = r.get("machine", {})
    quick = " **quick run** (a short version: see the notes)." if r.get("quick") else ""
    load = m.get("load_average_1m_5m_15m")
    load_end = m.get("load_average_end")
    gpu = m.get("gpu")
    gpu_s = ", GPU: " + ", ".join(g["name"] for g in gpu) if gpu else ""
    return (
        f"_Measured {r.get('started', '?')} on {m.get('cpu_model', '?')}, {m.get('usable_cpus', '?')} CPUs usable,"
        f" {m.get('threads_used', '?')} threads{gpu_s}; load average at start {load}, at end {load_end};"
        f" hubmgr {r.get('versions', {}).get('hubmgr_git')}, torch {r.get('versions', {}).get('torch')},"
        f" transformers {r.get('versions', {}).get('transformers')}; {r.get('seconds', 0):.0f} s;"
        f" file `{r.get('_path')}`._{quick}\n"
    )


#: The commit that made bfloat16 (and, later, eager attention) the CPU default where the CPU computes in
#: bfloat16 natively; training results measured on an older commit say so.
CPU_DEFAULTS_COMMIT = "d7138ba"
TRAINING = {
    "train_speed",
    "train_variants",
    "time_to_accuracy",
    "data_efficiency",
    "token_classification",
    "causal_lm",
    "profile_train",
    "generalization",
}


def predates_cpu_defaults(r: dict[str, Any]) -> bool:
    """Whether a result was measured on a commit without the bfloat16 CPU default (unknown: False)."""
    import subprocess

    commit = str(r.get("versions", {}).get("hubmgr_git") or "").split("-")[0]
    if not commit:
        return False
    try:
        out = subprocess.run(
            ["git", "merge-base", "--is-ancestor", CPU_DEFAULTS_COMMIT, commit],
            cwd=str(C.REPO),
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 1  # 0: it has the change; 1: it predates it; other: unknown commit


def commands(r: dict[str, Any]) -> str:
    cmds = r.get("commands") or []
    if not cmds:
        return ""
    return "Commands:\n\n```\n" + "\n".join([r.get("invocation", "")] + cmds) + "\n```\n"


def status_line(r: dict[str, Any]) -> str | None:
    if r.get("status") == "skipped":
        return f"Skipped: {r.get('reason')}\n"
    if r.get("status") == "error":
        return f"The last run failed: `{r.get('reason')}`\n"
    return None


def notes(r: dict[str, Any]) -> str:
    n = [x for x in r.get("notes") or [] if x]
    return "".join(f"- {x}\n" for x in n) + ("\n" if n else "")


# ---------------------------------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------------------------------
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "font.size": 9, "axes.grid": True, "grid.alpha": 0.3})
    return plt


def save_fig(fig: Any, name: str) -> str:
    IMG.mkdir(parents=True, exist_ok=True)
    path = IMG / f"bench_{name}.png"
    fig.tight_layout()
    fig.savefig(path)
    _plt().close(fig)
    return f"![{name}](img/{path.name})\n"


def bar_plot(
    name: str, labels: list[str], values: list[float], *, title: str, xlabel: str, colors: list[str] | None = None
) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(labels) + 1.1))
    bars = ax.barh(labels, values, color=colors or ["#4c72b0"] * len(labels))
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    for b, v in zip(bars, values):
        ax.text(b.get_width(), b.get_y() + b.get_height() / 2, f" {v:,.1f}", va="center", fontsize=8)
    ax.set_xlim(0, max(values) * 1.18 if values else 1)
    return save_fig(fig, name)


# ---------------------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------------------
def sec_train_speed(r: dict[str, Any]) -> str:
    res = r["results"]
    a = res["arms"]
    b, h = a["baseline"], a["hubmgr"]
    peak = res["matmul_peak"]["peak_flops"]
    bf16_peak = res["matmul_peak"].get("bfloat16_peak_flops")
    against = res.get("hubmgr_mfu_against", "float32")
    rows = [
        [
            "tutorial Trainer + peft (pad to 128)",
            f(b["samples_per_second"]),
            f(b["loop_seconds"], 0),
            f(b["dev_accuracy"], 4),
            C.human_bytes(b["peak_rss_bytes"]),
            f(b["mfu"], 1, pct=True) + f" ({f(b['hardware_flops_utilisation_padded'], 1, pct=True)} counting padding)",
        ],
        [
            "hubmgr `train()` defaults",
            f(h["samples_per_second"]),
            f(h["loop_seconds"], 0),
            f(h["dev_accuracy"], 4),
            C.human_bytes(h["peak_rss_bytes"]),
            f(h["mfu"], 1, pct=True) + (f" (of the {against} peak)" if against != "float32" else ""),
        ],
    ]
    s = table(["arm", "samples/s", "loop s", "dev accuracy", "peak RSS", "MFU"], rows)
    s += (
        f"\nSpeed-up: **{res['speedup_samples_per_second']:.2f}x** samples/s. {res['train_examples']:,} training"
        f" examples ({res['token_stats']['tokens']:,} real tokens, mean {res['token_stats']['mean_len']:.1f} per"
        f" example), {res.get('dev_examples') or '?'} dev examples. hubmgr trained in"
        f" {res.get('hubmgr_precision') or 'float32'} precision (its `--dtype auto` on this CPU), the baseline in float32."
        f" Matmul peaks measured in the same run: float32 {peak / 1e9:.1f} GFLOP/s"
        + (f", bfloat16 {bf16_peak / 1e9:.1f} GFLOP/s" if bf16_peak else "")
        + f" (best of {len(res['matmul_peak']['runs'])} measurements; shapes"
        f" {', '.join('x'.join(map(str, (x['m'], x['k'], x['n']))) for x in res['matmul_peak']['runs'][0]['by_shape'])})."
        " Each arm's MFU is against the peak of the precision it trained in.\n\n"
    )
    eff = h.get("effective_config") or {}
    if eff:
        keys = (
            "batch_size",
            "learning_rate",
            "epochs",
            "lora_r",
            "lora_alpha",
            "lora_dropout",
            "target_modules",
            "keep_model_dropout",
            "dtype",
            "max_length",
            "warmup",
            "lr_scheduler",
        )
        s += "hubmgr defaults in effect: " + ", ".join(f"`{k}={eff[k]}`" for k in keys if k in eff) + ".\n\n"
    s += bar_plot(
        "train_speed",
        ["tutorial (pad 128)", "hubmgr defaults"],
        [b["samples_per_second"], h["samples_per_second"]],
        title="MiniLM + LoRA on SST-2, CPU",
        xlabel="training samples/s",
        colors=["#999999", "#4c72b0"],
    )
    return s


def sec_time_to_accuracy(r: dict[str, Any]) -> str:
    res = r["results"]
    h, b = res["hubmgr"], res.get("baseline")
    rows = [
        [
            "hubmgr train (CLI, defaults + --eval-steps)",
            f(h["reached_seconds"]) if h["reached_seconds"] else "not reached",
            f(h.get("time_to_train_started")),
            f(h.get("eval_seconds_before_reached")),
            f(h.get("reached_seconds_without_evaluations")),
        ]
    ]
    for flags, w in (res.get("whatif") or {}).items():
        rows.append(
            [
                f"what-if: hubmgr train ... `{flags}` (not the defaults)",
                f(w["reached_seconds"]) if w["reached_seconds"] else "not reached",
                f(w.get("time_to_train_started")),
                f(w.get("eval_seconds_before_reached")),
                f(w.get("reached_seconds_without_evaluations")),
            ]
        )
    if b:
        rows.append(
            [
                "tutorial Trainer (pad to 128)",
                f(b["reached_seconds"])
                if b["reached_seconds"]
                else f"not reached in {b['samples_seen']:,} examples (one epoch, best {max((e['accuracy'] or 0) for e in b['evals']):.3f})",
                "-",
                "-",
                "-",
            ]
        )
    s = table(
        [
            "arm",
            f"seconds to dev accuracy >= {res['threshold']}",
            "seconds to first step",
            "of which evaluating",
            "without the evaluations",
        ],
        rows,
    )
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    arms = [("hubmgr defaults", h, "#4c72b0")] + [
        (f"hubmgr {k}", w, c) for (k, w), c in zip((res.get("whatif") or {}).items(), ("#55a868", "#8172b2", "#937860"))
    ]
    for label, arm, color in arms + [("tutorial baseline", b, "#999999")]:
        if arm and arm.get("evals"):
            ax.plot(
                [e["t_process"] for e in arm["evals"]],
                [e["accuracy"] for e in arm["evals"]],
                "o-",
                label=label,
                color=color,
                markersize=3,
            )
    ax.axhline(res["threshold"], color="#c44e52", ls="--", lw=1, label=f"{res['threshold']}")
    ax.axvline(60, color="#dd8452", ls=":", lw=1, label="60 s target")
    ax.set_xlabel("seconds since the command started")
    ax.set_ylabel("SST-2 dev accuracy")
    ax.set_title(f"Time to accuracy (evaluation every {res['eval_every_steps']} steps)")
    ax.set_xlim(left=0)
    ax.legend(loc="lower right", fontsize=8)
    return s + "\n" + save_fig(fig, "time_to_accuracy")


def sec_data_efficiency(r: dict[str, Any]) -> str:
    res = r["results"]
    rows = []
    xs, ya, yb = [], [], []
    for row in res["rows"]:
        p, q = row.get("pretrained_lora", {}), row.get("random_init_full", {})
        rows.append(
            [
                f(row["examples"]),
                f"{row['epochs']} / {row.get('random_init_epochs', row['epochs'])}",
                f(p.get("dev_accuracy"), 4) if "dev_accuracy" in p else "error",
                f(q.get("dev_accuracy"), 4) if "dev_accuracy" in q else "error",
                f(p.get("loop_seconds"), 0),
                f(q.get("loop_seconds"), 0),
            ]
        )
        if "dev_accuracy" in p and "dev_accuracy" in q:
            xs.append(row["examples"])
            ya.append(p["dev_accuracy"])
            yb.append(q["dev_accuracy"])
    s = table(
        [
            "training examples",
            "epochs (pre-trained / random)",
            "pre-trained + LoRA (hubmgr)",
            "random init, full training (best epoch)",
            "hubmgr loop s",
            "random-init loop s",
        ],
        rows,
    )
    s += f"\nRandom-init recipe: {res['random_init_recipe']}. Pre-trained recipe: {res['pretrained_recipe']}. Dev examples: {res['dev_examples']}. Seeds: {res['seeds']}.\n\n"
    per_epoch = [
        (row["examples"], row["random_init_full"].get("per_epoch_dev_accuracy"))
        for row in res["rows"]
        if row.get("random_init_full", {}).get("per_epoch_dev_accuracy")
    ]
    if per_epoch:
        s += (
            "Random init, dev accuracy after each epoch (the table shows the best): "
            + "; ".join(f"{f(n)}: " + ", ".join(f"{a:.3f}" for a in accs if a is not None) for n, accs in per_epoch)
            + ". Always answering the majority class scores 0.509 on this dev set.\n\n"
        )
    if xs:
        plt = _plt()
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
        ax.plot(xs, ya, "o-", label="pre-trained all-MiniLM-L6-v2 + LoRA (hubmgr)", color="#4c72b0")
        ax.plot(xs, yb, "s-", label="same architecture, random init, full training (best epoch)", color="#999999")
        ax.axhline(0.5, color="#bbbbbb", lw=1, ls=":", label="chance (0.5)")
        ax.set_ylim(min(0.45, *ya, *yb) - 0.01, min(1.0, max(*ya, *yb) + 0.05))
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs])
        ax.set_xlabel("SST-2 training examples (log scale)")
        ax.set_ylabel("dev accuracy")
        ax.set_title("Data efficiency of pre-training")
        ax.legend(fontsize=8, loc="lower right")
        s += save_fig(fig, "data_efficiency")
    return s


def sec_token_classification(r: dict[str, Any]) -> str:
    res = r["results"]
    a = res["arms"]
    rows = [
        [
            name,
            f(v["test_f1"], 4),
            f(v["samples_per_second"]),
            f(v["loop_seconds"], 0),
            C.human_bytes(v["peak_rss_bytes"]),
        ]
        for name, v in (
            ("plain Trainer + peft (course recipe, dynamic padding)", a["baseline"]),
            ("hubmgr `train()` defaults", a["hubmgr"]),
        )
    ]
    s = table(["arm", "entity F1 (test)", "sentences/s", "loop s", "peak RSS"], rows)
    return s + (
        f"\n{res['train_sentences']:,} training sentences x {res['epochs']} epochs, {res['test_sentences']:,}"
        f" test sentences. Speed ratio: **{res['speedup_samples_per_second']:.2f}x**.\n"
    )


def sec_causal_lm(r: dict[str, Any]) -> str:
    res = r["results"]
    a = res["arms"]
    rows = [
        [
            name,
            f(v["perplexity_before"], 2),
            f(v["perplexity_after"], 2),
            f(v["tokens_per_second"]),
            f(v["loop_seconds"], 0),
            f(v["train_tokens"]),
            C.human_bytes(v["peak_rss_bytes"]),
        ]
        for name, v in [
            ("plain Trainer + peft (run_clm recipe)", a["baseline"]),
            ("hubmgr `train()` defaults + `evaluate()`", a["hubmgr"]),
        ]
        + (
            [("what-if: hubmgr with `batch_size=8, grad_accum=4` (not the defaults)", a["hubmgr_batch8_accum4"])]
            if "hubmgr_batch8_accum4" in a
            else []
        )
    ]
    s = table(
        ["arm", "held-out perplexity before", "after", "train tokens/s", "loop s", "train tokens", "peak RSS"], rows
    )
    sp = res["split"]
    return s + (
        f"\n{res['model']}. Split at character {sp['split_at_char']:,}: trained on the first"
        f" {sp['train_chars_used']:,} of {sp['train_chars_total']:,} training characters, scored on the first"
        f" {sp['heldout_chars_used']:,} of {sp['heldout_chars_total']:,} held-out characters. Tokens/s ratio:"
        f" **{res['tokens_per_second_ratio']:.2f}x**. The arms tokenize the lines slightly differently (hubmgr"
        f" encodes line by line, the baseline encodes each line and concatenates), so compare each arm's"
        f" before/after.\n"
    )


def sec_download(r: dict[str, Any]) -> str:
    res = r["results"]
    t = res["throughput"]
    rows = [
        [
            name,
            f(v["median_MiB_per_s"]),
            ", ".join(f"{x / 2**20:.0f}" for x in v["runs_bytes_per_s"]),
            C.human_bytes(v["peak_rss_bytes"]),
        ]
        for name, v in (
            ("hubmgr download_repo", t["hubmgr"]),
            ("huggingface_hub snapshot_download", t["snapshot_download"]),
        )
    ]
    s = table(["client", "median MiB/s", "runs (MiB/s)", "peak RSS"], rows)
    s += (
        f"\nRepo: {res['repo']['files']} files, {C.human_bytes(res['repo']['bytes'])}; {res['repetitions']} runs per client,"
        f" alternating. Throughput ratio: **{res['throughput_ratio_hubmgr_over_snapshot_download']:.2f}x**.\n\n"
    )
    rows = []
    for name, v in res["resume"].items():
        rows.append(
            [
                name,
                C.human_bytes(v["sent_at_kill_bytes"]),
                C.human_bytes(v["bytes_on_disk_after_kill"]),
                C.human_bytes(v["resent_bytes"]),
                C.human_bytes(v["limit_bytes"]),
                "yes" if v["within_limit"] else "**no**",
            ]
        )
    s += "Kill at half way (SIGKILL once half the bytes are on the client's disk), then run again:\n\n"
    s += table(
        [
            "client",
            "server had sent at the kill",
            "on disk after the kill",
            "sent again by the rerun",
            "limit (missing + 5%)",
            "within",
        ],
        rows,
    )
    s += (
        "\nThe server's count runs ahead of the client's disk by what sits in loopback socket buffers when the"
        " client dies; those bytes never reached the client, so the limit is taken from what was on disk.\n"
    )
    return s


def sec_startup(r: dict[str, Any]) -> str:
    res = r["results"]
    med = res["median_seconds"]
    rows = [[k, f(v * 1000, 0), f(res["over_python_startup_seconds"][k] * 1000, 0)] for k, v in med.items()]
    s = table(["command", "median ms", "ms over `python -c pass`"], rows)
    imp = res["imports"]
    rows = []
    for name, v in imp.items():
        if not v:
            continue
        heavy = [k for k, x in v["heavy_imported"].items() if x]
        rows.append(
            [
                f"`{name}`",
                v["module_count"],
                "no" if not v["heavy_imported"]["torch"] else "**yes**",
                ", ".join(heavy) or "none",
            ]
        )
    tui = res["tui_at_first_frame"]
    heavy = [k for k, x in tui["heavy_imported"].items() if x]
    rows.append(
        [
            "TUI at its first frame",
            tui["module_count"],
            "no" if not tui["heavy_imported"]["torch"] else "**yes**",
            ", ".join(heavy) or "none",
        ]
    )
    s += "\n" + table(["process", "modules imported", "torch imported", "heavy libraries imported"], rows)
    s += (
        f"\nMedian of {res['repetitions']} runs each, interleaved. The TUI is timed in a 120x36 pseudo-terminal from"
        " spawn until its first frame (the navigation bar) is written.\n\n"
    )
    s += bar_plot(
        "startup", list(med), [v * 1000 for v in med.values()], title="Start-up (median)", xlabel="milliseconds"
    )
    return s


def sec_eval_speed(r: dict[str, Any]) -> str:
    res = r["results"]
    h, p = res["hubmgr_eval"], res["pipeline"]
    rows = [
        [
            "`hubmgr eval` (adapter row)",
            f(h["adapter_samples_per_second"]),
            f(h["adapter_accuracy"], 4),
            f(h["process_wall_s"]),
            C.human_bytes(h["peak_rss_bytes"]),
        ],
        ["`hubmgr eval` (base row, same process)", f(h["base_samples_per_second"]), f(h["base_accuracy"], 4), "", ""],
        [
            "pipeline(), default batch size (1)",
            f(p["batch_size_1"]["samples_per_second"]),
            f(p["batch_size_1"]["accuracy"], 4),
            f(p["process_wall_s"]),
            C.human_bytes(p["peak_rss_bytes"]),
        ],
        [
            "pipeline(batch_size=32)",
            f(p["batch_size_32"]["samples_per_second"]),
            f(p["batch_size_32"]["accuracy"], 4),
            "(same process)",
            "",
        ],
    ]
    s = table(["arm", "samples/s (inference loop)", "accuracy", "process wall s", "peak RSS"], rows)
    return s + (
        f"\n{res['dev_examples']} dev examples; adapter trained by hubmgr on {res['adapter_trained_on']:,} examples."
        f" Ratio: **{res['ratio_vs_pipeline_batch_1']:.2f}x** pipeline's default, **{res['ratio_vs_pipeline_batch_32']:.2f}x**"
        " pipeline(batch_size=32). `hubmgr eval` runs two passes (base and adapter) in its process time;"
        " pipeline() runs on the adapter merged into the base.\n"
    )


def sec_step_overhead(r: dict[str, Any]) -> str:
    res = r["results"]
    rows = [
        [i + 1, f(x["plain"]["samples_per_second"]), f(x["hubmgr"]["samples_per_second"]), f(x["ratio"], 3)]
        for i, x in enumerate(res["rounds"])
    ]
    s = table(["round", "plain PyTorch + peft loop, samples/s", "`hubmgr.train`, samples/s", "ratio"], rows)
    s += (
        f"\n{res['model']}, {res['examples']:,} synthetic examples of exactly {res['tokens_per_example']} tokens,"
        f" batch {res['batch_size']}, {res['dtype']}, {res['threads']} thread, one epoch per arm and round; the arms"
        f" alternate in one process. Median ratio **{res['ratio']:.3f}**: {res['extra_ms_per_step']:.2f} ms more"
        " a step than the plain loop (forward, backward, `AdamW.step()`, `zero_grad`, nothing else: no gradient"
        " clipping, no logging, no checkpoints).\n\n"
    )
    prof = res.get("profile") or {}
    if prof.get("parts"):
        s += (
            f"Where a `hubmgr.train` step goes (cProfile of one more run, {prof['steps']} steps,"
            f" {f(prof['loop_seconds'], 2)} s of loop under the profiler):\n\n"
        )
        s += table(
            ["part", "ms a step", "share of the loop"],
            [[p["part"], f(p["ms_per_step"], 2), f(p["share_of_loop"], 1, pct=True)] for p in prof["parts"]],
        )
    return s


def sec_trial(r: dict[str, Any]) -> str:
    cases = r["results"].get("cases", {})
    rows = []
    for key, x in cases.items():
        if x.get("status") != "ok":
            rows.append([key, x.get("status"), "", "", "", "", "", ""])
            continue
        rows.append(
            [
                key,
                f"{x['n_train']:,} / batch {x['batch_size']} / {x['steps']:,} steps",
                f(x["trial_wall_s"]),
                f(x["predicted_seconds"]),
                f(x["real_wall_s"]),
                f(x["time_error"], 1, pct=True),
                f"{C.human_bytes(x['predicted_peak_bytes'])} / {C.human_bytes(x['real_peak_rss_bytes'])}",
                f(x["memory_error"], 1, pct=True),
            ]
        )
    s = table(
        [
            "case",
            "examples / batch / steps",
            "trial s",
            "predicted s",
            "real s",
            "time error",
            "peak predicted / real",
            "memory error",
        ],
        rows,
    )
    s += (
        "\n`hubmgr train ... --epochs 1 --dry-run --json` (the trial: a few real steps and two evaluation passes,"
        " nothing written), then the same command without `--dry-run`; peak memory is each process's own"
        " (`wait4`). One epoch, so the prediction is one number; under `--epochs auto` the trial gives the"
        " range the budget may stop in.\n\n"
    )
    return s


def sec_profile(r: dict[str, Any]) -> str:
    res = r["results"]
    rows = [
        [
            k,
            f(v["samples_per_second"]),
            f(v["samples_per_cpu_second"]),
            f(v["x_tutorial"], 2),
            f(v.get("x_first", v.get("x_hubmgr_now")), 2),
        ]
        for k, v in res["variants"].items()
    ]
    s = table(
        [
            "training step settings (interleaved in one process)",
            "samples/s",
            "samples per CPU-second",
            "x tutorial",
            "x first row",
        ],
        rows,
    )
    s += f"\n{res['samples_per_variant']} samples per variant, length-grouped batches, LoRA r=8 on query/value.\n\n"
    for key, title in (
        ("dropout_on", "float32, model dropout on, LoRA q,v"),
        ("dropout_off", "float32, model dropout off, LoRA q,v"),
        ("bf16_sdpa", "bfloat16 autocast, dropout off, LoRA on every linear layer, fused (SDPA) attention"),
        (
            "bf16_defaults",
            "hubmgr's CPU defaults here: bfloat16 autocast, dropout off, LoRA on every linear layer, eager attention",
        ),
    ):
        o = res["ops"].get(key)
        if not o:
            continue
        s += f"Top operators, {title}, {o['steps']} steps ({o['total_self_cpu_ms'] / 1000:.1f} CPU-s):\n\n"
        s += (
            table(
                ["op", "self CPU share", "calls"],
                [[f"`{x['op']}`", f(x["share"], 1, pct=True), x["calls"]] for x in o["top_ops"][:10]],
            )
            + "\n"
        )
    eo = res.get("eval_order")
    if eo:
        med = eo["median_seconds"]
        s += (
            f"`Trainer.evaluate` on the {eo['examples']} SST-2 dev examples (batch {eo['batch_size']}, dynamic padding),"
            f" median of {len(next(iter(eo['seconds'].values())))} alternated runs: "
            + ", ".join(f"{k}: {v:.2f} s" for k, v in med.items())
            + (
                f" ({med['file order'] / med['sorted by length']:.2f}x faster sorted).\n\n"
                if med.get("sorted by length")
                else ".\n\n"
            )
        )
    s += bar_plot(
        "profile_train",
        list(res["variants"]),
        [v["samples_per_second"] for v in res["variants"].values()],
        title="Training step throughput by setting",
        xlabel="samples/s",
    )
    return s


def sec_train_variants(r: dict[str, Any]) -> str:
    res = r["results"]
    rows = []
    for name, v in res["variants"].items():
        flags = ", ".join(f"`{k}={v2}`" for k, v2 in v["overrides"].items()) or "(none)"
        if "error" in v:
            rows.append([name, flags, "error", "", "", ""])
            continue
        rows.append(
            [
                name,
                flags,
                f(v["dev_accuracy"], 4),
                f(v["samples_per_second"]),
                f(v["loop_seconds"], 0),
                f(v["trainable_params"]),
            ]
        )
    s = table(
        ["variant", "TrainConfig fields set", "dev accuracy (1 epoch)", "samples/s", "loop s", "trainable params"], rows
    )
    return s + f"\n{res['train_examples']:,} training examples, {res['dev_examples']} dev examples, one epoch each.\n"


def sec_gpu(r: dict[str, Any]) -> str:
    p = r.get("parts", {})
    env = p.get("environment", {})
    gpu = (env.get("gpu") or {}).get("name", env.get("device"))
    s = f"Card: **{gpu}**, torch {env.get('versions', {}).get('torch')}, mode {r.get('mode')}, {r.get('seconds')} s in all.\n\n"
    mm = p.get("matmul_peak", {})
    if mm.get("status") == "ok":
        s += (
            f"bf16 matmul peak: {mm['peak_tflops']:.1f} TFLOP/s"
            + (f"; TF32: {mm['tf32']['peak_tflops']:.1f} TFLOP/s" if "tf32" in mm else "")
            + ".\n\n"
        )
    rows = []
    for name in ("raw_lora_minilm", "raw_lora_llama", "hubmgr_text_classification", "hubmgr_causal_lm", "hubmgr_qlora"):
        x = p.get(name, {})
        if x.get("status") != "ok":
            rows.append([name, x.get("status", "-"), "", "", "", (x.get("error") or x.get("reason") or "")[:120]])
            continue
        rows.append(
            [
                name,
                x.get("shape", ""),
                f(x.get("tokens_per_second"), 0),
                f(x.get("mfu"), 1, pct=True) if x.get("mfu") is not None else "-",
                C.human_bytes(x.get("peak_memory_bytes")) if x.get("peak_memory_bytes") else "-",
                f"eval acc {x['eval_accuracy']:.3f}" if x.get("eval_accuracy") is not None else "",
            ]
        )
    s += table(["part", "model", "tokens/s", "MFU", "peak GPU memory", "note"], rows)
    if r.get("notes"):
        s += "\n" + "".join(f"- {n}\n" for n in r["notes"])
    return s


GEN_METRIC_NAMES = {
    "accuracy": "accuracy",
    "macro_f1": "macro-F1",
    "micro_f1": "micro-F1",
    "f1": "entity F1",
    "perplexity": "perplexity",
}


def _gen_value(v: Any, metric: str) -> str:
    return f(v, 2 if metric == "perplexity" else 4)


def sec_generalization(r: dict[str, Any]) -> str:
    res = r["results"]
    ds = res.get("datasets") or {}
    rows = []
    for key, e in ds.items():
        s = e.get("summary") or {}
        metric = s.get("metric") or e.get("metric") or "?"
        name = f"{e.get('report_split', '')} {GEN_METRIC_NAMES.get(metric, metric)}".strip()
        if metric == "perplexity":
            name += " (lower is better)"
        if e.get("status") == "skipped":
            rows.append([e.get("title", key), name, f"skipped: {e.get('reason')}", "", "", "", "", "", "", ""])
            continue
        hub = _gen_value(s.get("hubmgr"), metric)
        base = _gen_value(s.get("baseline"), metric)
        for m, vals in (s.get("also") or {}).items():
            name += f" ({GEN_METRIC_NAMES.get(m, m)})"
            hub += f" ({_gen_value(vals.get('hubmgr'), m)})"
            base += f" ({_gen_value(vals.get('baseline'), m)})"
        if s.get("hubmgr_error"):
            hub = f"error: `{str(s['hubmgr_error']).splitlines()[0][:160]}`"
        elif e.get("status") == "error" and s.get("hubmgr") is None:
            hub = f"error: `{str(e.get('reason') or '?').splitlines()[0][:160]}`"
        if s.get("baseline_error"):
            base = f"error: `{str(s['baseline_error']).splitlines()[0][:160]}`"
        elif e.get("baseline_skipped"):
            base = f"not run ({e['baseline_skipped']})"
        elif e.get("baseline_from"):
            base += f" (in {f((e['baseline_from'] or {}).get('budget_seconds'), 0)} s, earlier run)"
        t99 = s.get("time_to_99_seconds")
        rows.append(
            [
                e.get("title", key) + (" (quick)" if e.get("quick") else ""),
                name,
                hub,
                base,
                f(s.get("hubmgr_wall_seconds"), 0),
                f(s.get("epochs"), 1),
                s.get("stop_reason") or "-",
                f(s.get("samples_per_second")),
                f(t99, 0)
                + (f" ({s.get('train_main_metric')})" if t99 is not None and s.get("train_main_metric") else ""),
                f(s.get("wall_over_time_to_99"), 2),
            ]
        )
    out = table(
        [
            "data set",
            "metric",
            "hubmgr defaults",
            "tutorial baseline, same wall time",
            "hubmgr wall s",
            "epochs chosen",
            "why it stopped",
            "samples/s",
            "s to 99% of final",
            "wall / that",
        ],
        rows,
    )
    out += (
        "\nSamples/s is hubmgr's `train_samples_per_second` (training examples; for Tiny Shakespeare, blocks of"
        " up to 128 tokens).\n"
    )
    out += (
        "\nhubmgr: `hubmgr.train(TrainConfig(task, model, data, eval_data))` with every training knob at its default"
        ' (the tool picks the epochs), then `hubmgr.evaluate(None, [adapter], task=None, data=<split>)`. "Wall s"'
        ' is the `hubmgr.train` call (loading, tokenising, training, evaluations); "s to 99% of final" is the'
        " time from that call's start until an evaluation on the eval split first reached 99% of the run's final"
        ' value of its main metric (named in brackets; for perplexity: within 1% above it); "wall / that" is'
        f" the goal of at most {1.3}. Baseline: a plain `Trainer` + peft script planned for"
        f" {res.get('baseline_epochs_planned')} epochs and stopped once the hubmgr run's wall time had passed"
        " (counted from its own start), scored on the same split: text classification with the tutorial"
        " settings (LoRA r=8, alpha=16, dropout 0.1 on query/value, lr 2e-4, batch 16, padding to 128 tokens,"
        " linear schedule, evaluation each epoch; GoEmotions as `multi_label_classification` with a 0.5"
        " threshold), CoNLL-2003 with section 4's recipe (batch 32, lr 1e-3, dynamic padding), Tiny Shakespeare"
        " with section 5's run_clm recipe (batch 8, lr 2e-4, blocks of 128, 5% of the training text for its"
        " evaluations).\n\n"
    )
    details = []
    for key, e in ds.items():
        if e.get("status") == "skipped":
            continue
        h, b, s = e.get("hubmgr") or {}, e.get("baseline") or {}, e.get("summary") or {}
        sizes = ", ".join(f"{k} {f(v)}" for k, v in (e.get("sizes") or {}).items())
        line = (
            f"- **{e.get('title', key)}**: {_provenance(e)}"
            + (f"; {e['model']}" if e.get("model") else "")
            + (f"; rows: {sizes}" if sizes else "")
            + (f"; {f(e.get('seconds'), 0)} s in all" if e.get("seconds") else "")
            + "."
        )
        sp = e.get("split")
        if sp:
            line += (
                f" Trained on the first {f(sp['train_chars_used'])} of the {f(sp['train_chars_total'])} characters"
                f" of the first 90%, scored on the first {f(sp['heldout_chars_used'])} of the"
                f" {f(sp['heldout_chars_total'])} of the last 10% (bench_causal_lm.py's split)."
            )
        if h.get("precision"):
            line += f" hubmgr trained in {h['precision']}, {f(h.get('num_train_examples'))} training examples"
            line += f", best step {h.get('best_step')} of {h.get('global_step')}." if h.get("best_step") else "."
        if s.get("hubmgr_before_training") is not None:
            line += f" Base model before training: {_gen_value(s['hubmgr_before_training'], s.get('metric', ''))}."
        if b.get("wall_seconds") is not None:
            line += (
                f" Baseline: {f(b.get('epochs'), 2)} epochs in {f(b.get('wall_seconds'), 0)} s"
                f" (budget {f(b.get('budget_seconds'), 0)} s{', stopped by it' if b.get('time_limited') else ', finished first'}),"
                f" {f(b.get('samples_per_second'))} samples/s."
            )
            carried = e.get("baseline_from")
            if carried:
                line += (
                    f" The baseline was not re-run with this hubmgr run: it is the one measured"
                    f" {carried.get('started')} (hubmgr {carried.get('hubmgr_git')}), given that run's wall time"
                    f" of {f(carried.get('budget_seconds'), 0)} s."
                )
        for n in s.get("notes") or []:
            line += f" hubmgr note: {n}"
        if e.get("note"):
            line += f" {e['note']}"
        if e.get("status") == "error" and e.get("reason"):
            line += f" Failed: `{str(e['reason'])[:300]}`."
        details.append(line)
    if details:
        out += "\n".join(details) + "\n\n"
    out += _gen_plot(ds)
    return out


def _gen_plot(ds: dict[str, Any]) -> str:
    import math

    panels = [
        (k, e)
        for k, e in ds.items()
        if (e.get("summary") or {}).get("hubmgr") is not None or (e.get("summary") or {}).get("baseline") is not None
    ]
    if not panels:
        return ""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(max(6.4, 2.3 * len(panels)), 3.4), squeeze=False)
    for ax, (key, e) in zip(axes[0], panels):
        s = e["summary"]
        metric = s.get("metric", "")
        vals = [s.get("hubmgr"), s.get("baseline")]
        shown = [v if v is not None else 0.0 for v in vals]
        bars = ax.bar(["hubmgr", "baseline"], shown, color=["#4c72b0", "#999999"], width=0.6)
        for bar, v in zip(bars, vals):
            ax.text(
                bar.get_x() + bar.get_width() / 2,
                bar.get_height(),
                "n/a" if v is None else (f"{v:.1f}" if metric == "perplexity" else f"{v:.3f}"),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        goal = e.get("goal")
        top = max([v for v in vals if v is not None] + [goal or 0.0])
        if goal is not None:
            ax.axhline(goal, color="#c44e52", ls="--", lw=1)
            ax.text(1.45, goal, f"goal {goal:g}", color="#c44e52", fontsize=7, va="bottom", ha="right")
        if metric == "perplexity":
            ax.set_ylim(0, top * 1.2 if top else 1)
        else:
            ax.set_ylim(0, min(1.0, top * 1.15) if top and top * 1.15 < 1.0 else 1.05)
        label = GEN_METRIC_NAMES.get(metric, metric) + (" (lower is better)" if metric == "perplexity" else "")
        ax.set_title(f"{e.get('title', key)}{' (quick)' if e.get('quick') else ''}", fontsize=9)
        ax.set_ylabel(f"{e.get('report_split', '')} {label}", fontsize=8)
        wall = s.get("hubmgr_wall_seconds")
        if wall is not None and not math.isnan(wall):
            ax.set_xlabel(f"both {wall / 60:.1f} min", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(axis="x", visible=False)
    fig.suptitle("hubmgr defaults vs a tutorial Trainer + peft script, same wall time, CPU", fontsize=9)
    return save_fig(fig, "generalization")


SECTIONS = {
    "train_speed": ("1. Training speed: MiniLM + LoRA on SST-2, CPU", sec_train_speed),
    "train_variants": ("1b. Training defaults: what-if variants", sec_train_variants),
    "time_to_accuracy": ("2. Time to accuracy", sec_time_to_accuracy),
    "data_efficiency": ("3. Data efficiency: pre-trained + LoRA vs random init", sec_data_efficiency),
    "token_classification": ("4. Token classification: CoNLL-2003", sec_token_classification),
    "causal_lm": ("5. Causal LM: SmolLM2-135M on Tiny Shakespeare", sec_causal_lm),
    "download": ("6. Download from the Hub double", sec_download),
    "startup": ("7. Start-up", sec_startup),
    "eval_speed": ("8. Evaluation speed", sec_eval_speed),
    "step_overhead": ("11. Fixed cost per training step", sec_step_overhead),
    "trial": ("12. `--dry-run`: predicted against real runs", sec_trial),
    "profile_train": ("Profile: where a CPU training step spends its time", sec_profile),
    "gpu_check": ("9. GPU check", sec_gpu),
    "generalization": ("10. Generalization: defaults on every shared data set", sec_generalization),
}


def sec_analysis(loaded: dict[str, dict[str, Any] | None]) -> str:
    """Missed targets, with the reasons the measurements give (numbers filled in from the results)."""
    missed_full, missed_quick = [], []
    for name in ORDER:
        r = loaded.get(name)
        if not r:
            continue
        for t in r.get("targets", []):
            if t.get("met") is False:
                (missed_quick if r.get("quick") else missed_full).append((name, t, r))
    out = ["## Missed targets and why\n"]
    if not missed_full:
        out.append("No target was missed in a full run.\n")
    for name, t, r in missed_full:
        value = (
            t["value"]
            if isinstance(t["value"], str)
            else f(t["value"], 3 if isinstance(t["value"], (int, float)) and abs(t["value"]) < 10 else 1)
        )
        out.append(
            f"- **{SECTIONS[name][0].split(':')[0]}: {t['name']}** - goal {t['goal']}, measured"
            f" {value}" + (f" ({t['detail']})" if t.get("detail") else "") + "."
        )
        why = _why(name, t, r, loaded)
        if why:
            out.append("  " + why)
    if missed_quick:
        out.append(
            "\nQuick runs (short versions, not comparable with the targets) that missed:"
            + "".join(f" {SECTIONS[n][0].split(':')[0]} - {t['name']};" for n, t, _ in missed_quick).rstrip(";")
            + ".\n"
        )
    out.append("")
    return "\n".join(out)


def _provenance(e: dict[str, Any]) -> str:
    """'measured <when> on hubmgr <commit>, N threads, load average A -> B' of one generalization data set
    (each is measured in its own run; ``--only`` merges them into one result file)."""
    return (
        f"measured {e.get('started')} on hubmgr {e.get('hubmgr_git')}"
        f"{' (quick run)' if e.get('quick') else ''}, {e.get('threads')} threads, load average"
        f" {e.get('load_average_start')}" + (f" -> {e['load_average_end']}" if e.get("load_average_end") else "")
    )


def _why(name: str, t: dict[str, Any], r: dict[str, Any], loaded: dict[str, Any]) -> str:
    m = r.get("machine", {})
    load = f"Load average {m.get('load_average_1m_5m_15m')} at the start and {m.get('load_average_end')} at the end"
    if name == "train_speed" and r["results"].get("hubmgr_mfu_against") == "bfloat16":
        res = r["results"]
        h = res["arms"]["hubmgr"]
        fp32_peak, bf16_peak = res["matmul_peak"]["peak_flops"], res["matmul_peak"]["bfloat16_peak_flops"]
        achieved = h["model_flops"]["total"] / h["loop_seconds"]
        parts = [
            f"hubmgr trained in {res.get('hubmgr_precision')} precision: `--dtype auto` picks it on this CPU, which"
            f" has AVX512-BF16. The bfloat16 matmul peak measured in the same run is {bf16_peak / 1e9:.0f} GFLOP/s,"
            f" {bf16_peak / fp32_peak:.1f}x the float32 peak ({fp32_peak / 1e9:.0f} GFLOP/s). hubmgr's"
            f" {achieved / 1e9:.0f} GFLOP/s of model FLOPs are {achieved / fp32_peak:.0%} of the float32 peak but"
            f" {achieved / bf16_peak:.0%} of the bfloat16 one: bfloat16 speeds up the large matrix multiplies"
            " far more than the rest of a LoRA step on ~25-token sentences (casts between float32 and bfloat16,"
            " small matrix products of attention and of the rank-8 adapters, element-wise operations, the"
            " optimizer), which then weighs more."
        ]
        tv = (loaded.get("train_variants") or {}).get("results", {}).get("variants", {})
        f32 = next((v for k, v in tv.items() if k.startswith("float32")), None)
        d = tv.get("defaults")
        if f32 and d and f32.get("samples_per_second"):
            per_sample = h["model_flops"]["total"] / res["train_examples"]  # one epoch
            mfu32 = per_sample * f32["samples_per_second"] / fp32_peak
            parts.append(
                f"Trained in float32 (`--dtype float32`, section 1b) the same epoch ran at"
                f" {f32['samples_per_second']:.0f} samples/s against {d['samples_per_second']:.0f} with the"
                f" defaults ({d['samples_per_second'] / f32['samples_per_second']:.2f}x slower), dev accuracy"
                f" {f32['dev_accuracy']:.4f} against {d['dev_accuracy']:.4f}: about {mfu32:.0%} of the float32"
                " peak, which meets the target in the precision that is slower in wall time. The default"
                " follows wall time."
            )
        ops = (loaded.get("profile_train") or {}).get("results", {}).get("ops", {})
        prof, sdpa = ops.get("bf16_defaults"), ops.get("bf16_sdpa")
        if prof:
            top = ", ".join(f"`{o['op']}` {o['share']:.0%}" for o in prof["top_ops"][:5])
            parts.append(f"Where a bfloat16 step spends its CPU time (profile section): {top}.")
        if sdpa:
            bwd = next((o["share"] for o in sdpa["top_ops"] if "flash_attention_for_cpu_backward" in o["op"]), None)
            if bwd:
                parts.append(
                    f"With PyTorch's fused CPU attention (SDPA) instead of eager attention, its bfloat16"
                    f" backward alone took {bwd:.0%} of a step; that is why hubmgr trains with eager attention"
                    " in bfloat16 on a CPU."
                )
        return " ".join(parts)
    if name == "train_speed":
        return (
            f"The run shared the 2 cores with other jobs ({load[0].lower() + load[1:]}; 2.0 is a full machine). With 2 intra-op"
            " threads on busy cores every parallel operator waits until both threads are scheduled, which costs"
            " short dynamically padded batches (many small operators) more than the tutorial's 128-token"
            " batches; the matmul peak, measured in short bursts, suffers less than a long training loop."
        )
    if name == "time_to_accuracy":
        h = r["results"]["hubmgr"]
        ev = h.get("evals") or []
        hit = next((e for e in ev if (e.get("accuracy") or 0) >= r["results"]["threshold"]), None)
        parts = [
            f"{load}.",
            f"The process needed {f(h.get('time_to_train_started'))} s to reach its first training step"
            " (imports, data loading, tokenisation, model loading).",
        ]
        if hit:
            parts.append(
                f"Accuracy {hit['accuracy']:.3f} came at step {hit['step']} ({hit['samples']:,} examples), after"
                f" {f(h.get('eval_seconds_before_reached'))} s spent in the {len([e for e in ev if e['step'] <= hit['step']])}"
                f" evaluations on the way (every {r['results']['eval_every_steps']} steps, about"
                f" {f(C.median(e.get('eval_seconds') or 0 for e in ev))} s each): {f(h.get('reached_seconds_without_evaluations'))} s without them."
            )
            near = max(
                (e for e in ev if e["step"] < hit["step"] and e.get("accuracy") is not None),
                key=lambda e: e["accuracy"],
                default=None,
            )
            if near is not None:
                parts.append(
                    f"The closest earlier evaluation, at step {near['step']} ({f(near['t_process'])} s), scored"
                    f" {near['accuracy']:.4f}."
                )
        else:
            best = max((e.get("accuracy") or 0 for e in ev), default=None)
            parts.append(f"The best evaluation reached {f(best, 3)} before the cap.")
        for flags, w in (r["results"].get("whatif") or {}).items():
            parts.append(
                f"With `{flags}` (not a default) the same measurement gave {f(w.get('reached_seconds'))} s"
                f" ({f(w.get('reached_seconds_without_evaluations'))} s without the evaluations)."
            )
        return " ".join(parts)
    if name == "generalization":
        e = next(
            (
                e
                for e in (r["results"].get("datasets") or {}).values()
                if t["name"].startswith(str(e.get("title")) + " ")
            ),
            None,
        )
        if not e:
            return ""
        s = e.get("summary") or {}
        # each data set was measured in its own run (--only merges them): its own load, date and commit
        measured = _provenance(e)
        parts = [measured[0].upper() + measured[1:] + "."]
        if s.get("hubmgr_error"):
            parts.append(f"The hubmgr run failed: `{str(s['hubmgr_error']).splitlines()[0][:200]}`.")
        else:
            parts.append(
                f"hubmgr trained {f(s.get('epochs'), 1)} epochs in {f(s.get('hubmgr_wall_seconds'), 0)} s"
                + (f"; it stopped because: {s['stop_reason']}" if s.get("stop_reason") else "")
                + "."
            )
            if s.get("baseline") is not None:
                parts.append(f"The tutorial baseline given the same wall time scored {f(s['baseline'], 4)}.")
            parts += [str(n) for n in s.get("notes") or []]
        return " ".join(parts)
    if name == "causal_lm":
        a = r["results"]["arms"]["hubmgr"]
        return (
            f"hubmgr took {a.get('steps')} optimizer step(s) on {a.get('train_tokens'):,} tokens; with the learning"
            " rate still warming up, so few steps barely move the adapter."
        )
    return ""


def sec_suggestions(loaded: dict[str, Any]) -> str:
    """Variants of the training defaults that measured at least as accurate and faster than the defaults."""
    tv = loaded.get("train_variants")
    if not tv or tv.get("status") != "ok":
        return ""
    v = tv["results"]["variants"]
    d = v.get("defaults")
    if not d or d.get("dev_accuracy") is None:
        return ""
    better = [
        (k, x)
        for k, x in v.items()
        if k != "defaults"
        and x.get("dev_accuracy") is not None
        and x["dev_accuracy"] >= d["dev_accuracy"]
        and x["samples_per_second"] > 1.05 * d["samples_per_second"]
    ]
    out = [
        "## What the measurements suggest for the defaults\n",
        f"One epoch with the defaults: dev accuracy {d['dev_accuracy']:.4f} at {d['samples_per_second']:.1f} samples/s"
        " (section 1b). Changes that measured at least as accurate and more than 5% faster:\n",
    ]
    if better:
        for k, x in better:
            flags = ", ".join(f"`{a}={b}`" for a, b in x["overrides"].items())
            out.append(
                f"- {k} ({flags}): dev accuracy {x['dev_accuracy']:.4f}, {x['samples_per_second']:.1f} samples/s"
                f" ({x['samples_per_second'] / d['samples_per_second']:.2f}x)."
            )
    else:
        out.append("- none among the variants measured.")
    return "\n".join(out) + "\n"


def sec_speed_sources(loaded: dict[str, Any]) -> str:
    prof = loaded.get("profile_train")
    if not prof or prof.get("status") != "ok":
        return ""
    v = prof["results"]["variants"]
    out = [
        "## Where the CPU training speed comes from\n",
        "Training steps under different settings, interleaved batch by batch in one process (so that load from"
        f" other jobs hits them alike), each on the same {prof['results']['samples_per_variant']} SST-2 examples"
        " in length-grouped batches (profile section below for details):\n",
    ]
    out.append(
        table(
            ["setting", "samples/s", "x tutorial"],
            [[k, f(x["samples_per_second"]), f(x["x_tutorial"], 2)] for k, x in v.items()],
        )
    )
    ops = prof["results"]["ops"]
    on, off = ops.get("dropout_on", {}).get("top_ops", []), ops.get("dropout_off", {}).get("top_ops", [])
    if on and off:
        mm_on = sum(o["share"] for o in on if o["op"] in ("aten::mm", "aten::addmm"))
        mm_off = sum(o["share"] for o in off if o["op"] in ("aten::mm", "aten::addmm"))
        drop = sum(o["share"] for o in on if o["op"] in ("aten::bernoulli_", "aten::div_", "aten::mul", "aten::copy_"))
        out.append(
            f"\nWith the base model's own dropout on, dropout masks and the copies and scaling around them (`bernoulli_`,"
            f" `mul`, `div_`, `copy_`) take {drop:.0%} of a step's CPU time and matrix multiplies {mm_on:.0%}; with it off,"
            f" matrix multiplies take {mm_off:.0%}, and attention runs in PyTorch's fused CPU attention kernel. Padding"
            " every example to 128 tokens (the tutorial) multiplies the work by the ratio of 128 to the mean length.\n"
        )
    return "\n".join(out)


HOW_TO = """\
## Running them

| script | measures | quick version |
|---|---|---|
| `benchmarks/bench_train_speed.py` | MiniLM + LoRA on SST-2: samples/s, peak RSS, dev accuracy, MFU; tutorial Trainer vs hubmgr | 640 examples |
| `benchmarks/bench_time_to_accuracy.py` | seconds from `hubmgr train` start to 0.85 SST-2 dev accuracy | capped at 300 s |
| `benchmarks/bench_data_efficiency.py` | dev accuracy vs training-set size, pre-trained + LoRA vs random init | 2 sizes |
| `benchmarks/bench_token_classification.py` | CoNLL-2003 entity F1 and speed vs a plain Trainer | 400 sentences |
| `benchmarks/bench_causal_lm.py` | SmolLM2-135M on Tiny Shakespeare: perplexity before/after, tokens/s | 50k characters |
| `benchmarks/bench_download.py` | download throughput vs snapshot_download, kill-and-resume bytes | 100 MB repo |
| `benchmarks/bench_startup.py` | `hubmgr --help`, TUI first frame, `hf --help`, `python -c pass`; imports | 3 runs each |
| `benchmarks/bench_eval_speed.py` | `hubmgr eval` vs `pipeline()` on SST-2 dev | 300 examples |
| `benchmarks/bench_train_variants.py` | one epoch with the defaults and with one field changed: accuracy, speed | 640 examples, 2 variants |
| `benchmarks/bench_step_overhead.py` | `hubmgr.train` vs a plain PyTorch + peft loop on a tiny BERT: the fixed cost per step | 1 round |
| `benchmarks/bench_trial.py` | `hubmgr train --dry-run` (a trial of a few steps) against the real run: wall time and peak memory | 800 / 1,500 examples, 40k characters |
| `benchmarks/bench_profile_train.py` | what a CPU training step spends its time on | 192 examples |
| `benchmarks/gpu_check.sh` | one CUDA GPU, offline: tokens/s, MFU, peak memory, QLoRA | `--cpu` (tiny, on the CPU) |
| `benchmarks/bench_generalization.py` | defaults only on SST-2, CLINC150, GoEmotions, CoNLL-2003, Tiny Shakespeare vs a tutorial Trainer given the same wall time (`--only a,b` merges into the result) | a few hundred examples per set |

Each script runs alone (`python benchmarks/bench_x.py [--quick] [--threads N]`), runs every arm in its
own process (so peak RSS is per arm), and writes `benchmarks/results/<name>.json` (`results/quick/` for
`--quick`). `python benchmarks/run_all.py [--quick] [--only a,b]` runs them and rebuilds this page;
`python benchmarks/report.py` only rebuilds it. Data is read from `../shared/data` (or
`$HUBMGR_SHARED_DATA`) and never copied into the repository; a benchmark whose data or weights are
absent is recorded as skipped with the reason.
"""


FLOPS_DOC = """\
## How model FLOPs utilisation is counted

MFU = model FLOPs of the training run / training-loop seconds / the matmul peak measured in the same
run (``torch.matmul`` at the same thread count and precision, best over several shapes: the MiniLM
layer shapes and large squares). Model FLOPs count the *useful* work on real tokens (padding excluded):

* frozen base weights that take part in matrix multiplies (N; embeddings excluded): forward ``2·N·T``
  and, in the backward pass, only the gradient with respect to the activations ``2·N·T`` (frozen
  weights get no weight gradient) - so ``4·N·T``, not the ``6·N·T`` of full training;
* LoRA adapters (N_lora): forward, activation gradient and weight gradient, ``6·N_lora·T``;
* attention scores and weighted sums: ``4·s·h`` per token per layer forward and twice that backward
  (both operands are activations): ``12·h·L·Σs²`` over the sequences (full ``s²``, no causal halving);
* the classification head: the frozen pooler ``4·h²`` per sequence and the trained classifier ``6·h·2``.

For all-MiniLM-L6-v2 (L=6, h=384, FFN 1536): N = 6·(4·384² + 2·384·1536) = 10.6 M. N_lora is each
arm's own: hubmgr's defaults put r=8 on every linear layer (query, key, value, the dense layers and the
pooler: 337,920), the tutorial baseline r=8 on query and value (73,728). The tutorial baseline is also
given "counting padding" (T = 128 per example), which is what its hardware actually computes. An arm that
trains in bfloat16 mixed precision is measured against the bfloat16 matmul peak.
"""


def generate(results: Path = C.RESULTS_DIR) -> Path:
    loaded = {name: load(name, results) for name in ORDER}
    out = [
        "# Benchmarks\n",
        "Generated by `benchmarks/report.py` from `benchmarks/results/*.json` (written by `make bench`, i.e."
        " `python benchmarks/run_all.py`; `--quick` for a short version, `--only NAME,...` for some). Every"
        " number below was measured by those scripts; each ratio compares arms run back to back in the same"
        " run. Each section names its machine, versions and commands.\n",
        "**The CPU numbers come from a 2-core development machine shared with other people's jobs** (see"
        " the load averages): absolute speeds vary from run to run by a factor of two or more, ratios less so.\n",
    ]
    out.append(HOW_TO)
    # targets summary
    rows = []
    for name in ORDER:
        r = loaded.get(name)
        if not r:
            continue
        for t in r.get("targets", []):
            rows.append(
                [
                    SECTIONS[name][0].split(":")[0],
                    t["name"],
                    t["goal"],
                    f(t["value"], 3) if not isinstance(t["value"], str) else t["value"],
                    met_mark(t["met"]) + (" (quick run)" if r.get("quick") else ""),
                ]
            )
    if rows:
        out.append("## Targets\n\n" + table(["benchmark", "target", "goal", "measured", "status"], rows))
    out.append(sec_analysis(loaded))
    sugg = sec_suggestions(loaded)
    if sugg:
        out.append(sugg)
    speed = sec_speed_sources(loaded)
    if speed:
        out.append(speed)
    analysis = C.BENCH_DIR / "analysis.md"
    if analysis.is_file():
        out.append(analysis.read_text(encoding="utf-8").strip() + "\n")
    for name in ORDER:
        title, fn = SECTIONS[name]
        r = loaded.get(name)
        out.append(f"## {title}\n")
        if r is None:
            out.append("Not run yet.\n")
            continue
        if name == "gpu_check":
            out.append(fn(r))
            continue
        st = status_line(r)
        out.append(provenance(r))
        if name in TRAINING and predates_cpu_defaults(r):
            out.append(
                f"**Measured before commit {CPU_DEFAULTS_COMMIT}**, with the earlier CPU defaults (float32, fused"
                " attention); hubmgr now trains in bfloat16 with eager attention on a CPU like this one"
                " (section 1). Not re-measured since.\n"
            )
        if st:
            out.append(st)
            continue
        try:
            out.append(fn(r))
        except Exception as exc:  # noqa: BLE001 - a malformed result must not stop the report
            out.append(f"(Cannot render this result: {type(exc).__name__}: {exc})\n")
        out.append(notes(r))
        out.append(commands(r))
    out.append(FLOPS_DOC)
    path = DOCS / "benchmarks.md"
    text = "\n".join(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def main() -> int:
    path = generate()
    print(f"wrote {path.relative_to(C.REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
