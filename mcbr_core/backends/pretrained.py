"""The one runner of converted pretrained taggers (musicnn, EfficientAT, Won et al.'s models).

Each family's backend loads its network and card and hands them here: a torch
module whose ``forward_features(x)`` returns ``(logits, embedding)`` for one head
of independent (sigmoid) tags.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mcbr_core.backends.base import Inference


class PretrainedTagger:
    """Runs a pretrained tagger on feature patches, in batches, under ``inference_mode``.

    Parameters
    ----------
    net
        The network (in eval mode, on ``device``), with ``config.n_frames`` and
        ``forward_features(x) -> (logits (B, L), embedding (B, D))``.
    card
        Its model card (see ``mcbr_core.models.checkpoint``).
    device
        Torch device name (already resolved, e.g. ``"cpu"``).
    batch_size
        Patches per forward pass.
    """

    def __init__(self, net: Any, card: dict[str, Any], *, device: str, batch_size: int) -> None:
        import torch

        self._torch = torch
        self._net = net
        self._device = device
        self.batch_size = batch_size
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
        """Tag probabilities ``(B, L)`` and embeddings ``(B, D)`` for feature patches ``(B, C, F, T)``."""
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


def batch_size(options: dict[str, Any], device: str, *, cpu: int, accelerator: int) -> int:
    """``options["batch_size"]``, or the family's default for the device (0 or absent: default)."""
    return int(options.get("batch_size", 0)) or (cpu if device == "cpu" else accelerator)
