"""What every training recipe kind shares: the error a recipe that cannot be run raises, and
the hardware line a run records."""

from __future__ import annotations

import platform


class RecipeError(ValueError):
    """A recipe file that cannot be run: named in the message, with what is wrong."""


def hardware(device: str) -> str:
    """The hardware and torch a run used, as its record states it."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads, torch {torch.__version__}"
