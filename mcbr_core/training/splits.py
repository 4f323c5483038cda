"""Train/validation/test splits and cross-validation folds that keep artists apart.

A model that has heard an artist in training recognises the artist's production, not
the genre (the "producer effect", Flexer 2007), so every split here is grouped: all
clips of one artist land in the same part. Within that constraint the parts are
stratified, so each holds about its share of every label.

Also here: the fault-filtered GTZAN split (Kereliuk, Sturm & Larsen 2015), which
drops GTZAN's repeated, mislabelled and distorted excerpts and keeps artists apart.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from mcbr_core.errors import ConfigError
from mcbr_core.training.seeds import sub_seed

__all__ = [
    "GTZAN_EXCLUDED",
    "GTZAN_UNREADABLE",
    "group_key",
    "grouped_folds",
    "grouped_split",
    "gtzan_fault_filtered",
    "holdout_split",
]


def group_key(artist: str | None, clip_id: str) -> str:
    """The group a clip belongs to: its artist (case- and space-insensitive), else the clip itself."""
    if artist:
        return "artist:" + re.sub(r"\s+", " ", artist).strip().casefold()
    return "clip:" + clip_id


def grouped_split(
    groups: Sequence[str],
    targets: np.ndarray,
    proportions: Sequence[float],
    *,
    seed: int = 0,
) -> np.ndarray:
    """Assign whole groups to parts of the given sizes, balancing every label's share.

    Groups are placed one at a time, largest first (ties in a seeded random order),
    each into the part that still needs its labels most: the part maximising the
    group's label-weighted remaining need, ``sum_k g[k] * (p[part] * total[k] -
    count[part, k]) / total[k]`` (normalised by the group's weight), plus half the
    part's remaining need of clips. This is the greedy of iterative stratification
    (Sechidis et al. 2011) for groups; it handles unequal parts and multi-label targets.

    Parameters
    ----------
    groups
        One group key per clip (see :func:`group_key`).
    targets : np.ndarray [shape=(n_clips, n_labels)]
        Label indicators (one-hot for single-label tasks, multi-hot for multi-label).
    proportions
        Target share of each part; normalised to sum to one.
    seed
        Orders groups of equal size.

    Returns
    -------
    np.ndarray [shape=(n_clips,), dtype=int]
        The part of each clip.

    Raises
    ------
    ConfigError
        On mismatched lengths, or fewer groups than parts.
    """
    targets = np.asarray(targets, dtype=np.float64)
    if targets.ndim != 2 or len(targets) != len(groups):
        raise ConfigError(f"need one target row per clip: {len(groups)} groups, targets {targets.shape}")
    p = np.asarray(proportions, dtype=np.float64)
    if p.ndim != 1 or len(p) < 2 or (p <= 0).any():
        raise ConfigError(f"need at least two positive proportions, got {list(proportions)}")
    p = p / p.sum()
    keys, inverse = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    n_groups, n_parts = len(keys), len(p)
    if n_groups < n_parts:
        raise ConfigError(f"only {n_groups} artist group(s): cannot make {n_parts} artist-disjoint parts")
    g_counts = np.zeros((n_groups, targets.shape[1]))
    np.add.at(g_counts, inverse, targets)
    g_sizes = np.bincount(inverse, minlength=n_groups).astype(np.float64)
    totals = np.maximum(g_counts.sum(axis=0), 1.0)  # (K,)
    rng = np.random.default_rng(sub_seed(seed, "grouped_split"))
    order = rng.permutation(n_groups)
    order = order[np.argsort(-g_sizes[order], kind="stable")]
    counts = np.zeros((n_parts, targets.shape[1]))
    sizes = np.zeros(n_parts)
    part_of_group = np.empty(n_groups, dtype=np.int64)
    share = p[:, None] * totals[None, :]  # (P, K) target counts
    n = float(len(groups))
    for g in order:
        weight = g_counts[g] / totals  # (K,)
        need = (share - counts) / totals[None, :]  # (P, K) share of each label still wanted
        label_score = (need * weight[None, :]).sum(axis=1) / max(weight.sum(), 1e-12)  # (P,)
        size_score = (p * n - sizes) / n  # (P,)
        score = label_score + 0.5 * size_score
        best = np.flatnonzero(np.isclose(score, score.max()))
        f = int(best[np.argmin(sizes[best] / p[best])])
        part_of_group[g] = f
        counts[f] += g_counts[g]
        sizes[f] += g_sizes[g]
    return part_of_group[inverse]


def grouped_folds(groups: Sequence[str], targets: np.ndarray, n_folds: int, *, seed: int = 0) -> np.ndarray:
    """Artist-disjoint, stratified k-fold: the fold (0..k-1) of each clip.

    Raises
    ------
    ConfigError
        If ``n_folds < 2`` or there are fewer groups than folds.
    """
    if n_folds < 2:
        raise ConfigError(f"cross-validation needs at least 2 folds, got {n_folds}")
    return grouped_split(groups, targets, [1.0] * n_folds, seed=seed)


def holdout_split(
    groups: Sequence[str],
    targets: np.ndarray,
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> np.ndarray:
    """Artist-disjoint train/val/test split: ``"train"``, ``"val"`` or ``"test"`` per clip.

    A zero fraction leaves that part empty.
    """
    names = ["train"]
    props = [1.0 - val_fraction - test_fraction]
    for name, frac in (("val", val_fraction), ("test", test_fraction)):
        if frac > 0:
            names.append(name)
            props.append(frac)
    if props[0] <= 0:
        raise ConfigError(f"val_fraction + test_fraction must be < 1, got {val_fraction} + {test_fraction}")
    parts = grouped_split(groups, targets, props, seed=seed)
    return np.asarray(names, dtype=object)[parts]


# -- GTZAN ------------------------------------------------------------------------------

#: The fault-filtered split of Kereliuk, Sturm & Larsen (2015), "Deep learning and
#: music adversaries" (443 train, 197 validation, 290 test; artist-filtered; the 70
#: other excerpts are exact or near repetitions, mislabelled or distorted, after
#: Sturm 2012/2013). Excerpt numbers per genre, as ranges.
_GTZAN_SPLIT: dict[str, dict[str, str]] = {
    "train": {
        "blues": "29-49,73-97",
        "classical": "30-33,43-48,50-67,80-99",
        "country": "19-26,28-29,65-99",
        "disco": "5,15-20,22-37,39-45,47,49,53-54,56-57,59,61,70,73-74,89",
        "hiphop": "2-25,28-29,31-38,41-42,55-61,77-80",
        "jazz": "0-1,11-24,41,47-72",
        "metal": "2-3,5,21,24,35,46-57,59-66,69,71-72,79-80,84,86,89-99",
        "pop": "2-9,11-12,16-20,23-29,31-36,38-42,44,46,49-50,80,97-99",
        "reggae": "0-2,4,6,9,11-12,14-32,42-45,49-51,54-60,63,69",
        "rock": "0-9,16-26,57-70,91-99",
    },
    "val": {
        "blues": "0-11,50-60",
        "classical": "0-10,68-76",
        "country": "0-7,9-18,27,41-42,45,49",
        "disco": "0,2-4,6-14,46,48,52,67-68,72,75,90,95",
        "hiphop": "81-98",
        "jazz": "2-10,25-32",
        "metal": "0-1,6-11,16-20,36-37,68,76-77,81-82",
        "pop": "10,53,55,58-62,81,83-86",
        "reggae": "61-62,70,72,74,76-78,85,92-99",
        "rock": "38,49-56,71-85",
    },
    "test": {
        "blues": "12-28,61-72,98-99",
        "classical": "11-29,34-41,49,77-79",
        "country": "30-40,43-44,46-48,50-51,53-64",
        "disco": "1,21,58,62-66,69,76-88,91-94,96-97,99",
        "hiphop": "0,26-27,30,40,43-45,51-54,62-75,99",
        "jazz": "73-99",
        "metal": "12-15,22-23,25-33,38-39,67,70,73-75,78,83,85,87-88",
        "pop": "0-1,13-14,43,63-66,69-79,82,88-96",
        "reggae": "34-40,46-48,52-53,64-68,71,79,82-84,87-90",
        "rock": "10-15,27-37,39-48,86-90",
    },
}

#: ``jazz.00054`` cannot be decoded in the original archive (it is in the filtered
#: training list all the same), so it is always left out.
GTZAN_UNREADABLE = frozenset({"jazz.00054"})

GTZAN_GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")


def _expand(ranges: str) -> list[int]:
    out: list[int] = []
    for part in ranges.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def gtzan_fault_filtered() -> dict[str, str]:
    """Excerpt stem (``"blues.00029"``) -> ``"train"``, ``"val"`` or ``"test"`` (930 excerpts)."""
    out = {}
    for split, genres in _GTZAN_SPLIT.items():
        for genre, ranges in genres.items():
            for n in _expand(ranges):
                out[f"{genre}.{n:05d}"] = split
    return out


#: The 70 excerpts the fault-filtered split leaves out.
GTZAN_EXCLUDED = frozenset(f"{g}.{n:05d}" for g in GTZAN_GENRES for n in range(100)) - set(
    gtzan_fault_filtered()
)
