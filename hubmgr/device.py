"""Which device a run uses: the one home of the rule, for training, evaluation, predict and merge.

Nothing here imports torch until a device is picked.
"""

from __future__ import annotations

import os

from hubmgr.errors import UsageError

__all__ = ["pick_device"]


def pick_device(wanted: str | None = "auto", *, world_size: int = 1) -> str:
    """The device for ``wanted`` (``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``).

    ``auto`` is a CUDA GPU when torch sees one, else Apple's GPU (MPS) for a single process, else the
    CPU; ``ACCELERATE_USE_CPU=1`` (``accelerate launch --cpu``) makes it the CPU.

    Raises:
        UsageError: a GPU was asked for that this machine does not have.
    """
    import torch

    wanted = (wanted or "auto").strip().lower()
    if wanted == "auto" and os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"):
        return "cpu"
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if wanted.startswith("cuda") and not cuda:
        raise UsageError("--device cuda was asked for, but torch sees no CUDA GPU here.")
    if wanted == "mps" and not mps:
        raise UsageError("--device mps was asked for, but this machine has no Apple GPU (MPS) that torch can use.")
    if wanted == "auto":
        if cuda:
            return "cuda"
        if mps and world_size == 1:
            return "mps"
        return "cpu"
    return wanted
