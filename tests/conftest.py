"""Shared fixtures: generated audio."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audiogen import tone, write_audio


@pytest.fixture
def make_audio(tmp_path: Path):
    """Factory: ``make_audio("x.flac", seconds=3, freq=440)`` writes a generated file."""

    def make(name: str, *, seconds: float = 4.0, sr: int = 22050, freq: float = 440.0, seed: int = 0,
             channels: int = 1) -> Path:  # fmt: skip
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_audio(path, tone(seconds, sr=sr, freq=freq, seed=seed, channels=channels), sr)

    return make
