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

    def _get_eval_sampler(self, eval_dataset: Any) -> Any:
        """Evaluation in the dataset's order: hubmgr sorts eval splits longest first already, and the task's
        ``calibrate`` and ``extra_eval`` pair the gathered predictions with the split row for row (the
        Trainer would length-group the evaluation in a seeded random order under group_by_length)."""
        if eval_dataset is not None and self.args.world_size <= 1:
            from torch.utils.data import SequentialSampler

            return SequentialSampler(eval_dataset)
        return super()._get_eval_sampler(eval_dataset)

    def __init__(self, *args: Any, head_learning_rate: float | None = None, schedule: Callable[[int], float] | None = None,
                 task_loss: Callable[[Any, Any], Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_learning_rate = head_learning_rate
        self.schedule = schedule
        self.task_loss = task_loss

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
            {"params": params, "weight_decay": self.args.weight_decay if decayed else 0.0,
             "lr": self.head_learning_rate if full else lr}
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

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        if self.task_loss is None or "labels" not in inputs:
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        outputs = model(**inputs)
        loss = self.task_loss(outputs, inputs["labels"])
        if loss is None:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs[0]
        elif self.model_accepts_loss_kwargs and num_items_in_batch is not None:
            # the Trainer takes such losses as already averaged over the accumulated batch
            loss = loss / self.current_gradient_accumulation_steps
        return (loss, outputs) if return_outputs else loss
