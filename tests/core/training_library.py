"""What the training tests share: tiny networks registered like a third party's, a library
of generated tones (three genres at three pitches, four artists each), a tiny config, and
the fixtures in tests/core/conftest.py build them."""

from __future__ import annotations

import csv
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from mcbr_core.hookspecs import hookimpl
from mcbr_core.training.loop import TrainConfig
from tests.audiogen import tone, write_audio
from tests.toymodel import ToyExtractor

GENRES = {"Jazz": 300.0, "Pop": 1000.0, "Metal": 2500.0}
TINY = "tiny-cnn"


class TinyCNN(nn.Module):
    """One convolution over all feature rows, batch norm, mean over time, a linear head."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(config["in_channels"], 6, kernel_size=(config["n_bins"], 3), padding=(0, 1))
        self.bn = nn.BatchNorm2d(6)
        self.out = nn.Linear(6, config["n_classes"])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.conv(x)))  # (B, 6, 1, T)
        return h.mean(dim=(2, 3))  # (B, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(x))


class TinyStack(nn.Module):
    """Two frozen TinyCNNs trained first by the loop (like Whitell's TimeFreq), and a linear head on their logits."""

    trained_branches: ClassVar[dict[str, str]] = {"left": TINY, "right": TINY}

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.left, self.right = TinyCNN(config), TinyCNN(config)
        for p in [*self.left.parameters(), *self.right.parameters()]:
            p.requires_grad_(False)
        self.out = nn.Linear(2 * config["n_classes"], config["n_classes"])

    def train(self, mode: bool = True) -> TinyStack:
        super().train(mode)
        self.left.eval()
        self.right.eval()
        return self

    def load_branches(self, left: dict, right: dict) -> None:
        self.left.load_state_dict(left)
        self.right.load_state_dict(right)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.left(x), self.right(x)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(x))


class CrashOnSilence(ToyExtractor):
    """The toy features, but the process dies (``os.abort``) on a silent clip, as a native decoder's crash would."""

    def __call__(self, y: np.ndarray) -> np.ndarray:
        if not np.any(y):
            os.abort()
        return super().__call__(y)


class Crashy:
    @hookimpl
    def register_feature_extractors(self, register):
        register("crashy-features", CrashOnSilence)


class TinyArchitectures:
    """The tiny networks, registered through the ``register_architectures`` hook like a third party's."""

    @hookimpl
    def register_architectures(self, register):
        register(TINY, TinyCNN)
        register("tiny-stack", TinyStack)


def write_library(folder: Path, *, seconds: float = 1.5) -> Path:
    """A library CSV: 3 genres x 4 artists x 2 tracks of tones; moods; a second genre on some tracks."""
    rows = []
    for g, (genre, freq) in enumerate(GENRES.items()):
        for a in range(4):
            for t in range(2):
                name = f"music/{genre}-{a}-{t}.wav"
                path = folder / name
                path.parent.mkdir(parents=True, exist_ok=True)
                write_audio(path, tone(seconds, sr=8000, freq=freq * (1 + 0.05 * a), seed=10 * a + t), 8000)
                extra = "|Live" if t == 0 else ""
                rows.append([name, f"{genre} artist {a}", f"{genre}{extra}", "Happy" if g != 1 else "Sad"])
    with (folder / "library.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "artist", "genres", "mood"])
        w.writerows(rows)
    return folder


def tiny_config(tmp: Path, cache: Path, **changes: Any) -> TrainConfig:
    base = TrainConfig(architecture=TINY, features="toy-features", epochs=2, batch_size=4, lr=0.02, patience=0,
                       patch_seconds=0.5, val_fraction=0.25, test_fraction=0.25, seed=3, device="cpu",
                       run_dir=str(tmp / "run"), cache_dir=str(cache))  # fmt: skip
    return replace(base, **changes)
