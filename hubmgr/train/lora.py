"""LoRA helpers: which layers to adapt for an architecture, and the peft ``LoraConfig``.

torch and peft are imported inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from hubmgr.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.task import LoraDefaults
    from hubmgr.train.config import TrainConfig

# Layers to adapt, by ``config.model_type``; only the names present in the model are used.
#
# Encoders (BERT and relatives) get every linear layer of the transformer blocks: attention query, key,
# value and output, and the feed-forward pair (``dense`` names all of the latter). Measured on SST-2,
# all-MiniLM-L6-v2, r=8, one epoch, 2 CPU threads: query/value only reached 0.846 dev accuracy; all
# linear layers 0.860, and 0.864 with the model's own dropout off (the default; TrainConfig.keep_model_dropout), at
# about the speed of query/value with dropout on (118 vs 124 samples/s; query/value without dropout:
# 145). Decoders keep the classic query/value projections (Hu et al.): most of the gain for a fraction
# of the cost on large models. transformers 5 renamed ViT's ``query``/``value`` to ``q_proj``/``v_proj``.
# peft's own table fills in the architectures missing here.
_BERT_ALL = ["query", "key", "value", "dense"]
_ARCH_TARGETS: dict[str, list[str]] = {
    # encoders: all linear layers of the blocks
    "bert": _BERT_ALL,
    "roberta": _BERT_ALL,
    "xlm-roberta": _BERT_ALL,
    "camembert": _BERT_ALL,
    "electra": _BERT_ALL,
    "layoutlm": _BERT_ALL,
    "ernie": _BERT_ALL,
    "albert": _BERT_ALL + ["ffn", "ffn_output"],
    "mpnet": ["q", "k", "v", "o", "dense"],
    "distilbert": ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"],
    "deberta-v2": ["query_proj", "key_proj", "value_proj", "dense"],
    "modernbert": ["Wqkv", "Wo", "Wi"],
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
_HEAD_NAMES = {
    "classifier",
    "score",
    "lm_head",
    "head",
    "qa_outputs",
    "cls",
    "pooler",
    "dense_head",
    "output_projection",
    "embed_out",
}
# Attention projection names tried, in order, when the architecture is unknown.
_ATTENTION_GUESSES = (
    ("q_proj", "v_proj"),
    ("query", "value"),
    ("q_lin", "v_lin"),
    ("query_proj", "value_proj"),
    ("c_attn",),
    ("qkv_proj",),
    ("query_key_value",),
    ("Wqkv",),
    ("qkv",),
    ("q", "v"),
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


def architecture_targets(model_type: str | None) -> list[str] | None:
    """The layers :func:`find_target_modules` adapts by default for a ``config.model_type`` in the table
    above (only those the model has are used), or ``None`` for an architecture not in it."""
    found = _ARCH_TARGETS.get(model_type or "")
    return list(found) if found is not None else None


def find_target_modules(model: Any) -> list[str]:
    """The layers to adapt with LoRA for this model's architecture.

    BERT-like encoders get every linear layer of their blocks (``query``, ``key``, ``value``, ``dense``);
    ViT and decoders their attention query/value projections (``q_proj``/``v_proj`` for Llama and
    Mistral, ``c_attn`` for GPT-2); unknown architectures the first matching attention naming scheme,
    and failing that every linear layer except output heads.

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
    candidates = architecture_targets(model_type)
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
        raise ModelError(
            f"The model ({model_type or type(_base(model)).__name__}) has no linear layers that LoRA can adapt."
        )
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


def resolve_target_modules(
    model: Any, requested: Iterable[str] | None, task_targets: Iterable[str] | None
) -> list[str]:
    """The layers a run adapts, checked against the model: the user's (``--target-modules``), else the
    task's (``LoraDefaults.target_modules``), else :func:`find_target_modules`. The one place that order is
    decided; training and the checks before it call this.

    Raises:
        ModelError: a named target that is not a linear layer of the model, or a model with none.
    """
    requested = [t for t in (requested or []) if str(t).strip()]
    if requested:
        return check_target_modules(model, requested)
    task_targets = [t for t in (task_targets or []) if str(t).strip()]
    return check_target_modules(model, task_targets or find_target_modules(model))


def build_lora_config(
    config: "TrainConfig", defaults: "LoraDefaults", *, target_modules: list[str] | None = None, model: Any = None
) -> Any:
    """The peft ``LoraConfig`` for a run.

    Args:
        config: the run's TrainConfig (r, alpha, dropout, rsLoRA, DoRA).
        defaults: the task's LoraDefaults (task type, targets, modules kept trainable).
        target_modules: the targets from :func:`resolve_target_modules` (default: resolved on ``model``).
        model: the base model: its targets are resolved on it when none are given, and it sets
            ``fan_in_fan_out`` for GPT-2 style ``Conv1D`` layers.

    Returns:
        A ``peft.LoraConfig``.
    """
    from peft import LoraConfig

    targets = list(target_modules or resolve_target_modules(model, config.target_modules, defaults.target_modules))
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


# Config keys that hold a dropout probability, across architectures.
_DROPOUT_KEYS = (
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "attention_dropout",
    "dropout",
    "resid_pdrop",
    "embd_pdrop",
    "attn_pdrop",
    "summary_first_dropout",
    "hidden_dropout",
    "activation_dropout",
    "classifier_dropout",
)
# Module attributes that hold a float dropout probability used directly by attention functions.
_DROPOUT_ATTRS = ("attention_dropout", "dropout_p", "attn_dropout_p")


def set_model_dropout(model: Any, p: float) -> int:
    """Set every dropout of a (not yet LoRA-wrapped) model to ``p``: ``nn.Dropout`` modules, the float
    dropout rates attention layers read, and the config (so that it stays truthful).

    Dropout is costly on a CPU (random numbers for every activation) and a frozen base model barely
    needs it when only LoRA adapters learn.

    Args:
        model: a transformers model.
        p: the new probability (0 turns dropout off).

    Returns:
        How many dropout layers or rates were changed.
    """
    import torch

    changed = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            if module.p != p:
                module.p = p
                changed += 1
        for attr in _DROPOUT_ATTRS:
            value = getattr(module, attr, None)
            if isinstance(value, float) and value != p:
                setattr(module, attr, p)
                changed += 1
    config = getattr(model, "config", None)
    if config is not None:
        for key in _DROPOUT_KEYS:
            value = getattr(config, key, None)
            if isinstance(value, float) and not isinstance(value, bool):
                setattr(config, key, p)
    return changed
