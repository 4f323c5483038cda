"""Model backend for the musicnn taggers (``backend: musicnn``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mcbr_core.backends.base import Inference
from mcbr_core.hookspecs import Register, hookimpl


class MusicnnBackend:
    """Runs a converted musicnn checkpoint (``models/*-musicnn.safetensors``).

    Parameters
    ----------
    model
        Path of the ``.safetensors`` model file.
    card
        Its model card (see ``mcbr_core.models.checkpoint``).
    device
        Torch device name (already resolved, e.g. ``"cpu"``).
    options
        ``batch_size`` (patches per forward pass; 0 or absent = 2 on CPU, 64 on GPU).
    """

    def __init__(self, *, model: Path, card: dict[str, Any], device: str, options: dict[str, Any]) -> None:
        import torch

        from mcbr_core.models.musicnn import load_musicnn

        net, card = load_musicnn(model)
        config = net.config
        self._torch = torch
        self._net = net.to(device)
        self._device = device
        self.batch_size = int(options.get("batch_size", 0)) or (2 if device == "cpu" else 64)
        self.model_id: str = card["id"]
        self.heads: dict[str, list[str]] = {k: list(v) for k, v in card["heads"].items()}
        self.tag_kinds: dict[str, dict[str, str]] = card.get("tag_kinds", {})
        self.embedding_dim: int = int(card["embedding"]["dim"])
        self.metric: str = card["embedding"].get("metric", "angular")
        self.extractor: str = card["features"]["extractor"]
        self.extractor_options: dict[str, Any] = dict(card["features"]["config"])
        self.feature_version: str = str(card["features"]["version"])
        self.patch_frames: int | None = int(self.extractor_options.get("patch_frames", config.n_frames))
        self.patch_hop: int | None = int(self.extractor_options.get("patch_hop", self.patch_frames))

    def infer(self, patches: np.ndarray) -> Inference:
        """Tag probabilities ``(B, 50)`` and penultimate vectors ``(B, 200)`` for ``(B, 1, 96, T)`` patches."""
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


def musicnn_backend(
    *, model: Path, card: dict[str, Any], device: str, options: dict[str, Any]
) -> MusicnnBackend:
    """Factory registered as ``musicnn``."""
    return MusicnnBackend(model=model, card=card, device=device, options=options)


@hookimpl
def register_model_backends(register: Register) -> None:
    """Register the built-in backends."""
    register("musicnn", musicnn_backend)
