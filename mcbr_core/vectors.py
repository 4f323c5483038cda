"""Unit vectors, centroids and distances: the one place for the geometry of embeddings."""

from __future__ import annotations

import numpy as np


def unit(vectors: np.ndarray) -> np.ndarray:
    """Rows ``(..., D)`` scaled to unit length (zero rows stay zero)."""
    v = np.asarray(vectors)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def centroid(vectors: np.ndarray, metric: str = "angular") -> np.ndarray | None:
    """The centre ``(D,)`` of ``vectors`` ``(N, D)``: a query for what several tracks share.

    For ``angular`` (and ``dot``) the rows are unit-normalised first, so each track
    counts alike, and the mean is brought back to unit length; for ``euclidean``
    it is the plain mean. ``None`` for no rows.
    """
    v = np.asarray(vectors, dtype=np.float64)
    if len(v) == 0:
        return None
    if metric == "euclidean":
        return v.mean(axis=0)
    return unit(unit(v).mean(axis=0))


def distances(vectors: np.ndarray, query: np.ndarray, metric: str = "angular") -> np.ndarray:
    """Distances ``(N,)`` of ``vectors`` ``(N, D)`` to ``query`` ``(D,)``, in Annoy's conventions.

    ``angular`` is ``sqrt(2 - 2 cos)``, ``euclidean`` the L2 distance, ``dot`` the
    negated inner product.
    """
    if metric == "angular":
        return np.sqrt(np.maximum(2.0 - 2.0 * (unit(vectors) @ unit(query)), 0.0))
    if metric == "euclidean":
        return np.linalg.norm(vectors - query, axis=1)
    return -(vectors @ query)
