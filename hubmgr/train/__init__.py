"""Training: TrainConfig (config.py), LoRA set-up (lora.py), the Trainer-based runner (runner.py), events.

``hubmgr.train`` is both this package and the public function ``hubmgr.train(config)``: once any
submodule is imported, Python binds the package to the name ``train`` on ``hubmgr``, which would hide
the function. So the package itself is callable and forwards to :func:`hubmgr.train.runner.train`.
"""

from __future__ import annotations

import sys as _sys
import types as _types
from typing import Any


class _CallableTrainPackage(_types.ModuleType):
    def __call__(self, config: Any, **kwargs: Any) -> Any:
        from hubmgr.train.runner import train

        return train(config, **kwargs)


_sys.modules[__name__].__class__ = _CallableTrainPackage
