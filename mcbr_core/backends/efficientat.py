"""Model backend for EfficientAT's AudioSet taggers (``backend: efficientat``).

This module also registers their front end, the ``efficientat-mel`` feature extractor
(``mcbr_core.features.efficientat_mel``, imported when first built).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mcbr_core.backends.base import Inference
from mcbr_core.errors import ConfigError
from mcbr_core.hookspecs import Register, hookimpl


class EfficientATBackend:
    """Runs a converted EfficientAT checkpoint (``models/as-mn04.safetensors``).

    Parameters
    ----------
    model
        Path of the ``.safetensors`` model file.
    card
        Its model card (see ``mcbr_core.models.checkpoint``).
    device
        Torch device name (already resolved, e.g. ``"cpu"``).
    options
        ``batch_size`` (10-s patches per forward pass; 0 or absent = 4 on CPU, 64 on GPU).
    """

    def __init__(self, *, model: Path, card: dict[str, Any], device: str, options: dict[str, Any]) -> None:
        import torch

        from mcbr_core.models.efficientat import load_efficientat

        net, card = load_efficientat(model)
        self._torch = torch
        self._net = net.to(device)
        self._device = device
        self.batch_size = int(options.get("batch_size", 0)) or (4 if device == "cpu" else 64)
        self.model_id: str = card["id"]
        self.heads: dict[str, list[str]] = {k: list(v) for k, v in card["heads"].items()}
        self.tag_kinds: dict[str, dict[str, str]] = card.get("tag_kinds", {})
        self.embedding_dim: int = int(card["embedding"]["dim"])
        self.metric: str = card["embedding"].get("metric", "angular")
        self.extractor: str = card["features"]["extractor"]
        self.extractor_options: dict[str, Any] = dict(card["features"]["config"])
        self.feature_version: str = str(card["features"]["version"])
        self.patch_frames: int | None = int(self.extractor_options.get("patch_frames", net.config.n_frames))
        self.patch_hop: int | None = int(self.extractor_options.get("patch_hop", self.patch_frames))

    def infer(self, patches: np.ndarray) -> Inference:
        """Tag probabilities ``(B, 527)`` and hidden-layer vectors ``(B, 512)`` for ``(B, 1, 128, T)`` patches."""
        torch = self._torch
        probs, embs = [], []
        with torch.inference_mode():
            for i in range(0, len(patches), self.batch_size):
                x = torch.from_numpy(np.ascontiguousarray(patches[i : i + self.batch_size])).to(self._device)
                logits, emb = self._net.forward_features(x)
                probs.append(torch.sigmoid(logits).float().cpu().numpy())
                embs.append(emb.float().cpu().numpy())
        (head,) = self.heads
        return Inference(heads={head: np.concatenate(probs)}, embedding=np.concatenate(embs))


def efficientat_backend(
    *, model: Path, card: dict[str, Any], device: str, options: dict[str, Any]
) -> EfficientATBackend:
    """Factory registered as ``efficientat``."""
    return EfficientATBackend(model=model, card=card, device=device, options=options)


def efficientat_mel(options: dict[str, Any]) -> Any:
    """Build EfficientAT's log-mel extractor from a feature config dict (a model card's).

    Raises
    ------
    ConfigError
        On an unknown key or a bad value.
    """
    from dataclasses import fields

    from mcbr_core.features.efficientat_mel import EfficientATMel, EfficientATMelConfig

    unknown = set(options) - {f.name for f in fields(EfficientATMelConfig)}
    if unknown:
        raise ConfigError(f"efficientat-mel: unknown feature options {sorted(unknown)}")
    try:
        return EfficientATMel(EfficientATMelConfig(**options))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


@hookimpl
def register_model_backends(register: Register) -> None:
    """Register the EfficientAT backend."""
    register("efficientat", efficientat_backend)


@hookimpl
def register_feature_extractors(register: Register) -> None:
    """Register EfficientAT's front end."""
    register("efficientat-mel", efficientat_mel)
