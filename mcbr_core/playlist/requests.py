"""What every playlist strategy reads of a ``PlaylistRequest``: its options, seeds and candidates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mcbr_core.errors import McbrError
from mcbr_core.playlist.base import PlaylistRequest, Track
from mcbr_core.playlist.naming import describe
from mcbr_core.playlist.space import Space
from mcbr_core.settings import from_mapping


def mode_options(cls: type, options: Mapping[str, Any], mode: str) -> Any:
    """The mode's options as its frozen dataclass ``cls`` (unknown keys are an error)."""
    return from_mapping(cls, options, where=f"mcbr.playlist.{mode}")


def seed_of(request: PlaylistRequest, n: int, mode: str) -> tuple[list[int], list[Track], np.ndarray]:
    """Seed ``n``'s ids with a vector (query order), their tracks and prepared vectors ``(s, D)``."""
    wanted = list(request.seeds[n]) if n < len(request.seeds) else []
    ids, vecs = request.space.vectors(wanted)
    if not len(ids):
        label = request.labels[n] if n < len(request.labels) else "the query"
        raise McbrError(f"{mode}: none of the tracks of {label!r} has an embedding")
    tracks = request.space.tracks(ids.tolist())
    return ids.tolist(), [tracks.get(i, Track(i)) for i in ids.tolist()], vecs


def seed_label(request: PlaylistRequest, n: int, tracks: Sequence[Track]) -> str:
    """A name for seed ``n``: its query's label, or what its tracks have in common."""
    return describe(tracks, request.labels[n] if n < len(request.labels) else "")


def all_seed_ids(request: PlaylistRequest) -> set[int]:
    """The ids of every seed's tracks."""
    return {int(i) for seed in request.seeds for i in seed}


def pool_of(space: Space, ids: Sequence[int]) -> tuple[list[int], list[Track], np.ndarray]:
    """Candidates among ``ids`` with their tracks and prepared vectors ``(n, D)``, in the order given."""
    got, vecs = space.vectors(space.candidate_ids(ids))
    tracks = space.tracks(got.tolist())
    return got.tolist(), [tracks[i] for i in got.tolist()], vecs
