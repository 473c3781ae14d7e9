"""GPU check: LoRA training throughput and model FLOPs utilisation on one CUDA GPU, offline.

Runs in a few minutes with no network and no downloaded weights: every model is built from a config
with random weights, every tokenizer is hubmgr's offline word-level one, the data is synthetic.

Parts (each in its own try/except: an error is recorded and the next part runs):

1. ``environment``      - versions, GPU name and memory, which optional packages are importable;
2. ``matmul_peak``      - dense bf16 matmul throughput (the MFU denominator), TF32 for reference;
3. ``raw_lora_minilm``  - a plain peft loop on the all-MiniLM-L6-v2 shape (BERT, 6 x 384), bf16;
4. ``raw_lora_llama``   - the same on a ~350M Llama shape (24 x 1024, vocab 32000), bf16;
5. ``hubmgr_text_classification`` - hubmgr's own engine, ``train(TrainConfig(device="cuda",
   dtype="bfloat16"))``, MiniLM shape on synthetic sentences;
6. ``hubmgr_causal_lm`` - hubmgr's engine on the ~350M Llama shape, text packed into 512-token blocks;
7. ``hubmgr_qlora``     - the same with ``qlora=True`` (4-bit NF4 base) where bitsandbytes is present.

Model FLOPs of a LoRA step (frozen base, documented in docs/benchmarks.md):
``4 * N * T`` (forward + activation gradient through the frozen matmul weights N, embeddings
excluded, LM head included) ``+ 6 * N_lora * T + 12 * h * L * s * T`` (attention, full s^2).
MFU = model FLOPs / step time / measured bf16 matmul peak.

    python3 benchmarks/gpu_check.py [--out DIR] [--cpu]      # --cpu: tiny sizes on the CPU (dry run)
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import random
import sys
import tempfile
import time
import traceback
import types
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
for p in (str(REPO / "plugins"), str(REPO)):
    if p not in sys.path:
        sys.path.insert(0, p)

RESULT: dict[str, Any] = {"benchmark": "gpu_check", "status": "ok", "parts": {}, "notes": []}


# ---------------------------------------------------------------------------------------------------
# bookkeeping
# ---------------------------------------------------------------------------------------------------
def part(name: str, fn: Callable[[], dict[str, Any]]) -> None:
    """Run one part; record its result or its error, and how long it took."""
    print(f"[gpu_check] {name} ...", flush=True)
    t0 = time.perf_counter()
    try:
        out = fn()
        out = {"status": "ok", **out} if "status" not in out else out
    except Exception as exc:  # noqa: BLE001 - recorded, the next part runs
        out = {
            "status": "error",
            "error": f"{type(exc).__name__}: {exc}"[:2000],
            "traceback": traceback.format_exc()[-4000:],
        }
    out["seconds"] = round(time.perf_counter() - t0, 2)
    RESULT["parts"][name] = out
    save()
    _free()
    shown = {
        k: v for k, v in out.items() if k not in ("traceback", "by_shape", "versions", "optional_packages", "evals")
    }
    print(f"[gpu_check] {name}: {json.dumps(shown, default=str)[:1200]}", flush=True)


RESULT_PATH: Path | None = None


def save() -> None:
    """Write the result so far (atomically): a run cut short by a timeout still leaves its parts."""
    if RESULT_PATH is None:
        return
    RESULT_PATH.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULT_PATH.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(RESULT, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, RESULT_PATH)


def _free() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001
        pass


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except Exception:  # noqa: BLE001
        return None


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------------
# fall-backs for small pure-Python packages a bare GPU image may lack (recorded in the result)
# ---------------------------------------------------------------------------------------------------
def install_shims() -> list[str]:
    """Stand-ins for packages hubmgr's training path imports but a bare image may not have.

    * ``xxhash`` (datasets fingerprints): an object with the same ``xxh64`` interface over blake2b;
    * ``tomli_w`` (hubmgr writes the run config as TOML): a minimal writer for flat values and tables;
    * ``sklearn`` (text-classification accuracy/F1): the task's ``compute_metrics`` is patched with a
      numpy version in :func:`register_builtin_tasks`.
    """
    used = []
    if not _has("xxhash"):
        import hashlib

        class _H:
            def __init__(self, data: bytes = b"", seed: int = 0) -> None:
                self._h = hashlib.blake2b(digest_size=8, key=seed.to_bytes(8, "little") if seed else b"")
                if data:
                    self.update(data)

            def update(self, data: Any) -> None:
                self._h.update(data if isinstance(data, (bytes, bytearray, memoryview)) else str(data).encode())

            def hexdigest(self) -> str:
                return self._h.hexdigest()

            def digest(self) -> bytes:
                return self._h.digest()

            def intdigest(self) -> int:
                return int.from_bytes(self._h.digest(), "little")

        mod = types.ModuleType("xxhash")
        mod.xxh64 = mod.xxh3_64 = mod.xxh128 = mod.xxh3_128 = _H  # type: ignore[attr-defined]
        mod.__version__ = "0.0-shim"  # type: ignore[attr-defined]
        sys.modules["xxhash"] = mod
        used.append("xxhash")
    if not _has("tomli_w"):

        def _val(v: Any) -> str:
            if isinstance(v, bool):
                return "true" if v else "false"
            if isinstance(v, (int, float)):
                return repr(v)
            if isinstance(v, (list, tuple)):
                return "[" + ", ".join(_val(x) for x in v) + "]"
            return json.dumps(str(v))

        def dumps(d: dict[str, Any]) -> str:
            flat = [f"{k} = {_val(v)}" for k, v in d.items() if not isinstance(v, dict) and v is not None]
            tables = [
                f"\n[{k}]\n" + "\n".join(f"{kk} = {_val(vv)}" for kk, vv in v.items() if vv is not None)
                for k, v in d.items()
                if isinstance(v, dict)
            ]
            return "\n".join(flat) + "\n" + "".join(tables)

        mod = types.ModuleType("tomli_w")
        mod.dumps = dumps  # type: ignore[attr-defined]
        sys.modules["tomli_w"] = mod
        used.append("tomli_w")
    if not _has("sklearn"):
        used.append("sklearn (text-classification metrics computed with numpy)")
    for name in ("xxhash", "tomli_w"):
        if name in used:
            import importlib.machinery

            sys.modules[name].__spec__ = importlib.machinery.ModuleSpec(name, None)
    return used


def register_builtin_tasks() -> list[str]:
    """Register hubmgr's built-in task modules with the plugin manager directly (no entry points when
    hubmgr is not pip-installed). Returns the task names available."""
    from hubmgr.plugins import get_plugin_manager, get_tasks

    if not _has("sklearn"):
        import numpy as np

        from hubmgr_tasks.text_classification import TextClassificationTask

        def compute_metrics(self: Any, predictions: Any, labels: Any, data: Any) -> dict[str, float]:
            p, t = np.asarray(predictions).reshape(-1), np.asarray(labels).reshape(-1)
            keep = t != -100
            p, t = p[keep], t[keep]
            f1s = []
            for c in np.unique(np.concatenate([t, p])):
                tp = float(((p == c) & (t == c)).sum())
                prec, rec = tp / max(1.0, float((p == c).sum())), tp / max(1.0, float((t == c).sum()))
                f1s.append(0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec))
            return {
                "accuracy": float((p == t).mean()) if t.size else float("nan"),
                "macro_f1": float(np.mean(f1s)) if f1s else float("nan"),
            }

        TextClassificationTask.compute_metrics = compute_metrics  # type: ignore[method-assign]
    pm = get_plugin_manager()
    names = {pm.get_name(p) for p in pm.get_plugins()}
    for mod_name, ep_name in (
        ("hubmgr_tasks.text_classification", "text_classification"),
        ("hubmgr_tasks.causal_lm", "causal_lm"),
    ):
        mod = importlib.import_module(mod_name)
        if not pm.is_registered(mod) and ep_name not in names:
            pm.register(mod, name=ep_name)
    return sorted(get_tasks())


# ---------------------------------------------------------------------------------------------------
# shapes and FLOPs
# ---------------------------------------------------------------------------------------------------
def minilm_config(tiny: bool, vocab: int = 30522, max_pos: int = 512) -> Any:
    from transformers import BertConfig

    if tiny:
        return BertConfig(
            vocab_size=vocab,
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=256,
            max_position_embeddings=max_pos,
            num_labels=2,
        )
    # all-MiniLM-L6-v2
    return BertConfig(
        vocab_size=vocab,
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=1536,
        max_position_embeddings=max_pos,
        num_labels=2,
    )


def llama_config(tiny: bool, vocab: int = 32000, **ids: Any) -> Any:
    from transformers import LlamaConfig

    if tiny:
        return LlamaConfig(
            vocab_size=vocab,
            hidden_size=64,
            intermediate_size=192,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=1024,
            tie_word_embeddings=True,
            **ids,
        )
    # ~350M parameters with a 32000 vocabulary (24 layers x 1024, SwiGLU 3584, tied embeddings)
    return LlamaConfig(
        vocab_size=vocab,
        hidden_size=1024,
        intermediate_size=3584,
        num_hidden_layers=24,
        num_attention_heads=16,
        num_key_value_heads=16,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        **ids,
    )


def matmul_params(cfg: Any, *, lm_head: bool) -> int:
    h, i, L = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    if getattr(cfg, "model_type", "") == "llama":
        kv = cfg.num_key_value_heads * (h // cfg.num_attention_heads)
        n = L * (2 * h * h + 2 * h * kv + 3 * h * i)
        return n + (h * cfg.vocab_size if lm_head else 0)
    return L * (4 * h * h + 2 * h * i)


def lora_step_flops(cfg: Any, *, batch: int, seq: int, lora_params: int, lm_head: bool) -> float:
    tokens = batch * seq
    n = matmul_params(cfg, lm_head=lm_head)
    attention = 12.0 * cfg.hidden_size * cfg.num_hidden_layers * seq * tokens
    return 4.0 * n * tokens + 6.0 * lora_params * tokens + attention


# ---------------------------------------------------------------------------------------------------
# parts
# ---------------------------------------------------------------------------------------------------
def part_environment(device: str) -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {
        "python": platform.python_version(),
        "versions": {
            n: _version(n)
            for n in (
                "torch",
                "transformers",
                "peft",
                "accelerate",
                "datasets",
                "huggingface_hub",
                "bitsandbytes",
                "pyarrow",
                "pandas",
                "numpy",
                "pluggy",
                "platformdirs",
                "tomli_w",
                "xxhash",
                "scikit-learn",
            )
        },
        "device": device,
        "cuda": torch.version.cuda,
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        out["gpu"] = {
            "name": torch.cuda.get_device_name(0),
            "memory_bytes": int(props.total_memory),
            "capability": f"{props.major}.{props.minor}",
            "count": torch.cuda.device_count(),
            "bf16_supported": torch.cuda.is_bf16_supported(),
        }
    else:
        out["cpu_threads"] = torch.get_num_threads()
    out["optional_packages"] = {
        m: _has(m)
        for m in (
            "datasets",
            "pluggy",
            "platformdirs",
            "tomli_w",
            "xxhash",
            "sklearn",
            "bitsandbytes",
            "seqeval",
            "textual",
        )
    }
    return out


def part_matmul(device: str, tiny: bool) -> dict[str, Any]:
    import torch

    shapes = (
        [(1024, 1024, 1024), (2048, 384, 1536)]
        if tiny
        else [(8192, 8192, 8192), (16384, 4096, 4096), (4096, 16384, 4096), (8192, 1024, 4096)]
    )
    seconds = 0.3 if tiny else 1.0
    out: dict[str, Any] = {}
    for label, dtype, tf32 in (("bf16", torch.bfloat16, False), ("tf32", torch.float32, True)):
        if device == "cpu" and label == "tf32":
            continue
        if device == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = tf32
        rows = []
        for m, k, n in shapes:
            a = torch.randn(m, k, device=device, dtype=dtype)
            b = torch.randn(k, n, device=device, dtype=dtype)
            for _ in range(3):
                a @ b
            sync(device)
            reps, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                for _ in range(5):
                    a @ b
                reps += 5
                sync(device)
            secs = time.perf_counter() - t0
            rows.append({"m": m, "k": k, "n": n, "tflops": 2.0 * m * k * n * reps / secs / 1e12})
            del a, b
        out[label] = {"peak_tflops": max(r["tflops"] for r in rows), "by_shape": rows}
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    out["peak_tflops"] = out["bf16"]["peak_tflops"]
    return out


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _raw_loop(
    model: Any, make_batch: Callable[[], dict[str, Any]], *, device: str, warmup: int, steps: int
) -> dict[str, float]:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, fused=(device == "cuda"))
    batch = make_batch()
    model.train()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def step() -> float:
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(warmup):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync(device)
    secs = (time.perf_counter() - t0) / steps
    return {
        "step_seconds": secs,
        "final_loss": float(loss.detach().float().cpu()),
        "peak_memory_bytes": int(torch.cuda.max_memory_allocated()) if device == "cuda" else None,
    }


def _lora(model: Any, targets: list[str], task_type: str) -> tuple[Any, int]:
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(
        model, LoraConfig(task_type=task_type, r=8, lora_alpha=16, lora_dropout=0.0, target_modules=targets)
    )
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    lora = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and "lora_" in n)
    return model, lora


def part_raw_minilm(device: str, tiny: bool, peak_tflops: float | None) -> dict[str, Any]:
    import torch
    from transformers import BertForSequenceClassification

    cfg = minilm_config(tiny)
    batch, seq = (4, 32) if tiny else (256, 128)
    torch.manual_seed(0)
    with torch.device(device):
        model = BertForSequenceClassification(cfg).to(torch.bfloat16)
    model, lora = _lora(model, ["query", "value"], "SEQ_CLS")

    def make() -> dict[str, Any]:
        return {
            "input_ids": torch.randint(0, cfg.vocab_size, (batch, seq), device=device),
            "attention_mask": torch.ones(batch, seq, dtype=torch.long, device=device),
            "labels": torch.randint(0, 2, (batch,), device=device),
        }

    r = _raw_loop(model, make, device=device, warmup=2 if tiny else 10, steps=3 if tiny else 40)
    flops = lora_step_flops(cfg, batch=batch, seq=seq, lora_params=lora, lm_head=False)
    return _throughput(
        r,
        flops,
        batch,
        seq,
        peak_tflops,
        params=sum(p.numel() for p in model.parameters()),
        lora=lora,
        shape=f"BERT {cfg.num_hidden_layers}x{cfg.hidden_size} (MiniLM-L6 shape)",
    )


def part_raw_llama(device: str, tiny: bool, peak_tflops: float | None) -> dict[str, Any]:
    import torch
    from transformers import LlamaForCausalLM

    cfg = llama_config(tiny)
    batch, seq = (2, 64) if tiny else (16, 512)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    model, lora = _lora(model, ["q_proj", "v_proj"], "CAUSAL_LM")

    def make() -> dict[str, Any]:
        ids = torch.randint(0, cfg.vocab_size, (batch, seq), device=device)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}

    r = _raw_loop(model, make, device=device, warmup=2 if tiny else 5, steps=3 if tiny else 20)
    flops = lora_step_flops(cfg, batch=batch, seq=seq, lora_params=lora, lm_head=True)
    return _throughput(
        r,
        flops,
        batch,
        seq,
        peak_tflops,
        params=params,
        lora=lora,
        shape=f"Llama {cfg.num_hidden_layers}x{cfg.hidden_size}, vocab {cfg.vocab_size}",
    )


def _throughput(
    r: dict[str, float], flops: float, batch: int, seq: int, peak_tflops: float | None, **info: Any
) -> dict[str, Any]:
    tokens = batch * seq
    achieved = flops / r["step_seconds"] / 1e12
    return {
        **info,
        "batch": batch,
        "seq_len": seq,
        "tokens_per_second": tokens / r["step_seconds"],
        "step_seconds": r["step_seconds"],
        "model_tflops_per_step": flops / 1e12,
        "achieved_model_tflops": achieved,
        "mfu": (achieved / peak_tflops) if peak_tflops else None,
        "peak_memory_bytes": r["peak_memory_bytes"],
        "final_loss": r["final_loss"],
    }


# -- hubmgr's own engine --------------------------------------------------------------------------------
def _words(rng: random.Random, n: int) -> list[str]:
    from hubmgr.testing.models import VOCAB_WORDS

    fillers = [w for w in VOCAB_WORDS if w.isalpha() and w not in ("excellent", "terrible")]
    return [rng.choice(fillers) for _ in range(n)]


def _classification_data(folder: Path, n_train: int, n_eval: int, min_words: int, max_words: int) -> tuple[Path, Path]:
    rng = random.Random(0)

    def rows(n: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(n):
            label = rng.randint(0, 1)
            words = _words(rng, rng.randint(min_words, max_words))
            words.insert(rng.randrange(len(words)), "excellent" if label else "terrible")
            out.append({"text": " ".join(words), "label": label})
        return out

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, n in (("train.jsonl", n_train), ("eval.jsonl", n_eval)):
        p = folder / name
        p.write_text("".join(json.dumps(r) + "\n" for r in rows(n)), encoding="utf-8")
        paths.append(p)
    return paths[0], paths[1]


def _text_data(folder: Path, lines: int) -> Path:
    rng = random.Random(1)
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "corpus.txt"
    p.write_text("\n".join(" ".join(_words(rng, rng.randint(20, 60))) for _ in range(lines)) + "\n", encoding="utf-8")
    return p


def _hubmgr_train(config_values: dict[str, Any]) -> tuple[Any, list[tuple[float, Any]], dict[str, Any]]:
    import torch

    from hubmgr.train.config import TrainConfig
    from hubmgr.train.runner import train

    events: list[tuple[float, Any]] = []
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    result = train(TrainConfig(**config_values), on_event=lambda e: events.append((time.perf_counter(), e)))
    started = next(t for t, e in events if e.kind == "train_started")
    start_ev = next(e for _, e in events if e.kind == "train_started")
    steps = [(t, e) for t, e in events if e.kind == "step"]
    last_t, last = steps[-1]
    loop = last_t - started
    info = {
        "status": "ok" if result.status == "completed" else result.status,
        "device": start_ev.device,
        "steps": last.step,
        "train_examples": start_ev.num_train_examples,
        "trainable_params": start_ev.trainable_params,
        "total_params": start_ev.total_params,
        "loop_seconds": loop,
        "samples_per_second": last.step * config_values.get("batch_size", 32) / loop if loop > 0 else None,
        "metrics": result.metrics,
        "peak_memory_bytes": int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None,
        "config": {k: v for k, v in config_values.items() if k not in ("data", "eval_data", "output_dir", "model")},
    }
    return result, events, info


def part_hubmgr_text_classification(device: str, tiny: bool, work: Path) -> dict[str, Any]:
    import torch
    from transformers import BertForSequenceClassification

    from hubmgr.testing.models import tiny_tokenizer

    tok = tiny_tokenizer("bert", model_max_length=512)
    cfg = minilm_config(tiny, vocab=len(tok))
    cfg.pad_token_id = tok.pad_token_id
    torch.manual_seed(0)
    model_dir = work / "minilm-shape"
    BertForSequenceClassification(cfg).save_pretrained(str(model_dir))
    tok.save_pretrained(str(model_dir))
    n_train, n_eval = (64, 32) if tiny else (8192, 1024)
    train, evl = _classification_data(work / "cls-data", n_train, n_eval, 40, 120)
    values = dict(
        task="text-classification",
        model=str(model_dir),
        data=str(train),
        eval_data=str(evl),
        output_dir=str(work / "cls-out"),
        device=device,
        dtype="bfloat16",
        max_length=128,
    )
    if tiny:
        values["max_steps"] = 3
    _, _, info = _hubmgr_train(values)
    lengths = [
        len(x)
        for x in tok(
            [json.loads(line)["text"] for line in train.read_text().splitlines()[:512]], truncation=True, max_length=128
        )["input_ids"]
    ]
    mean_len = sum(lengths) / len(lengths)
    info["mean_tokens_per_example"] = mean_len
    if info["samples_per_second"]:
        info["tokens_per_second"] = info["samples_per_second"] * mean_len
    info["eval_accuracy"] = info["metrics"].get("eval_accuracy")
    info["shape"] = f"BERT {cfg.num_hidden_layers}x{cfg.hidden_size}, word-level vocab {cfg.vocab_size}"
    return info


def _llama_dir(tiny: bool, work: Path) -> tuple[Path, Any]:
    import torch
    from transformers import LlamaForCausalLM

    from hubmgr.testing.models import tiny_tokenizer

    model_dir = work / "llama-350m-shape"
    tok = tiny_tokenizer("llama", model_max_length=1024)
    cfg = llama_config(
        tiny,
        vocab=len(tok),
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    if (model_dir / "config.json").is_file():
        return model_dir, cfg
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(str(model_dir))
    tok.save_pretrained(str(model_dir))
    del model
    return model_dir, cfg


def part_hubmgr_causal_lm(
    device: str, tiny: bool, work: Path, peak_tflops: float | None, *, qlora: bool = False
) -> dict[str, Any]:
    if qlora:
        if device != "cuda":
            return {"status": "skipped", "reason": "QLoRA needs a CUDA GPU"}
        if not _has("bitsandbytes"):
            return {"status": "skipped", "reason": "bitsandbytes is not installed"}
    model_dir, cfg = _llama_dir(tiny, work)
    corpus = _text_data(work / "lm-data", 200 if tiny else 6000)
    seq = 64 if tiny else 512
    values = dict(
        task="causal-lm",
        model=str(model_dir),
        data=str(corpus),
        eval_strategy="no",
        output_dir=str(work / ("qlora-out" if qlora else "lm-out")),
        device=device,
        dtype="bfloat16",
        max_length=seq,
        max_steps=3 if tiny else 30,
        qlora=qlora,
        save_steps=0,
    )
    _, _, info = _hubmgr_train(values)
    batch = values.get("batch_size", 32)
    lora = cfg.num_hidden_layers * 2 * (cfg.hidden_size * 8 + 8 * cfg.hidden_size)
    flops = lora_step_flops(cfg, batch=batch, seq=seq, lora_params=lora, lm_head=True)
    step_s = info["loop_seconds"] / max(1, info["steps"])
    info["tokens_per_second"] = batch * seq / step_s
    info["achieved_model_tflops"] = flops / step_s / 1e12
    info["mfu"] = info["achieved_model_tflops"] / peak_tflops if peak_tflops else None
    info["shape"] = f"Llama {cfg.num_hidden_layers}x{cfg.hidden_size}, word-level vocab {cfg.vocab_size}"
    info["note"] = "loop time includes the first (warm-up) step"
    return info


# ---------------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        default=os.environ.get("OUT") or str(REPO / "benchmarks" / "results"),
        help="folder for gpu_check.json (default $OUT or benchmarks/results)",
    )
    parser.add_argument(
        "--cpu",
        "--dry-run",
        dest="cpu",
        action="store_true",
        help="tiny sizes on the CPU, to check that the script runs",
    )
    args = parser.parse_args()
    t_start = time.perf_counter()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    work = Path(tempfile.mkdtemp(prefix="hubmgr-gpu-check-"))
    os.environ["HUBMGR_HOME"] = str(work / "hubmgr_home")
    os.environ["HF_HOME"] = str(work / "hf_home")

    import torch

    device = "cpu" if args.cpu or not torch.cuda.is_available() else "cuda"
    tiny = device == "cpu"
    if device == "cpu" and not args.cpu:
        RESULT["notes"].append("No CUDA GPU is visible: ran the tiny CPU version.")
    RESULT["mode"] = "cpu-dry-run" if tiny else "cuda"
    global RESULT_PATH
    RESULT_PATH = Path(args.out) / ("gpu_check_cpu_dry_run.json" if tiny else "gpu_check.json")
    RESULT["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    part("environment", lambda: part_environment(device))
    shims = install_shims()
    if shims:
        RESULT["notes"].append("Stand-ins used for missing packages: " + ", ".join(shims) + ".")
    RESULT["shims"] = shims
    part("matmul_peak", lambda: part_matmul(device, tiny))
    peak = RESULT["parts"]["matmul_peak"].get("peak_tflops")
    part("raw_lora_minilm", lambda: part_raw_minilm(device, tiny, peak))
    part("raw_lora_llama", lambda: part_raw_llama(device, tiny, peak))
    tasks: list[str] = []
    try:
        tasks = register_builtin_tasks()
        RESULT["hubmgr_tasks"] = tasks
    except Exception as exc:  # noqa: BLE001
        RESULT["notes"].append(f"hubmgr could not register its tasks: {type(exc).__name__}: {exc}")
    part("hubmgr_text_classification", lambda: part_hubmgr_text_classification(device, tiny, work))
    part("hubmgr_causal_lm", lambda: part_hubmgr_causal_lm(device, tiny, work, peak))
    part("hubmgr_qlora", lambda: part_hubmgr_causal_lm(device, tiny, work, peak, qlora=True))

    RESULT["seconds"] = round(time.perf_counter() - t_start, 1)
    errors = [k for k, v in RESULT["parts"].items() if v.get("status") == "error"]
    RESULT["status"] = "ok" if not errors else "partial"
    RESULT["errors"] = errors
    save()
    summary(RESULT_PATH)
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return 0


def summary(path: Path) -> None:
    p = RESULT["parts"]
    env = p.get("environment", {})
    gpu = (env.get("gpu") or {}).get("name", env.get("device"))
    print("\n==== gpu_check summary ====")
    print(f"device: {gpu}   torch {env.get('versions', {}).get('torch')}   total {RESULT['seconds']} s")
    mm = p.get("matmul_peak", {})
    if mm.get("status") == "ok":
        print(
            f"bf16 matmul peak: {mm['peak_tflops']:.1f} TFLOP/s"
            + (f"   tf32: {mm['tf32']['peak_tflops']:.1f}" if "tf32" in mm else "")
        )
    for name in ("raw_lora_minilm", "raw_lora_llama", "hubmgr_text_classification", "hubmgr_causal_lm", "hubmgr_qlora"):
        r = p.get(name, {})
        if r.get("status") != "ok":
            print(f"{name:28s} {r.get('status')}: {r.get('error') or r.get('reason')}")
            continue
        parts = []
        if r.get("tokens_per_second"):
            parts.append(f"{r['tokens_per_second']:,.0f} tokens/s")
        if r.get("samples_per_second"):
            parts.append(f"{r['samples_per_second']:,.1f} samples/s")
        if r.get("mfu") is not None:
            parts.append(f"MFU {r['mfu']:.1%}")
        if r.get("peak_memory_bytes"):
            parts.append(f"peak mem {r['peak_memory_bytes'] / 2**30:.2f} GiB")
        if r.get("eval_accuracy") is not None:
            parts.append(f"eval acc {r['eval_accuracy']:.3f}")
        print(f"{name:28s} " + ", ".join(parts))
    if RESULT["notes"]:
        print("notes: " + " ".join(RESULT["notes"]))
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
