"""Built-in task: causal language modelling.

Three data formats:

* ``instruction``: ``prompt``/``response`` columns; the loss is on the response tokens only.
* ``chat``: a ``messages`` column of ``[{"role": ..., "content": ...}]``; the loss is on the assistant
  turns only. The tokenizer's ``chat_template`` renders the conversation where it has one; otherwise a
  plain ``### Instruction: / ### Response:`` layout is used (instruction data goes the same way).
* ``text``: plain text (a ``.txt`` file or a ``text`` column), tokenized and packed into blocks of
  ``max_length`` tokens; the loss is on every token.

The metric is perplexity. ``reduce_logits`` turns each batch's logits into ``[batch, 2]`` rows of
(summed negative log-likelihood of the labelled tokens, number of labelled tokens), so evaluation never
gathers vocabulary-sized logits; ``compute_metrics`` sums them into ``exp(total nll / total tokens)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from hubmgr.errors import DataError
from hubmgr.hookspecs import hookimpl
from hubmgr.task import DataSource, LoraDefaults, Task, TaskData

from hubmgr_tasks import _common

FORMATS = ("auto", "instruction", "chat", "text")
PLAIN_INSTRUCTION = "### Instruction:\n{content}\n\n### Response:\n"


@dataclass
class CausalLMOptions:
    """Options of the causal-lm task."""

    format: str = field(
        default="auto",
        metadata={"help": "Data format: auto, instruction (prompt/response), chat (messages) or text (plain corpus)."},
    )
    prompt_column: str = field(default="prompt", metadata={"help": "Instruction format: the column with the prompt."})
    response_column: str = field(
        default="response", metadata={"help": "Instruction format: the column with the answer."}
    )
    messages_column: str = field(
        default="messages", metadata={"help": "Chat format: the column with a list of {role, content} messages."}
    )
    text_column: str = field(default="text", metadata={"help": "Text format: the column with the text."})
    num_samples: int = field(default=3, metadata={"help": "Sample generations recorded after evaluation (0 for none)."})
    max_new_tokens: int = field(default=32, metadata={"help": "Tokens generated for each sample and prediction."})


# -- data -------------------------------------------------------------------------------------------
def detect_format(columns: Sequence[str], options: CausalLMOptions, *, source: str) -> str:
    """The data format: ``options.format`` unless it is ``auto``, then from the columns present."""
    fmt = (options.format or "auto").strip().lower()
    if fmt not in FORMATS:
        raise DataError(f"Unknown causal-lm format {options.format!r}; use {', '.join(FORMATS)}.")
    if fmt != "auto":
        return fmt
    cols = set(columns)
    if options.messages_column in cols:
        return "chat"
    if options.prompt_column in cols and options.response_column in cols:
        return "instruction"
    if options.text_column in cols:
        return "text"
    raise DataError(
        f"Cannot tell the format of {source}: expected columns {options.prompt_column!r} and"
        f" {options.response_column!r} (instruction), {options.messages_column!r} (chat) or"
        f" {options.text_column!r} (text); columns are: {', '.join(columns)}."
    )


def required_columns(fmt: str, options: CausalLMOptions) -> dict[str, str]:
    if fmt == "chat":
        return {"messages_column": options.messages_column}
    if fmt == "instruction":
        return {"prompt_column": options.prompt_column, "response_column": options.response_column}
    return {"text_column": options.text_column}


def check_messages(messages: Any, *, row: int, source: str) -> list[dict[str, str]]:
    """Validate one chat row and return it as a list of ``{"role", "content"}`` dicts."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise DataError(f"Row {row} of {source}: messages must be a non-empty list of {{role, content}} objects.")
    out = []
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or m.get("content") is None:
            raise DataError(f"Row {row} of {source}: each message needs a 'role' and a 'content'.")
        out.append({"role": m["role"], "content": str(m["content"])})
    if not any(m["role"] == "assistant" for m in out):
        raise DataError(f"Row {row} of {source} has no assistant message to learn from.")
    return out


def _row_messages(row: dict[str, Any], fmt: str, options: CausalLMOptions) -> list[dict[str, str]]:
    if fmt == "chat":
        return [{"role": m["role"], "content": str(m["content"])} for m in row[options.messages_column]]
    return [
        {"role": "user", "content": "" if row[options.prompt_column] is None else str(row[options.prompt_column])},
        {
            "role": "assistant",
            "content": "" if row[options.response_column] is None else str(row[options.response_column]),
        },
    ]


# -- rendering --------------------------------------------------------------------------------------
def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def _bos(tokenizer: Any) -> list[int]:
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    return [bos] if bos is not None and bos != eos else []


def _render(tokenizer: Any, messages: list[dict[str, str]], *, generation_prompt: bool) -> str:
    if not messages:
        return ""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def _template_segments(tokenizer: Any, messages: list[dict[str, str]]) -> list[tuple[list[int], bool]] | None:
    """``[(ids, trained)]`` through the chat template, or None when the template does not render
    conversations as growing prefixes (then only the last assistant turn is trained)."""
    segments: list[tuple[list[int], bool]] = []
    done = ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:i], generation_prompt=True)
        full = _render(tokenizer, messages[: i + 1], generation_prompt=False)
        if not prompt.startswith(done) or not full.startswith(prompt):
            return None
        segments.append((_encode(tokenizer, prompt[len(done) :]), False))
        segments.append((_encode(tokenizer, full[len(prompt) :]), True))
        done = full
    return segments


def _last_turn_segments(tokenizer: Any, messages: list[dict[str, str]]) -> list[tuple[list[int], bool]]:
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    prompt = _render(tokenizer, messages[:last], generation_prompt=True)
    full = _render(tokenizer, messages[: last + 1], generation_prompt=False)
    if full.startswith(prompt):
        return [(_encode(tokenizer, prompt), False), (_encode(tokenizer, full[len(prompt) :]), True)]
    return [(_encode(tokenizer, full), True)]


def _plain_prompt(messages: list[dict[str, str]]) -> str:
    """The plain layout of the non-assistant messages since the last answer."""
    parts = []
    for m in messages:
        if m["role"] == "user":
            parts.append(PLAIN_INSTRUCTION.format(content=m["content"]))
        else:  # system, tool, ...
            parts.append(f"{m['content']}\n\n")
    return "".join(parts)


def _plain_segments(tokenizer: Any, messages: list[dict[str, str]]) -> list[tuple[list[int], bool]]:
    segments: list[tuple[list[int], bool]] = [(_bos(tokenizer), False)]
    pending: list[dict[str, str]] = []
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    for m in messages:
        if m["role"] != "assistant":
            pending.append(m)
            continue
        prefix = "\n\n" if len(segments) > 1 else ""
        segments.append((_encode(tokenizer, prefix + _plain_prompt(pending)), False))
        segments.append((_encode(tokenizer, m["content"]) + eos, True))
        pending = []
    return segments


def conversation_segments(tokenizer: Any, messages: list[dict[str, str]]) -> list[tuple[list[int], bool]]:
    """Token id segments of a conversation, each marked trained (assistant) or not (the rest)."""
    if getattr(tokenizer, "chat_template", None):
        segments = _template_segments(tokenizer, messages)
        return segments if segments is not None else _last_turn_segments(tokenizer, messages)
    return _plain_segments(tokenizer, messages)


def prompt_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """The ids a model sees before it should answer (same layout as in training)."""
    if getattr(tokenizer, "chat_template", None):
        return _encode(tokenizer, _render(tokenizer, messages, generation_prompt=True))
    return _bos(tokenizer) + _encode(tokenizer, _plain_prompt(messages))


# -- collation --------------------------------------------------------------------------------------
class CausalLMCollator:
    """Pad ``input_ids`` (pad id), ``attention_mask`` (0) and ``labels`` (-100) on the right.

    Args:
        pad_token_id: the tokenizer's pad id.
        pad_to_multiple_of: round the padded length up (8 helps tensor cores).
    """

    def __init__(self, pad_token_id: int, *, pad_to_multiple_of: int | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        features = _common.strip_keys(features)
        longest = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            longest = (longest + m - 1) // m * m
        ids, masks, labels = [], [], []
        for f in features:
            row = list(f["input_ids"])
            pad = longest - len(row)
            mask = list(f.get("attention_mask") or [1] * len(row))
            lab = list(f["labels"]) if f.get("labels") is not None else list(row)
            ids.append(row + [self.pad_token_id] * pad)
            masks.append(mask + [0] * pad)
            labels.append(lab + [-100] * pad)
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "attention_mask": torch.tensor(masks, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
        }


class CausalLMTask(Task):
    """Fine-tune a causal language model on instructions, chats or plain text."""

    name = "causal-lm"
    description = (
        "Causal language modelling: instruction (prompt/response) or chat data with loss on the answers,"
        " or plain text packed into blocks; perplexity and sample generations."
    )
    pipeline_tags = ("text-generation", "text2text-generation", "conversational")
    options_class = CausalLMOptions
    main_metric = "perplexity"
    auto_model_class = "AutoModelForCausalLM"
    greater_is_better = False
    loss_sums_over_tokens = True

    def required_columns(self, options: CausalLMOptions, columns: Sequence[str]) -> dict[str, str | None]:
        """The columns of the format that ``columns`` show (or that ``format`` names).

        Raises:
            DataError: the columns fit no format.
        """
        return dict(required_columns(detect_format(columns, options, source="the data"), options))

    def load_data(self, source: DataSource, options: CausalLMOptions) -> TaskData:
        """Load the splits, detect the format from the columns and check chat rows.

        Raises:
            DataError: missing file or columns, an unknown format, or malformed chat messages.
        """
        from hubmgr.data import check_columns, load_splits, split_train_eval

        train, eval_ds = load_splits(source, hold_out=False)
        train_name = _common.source_name(source.train)
        fmt = detect_format(train.column_names, options, source=train_name)
        if eval_ds is None:
            # running text is held out as its last stretch, not as random lines of the passages it trains on
            train, eval_ds = split_train_eval(
                train, source.eval_fraction, source.seed, contiguous=fmt == "text" and not source.max_train_samples
            )
        required = required_columns(fmt, options)
        check_columns(train, required, source=train_name)
        splits = [(train, train_name)]
        if eval_ds is not None:
            eval_name = _common.source_name(source.eval) if source.eval else f"the eval split of {train_name}"
            check_columns(eval_ds, required, source=eval_name)
            splits.append((eval_ds, eval_name))
        if fmt == "chat":
            for ds, name in splits:
                for i, messages in enumerate(ds[options.messages_column]):
                    check_messages(messages, row=i + 1, source=name)
        return TaskData(train=train, eval=eval_ds, info={"format": fmt})

    def load_model(self, model_path: str, options: Any, data: TaskData, load_kwargs: dict[str, Any]) -> tuple[Any, Any]:
        """AutoModelForCausalLM and its tokenizer (pad token = eos when it has none, right padding).

        Raises:
            ModelError: the architecture cannot generate text, or there is no tokenizer.
        """
        from transformers import AutoModelForCausalLM

        model = _common.load_auto_model(AutoModelForCausalLM, model_path, "causal language modelling", load_kwargs)
        tokenizer = _common.load_tokenizer(model_path, load_kwargs)
        _common.ensure_pad_token(tokenizer, model)
        tokenizer.padding_side = "right"
        return model, tokenizer

    def lora_defaults(self, model: Any, options: Any) -> LoraDefaults:
        return LoraDefaults(task_type="CAUSAL_LM", target_modules=_common.target_modules(model))

    def preprocess(
        self, dataset: Any, processor: Any, options: CausalLMOptions, max_length: int, data: TaskData
    ) -> Any:
        """Tokenize into ``input_ids``/``attention_mask``/``labels``/``length``.

        Instruction and chat rows are truncated to ``max_length``; a row left with no answer token is
        dropped. Text is packed into blocks of ``max_length`` tokens.

        Raises:
            DataError: every row lost its answer to truncation.
        """
        max_length = _common.effective_max_length(processor, max_length)
        fmt = data.info.get("format") or detect_format(dataset.column_names, options, source="the data")
        if fmt == "text":
            return self._pack(dataset, processor, options, max_length)

        def encode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
            out: dict[str, list[Any]] = {"input_ids": [], "attention_mask": [], "labels": [], "length": []}
            rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
            for row in rows:
                ids: list[int] = []
                labels: list[int] = []
                for seg, trained in conversation_segments(processor, _row_messages(row, fmt, options)):
                    ids.extend(seg)
                    labels.extend(seg if trained else [-100] * len(seg))
                ids, labels = ids[:max_length], labels[:max_length]
                if not any(lab != -100 for lab in labels):
                    continue  # nothing left to learn from in this row
                out["input_ids"].append(ids)
                out["attention_mask"].append([1] * len(ids))
                out["labels"].append(labels)
                out["length"].append(len(ids))
            return out

        result = _common.map_rows(dataset, encode)
        if len(result) == 0:
            raise DataError(
                f"Every example loses its answer when cut to max_length={max_length} tokens; raise max_length."
            )
        return result

    def _pack(self, dataset: Any, tokenizer: Any, options: CausalLMOptions, block: int) -> Any:
        column = options.text_column

        def pack(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
            stream: list[int] = []
            for text in batch[column]:
                stream.extend(_encode(tokenizer, ("" if text is None else str(text)) + "\n"))
            blocks = [stream[i : i + block] for i in range(0, len(stream), block)]
            blocks = [b for b in blocks if len(b) > 1]
            return {
                "input_ids": blocks,
                "attention_mask": [[1] * len(b) for b in blocks],
                "labels": [list(b) for b in blocks],
                "length": [len(b) for b in blocks],
            }

        result = _common.map_rows(dataset, pack, batch_size=1000)
        if len(result) == 0:
            raise DataError(f"Column {column!r} has no text to train on.")
        return result

    def collator(self, processor: Any, options: Any) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
        return CausalLMCollator(processor.pad_token_id)

    # -- metrics -------------------------------------------------------------------------------------
    def reduce_logits(self, logits: Any, labels: Any) -> Any:
        """Per example ``[nll_sum, token_count]`` over the labelled tokens (labels are shifted here,
        as the model shifts them for its loss). Returns a float tensor ``[batch, 2]``."""
        import torch
        import torch.nn.functional as F

        if isinstance(logits, tuple):
            logits = logits[0]
        logits = logits.detach()
        if labels is None:
            return torch.zeros((logits.shape[0], 2), dtype=torch.float32, device=logits.device)
        shift_logits = logits[:, :-1, :]
        shift_labels = labels[:, 1:].to(logits.device)
        nll = F.cross_entropy(
            shift_logits.reshape(-1, shift_logits.shape[-1]).float(),
            shift_labels.reshape(-1),
            ignore_index=-100,
            reduction="none",
        ).view(shift_labels.shape)
        counts = (shift_labels != -100).sum(dim=1)
        return torch.stack([nll.sum(dim=1), counts.float()], dim=1)

    def compute_metrics(self, predictions: Any, labels: Any, data: TaskData) -> dict[str, float]:
        """Perplexity from ``reduce_logits``' ``[examples, 2]`` rows; ``labels`` are not needed."""
        import numpy as np

        rows = np.asarray(predictions, dtype=np.float64).reshape(-1, 2)
        tokens = float(rows[:, 1].sum())
        if tokens <= 0:
            return {"perplexity": float("nan"), "token_loss": float("nan")}
        mean = float(rows[:, 0].sum()) / tokens
        perplexity = math.exp(mean) if mean < 700 else float("inf")
        metrics = {"perplexity": perplexity, "token_loss": mean}
        kept = rows[rows[:, 1] > 0]
        if len(kept) > 1 and math.isfinite(perplexity):
            # standard error of the token-weighted mean loss over examples (ratio estimator), carried to
            # perplexity; the automatic budget takes half of it as the smallest real improvement
            resid = kept[:, 0] - mean * kept[:, 1]
            se_loss = math.sqrt(float((resid**2).sum()) / (len(kept) * (len(kept) - 1))) / float(kept[:, 1].mean())
            metrics["perplexity_stderr"] = perplexity * se_loss
        return metrics

    # -- generation ----------------------------------------------------------------------------------
    def _generate(self, model: Any, tokenizer: Any, ids: list[int], max_new_tokens: int) -> str:
        import torch

        device = _common.model_device(model)
        if not ids:
            ids = _bos(tokenizer) or [tokenizer.eos_token_id]
        input_ids = torch.tensor([ids], dtype=torch.long, device=device)
        with torch.no_grad():
            out = model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        return tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True).strip()

    def _prompt_for(
        self, tokenizer: Any, row: dict[str, Any], fmt: str, options: CausalLMOptions
    ) -> tuple[list[int], str, str]:
        """(prompt ids, prompt shown, reference answer) for one raw eval row."""
        if fmt == "text":
            words = str(row.get(options.text_column) or "").split()
            head, rest = " ".join(words[:8]), " ".join(words[8:40])
            return _encode(tokenizer, head), head, rest
        messages = _row_messages(row, fmt, options)
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=len(messages))
        context = messages[:last]
        reference = messages[last]["content"] if last < len(messages) else ""
        shown = context[-1]["content"] if context else ""
        return prompt_ids(tokenizer, context), shown, reference

    def extra_eval(self, model: Any, processor: Any, options: CausalLMOptions, data: TaskData) -> dict[str, Any]:
        """A few greedy generations on eval rows: ``{"samples": [{"prompt", "reference", "generated"}]}``."""
        if data.eval is None or options.num_samples <= 0 or len(data.eval) == 0:
            return {}
        fmt = data.info.get("format", "instruction")
        rows = data.eval.select(range(min(options.num_samples, len(data.eval))))
        was_training = model.training
        model.eval()
        samples = []
        try:
            for row in rows:
                ids, shown, reference = self._prompt_for(processor, row, fmt, options)
                generated = self._generate(model, processor, ids, options.max_new_tokens)
                samples.append({"prompt": shown, "reference": reference, "generated": generated})
        finally:
            model.train(was_training)
        return {"samples": samples}

    def predict(
        self, model: Any, processor: Any, inputs: Sequence[Any], options: CausalLMOptions, data: TaskData
    ) -> list[str]:
        """Greedy continuation of each input: a prompt string (rendered as in training), a list of chat
        messages, or raw text when the data format was ``text``."""
        fmt = (data.info.get("format") if data and data.info else None) or "instruction"
        was_training = model.training
        model.eval()
        out = []
        try:
            for item in inputs:
                if isinstance(item, (list, tuple)):
                    ids = prompt_ids(processor, [{"role": m["role"], "content": str(m["content"])} for m in item])
                elif fmt == "text":
                    ids = _encode(processor, str(item))
                else:
                    ids = prompt_ids(processor, [{"role": "user", "content": str(item)}])
                out.append(self._generate(model, processor, ids, options.max_new_tokens))
        finally:
            model.train(was_training)
        return out


@hookimpl
def register_tasks(register: Callable[[type[Task]], None]) -> None:
    register(CausalLMTask)
