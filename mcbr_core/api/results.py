"""Request parameters and the JSON shapes of results (plain values in, plain dicts out).

Distances and similarity
------------------------
The index returns distances in the model's metric. The shipped models are
``angular``: ``d = sqrt(2 - 2 cos)`` between unit-normalised embeddings, in [0, 2],
the ``$mcbr_distance`` of ``beet similar``. Every result carries

``distance``
    that distance, as the index gives it;
``similarity``
    ``1 - d / 2`` for ``angular``: 1 for the same sound, 0.5 for orthogonal
    embeddings, 0 for opposite ones, linear in ``d``. A model with the
    ``euclidean`` metric gets ``1 / (1 + d)``; ``dot`` (the distance is the negated
    inner product) gets ``(1 - d) / 2``, which is ``1 - d / 2`` again for unit vectors.

The AudioMuse-AI endpoints answer with AudioMuse's own ``distance``: the cosine
distance ``1 - cos = d**2 / 2`` for ``angular`` (what its Voyager index returns), the
plain distance for ``euclidean``.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mcbr_core.api import ApiError
from mcbr_core.vectors import unit

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

#: beets fields of a track in a native response, in this order.
TRACK_FIELDS = (
    "id", "title", "artist", "album", "albumartist", "year", "genres", "mood", "length", "track", "disc",
    "album_id", "mb_trackid", "mb_releasetrackid", "mb_albumid", "mb_artistid", "mb_albumartistid",
)  # fmt: skip

#: beets fields of an album in a native response.
ALBUM_FIELDS = ("id", "album", "albumartist", "year", "genres", "albumtype", "mb_albumid", "mb_albumartistid")


def parse_count(value: str | None, *, name: str, default: int, low: int = 1, high: int = 1000) -> int:
    """A whole number parameter within ``[low, high]``; ``default`` when absent or empty.

    Raises
    ------
    ApiError
        400 when it is not a whole number or out of range.
    """
    if value is None or not value.strip():
        return default
    text = value.strip()
    if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 12:
        raise ApiError(400, f"{name}: expected a whole number, got {text[:30]!r}")
    number = int(text)
    if not low <= number <= high:
        raise ApiError(400, f"{name}: must be between {low} and {high}, got {number}")
    return number


def parse_flag(value: str | None, *, name: str) -> bool | None:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``); ``None`` when absent.

    Raises
    ------
    ApiError
        400 for anything else.
    """
    if value is None or not value.strip():
        return None
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ApiError(400, f"{name}: expected true or false, got {value[:30]!r}")


def similarity(distance: float, metric: str) -> float:
    """The similarity in [0, 1] of a result at ``distance`` in ``metric`` (see the module docstring)."""
    d = float(distance)
    if not math.isfinite(d):
        return 0.0
    if metric == "angular":
        s = 1.0 - d / 2.0
    elif metric == "euclidean":
        s = 1.0 / (1.0 + max(d, 0.0))
    else:  # dot: the distance is the negated inner product
        s = (1.0 - d) / 2.0
    return round(min(max(s, 0.0), 1.0), 6)


def audiomuse_distance(distance: float, metric: str) -> float:
    """AudioMuse-AI's ``distance`` of a result: ``1 - cos`` (``d**2 / 2``) for ``angular``."""
    d = float(distance)
    if metric == "angular":
        return round(d * d / 2.0, 6)
    if metric == "dot":
        return round(1.0 + d, 6)
    return round(d, 6)


def step_distances(vectors: np.ndarray, metric: str) -> np.ndarray:
    """Distances ``(N - 1,)`` between consecutive rows of ``vectors`` ``(N, D)``, in ``metric``.

    The conventions of ``mcbr_core.vectors.distances`` (Annoy's), pair by pair:
    ``angular`` is ``sqrt(2 - 2 cos)``, ``euclidean`` the L2 distance, ``dot`` the
    negated inner product.
    """
    v = np.asarray(vectors, dtype=np.float64)
    if len(v) < 2:
        return np.zeros(0)
    a, b = v[:-1], v[1:]
    if metric == "euclidean":
        return np.linalg.norm(b - a, axis=1)
    if metric == "dot":
        return -(a * b).sum(axis=1)
    return np.sqrt(np.maximum(2.0 - 2.0 * (unit(a) * unit(b)).sum(axis=1), 0.0))


def relative_path(path: str, directory: str) -> str | None:
    """``path`` relative to the library ``directory`` in POSIX form, or ``None`` outside it.

    Only paths inside the library are ever shown, relative to it, so a response
    never names a place outside the library.
    """
    if not path or not directory:
        return None
    norm_path = posixpath.normpath(path.replace("\\", "/"))
    norm_dir = posixpath.normpath(directory.replace("\\", "/"))
    if norm_dir == "/":
        return None  # a library at the root would show every absolute path
    if not norm_path.startswith(norm_dir.rstrip("/") + "/"):
        return None
    rel = norm_path[len(norm_dir.rstrip("/")) + 1 :]
    return rel if rel and not rel.startswith("../") else None


def _split(value: Any, separator: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if str(v)]
    return [part.strip() for part in str(value).split(separator) if part.strip()]


def _plain(value: Any) -> Any:
    """A JSON-safe value: text, numbers, lists of text; bytes never leave."""
    if isinstance(value, bytes):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return value


def _scored(out: dict[str, Any], distance: float | None, metric: str) -> dict[str, Any]:
    if distance is not None:
        out["distance"] = round(float(distance), 6)
        out["similarity"] = similarity(distance, metric)
    return out


def track_json(
    fields: Mapping[str, Any],
    *,
    ref: str,
    distance: float | None,
    metric: str,
    separator: str = "; ",
    directory: str = "",
) -> dict[str, Any]:
    """A track of a native response.

    Parameters
    ----------
    fields
        The item's beets fields (``TRACK_FIELDS``, and ``path`` as text).
    ref
        The track's id in the caller's form (``ids.mint``).
    distance
        Distance to the query in the index metric; ``None`` for the query itself.
    metric
        The index metric, for ``similarity``.
    separator
        Separator of a multi-valued ``mood`` string.
    directory
        The library directory: ``path`` is shown relative to it, and left out for a
        file outside it.

    Returns
    -------
    dict
        ``ref``, the beets fields (``genres`` and ``mood`` as lists), ``path`` when
        inside the library, and ``distance`` and ``similarity`` when scored.
    """
    out: dict[str, Any] = {"ref": ref}
    for key in TRACK_FIELDS:
        value = fields.get(key)
        if key in ("genres", "mood"):
            out[key] = _split(value, separator)
        else:
            out[key] = _plain(value)
    rel = relative_path(str(fields.get("path") or ""), directory)
    if rel is not None:
        out["path"] = rel
    return _scored(out, distance, metric)


def album_json(fields: Mapping[str, Any], *, distance: float | None, metric: str) -> dict[str, Any]:
    """An album of a native response: ``ALBUM_FIELDS``, ``distance`` and ``similarity``."""
    out = {
        key: (_split(fields.get(key), "; ") if key == "genres" else _plain(fields.get(key)))
        for key in ALBUM_FIELDS
    }
    return _scored(out, distance, metric)


def artist_json(
    name: str, mbid: str | None, tracks: int, *, distance: float | None, metric: str
) -> dict[str, Any]:
    """An artist of a native response: its name, MusicBrainz id, track count, ``distance``, ``similarity``."""
    return _scored({"artist": name, "mb_artistid": mbid or "", "tracks": int(tracks)}, distance, metric)


def audiomuse_json(
    fields: Mapping[str, Any], *, item_id: str, distance: float, metric: str
) -> dict[str, Any]:
    """A track as AudioMuse-AI's ``/api/similar_tracks`` and ``/api/find_path`` return it.

    ``{item_id, title, author, album, album_artist, distance}``: ``author`` is the
    artist, a missing album is ``"unknown"`` as AudioMuse writes it, and ``distance``
    follows AudioMuse's convention (``audiomuse_distance``). No file path.
    """
    return {
        "item_id": item_id,
        "title": str(fields.get("title") or ""),
        "author": str(fields.get("artist") or ""),
        "album": str(fields.get("album") or "") or "unknown",
        "album_artist": str(fields.get("albumartist") or "") or "unknown",
        "distance": audiomuse_distance(distance, metric),
    }


def cap_per_artist(ids: Sequence[int], artist_of: Mapping[int, str], limit: int) -> list[int]:
    """``ids`` in order, at most ``limit`` per artist (compared without case); ``limit`` 0: all.

    An unknown artist (``""``) is never capped.
    """
    if limit <= 0:
        return list(ids)
    counts: dict[str, int] = {}
    out = []
    for item_id in ids:
        key = " ".join(str(artist_of.get(item_id) or "").lower().split())
        if key:
            if counts.get(key, 0) >= limit:
                continue
            counts[key] = counts.get(key, 0) + 1
        out.append(item_id)
    return out
