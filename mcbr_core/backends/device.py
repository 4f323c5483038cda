"""Torch device and thread choice (imports torch only when called)."""

from __future__ import annotations

import os

from mcbr_core.errors import ConfigError


def pick_device(device: str = "auto") -> str:
    """Resolve ``"auto"`` to ``"cuda"``, ``"mps"`` or ``"cpu"``; check explicit names."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    if device not in ("cpu", "mps") and not device.startswith("cuda"):
        raise ConfigError(f"unknown device {device!r} (auto, cpu, cuda, cuda:N, mps)")
    return device


def set_threads(threads: int) -> None:
    """Set torch's intra-op threads; ``0`` keeps torch's default (all cores)."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
