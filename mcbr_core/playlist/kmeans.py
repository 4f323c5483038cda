"""Seeded k-means in NumPy (k-means++ start, Lloyd steps, best of a few restarts).

Spherical k-means (``spherical=True``) keeps the centres on the unit sphere, so
unit vectors are grouped by angle: the angular metric of the shipped models.
"""

from __future__ import annotations

import numpy as np

from mcbr_core.vectors import unit


def _sq_distances(x: np.ndarray, centres: np.ndarray, xx: np.ndarray | None = None) -> np.ndarray:
    """Squared distances ``(N, k)`` of points ``(N, D)`` to centres ``(k, D)``.

    ``xx`` caches ``|x|^2`` ``(N,)``.
    """
    xx = (x**2).sum(axis=1) if xx is None else xx
    d = xx[:, None] + (centres**2).sum(axis=1)[None, :] - 2.0 * x @ centres.T
    return np.maximum(d, 0.0)


def _plus_plus(x: np.ndarray, k: int, rng: np.random.Generator, xx: np.ndarray) -> np.ndarray:
    """k-means++ starting centres ``(k, D)``."""
    centres = [x[rng.integers(len(x))]]
    closest = _sq_distances(x, centres[0][None], xx)[:, 0].astype(np.float64)  # (N,)
    for _ in range(1, k):
        total = closest.sum()
        pick = rng.choice(len(x), p=closest / total) if total > 0 else rng.integers(len(x))
        centres.append(x[pick])
        closest = np.minimum(closest, _sq_distances(x, x[pick][None], xx)[:, 0])
    return np.stack(centres)


def kmeans(
    vectors: np.ndarray,
    k: int,
    *,
    seed: int = 0,
    spherical: bool = False,
    iterations: int = 100,
    restarts: int = 4,
    tol: float = 1e-4,
    sample: int = 20000,
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster points into ``k`` groups.

    Parameters
    ----------
    vectors : np.ndarray [shape=(N, D)]
        Points (unit vectors for ``spherical``).
    k
        Number of clusters, 1 <= k <= N.
    seed
        Seed of the starts: the same input and seed give the same clusters.
    spherical
        Keep centres on the unit sphere (cosine k-means).
    iterations
        At most this many Lloyd steps per start.
    restarts
        Starts tried; the one with the lowest within-cluster sum of squares wins.
    tol
        A start stops when its centres move less than this (squared, summed), relative
        to the points' mean variance per dimension (scikit-learn's rule).
    sample
        With more points than this, the centres are fitted on a seeded sample of this
        many and every point then joins its nearest centre; 0 fits on all points.

    Returns
    -------
    labels : np.ndarray [shape=(N,), dtype=int64]
        Cluster of each point, 0 .. k-1, numbered by first appearance.
    centres : np.ndarray [shape=(k, D)]
    """
    x = np.asarray(vectors, dtype=np.float32)  # float32 halves the cost of the (N, k) products
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"kmeans needs points of shape (N, D), got {x.shape}")
    if not 1 <= k <= len(x):
        raise ValueError(f"kmeans needs 1 <= k <= {len(x)}, got {k}")
    rng = np.random.default_rng(seed)
    if len(x) > sample > 0:  # fit on a seeded sample, then give every point its nearest centre
        fit = np.sort(rng.choice(len(x), size=sample, replace=False))
        _, centres = kmeans(
            x[fit],
            k,
            seed=seed,
            spherical=spherical,
            iterations=iterations,
            restarts=restarts,
            tol=tol,
            sample=0,
        )
        labels = _sq_distances(x, centres).argmin(axis=1)
        return _renumber(labels, centres, k)
    xx = (x**2).sum(axis=1)  # (N,)
    threshold = tol * float(x.var(axis=0).mean())
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(max(1, restarts)):
        labels, centres = _lloyd(x, _plus_plus(x, k, rng, xx), xx, spherical, iterations, threshold)
        inertia = float(_sq_distances(x, centres, xx)[np.arange(len(x)), labels].sum())
        if best is None or inertia < best[0] - 1e-12:
            best = (inertia, labels.copy(), centres.copy())
    assert best is not None
    _, labels, centres = best
    return _renumber(labels, centres, k)


def _lloyd(
    x: np.ndarray, centres: np.ndarray, xx: np.ndarray, spherical: bool, iterations: int, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """One start: Lloyd steps from ``centres`` until the labels settle, the centres move less
    than ``threshold``, or ``iterations`` run out; the labels (N,) and centres (k, D)."""
    k = len(centres)
    rows = np.arange(len(x))
    labels = np.full(len(x), -1, dtype=np.int64)
    for _ in range(iterations):
        d = _sq_distances(x, centres, xx)  # (N, k)
        new = d.argmin(axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        counts = np.bincount(labels, minlength=k)  # (k,)
        _fill_empty(labels, counts, d[rows, labels])
        moved = _means(x, labels, counts, centres)
        if spherical:
            moved = unit(moved)
        shift = float(((moved - centres) ** 2).sum())
        centres = moved.astype(np.float32)
        if shift <= threshold:
            break
    return labels, centres


def _fill_empty(labels: np.ndarray, counts: np.ndarray, served: np.ndarray) -> None:
    """Give each empty cluster the point worst served by its centre (``served``: each point's
    squared distance to it), never emptying another; ``labels`` and ``counts`` change in place."""
    for j in np.flatnonzero(counts == 0):
        served[counts[labels] <= 1] = -1.0  # never empty another cluster
        far = int(served.argmax())
        if served[far] < 0:
            break
        counts[labels[far]] -= 1
        labels[far] = j
        counts[j] = 1
        served[far] = -1.0


def _means(x: np.ndarray, labels: np.ndarray, counts: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Each cluster's mean (k, D); an empty cluster keeps its centre."""
    onehot = np.zeros((len(centres), len(x)), dtype=np.float32)
    onehot[labels, np.arange(len(x))] = 1.0
    sums = onehot @ x  # (k, D)
    return np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centres)


def _renumber(labels: np.ndarray, centres: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Number clusters by first appearance, so equal clusterings read the same."""
    order = list(dict.fromkeys(labels.tolist()))
    order += [j for j in range(k) if j not in order]
    remap = np.empty(k, dtype=np.int64)
    remap[order] = np.arange(k)
    return remap[labels], centres[order]
