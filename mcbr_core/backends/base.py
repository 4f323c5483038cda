"""The model-backend interface and shipped-model lookup."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mcbr_core.errors import ModelError


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


def shipped_models_dir() -> Path:
    """Folder of the models shipped with the package.

    Installed wheels carry them as ``mcbr_core/shipped_models``; a source checkout
    (editable install) has them in the repository's ``models/``.
    """
    here = Path(__file__).resolve().parent.parent
    installed = here / "shipped_models"
    return installed if installed.is_dir() else here.parent / "models"


def shipped_models() -> dict[str, Path]:
    """Shipped model names to their ``.safetensors`` files."""
    folder = shipped_models_dir()
    return {p.stem: p for p in sorted(folder.glob("*.safetensors"))} if folder.is_dir() else {}


def resolve_model(model: str, *, base_dir: Path | None = None) -> Path:
    """Turn a model name or path into a model file.

    Parameters
    ----------
    model
        A shipped model name (``"msd-musicnn"``) or a path to a ``.safetensors`` file
        (relative paths are taken from ``base_dir``).
    base_dir
        Folder relative paths start from (the beets config folder in the plugin).

    Raises
    ------
    ModelError
        If nothing by that name or path exists.
    """
    shipped = shipped_models()
    if model in shipped:
        return shipped[model]
    path = Path(model).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if path.is_file():
        return path
    names = ", ".join(shipped) or "none"
    raise ModelError(f"model {model!r} is neither a shipped model ({names}) nor an existing file")
