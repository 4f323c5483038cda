"""The feature-extractor interface."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

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
