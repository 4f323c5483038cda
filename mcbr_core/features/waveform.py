"""The waveform itself as a feature map (registered as the ``waveform`` extractor).

A model that runs several networks with different front ends (``mcbr_core.backends.fusion``)
takes the decoded audio as it is and computes each network's own features inside:
the Analyzer cuts this map into patches of ``patch_frames`` samples like any other,
so its analysis windows and patch rules apply unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Waveform", "WaveformConfig"]


@dataclass(frozen=True)
class WaveformConfig:
    """The waveform "front end".

    Attributes
    ----------
    sr
        Rate the audio is decoded at: the highest rate any part of the model needs
        (the parts resample from it).
    patch_frames, patch_hop
        Samples per model patch and between patch starts (read by the backend, not
        here; 0: none given).
    version
        Bumped when the output changes for the same input.
    """

    sr: int = 32000
    patch_frames: int = 0
    patch_hop: int = 0
    version: str = "1"

    def __post_init__(self) -> None:
        if not isinstance(self.sr, int) or self.sr < 1000:
            raise ValueError(f"waveform: sr must be an integer >= 1000, got {self.sr!r}")
        if self.patch_frames < 0 or self.patch_hop < 0:
            raise ValueError("waveform: patch_frames and patch_hop must be >= 0")


class Waveform:
    """Mono audio ``(n_samples,)`` to the map ``[shape=(1, 1, n_samples)]`` (one "frame" per sample)."""

    name = "waveform"

    def __init__(self, config: WaveformConfig | None = None) -> None:
        self.config = c = config or WaveformConfig()
        self.version = c.version
        self.sample_rate = c.sr
        self.frames_per_second = float(c.sr)

    def __call__(self, y: np.ndarray) -> np.ndarray:
        """The audio as ``[shape=(1, 1, n_samples)]`` float32.

        Parameters
        ----------
        y : np.ndarray [shape=(n_samples,)]
            Mono audio at ``sample_rate``.
        """
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"waveform: expected mono audio of shape (n_samples,), got {y.shape}")
        return np.ascontiguousarray(y, dtype=np.float32)[None, None]  # (1, 1, n)
