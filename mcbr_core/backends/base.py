"""The model-backend interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Inference:
    """Outputs of a backend for a batch of patches.

    Attributes
    ----------
    heads : dict[str, np.ndarray]
        Head name to probabilities ``[shape=(B, n_labels)]``.
    embedding : np.ndarray [shape=(B, D)]
        The penultimate-layer vectors.
    """

    heads: dict[str, np.ndarray]
    embedding: np.ndarray


@runtime_checkable
class ModelBackend(Protocol):
    """Runs a model on feature patches.

    Attributes
    ----------
    model_id : str
        Stable id stored with every embedding (e.g. ``"msd-musicnn-1"``).
    heads : dict[str, list[str]]
        Output labels per head, in output order.
    tag_kinds : dict[str, dict[str, str]]
        Head -> label -> ``"genre"`` / ``"mood"`` / ``"other"``.
    embedding_dim : int
    metric : str
        Distance the embedding is meant for (``"angular"`` or ``"euclidean"``).
    extractor : str
        Registered feature extractor the model was trained on.
    extractor_options : dict
        Its config (from the model card).
    feature_version : str
    patch_frames : int | None
        Frames per model input; ``None`` means the whole feature map at once.
    patch_hop : int | None
        Frames between consecutive patches.
    """

    model_id: str
    heads: dict[str, list[str]]
    tag_kinds: dict[str, dict[str, str]]
    embedding_dim: int
    metric: str
    extractor: str
    extractor_options: dict[str, Any]
    feature_version: str
    patch_frames: int | None
    patch_hop: int | None

    def infer(self, patches: np.ndarray) -> Inference:
        """Run the model.

        Parameters
        ----------
        patches : np.ndarray [shape=(B, C, F, T), dtype=float32]

        Returns
        -------
        Inference
            Probabilities per head ``(B, n_labels)`` and embeddings ``(B, D)``.
        """
        ...
