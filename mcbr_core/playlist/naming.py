"""Names for playlists: what a seed is, and what a cluster sounds like.

A cluster is named from its dominant mood and genre (``"Sad Jazz"``). Tags count
per track, the first genre (the tagger's best) fully and the others half. When two
clusters would share a name, each gets the tag that sets it most apart from the
rest of the library (``"Happy Rock (Punk)"``), then a number.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

from mcbr_core.playlist.base import Track


def describe(tracks: Sequence[Track], fallback: str = "") -> str:
    """A short label for a seed: ``"Artist - Title"``, ``"Artist - Album"``, ``"Artist"`` or ``fallback``."""
    if not tracks:
        return fallback or "nothing"
    first = tracks[0]
    artists = {t.artist_key for t in tracks}
    if len(tracks) == 1:
        parts = [p for p in (first.artist, first.title) if p]
        return " - ".join(parts) or fallback or f"item {first.item_id}"
    if first.album and first.album_id is not None and all(t.album_id == first.album_id for t in tracks):
        return f"{first.artist} - {first.album}" if len(artists) == 1 and first.artist else first.album
    if len(artists) == 1 and first.artist:
        return first.artist
    return fallback or f"{len(tracks)} tracks"


def _weights(tracks: Sequence[Track], kind: str) -> tuple[Counter[str], dict[str, str]]:
    """Tag (lower case) -> weight over tracks, and the most common spelling of each tag."""
    weights: Counter[str] = Counter()
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    for track in tracks:
        tags = track.genres if kind == "genre" else track.mood
        for rank, tag in enumerate(dict.fromkeys(tags)):
            key = tag.strip().lower()
            if not key:
                continue
            weights[key] += 1.0 if rank == 0 else 0.5
            spellings[key][tag.strip()] += 1
    return weights, {k: c.most_common(1)[0][0] for k, c in spellings.items()}


def _dominant(weights: Counter[str], overall: Counter[str], n: int, total: int) -> str | None:
    """The tag held by most tracks; ties go to the one rarer elsewhere."""
    if not weights or n == 0:
        return None
    return max(weights, key=lambda t: (weights[t] / n, (weights[t] / n) / (overall[t] / total), t))


def name_clusters(groups: Sequence[Sequence[Track]]) -> list[str]:
    """One distinct name per group of tracks, from the dominant mood and genre."""
    total = max(sum(len(g) for g in groups), 1)
    stats = {kind: [_weights(g, kind) for g in groups] for kind in ("genre", "mood")}
    overall = {kind: sum((w for w, _ in stats[kind]), Counter()) for kind in stats}
    spelling = {kind: {k: v for _, s in stats[kind] for k, v in s.items()} for kind in stats}
    names: list[str] = []
    chosen: list[set[str]] = []
    for i, group in enumerate(groups):
        genre = _dominant(stats["genre"][i][0], overall["genre"], len(group), total)
        mood = _dominant(stats["mood"][i][0], overall["mood"], len(group), total)
        words = [spelling["mood"][mood]] if mood else []
        words += [spelling["genre"][genre]] if genre else []
        names.append(" ".join(words) or f"Cluster {i + 1}")
        chosen.append({t for t in (genre, mood) if t})
    clashes = Counter(names)
    for i, group in enumerate(groups):
        if clashes[names[i]] < 2:
            continue
        best: tuple[float, str] | None = None
        for kind in ("genre", "mood"):
            weights = stats[kind][i][0]
            for tag, w in weights.items():
                if tag in chosen[i]:
                    continue
                share = w / max(len(group), 1)
                score = share * math.log1p(share / (overall[kind][tag] / total))
                if best is None or score > best[0]:
                    best = (score, spelling[kind][tag])
        if best is not None:
            names[i] = f"{names[i]} ({best[1]})"
    clashes = Counter(names)
    seen: Counter[str] = Counter()
    final = []
    for name in names:
        seen[name] += 1
        final.append(name if clashes[name] == 1 else f"{name} {seen[name]}")
    return final
