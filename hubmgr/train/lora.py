"""LoRA helpers: which layers to adapt for an architecture, and the peft ``LoraConfig``.

torch and peft are imported inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from hubmgr.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.task import LoraDefaults
    from hubmgr.train.config import TrainConfig

# Attention projections to adapt, by ``config.model_type``. The query and value projections are the
# classic LoRA choice (Hu et al.): most of the gain for a fraction of the cost. Only the names present in
# the model are used (transformers 5 renamed ViT's ``query``/``value`` to ``q_proj``/``v_proj``). peft's
# own table fills in the architectures missing here.
_ARCH_TARGETS: dict[str, list[str]] = {
    # encoders
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "xlm-roberta": ["query", "value"],
    "camembert": ["query", "value"],
    "electra": ["query", "value"],
    "albert": ["query", "value"],
    "layoutlm": ["query", "value"],
    "ernie": ["query", "value"],
    "mpnet": ["q", "v"],
    "distilbert": ["q_lin", "v_lin"],
    "deberta-v2": ["query_proj", "value_proj"],
    "modernbert": ["Wqkv"],
    # vision
    "vit": ["query", "value", "q_proj", "v_proj"],
    "deit": ["query", "value", "q_proj", "v_proj"],
    "beit": ["query", "value", "q_proj", "v_proj"],
    "dinov2": ["query", "value", "q_proj", "v_proj"],
    "swin": ["query", "value", "q_proj", "v_proj"],
    "vit_mae": ["query", "value", "q_proj", "v_proj"],
    # decoders
    "gpt2": ["c_attn"],
    "llama": ["q_proj", "v_proj"],
    "mistral": ["q_proj", "v_proj"],
    "qwen2": ["q_proj", "v_proj"],
    "qwen3": ["q_proj", "v_proj"],
    "gemma": ["q_proj", "v_proj"],
    "gemma2": ["q_proj", "v_proj"],
    "phi3": ["qkv_proj"],
    "olmo": ["q_proj", "v_proj"],
    "smollm3": ["q_proj", "v_proj"],
}

# Names of output heads: never adapted by the fallback (they are trained in full through modules_to_save).
_HEAD_NAMES = {"classifier", "score", "lm_head", "head", "qa_outputs", "cls", "pooler", "dense_head",
               "output_projection", "embed_out"}
# Attention projection names tried, in order, when the architecture is unknown.
_ATTENTION_GUESSES = (
    ("q_proj", "v_proj"), ("query", "value"), ("q_lin", "v_lin"), ("query_proj", "value_proj"),
    ("c_attn",), ("qkv_proj",), ("query_key_value",), ("Wqkv",), ("qkv",), ("q", "v"),
)
_LINEAR_CLASS_NAMES = {"Linear", "Conv1D", "Linear4bit", "Linear8bitLt", "NonDynamicallyQuantizableLinear"}


def _base(model: Any) -> Any:
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def _linear_modules(model: Any) -> list[tuple[str, Any]]:
    out = []
    for name, module in _base(model).named_modules():
        if not name:
            continue
        if type(module).__name__ in _LINEAR_CLASS_NAMES:
            out.append((name, module))
    return out


def list_linear_module_names(model: Any) -> list[str]:
    """The distinct short names (last dotted component) of the model's linear layers.

    Args:
        model: a transformers model (or a peft model wrapping one).

    Returns:
        Sorted names such as ``["dense", "key", "query", "value"]``; these are what ``target_modules``
        accepts.
    """
    return sorted({name.rsplit(".", 1)[-1] for name, _ in _linear_modules(model)})


def _is_head(full_name: str) -> bool:
    return any(part in _HEAD_NAMES for part in full_name.split("."))


def find_target_modules(model: Any) -> list[str]:
    """The layers to adapt with LoRA for this model's architecture.

    Known architectures get their attention query/value projections (``query``/``value`` for BERT and
    ViT, ``q_proj``/``v_proj`` for Llama and Mistral, ``c_attn`` for GPT-2); unknown ones get the
    first matching attention naming scheme, and failing that every linear layer except output heads.

    Args:
        model: a transformers model (or a peft model wrapping one).

    Returns:
        Short module names that exist in the model.

    Raises:
        ModelError: the model has no linear layers to adapt.
    """
    linear = _linear_modules(model)
    names = {name.rsplit(".", 1)[-1] for name, _ in linear}
    model_type = getattr(getattr(_base(model), "config", None), "model_type", None)
    candidates = _ARCH_TARGETS.get(model_type or "")
    if candidates is None and model_type:
        try:
            from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as peft_map
        except ImportError:  # pragma: no cover
            peft_map = {}
        found = peft_map.get(model_type)
        if isinstance(found, (list, tuple)):
            candidates = list(found)
    if candidates:
        present = [c for c in candidates if c in names]
        if present:
            return present
    for guess in _ATTENTION_GUESSES:
        if all(g in names for g in guess):
            return list(guess)
    body = sorted({name.rsplit(".", 1)[-1] for name, _ in linear if not _is_head(name)})
    if not body:
        raise ModelError(f"The model ({model_type or type(_base(model)).__name__}) has no linear layers that LoRA can adapt.")
    return body


def check_target_modules(model: Any, targets: Iterable[str]) -> list[str]:
    """Check that each target names a linear layer of the model (by short name or full dotted name).

    Args:
        model: a transformers model.
        targets: module names given by the user or the task.

    Returns:
        The targets, stripped, duplicates removed.

    Raises:
        ModelError: a target that matches no linear layer; the message lists the ones that exist.
    """
    wanted = []
    for t in targets:
        t = t.strip()
        if t and t not in wanted:
            wanted.append(t)
    linear = [name for name, _ in _linear_modules(model)]
    missing = [t for t in wanted if not any(n == t or n.endswith("." + t) for n in linear)]
    if missing:
        available = list_linear_module_names(model)
        raise ModelError(
            f"Target module(s) {', '.join(repr(m) for m in missing)} not found in the model;"
            f" its linear layers are: {', '.join(available) or 'none'}."
        )
    return wanted


def build_lora_config(config: "TrainConfig", defaults: "LoraDefaults", *, target_modules: list[str] | None = None,
                      model: Any = None) -> Any:
    """The peft ``LoraConfig`` for a run.

    Args:
        config: the run's TrainConfig (r, alpha, dropout, rsLoRA, DoRA).
        defaults: the task's LoraDefaults (task type, targets, modules kept trainable).
        target_modules: the checked targets (default: ``config.target_modules`` or the task's).
        model: the base model, used to set ``fan_in_fan_out`` for GPT-2 style ``Conv1D`` layers.

    Returns:
        A ``peft.LoraConfig``.
    """
    from peft import LoraConfig

    targets = list(target_modules or config.target_modules or defaults.target_modules)
    fan_in_fan_out = False
    if model is not None:
        for name, module in _linear_modules(model):
            short = name.rsplit(".", 1)[-1]
            if short in targets and type(module).__name__ == "Conv1D":
                fan_in_fan_out = True
                break
    kwargs: dict[str, Any] = dict(
        r=int(config.lora_r),
        lora_alpha=int(config.lora_alpha) if float(config.lora_alpha).is_integer() else config.lora_alpha,
        lora_dropout=float(config.lora_dropout),
        target_modules=targets,
        use_rslora=bool(config.use_rslora),
        use_dora=bool(config.use_dora),
        bias="none",
        fan_in_fan_out=fan_in_fan_out,
    )
    if defaults.modules_to_save:
        kwargs["modules_to_save"] = list(defaults.modules_to_save)
    if defaults.task_type:
        kwargs["task_type"] = defaults.task_type
    return LoraConfig(**kwargs)
