"""A tiny deterministic model registered through the hooks, for fast plugin tests.

Its extractor gives per-frame spectral centroid and RMS; its backend calls a track
"Rock"/"Happy" when the centroid is above 1.6 kHz and "Jazz"/"Sad" below, and
embeds it as (centroid, rms). Generated tones at known frequencies therefore get
known tags and known neighbours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mcbr_core.backends.base import Inference
from mcbr_core.hookspecs import hookimpl
from mcbr_core.models.checkpoint import save_model

SR = 8000
HOP = 400


class ToyExtractor:
    name = "toy-features"
    version = "1"
    sample_rate = SR
    frames_per_second = SR / HOP

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def __call__(self, y: np.ndarray) -> np.ndarray:
        n = max(len(y) // HOP, 1)
        frames = np.resize(y, n * HOP).reshape(n, HOP)  # (T, HOP)
        spec = np.abs(np.fft.rfft(frames, axis=1))  # (T, HOP // 2 + 1)
        freqs = np.fft.rfftfreq(HOP, 1 / SR)
        centroid = (spec * freqs).sum(axis=1) / np.maximum(spec.sum(axis=1), 1e-9)
        rms = np.sqrt((frames**2).mean(axis=1))
        return np.stack([centroid / 1000.0, rms])[None].astype(np.float32)  # (1, 2, T)


class ToyBackend:
    def __init__(self, *, model: Path, card: dict[str, Any], device: str, options: dict[str, Any]) -> None:
        self.model_id = card["id"]
        self.heads = card["heads"]
        self.tag_kinds = card.get("tag_kinds", {})
        self.embedding_dim = 2
        self.metric = "euclidean"
        self.extractor = card["features"]["extractor"]
        self.extractor_options = card["features"]["config"]
        self.feature_version = card["features"]["version"]
        self.patch_frames = 20  # 1 s patches
        self.patch_hop = 20

    def infer(self, patches: np.ndarray) -> Inference:
        feats = patches[:, 0].mean(axis=-1)  # (B, 2): centroid in kHz, rms
        high = 1.0 / (1.0 + np.exp(-(feats[:, 0] - 1.6) * 20.0))  # (B,); noise puts low tones near 1 kHz
        two = np.stack([high, 1.0 - high], axis=1).astype(np.float32)  # (B, 2)
        return Inference(heads={"genre": two, "mood": two.copy()}, embedding=feats.astype(np.float32))


class ToyPlugin:
    @hookimpl
    def register_feature_extractors(self, register):
        register("toy-features", ToyExtractor)

    @hookimpl
    def register_model_backends(self, register):
        register("toy", ToyBackend)


def make_toy_model(path: Path) -> Path:
    """Write the toy model file (a safetensors file with a card, like a real one)."""
    return save_model(
        path,
        {"scale": np.ones(2, dtype=np.float32)},
        {
            "id": "toy-1",
            "name": "toy",
            "backend": "toy",
            "architecture": {"family": "toy", "config": {}},
            "features": {"extractor": "toy-features", "version": "1", "config": {}},
            "heads": {"genre": ["Rock", "Jazz"], "mood": ["Happy", "Sad"]},
            "embedding": {"dim": 2, "layer": "features", "metric": "euclidean"},
        },
    )


def make_toy_head(path: Path, kind: str, labels: tuple[str, str]) -> Path:
    """A clip-head file on the toy model's embedding: ``labels[0]`` above a 1.6-kHz centroid, ``labels[1]`` below."""
    weight = np.array([[4.0, 0.0], [-4.0, 0.0]], dtype=np.float32)  # (K=2, D=2); the centroid is in kHz
    bias = np.array([-6.4, 6.4], dtype=np.float32)
    return save_model(
        path,
        {"out.weight": weight, "out.bias": bias},
        {
            "id": f"toy-{kind}-head-1",
            "name": f"toy-{kind}-head",
            "backend": "trained",
            "architecture": {
                "family": "dense-head",
                "config": {"in_features": 2, "n_classes": 2, "hidden": 0},
            },
            "features": {
                "extractor": "toy-features",
                "version": "1",
                "config": {},
                "pool": "clip",
                "embedding_of": {"model": "toy", "id": "toy-1", "layer": "features, clip mean"},
            },
            "heads": {kind: list(labels)},
            "tag_kinds": {kind: dict.fromkeys(labels, kind)},
            "activation": {kind: "softmax"},
            "embedding": {"dim": 2, "layer": "input", "metric": "euclidean"},
        },
    )
