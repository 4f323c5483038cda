"""What the playlist tests share: generated libraries with planted structure, and the
strategies run on them (pure: no beets)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcbr_core.playlist.base import Constraints, Playlist, PlaylistRequest, Track
from mcbr_core.playlist.generate import get_strategy, make_playlists
from mcbr_core.playlist.space import Space, prepare
from mcbr_core.plugins import Plugins

GENRES = ("Jazz", "Rock", "Electronic", "Folk")
MOODS = ("Sad", "Happy", "Energetic", "Calm")
OPEN = Constraints(count=None, max_per_artist=0, max_per_album=0, no_artist_repeat=False)


@dataclass
class Library:
    ids: np.ndarray  # (N,)
    vectors: np.ndarray  # (N, D)
    labels: np.ndarray  # (N,) planted group
    tracks: dict[int, Track]

    def space(self, metric: str = "angular", **kwargs: object) -> Space:
        return Space.from_arrays(self.ids, self.vectors, self.tracks, metric=metric, **kwargs)

    def of(self, group: int) -> list[int]:
        return self.ids[self.labels == group].tolist()


def planted(
    *,
    groups: int = 4,
    per: int = 30,
    dim: int = 16,
    noise: float = 0.08,
    seed: int = 0,
    artists_per_group: int = 6,
) -> Library:
    """Tight clusters around random unit directions; each has its own artists, albums, genre and mood."""
    rng = np.random.default_rng(seed)
    centres = prepare(rng.normal(size=(groups, dim)), "angular")
    labels = np.repeat(np.arange(groups), per)
    vectors = centres[labels] + noise * rng.normal(size=(len(labels), dim))
    ids = np.arange(1, len(labels) + 1) * 10  # ids need not be dense
    tracks = {}
    for n, (item_id, g) in enumerate(zip(ids.tolist(), labels.tolist(), strict=True)):
        a = n % artists_per_group
        tracks[item_id] = Track(
            item_id,
            artist=f"Artist {g}.{a}",
            album_id=f"{g}.{a}.{n % 2}",
            duration=float(rng.integers(150, 330)),
            genres=(GENRES[g % 4], "Pop") if n % 3 == 0 else (GENRES[g % 4],),
            mood=(MOODS[g % 4],),
            path=f"/music/{g}/{item_id}.flac",
            title=f"Song {item_id}",
            album=f"Album {g}.{a}.{n % 2}",
        )
    return Library(ids, vectors, labels, tracks)


def bridge(
    *, seed: int = 0, dim: int = 12, n_bridge: int = 40, n_noise: int = 60
) -> tuple[Library, list[int], list[int]]:
    """Two far clusters A and B, tracks spread along the way between them, and unrelated tracks."""
    rng = np.random.default_rng(seed)
    a, b = np.zeros(dim), np.zeros(dim)
    a[0], b[1] = 1.0, 1.0
    vecs, labels = [], []
    for _ in range(8):
        vecs.append(a + 0.03 * rng.normal(size=dim)), labels.append(0)
        vecs.append(b + 0.03 * rng.normal(size=dim)), labels.append(1)
    for t in rng.uniform(0.05, 0.95, n_bridge):
        vecs.append((1 - t) * a + t * b + 0.05 * rng.normal(size=dim)), labels.append(2)
    for _ in range(n_noise):
        vecs.append(rng.normal(size=dim)), labels.append(3)
    ids = np.arange(1, len(vecs) + 1)
    tracks = {
        int(i): Track(int(i), artist=f"Artist {int(i) % 17}", album_id=int(i) % 23, duration=200.0)
        for i in ids
    }
    lib = Library(ids, np.stack(vecs), np.array(labels), tracks)
    return lib, lib.of(0), lib.of(1)


def run(
    mode: str,
    lib: Library,
    *seeds: list[int],
    constraints: Constraints = OPEN,
    metric: str = "angular",
    space: Space | None = None,
    **options: object,
) -> list[Playlist]:
    request = PlaylistRequest(
        seeds=tuple(tuple(s) for s in seeds),
        space=space or lib.space(metric),
        constraints=constraints,
        options=options,
    )
    return make_playlists(get_strategy(mode, Plugins(entry_points=False)), request)


def one(mode: str, lib: Library, *seeds: list[int], **kwargs: object) -> list[int]:
    (playlist,) = run(mode, lib, *seeds, **kwargs)
    return list(playlist.item_ids)


# -- registration --------------------------------------------------------------------
