"""hubmgr's Trainer: transformers' Trainer with a learning rate of its own for the layers trained in full,
the automatic budget's schedule, and the task's own loss when it has one.

Imported by :mod:`hubmgr.train.runner` inside ``train()`` only (it imports transformers).
"""

from __future__ import annotations

from typing import Any, Callable

from transformers import Trainer


class HubmgrTrainer(Trainer):
    """A Trainer with three additions, each off when its argument is None.

    Args:
        head_learning_rate: learning rate of trainable parameters that are not LoRA adapters (a new
            classification head and other ``modules_to_save``); LoRA's is ``args.learning_rate``.
        schedule: a learning-rate factor by step (:class:`hubmgr.train.budget.Schedule`) used instead
            of ``args.lr_scheduler_type``.
        task_loss: ``(outputs, labels) -> loss or None``, a batch-mean loss replacing the model's own.
    """

    # set by transformers' Trainer (its types are not followed)
    optimizer: Any
    lr_scheduler: Any

    def _get_eval_sampler(self, eval_dataset: Any) -> Any:
        """Evaluation in the dataset's order: hubmgr sorts eval splits longest first already, and the task's
        ``calibrate`` and ``extra_eval`` pair the gathered predictions with the split row for row (the
        Trainer would length-group the evaluation in a seeded random order under group_by_length)."""
        if eval_dataset is not None and self.args.world_size <= 1:
            from torch.utils.data import SequentialSampler

            return SequentialSampler(eval_dataset)
        return super()._get_eval_sampler(eval_dataset)

    def __init__(
        self,
        *args: Any,
        head_learning_rate: float | None = None,
        schedule: Callable[[int], float] | None = None,
        task_loss: Callable[[Any, Any], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.head_learning_rate = head_learning_rate
        self.schedule = schedule
        self.task_loss = task_loss
        self._flops_per_token: int | None = None
        self._trainable: list[Any] | None = None

    # -- the fixed cost of a step ------------------------------------------------------------------------
    # transformers' loop walks every parameter of the model three times a step (the FLOP count, gradient
    # clipping, zero_grad). With LoRA almost all of them are frozen: the walks below touch only what trains.

    def floating_point_ops(self, inputs: dict[str, Any]) -> int:
        """The Trainer's estimate (6 x tokens x non-embedding parameters), with the parameter count taken once
        instead of by walking the model every step."""
        main_input = getattr(self.model, "main_input_name", "input_ids")
        if main_input not in inputs or not hasattr(self.model, "num_parameters"):
            return 0
        if self._flops_per_token is None:
            self._flops_per_token = 6 * int(self.model.num_parameters(exclude_embeddings=True))
        return self._flops_per_token * int(inputs[main_input].numel())

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        """The Trainer's sampler, with the lengths of a length-grouped one read once as a list: the Trainer
        passes ``dataset["length"]``, which datasets 4+ returns as a lazy column, and the sampler then reads
        it one row at a time, twice an epoch (0.25 ms a row; 0.8 s of a 3.7 s epoch of 3,200 examples)."""
        sampler = super()._get_train_sampler(train_dataset)
        lengths = getattr(sampler, "lengths", None)
        if lengths is not None and not isinstance(lengths, list):
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            column = self.args.length_column_name
            if hasattr(dataset, "select_columns") and column in getattr(dataset, "column_names", ()):
                sampler.lengths = dataset.select_columns([column]).to_dict()[column]
            else:
                sampler.lengths = list(lengths)
        return sampler

    def _trainable_parameters(self) -> list[Any]:
        if self._trainable is None:
            self._trainable = [p for p in self.model.parameters() if p.requires_grad]
        return self._trainable

    def _clip_grad_norm(self, model: Any) -> Any:
        """Clip the gradients of the trainable parameters only (frozen ones have none)."""
        from accelerate.utils import DistributedType

        if (
            self.accelerator.distributed_type
            in (DistributedType.NO, DistributedType.MULTI_GPU, DistributedType.MULTI_CPU)
            and not self.is_fsdp_enabled
        ):
            return self.accelerator.clip_grad_norm_(self._trainable_parameters(), self.args.max_grad_norm)
        return super()._clip_grad_norm(model)

    def _inner_training_loop(self, *args: Any, **kwargs: Any) -> Any:
        """The Trainer's loop, with the model's ``zero_grad`` clearing only the trainable parameters."""
        model = self.model
        original = model.__dict__.get("zero_grad")

        def zero_grad(set_to_none: bool = True) -> None:
            for param in self._trainable_parameters():
                if param.grad is not None:
                    if set_to_none:
                        param.grad = None
                    else:
                        param.grad.zero_()

        self._trainable = None
        model.__dict__["zero_grad"] = zero_grad
        try:
            return super()._inner_training_loop(*args, **kwargs)
        finally:
            if original is None:
                model.__dict__.pop("zero_grad", None)
            else:
                model.__dict__["zero_grad"] = original

    def create_optimizer(self, model: Any = None) -> Any:
        if self.optimizer is not None or self.head_learning_rate is None:
            return super().create_optimizer(model)
        opt_model = self.model if model is None else model
        decay = set(self.get_decay_parameter_names(opt_model))
        groups: dict[tuple[bool, bool], list[Any]] = {}
        for name, param in opt_model.named_parameters():
            if not param.requires_grad:
                continue
            full = "lora_" not in name
            groups.setdefault((full, name in decay), []).append(param)
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        optimizer_kwargs = dict(optimizer_kwargs)
        lr = optimizer_kwargs.pop("lr", self.args.learning_rate)
        # LoRA groups first: the Trainer logs the first group's learning rate.
        param_groups = [
            {
                "params": params,
                "weight_decay": self.args.weight_decay if decayed else 0.0,
                "lr": self.head_learning_rate if full else lr,
            }
            for (full, decayed), params in sorted(groups.items())
        ]
        self.optimizer = optimizer_cls(param_groups, lr=lr, **optimizer_kwargs)
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
        if self.lr_scheduler is None and self.schedule is not None:
            from torch.optim.lr_scheduler import LambdaLR

            self.lr_scheduler = LambdaLR(optimizer if optimizer is not None else self.optimizer, self.schedule)
            self._created_lr_scheduler = True
            return self.lr_scheduler
        return super().create_scheduler(num_training_steps, optimizer)

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        if self.task_loss is None or "labels" not in inputs:
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
        outputs = model(**inputs)
        loss = self.task_loss(outputs, inputs["labels"])
        if loss is None:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs[0]
        elif self.model_accepts_loss_kwargs and num_items_in_batch is not None:
            # the Trainer takes such losses as already averaged over the accumulated batch
            loss = loss / self.current_gradient_accumulation_steps
        return (loss, outputs) if return_outputs else loss
