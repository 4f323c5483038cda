"""Shared fixtures: generated audio and the path of ../shared when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.audiogen import tone, write_audio

ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """``../shared`` beside the checkout (or ``$MCBR_SHARED``), if present."""
    path = Path(os.environ.get("MCBR_SHARED", ROOT.parent / "shared"))
    return path if path.is_dir() else None


@pytest.fixture
def make_audio(tmp_path: Path):
    """Factory: ``make_audio("x.flac", seconds=3, freq=440)`` writes a generated file."""

    def make(name: str, *, seconds: float = 4.0, sr: int = 22050, freq: float = 440.0, seed: int = 0,
             channels: int = 1) -> Path:  # fmt: skip
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_audio(path, tone(seconds, sr=sr, freq=freq, seed=seed, channels=channels), sr)

    return make
