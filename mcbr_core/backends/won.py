"""Model backend for Won et al.'s taggers (``backend: won``): FCN, CRNN, short-chunk musicnn.

The model files (``models/jamendo-fcn.safetensors``, ...) come from
``tools/convert_won.py``; their card names the architecture family
(``won-fcn``, ``won-crnn``, ``won-musicnn``, see ``mcbr_core.models.won``) and the
``won-mel`` feature config, whose ``patch_frames`` is the chunk the network was
trained on (1813 frames = 29 s for FCN and CRNN, 188 = 3 s for musicnn). The
Analyzer cuts each track into such patches (a shorter track is repeated to fill
one) and averages the per-patch sigmoid outputs and embeddings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mcbr_core.backends.base import Inference
from mcbr_core.hookspecs import Register, hookimpl

#: patch frames x batch size on an accelerator (64 musicnn-sized patches, 6 of 29 s)
_GPU_FRAMES_PER_BATCH = 12_000


class WonBackend:
    """Runs a converted Won tagger.

    Parameters
    ----------
    model
        Path of the ``.safetensors`` model file.
    card
        Its model card (see ``mcbr_core.models.checkpoint``).
    device
        Torch device name (already resolved, e.g. ``"cpu"``).
    options
        ``batch_size`` (patches per forward pass; 0 or absent = 2 on CPU, about
        12,000 frames' worth on an accelerator).
    """

    def __init__(self, *, model: Path, card: dict[str, Any], device: str, options: dict[str, Any]) -> None:
        import torch

        from mcbr_core.models.won import load_won

        net, card = load_won(model, device=device)
        self._torch = torch
        self._net = net
        self._device = device
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
        default = 2 if device == "cpu" else max(1, _GPU_FRAMES_PER_BATCH // self.patch_frames)
        self.batch_size = int(options.get("batch_size", 0)) or default

    def infer(self, patches: np.ndarray) -> Inference:
        """Tag probabilities ``(B, 50)`` and penultimate vectors ``(B, D)`` for ``(B, 1, 96, T)`` log-mel patches."""
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


def won_backend(*, model: Path, card: dict[str, Any], device: str, options: dict[str, Any]) -> WonBackend:
    """Factory registered as ``won``."""
    return WonBackend(model=model, card=card, device=device, options=options)


@hookimpl
def register_model_backends(register: Register) -> None:
    """Register the Won backend."""
    register("won", won_backend)
