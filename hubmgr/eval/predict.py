"""Try a trained adapter on a few inputs: the task plugin's ``predict`` on the base model with the adapter
attached, and optionally on the base model alone for comparison.

The adapter's run record gives the base model (and the revision it was trained on), the task, the task
options and the label set, so ``predict(adapter, ["some text"])`` needs nothing else. torch, transformers
and peft are imported inside :func:`predict`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from hubmgr.errors import HubmgrError, ModelError, PluginError, UsageError
from hubmgr.eval.adapters import normalize_model_ref, read_adapter_info, resolve_adapter_ref
from hubmgr.format import first_line
from hubmgr.plugins import errors_attributed_to
from hubmgr.safety import check_remote_code

if TYPE_CHECKING:  # pragma: no cover
    from hubmgr.config import Settings
    from hubmgr.task import Task

__all__ = ["Prediction", "Predictor", "predict"]


@dataclass(frozen=True)
class Prediction:
    """One input and what the model made of it.

    Attributes:
        input: the input as given.
        prediction: the adapter's prediction (the task's human-readable form, e.g. ``"positive (0.93)"``).
        base_prediction: the base model's prediction without the adapter (``compare=True``), else None.
    """

    input: Any
    prediction: str
    base_prediction: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "input": self.input if isinstance(self.input, (str, int, float, list, dict)) else list(self.input),
            "prediction": self.prediction,
        }
        if self.base_prediction is not None:
            out["base_prediction"] = self.base_prediction
        return out


def predict(
    adapter: str | Path,
    inputs: Sequence[Any],
    *,
    base_model: str | Path | None = None,
    task: "str | Task | None" = None,
    options: Any = None,
    compare: bool = False,
    batch_size: int = 16,
    device: str = "auto",
    dtype: str | None = None,
    settings: "Settings | None" = None,
    trust_remote_code: bool = False,
) -> list[Prediction]:
    """Run the task's ``predict`` with an adapter on ``inputs``.

    Args:
        adapter: an adapter folder, or a run / adapter id from the run registry (unique prefixes work).
        inputs: what the task's ``predict`` takes: texts for text tasks, ``(text, pair)`` tuples for pair
            tasks, image paths for image classification, prompts (or chat message lists) for causal LMs.
        base_model: repo id (cached) or local folder; default the one the adapter was trained on.
        task: task name or instance; default the adapter's.
        options: task options (dict laid over the adapter's own, or the options dataclass).
        compare: also predict with the base model alone (adapter disabled).
        batch_size: inputs per call of the task's ``predict``.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        dtype: load dtype (``float32``, ``bfloat16``, ``float16``); default the model's default.
        settings: hubmgr settings (cache, registry); default from the environment.
        trust_remote_code: allow a base model whose ``config.json`` has an ``auto_map`` (its own Python
            code, which then runs); without it such a model is refused, as ``train`` does.

    Returns:
        One :class:`Prediction` per input, in order.

    Raises:
        ModelError: the adapter is missing or does not fit the base model; the base model is not cached,
            or needs its own code and ``trust_remote_code`` is false.
        UsageError: no inputs, no task or base model known, bad options, a task without ``predict``.
        PluginError: the task's ``predict`` failed.
    """
    inputs = list(inputs)
    if not inputs:
        raise UsageError("Give at least one input to predict.")
    predictor = Predictor(
        adapter,
        base_model=base_model,
        task=task,
        options=options,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        settings=settings,
        trust_remote_code=trust_remote_code,
    )
    return predictor(inputs, compare=compare)


class Predictor:
    """An adapter loaded once (on its base model) for many calls of the task's ``predict``.

    ``Predictor(adapter)(["text"], compare=True)``; the arguments are those of :func:`predict`.
    """

    def __init__(
        self,
        adapter: str | Path,
        *,
        base_model: str | Path | None = None,
        task: "str | Task | None" = None,
        options: Any = None,
        batch_size: int = 16,
        device: str = "auto",
        dtype: str | None = None,
        settings: "Settings | None" = None,
        trust_remote_code: bool = False,
    ) -> None:
        from hubmgr._quiet import quiet

        if batch_size < 1:
            raise UsageError("The batch size must be at least 1.")
        self.adapter = adapter
        self.batch_size = batch_size
        with quiet(), errors_attributed_to(lambda: getattr(self, "task", None)):
            self._load(
                adapter,
                base_model=base_model,
                task=task,
                options=options,
                device=device,
                dtype=dtype,
                settings=settings,
                trust_remote_code=trust_remote_code,
            )

    def _load(
        self,
        adapter: Any,
        *,
        base_model: Any,
        task: Any,
        options: Any,
        device: str,
        dtype: str | None,
        settings: Any,
        trust_remote_code: bool,
    ) -> None:
        import torch

        from hubmgr.config import get_settings
        from hubmgr.eval.loading import load_kwargs, pick_device, resolve_base, resolve_options, resolve_task
        from hubmgr.task import Task, TaskData

        settings = settings or get_settings()
        folder, reg_id = resolve_adapter_ref(adapter, settings=settings)
        info = read_adapter_info(folder, name=reg_id or Path(folder).name)
        base = base_model or info.base_model
        if base is None:
            raise UsageError("Name the base model (--model): the adapter does not record it.")
        base_path = resolve_base(base, info.base_revision, settings)
        check_remote_code(base_path, trust_remote_code=trust_remote_code, model=normalize_model_ref(base)[0])
        task_obj = resolve_task(task, [info])
        if type(task_obj).predict is Task.predict:
            raise UsageError(f"Task {task_obj.name!r} has no predict(): its plugin does not support trying inputs.")
        self.task = task_obj
        self.options = resolve_options(task_obj, options, [info])
        self.data = TaskData(train=None, eval=None, info=dict(info.data_info))

        model_kwargs = load_kwargs(dtype, trust_remote_code)
        torch.manual_seed(0)
        try:
            model, self.processor = task_obj.load_model(str(base_path), self.options, self.data, model_kwargs)
        except HubmgrError:
            raise
        except KeyError as exc:
            raise ModelError(
                f"Adapter {info.name} lacks what task {task_obj.name!r} needs to load the model"
                f" ({exc}); was it trained by hubmgr?"
            ) from None
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, str(info.path), is_trainable=False)
        except (RuntimeError, ValueError, KeyError, TypeError, OSError) as exc:
            trained_on = normalize_model_ref(info.base_model)[0] or "another model"
            raise ModelError(
                f"Adapter {info.name} does not fit the base model {normalize_model_ref(base)[0]}"
                f" (it was trained for {trained_on}): {first_line(exc)}"
            ) from None
        model.to(pick_device(device))
        model.eval()
        self.model = model

    def __call__(self, inputs: Sequence[Any], *, compare: bool = False) -> list[Prediction]:
        from hubmgr._quiet import quiet

        inputs = list(inputs)
        if not inputs:
            raise UsageError("Give at least one input to predict.")
        with quiet(), errors_attributed_to(lambda: getattr(self, "task", None)):
            tuned = self._run(inputs)
            base: list[str | None] = [None] * len(inputs)
            if compare:
                with self.model.disable_adapter():
                    base = list(self._run(inputs))
        return [Prediction(x, p, b) for x, p, b in zip(inputs, tuned, base)]

    def _run(self, items: list[Any]) -> list[str]:
        import torch

        out: list[str] = []
        name = self.task.name
        for start in range(0, len(items), self.batch_size):
            chunk = items[start : start + self.batch_size]
            try:
                with torch.inference_mode():
                    got = list(self.task.predict(self.model, self.processor, chunk, self.options, self.data))
            except HubmgrError:
                raise
            except Exception as exc:
                from hubmgr.plugins import plugin_error

                error = plugin_error(exc, self.task)  # a third-party task: names the plugin and the place
                if error is not None:
                    raise error from exc
                raise PluginError(f"The {name} task's predict() failed: {first_line(exc)}") from None
            if len(got) != len(chunk):
                raise PluginError(f"The {name} task's predict() gave {len(got)} predictions for {len(chunk)} inputs.")
            out.extend(str(x) for x in got)
        return out
