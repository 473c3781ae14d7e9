"""Will LoRA training of this model fit in memory here? Pure arithmetic, no torch.

:func:`estimate_fit` adds up the memory that LoRA fine-tuning needs and compares it with this machine's
available RAM (psutil) and each CUDA GPU's free memory (NVML through ``nvidia-ml-py``; no driver means no
GPUs, not an error). The verdict per device: ``fits`` when the estimate is under 80% of the free memory,
``tight`` when under 100%, else ``won't fit``.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from hubmgr.errors import ModelError, UsageError
from hubmgr.train.budget import BATCH_SIZES
from hubmgr.train.config import TrainConfig

#: what training does by default, so that an estimate describes the run ``hubmgr train`` starts:
#: its LoRA rank, its max length, and the largest batch the default batch size may choose
TRAIN_RANK = TrainConfig.lora_r
TRAIN_BATCH = BATCH_SIZES[0]
TRAIN_SEQ_LEN = TrainConfig.max_length

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.hub.info import ModelDetails

#: Bytes per parameter of the frozen base weights.
DTYPE_BYTES: dict[str, float] = {
    "float32": 4.0,
    "float16": 2.0,
    "bfloat16": 2.0,
    "int8": 1.0,
    "int4": 0.5,
}
_DTYPE_ALIASES = {
    "fp32": "float32",
    "f32": "float32",
    "float": "float32",
    "fp16": "float16",
    "f16": "float16",
    "half": "float16",
    "bf16": "bfloat16",
    "i8": "int8",
    "8bit": "int8",
    "i4": "int4",
    "4bit": "int4",
    "nf4": "int4",
}
#: safetensors dtype names -> ours.
SAFETENSORS_DTYPES = {
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I8": "int8",
    "U8": "int8",
    "F64": "float32",
    "I64": "float32",
    "I32": "float32",
}

#: Bytes per trainable (LoRA) parameter: fp32 weight 4 + fp32 gradient 4 + AdamW first and second moments 8.
LORA_WEIGHT_BYTES = 4
LORA_GRAD_BYTES = 4
LORA_OPTIMIZER_BYTES = 8
#: in + out features of a block's linear layer, by its short name, as ``(a, b)`` for ``a * hidden +
#: b * intermediate`` (intermediate: the feed-forward width). A LoRA pair on a layer of ``in x out``
#: features holds ``rank * (in + out)`` parameters. ``dense`` is BERT's three (attention output h -> h,
#: feed-forward h -> i and i -> h); fused projections (``c_attn``, ``Wqkv``) are h -> 3h. A name not
#: listed counts as an attention projection (h -> h).
LINEAR_WIDTHS: dict[str, tuple[int, int]] = {
    **{
        name: (2, 0)
        for name in (
            "query",
            "key",
            "value",
            "q",
            "k",
            "v",
            "o",
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "out_proj",
            "q_lin",
            "k_lin",
            "v_lin",
            "out_lin",
            "query_proj",
            "key_proj",
            "value_proj",
            "Wo",
        )
    },
    **{name: (4, 0) for name in ("c_attn", "Wqkv", "qkv_proj", "query_key_value", "qkv")},
    **{
        name: (1, 1)
        for name in ("lin1", "lin2", "ffn", "ffn_output", "fc1", "fc2", "up_proj", "down_proj", "gate_proj", "c_fc")
    },
    "dense": (4, 2),
    "Wi": (1, 2),
}
#: What training adapts when the architecture is not in its table: every linear layer of a block
#: (attention q, k, v, o and the feed-forward pair), ``10 * hidden + 2 * intermediate`` in + out.
ALL_BLOCK_LINEARS = ("q", "k", "v", "o", "fc1", "fc2")
#: Trainable share of the parameters at rank 8 when hidden size / layers are unknown.
LORA_SHARE_AT_RANK_8 = 0.005
#: Activation values kept per token, per hidden unit, per layer for the backward pass.
ACTIVATION_FACTOR = 16
#: Framework overhead: the larger of this share of the subtotal and OVERHEAD_MIN_BYTES.
OVERHEAD_SHARE = 0.15
OVERHEAD_MIN_BYTES = 500 * 1024**2
#: Verdict thresholds (share of free memory).
FITS_BELOW = 0.8


@dataclass(frozen=True)
class DeviceFit:
    """One device and the verdict for it.

    Attributes:
        name: ``RAM`` or the GPU's name (``cuda:0 NVIDIA H100``).
        kind: ``cpu`` or ``cuda``.
        total_bytes: its memory.
        free_bytes: available RAM / free GPU memory now.
        verdict: ``fits`` (< 80% of free), ``tight`` (< free) or ``won't fit``.
    """

    name: str
    kind: str
    total_bytes: int
    free_bytes: int
    verdict: str = ""


@dataclass(frozen=True)
class FitReport:
    """The estimate and the verdict per device.

    Attributes:
        required_bytes: the total estimate.
        breakdown: bytes per part: ``weights``, ``lora_weights``, ``gradients``, ``optimizer``,
            ``activations``, ``overhead``.
        devices: the verdict for RAM and each GPU.
        param_count: parameters of the base model.
        trainable_params: LoRA parameters (estimated).
        dtype, lora_rank, batch_size, seq_len: the setting that was estimated.
        hidden_size, num_layers: as given, or estimated from the parameter count (``estimated_shape``).
    """

    required_bytes: int
    breakdown: dict[str, int]
    devices: list[DeviceFit] = field(default_factory=list)
    param_count: int = 0
    trainable_params: int = 0
    dtype: str = "float32"
    lora_rank: int = TRAIN_RANK
    batch_size: int = TRAIN_BATCH
    seq_len: int = TRAIN_SEQ_LEN
    hidden_size: int | None = None
    num_layers: int | None = None
    estimated_shape: bool = False

    @property
    def best_verdict(self) -> str:
        """The best verdict over all devices (``won't fit`` when there are none)."""
        order = ["fits", "tight", "won't fit"]
        verdicts = [d.verdict for d in self.devices if d.verdict in order]
        return min(verdicts, key=order.index) if verdicts else "won't fit"


def normalize_dtype(dtype: str) -> str:
    """``fp16`` -> ``float16`` etc.

    Raises:
        UsageError: unknown dtype.
    """
    key = str(dtype).strip().lower().replace("torch.", "")
    key = _DTYPE_ALIASES.get(key, key)
    if key not in DTYPE_BYTES:
        raise UsageError(f"Unknown dtype '{dtype}': use one of {', '.join(DTYPE_BYTES)}.")
    return key


def parse_param_count(text: str | int) -> int:
    """``"7B"``, ``"110M"``, ``"1.5e9"``, ``"4_385_920"`` -> an int.

    Raises:
        UsageError: not a positive number.
    """
    if isinstance(text, int):
        value = float(text)
    else:
        m = re.fullmatch(r"\s*([0-9][0-9_,]*\.?[0-9]*(?:e[+-]?[0-9]+)?)\s*([kmbt]?)\s*", str(text).lower())
        if not m:
            raise UsageError(f"'{text}' is not a parameter count (try 110M, 7B or 125000000).")
        mult = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}[m.group(2)]
        value = float(m.group(1).replace("_", "").replace(",", "")) * mult
    if not math.isfinite(value) or value < 1:
        raise UsageError(f"The parameter count must be positive, not {text}.")
    return int(value)


def estimate_shape(param_count: int) -> tuple[int, int]:
    """Guess ``(hidden_size, num_layers)`` of a transformer from its parameter count.

    A block holds about ``12 * hidden**2`` parameters and common models have about one layer per 128
    hidden units, so ``params ~= 12 * hidden**3 / 128``. (BERT-base: 110M -> ~1050 x 8 vs 768 x 12;
    Llama-7B: 7B -> ~4200 x 33 vs 4096 x 32.)
    """
    hidden = max(64, int(round((param_count * 128 / 12) ** (1 / 3))))
    layers = max(1, int(round(hidden / 128)))
    return hidden, layers


def required_memory(
    param_count: int,
    *,
    dtype: str = "float32",
    lora_rank: int = TRAIN_RANK,
    batch_size: int = TRAIN_BATCH,
    seq_len: int = TRAIN_SEQ_LEN,
    num_layers: int | None = None,
    hidden_size: int | None = None,
    intermediate_size: int | None = None,
    target_modules: Sequence[str] | None = None,
) -> tuple[int, dict[str, int], int, tuple[int, int, bool]]:
    """The memory LoRA training needs, part by part (see :func:`estimate_fit` for the formula).

    Returns:
        ``(total_bytes, breakdown, trainable_params, (hidden_size, num_layers, estimated))``.

    Raises:
        UsageError: a non-positive number or an unknown dtype.
    """
    dtype = normalize_dtype(dtype)
    for name, value in (
        ("param count", param_count),
        ("LoRA rank", lora_rank),
        ("batch size", batch_size),
        ("sequence length", seq_len),
    ):
        if int(value) < 1:
            raise UsageError(f"The {name} must be positive, not {value}.")
    estimated = not (hidden_size and num_layers)
    if hidden_size and num_layers:
        hidden, layers = int(hidden_size), int(num_layers)
    else:
        hidden, layers = estimate_shape(param_count)
        hidden = hidden_size or hidden
        layers = num_layers or layers

    if hidden_size and num_layers:
        trainable = layers * lora_rank * targeted_width(target_modules, hidden, intermediate_size or 4 * hidden)
    else:
        trainable = int(param_count * LORA_SHARE_AT_RANK_8 * lora_rank / 8)
    trainable = max(1, min(trainable, param_count))

    act_bytes = 4 if dtype == "float32" else 2  # quantised bases compute in 16-bit
    breakdown = {
        "weights": int(math.ceil(param_count * DTYPE_BYTES[dtype])),
        "lora_weights": trainable * LORA_WEIGHT_BYTES,
        "gradients": trainable * LORA_GRAD_BYTES,
        "optimizer": trainable * LORA_OPTIMIZER_BYTES,
        "activations": batch_size * seq_len * hidden * layers * act_bytes * ACTIVATION_FACTOR,
    }
    subtotal = sum(breakdown.values())
    breakdown["overhead"] = int(max(subtotal * OVERHEAD_SHARE, OVERHEAD_MIN_BYTES))
    return sum(breakdown.values()), breakdown, trainable, (hidden, layers, estimated)


def targeted_width(target_modules: Sequence[str] | None, hidden: int, intermediate: int) -> int:
    """The in + out features, summed over the layers LoRA adapts in one block (see :data:`LINEAR_WIDTHS`).

    Args:
        target_modules: short names of the adapted layers; ``None`` is every linear layer of a block.
        hidden: the model width.
        intermediate: the feed-forward width.
    """
    names = ALL_BLOCK_LINEARS if target_modules is None else target_modules
    return sum(a * hidden + b * intermediate for a, b in (LINEAR_WIDTHS.get(n, (2, 0)) for n in names))


def verdict(required_bytes: int, free_bytes: int) -> str:
    """``fits`` when ``required < 0.8 * free``, ``tight`` when ``required < free``, else ``won't fit``."""
    if required_bytes < FITS_BELOW * free_bytes:
        return "fits"
    if required_bytes < free_bytes:
        return "tight"
    return "won't fit"


def _visible_gpu_indices(count: int) -> list[int]:
    raw = os.environ.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return list(range(count))
    raw = raw.strip()
    if raw == "" or raw == "-1":
        return []
    picked = []
    for part in raw.split(","):
        part = part.strip()
        if not part.isdigit():  # UUIDs or MIG ids: do not try to be clever
            return list(range(count))
        if int(part) < count:
            picked.append(int(part))
    return picked


def cuda_devices() -> list[DeviceFit]:
    """Each visible CUDA GPU with its total and free memory (NVML). No driver or library: ``[]``."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return []
    devices: list[DeviceFit] = []
    try:
        count = pynvml.nvmlDeviceGetCount()
        for pos, index in enumerate(_visible_gpu_indices(count)):
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                name = pynvml.nvmlDeviceGetName(handle)
                if isinstance(name, bytes):
                    name = name.decode(errors="replace")
                mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception:
                continue
            devices.append(
                DeviceFit(name=f"cuda:{pos} {name}", kind="cuda", total_bytes=int(mem.total), free_bytes=int(mem.free))
            )
    except Exception:
        pass
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
    return devices


def cpu_device() -> DeviceFit:
    """This machine's RAM: total and available (psutil)."""
    import psutil

    vm = psutil.virtual_memory()
    return DeviceFit(name="RAM", kind="cpu", total_bytes=int(vm.total), free_bytes=int(vm.available))


def detect_devices() -> list[DeviceFit]:
    """RAM first, then each CUDA GPU (no verdicts yet)."""
    return [cpu_device(), *cuda_devices()]


def estimate_fit(
    param_count: int,
    *,
    dtype: str = "float32",
    lora_rank: int = TRAIN_RANK,
    batch_size: int = TRAIN_BATCH,
    seq_len: int = TRAIN_SEQ_LEN,
    num_layers: int | None = None,
    hidden_size: int | None = None,
    intermediate_size: int | None = None,
    target_modules: Sequence[str] | None = None,
    devices: list[DeviceFit] | None = None,
) -> FitReport:
    """Estimate the memory LoRA training needs and judge it against RAM and each GPU.

    The formula (bytes)::

        weights      = params * bytes(dtype)              # frozen base: 4 fp32, 2 fp16/bf16, 1 int8, 0.5 int4
        trainable    = layers * rank * sum(in + out)      # LoRA A (r x in) + B (out x r) on each adapted
                                                          # layer of a block (LINEAR_WIDTHS); by default
                                                          # every linear layer: q, k, v, o (h -> h) and
                                                          # the feed-forward pair (h -> i, i -> h), so
                                                          # layers * rank * (10 * h + 2 * i), i = 4h unless known
                       (or params * 0.5% * rank / 8 when hidden size / layers are unknown)
        lora_weights = trainable * 4                      # fp32
        gradients    = trainable * 4                      # fp32
        optimizer    = trainable * 8                      # AdamW: two fp32 moments
        activations  = batch * seq * hidden * layers * act_bytes * 16
                       (act_bytes 4 for a float32 base, else 2; 16 values kept per token, hidden unit
                       and layer for the backward pass; unknown hidden/layers are estimated from params,
                       see estimate_shape)
        overhead     = max(15% of the above, 500 MiB)     # CUDA context, allocator slack, buffers

    Verdict per device: ``fits`` below 80% of its free memory, ``tight`` below 100%, else ``won't fit``.

    Args:
        param_count: parameters of the base model.
        dtype: dtype of the frozen weights: float32, float16, bfloat16, int8, int4 (aliases fp16, bf16, ...).
        lora_rank: LoRA rank r.
        batch_size: sequences per step.
        seq_len: tokens per sequence.
        num_layers: transformer blocks, when known (config.json ``num_hidden_layers``).
        hidden_size: model width, when known (config.json ``hidden_size``).
        intermediate_size: feed-forward width, when known (config.json ``intermediate_size``; default
            4 x hidden).
        target_modules: short names of the layers LoRA adapts in each block (what training picks for
            the architecture, :func:`hubmgr.train.lora.architecture_targets`); ``None``: every linear
            layer of a block.
        devices: devices to judge against; detected (RAM + CUDA GPUs) when None.

    Returns:
        A :class:`FitReport`.

    Raises:
        UsageError: a non-positive number or an unknown dtype.
    """
    total, breakdown, trainable, (hidden, layers, estimated) = required_memory(
        param_count,
        dtype=dtype,
        lora_rank=lora_rank,
        batch_size=batch_size,
        seq_len=seq_len,
        num_layers=num_layers,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        target_modules=target_modules,
    )
    found = detect_devices() if devices is None else devices
    judged = [
        DeviceFit(
            name=d.name,
            kind=d.kind,
            total_bytes=d.total_bytes,
            free_bytes=d.free_bytes,
            verdict=verdict(total, d.free_bytes),
        )
        for d in found
    ]
    return FitReport(
        required_bytes=total,
        breakdown=breakdown,
        devices=judged,
        param_count=int(param_count),
        trainable_params=trainable,
        dtype=normalize_dtype(dtype),
        lora_rank=lora_rank,
        batch_size=batch_size,
        seq_len=seq_len,
        hidden_size=hidden,
        num_layers=layers,
        estimated_shape=estimated,
    )


def _first_int(config: dict[str, Any], *keys: str) -> int | None:
    text_config = config.get("text_config")
    for source in (config, text_config if isinstance(text_config, dict) else {}):
        for key in keys:
            value = source.get(key)
            if isinstance(value, int) and value > 0:
                return value
    return None


def shape_from_config(config: dict[str, Any]) -> tuple[int | None, int | None]:
    """``(hidden_size, num_layers)`` from a transformers config.json (BERT, GPT-2, Llama, ViT, T5 names)."""
    hidden = _first_int(config, "hidden_size", "n_embd", "d_model", "dim", "embed_dim")
    layers = _first_int(config, "num_hidden_layers", "n_layer", "num_layers", "n_layers")
    return hidden, layers


def intermediate_from_config(config: dict[str, Any]) -> int | None:
    """The feed-forward width from a transformers config.json (BERT, GPT-2, T5, BART names), or None."""
    return _first_int(
        config, "intermediate_size", "n_inner", "d_ff", "ffn_dim", "encoder_ffn_dim", "dim_feedforward", "hidden_dim"
    )


def dtype_from_details(dtypes: dict[str, int]) -> str:
    """The dtype holding most parameters (safetensors names mapped to ours), ``float32`` when unknown."""
    if not dtypes:
        return "float32"
    top = max(dtypes.items(), key=lambda kv: kv[1])[0]
    return SAFETENSORS_DTYPES.get(top.upper(), "float32")


def estimate_fit_for_model(
    details: "ModelDetails",
    *,
    dtype: str | None = None,
    lora_rank: int = TRAIN_RANK,
    batch_size: int = TRAIN_BATCH,
    seq_len: int = TRAIN_SEQ_LEN,
    devices: list[DeviceFit] | None = None,
) -> FitReport:
    """:func:`estimate_fit` for a repo described by :func:`hubmgr.hub.info.get_model_info`.

    Uses its parameter count, ``hidden_size`` / ``num_hidden_layers`` / ``intermediate_size`` from its
    config.json when that was read, the layers training adapts for its ``model_type`` (every linear layer
    of a block for an architecture training has no table entry for), and the dtype holding most of its
    weights unless ``dtype`` is given.

    Args:
        details: the repo.
        dtype: override the weights' dtype (e.g. to plan bf16 or 4-bit training).
        lora_rank, batch_size, seq_len, devices: as for :func:`estimate_fit`.

    Returns:
        A :class:`FitReport`.

    Raises:
        ModelError: the parameter count is unknown (no safetensors weights).
        UsageError: bad numbers or dtype.
    """
    if not details.param_count:
        raise ModelError(
            f"The parameter count of '{details.id}' is unknown (no safetensors weights): pass --params instead."
        )
    from hubmgr.train.lora import architecture_targets

    config = details.config or {}
    hidden, layers = shape_from_config(config)
    return estimate_fit(
        details.param_count,
        dtype=dtype or dtype_from_details(details.dtypes),
        lora_rank=lora_rank,
        batch_size=batch_size,
        seq_len=seq_len,
        num_layers=layers,
        hidden_size=hidden,
        intermediate_size=intermediate_from_config(config),
        target_modules=architecture_targets(config.get("model_type")),
        devices=devices,
    )
