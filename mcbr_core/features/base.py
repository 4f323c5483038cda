"""The feature-extractor interface."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class FeatureExtractor(Protocol):
    """Maps mono audio to a feature map.

    Attributes
    ----------
    name : str
        Registered name, e.g. ``"musicnn-mel"``.
    version : str
        Bumped whenever the output changes for the same input; stored with every
        embedding so that a model never meets features it was not trained on.
    sample_rate : int
        Rate the audio must have.
    frames_per_second : float
        Feature frames per second of audio (to turn patch sizes into seconds).
    """

    name: str
    version: str
    sample_rate: int
    frames_per_second: float

    def __call__(self, y: np.ndarray) -> np.ndarray:
        """Compute features.

        Parameters
        ----------
        y : np.ndarray [shape=(n_samples,), dtype=float32]

        Returns
        -------
        np.ndarray [shape=(C, F, T), dtype=float32]
        """
        ...


class FrontEnd:
    """What the pretrained models' front ends share: the protocol's facts, from their frozen config.

    The config has ``version``, ``sr`` (the rate the input must have) and
    ``hop_length`` (samples per feature frame).
    """

    name: str = ""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.version: str = config.version
        self.sample_rate: int = config.sr
        self.frames_per_second: float = config.sr / config.hop_length
