"""Playlist generation on generated libraries with planted structure (pure: no beets)."""

from __future__ import annotations

import itertools
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mcbr_core.errors import ConfigError, McbrError
from mcbr_core.hookspecs import hookimpl
from mcbr_core.playlist import m3u
from mcbr_core.playlist.base import Constraints, Playlist, PlaylistRequest, PlaylistStrategy, Track
from mcbr_core.playlist.constraints import Transitions, bpm_cost, camelot, key_cost, select, tour
from mcbr_core.playlist.generate import get_strategy, make_playlists, strategy_names
from mcbr_core.playlist.kmeans import kmeans
from mcbr_core.playlist.naming import describe, name_clusters
from mcbr_core.playlist.settings import PlaylistSettings
from mcbr_core.playlist.space import Space, prepare
from mcbr_core.playlist.strategies import progress, signature
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


def test_built_in_strategies_are_registered_through_the_hook() -> None:
    plugins = Plugins(entry_points=False)
    assert strategy_names(plugins) == ["radio", "path", "cluster", "signature"]
    for name in strategy_names(plugins):
        strategy = get_strategy(name, plugins)
        assert isinstance(strategy, PlaylistStrategy) and strategy.name == name and strategy.summary


class Everything:
    """A third-party strategy that ignores every constraint: the driver must enforce them."""

    name = "everything"
    queries = (0, 0)
    seeded = False
    summary = "all candidates, in id order"
    defaults = {"reverse": False}

    def generate(self, request: PlaylistRequest) -> list[Playlist]:
        ids = request.space.candidates().tolist()
        ids = ids[::-1] if request.options["reverse"] else ids
        return [Playlist("All", tuple(ids + ids[:3]), ordered=True)]


class EverythingPlugin:
    @hookimpl
    def register_playlist_strategies(self, register):
        register("everything", Everything)


def test_a_third_party_strategy_gets_the_constraints_enforced() -> None:
    lib = planted(groups=2, per=20)
    plugins = Plugins((EverythingPlugin(),), entry_points=False)
    assert "everything" in strategy_names(plugins)
    c = Constraints(count=8, max_per_artist=2, max_per_album=1)
    request = PlaylistRequest(seeds=(), space=lib.space(), constraints=c, options={"reverse": True})
    (playlist,) = make_playlists(get_strategy("everything", plugins), request)
    tracks = [lib.tracks[i] for i in playlist.item_ids]
    assert len(tracks) == 8 and len(set(playlist.item_ids)) == 8
    assert max(Counter(t.artist for t in tracks).values()) <= 2
    assert max(Counter(t.album_id for t in tracks).values()) <= 1
    assert all(x.artist != y.artist for x, y in itertools.pairwise(tracks))
    with pytest.raises(ConfigError, match=r"unknown key .colour. \(known keys: reverse\)"):
        make_playlists(
            get_strategy("everything", plugins), PlaylistRequest((), lib.space(), c, {"colour": 1})
        )


def test_wrong_number_of_queries_is_an_error() -> None:
    lib = planted(groups=2, per=5)
    with pytest.raises(McbrError, match="path takes 2 queries, got 1"):
        run("path", lib, lib.of(0))
    with pytest.raises(McbrError, match="radio takes 1 query, got 0"):
        run("radio", lib)


# -- radio ---------------------------------------------------------------------------


def test_radio_stays_in_the_seed_cluster_and_leaves_the_seed_out() -> None:
    lib = planted()
    seed = lib.of(2)[0]
    ids = one("radio", lib, [seed], constraints=Constraints(count=12, max_per_artist=0, max_per_album=0))
    assert len(ids) == 12 and seed not in ids and len(set(ids)) == 12
    assert set(ids) <= set(lib.of(2))


def test_radio_steps_stay_near_the_seed_and_the_previous_track() -> None:
    lib = planted(groups=1, per=80, noise=0.3)
    seed = int(lib.ids[0])
    space = lib.space()
    ids = one(
        "radio",
        lib,
        [seed],
        constraints=Constraints(count=15, no_artist_repeat=False, max_per_artist=0, max_per_album=0),
    )
    _, vecs = space.vectors([seed, *ids])
    steps = np.linalg.norm(np.diff(vecs, axis=0), axis=1)
    # a seed-only ranking of the same tracks jumps further between neighbours
    ranked = one(
        "radio",
        lib,
        [seed],
        constraints=Constraints(count=15, no_artist_repeat=False, max_per_artist=0, max_per_album=0),
        previous_weight=0.0,
    )
    _, ranked_vecs = space.vectors([seed, *ranked])
    assert steps.mean() < np.linalg.norm(np.diff(ranked_vecs, axis=0), axis=1).mean()
    # with the seed weight alone it is the nearest-neighbour list of the seed
    dist = np.linalg.norm(space.vectors(ranked)[1] - space.vectors([seed])[1], axis=1)
    assert np.all(np.diff(dist) >= -1e-12)


def test_include_seed_puts_the_seed_first() -> None:
    lib = planted()
    seed = lib.of(1)[:2]
    ids = one("radio", lib, seed, constraints=Constraints(count=6, include_seed=True, no_artist_repeat=False))
    assert ids[:2] == seed and len(ids) == 6


# -- path ----------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["angular", "euclidean"])
def test_path_moves_monotonically_from_a_to_b(metric: str) -> None:
    lib, a_ids, b_ids = bridge()
    space = lib.space(metric)
    ids = one(
        "path",
        lib,
        a_ids,
        b_ids,
        metric=metric,
        constraints=Constraints(count=10, max_per_artist=0, max_per_album=0),
    )
    assert len(ids) == 10 and not set(ids) & set(a_ids + b_ids)
    a, b = space.centroid(a_ids), space.centroid(b_ids)
    where = progress(space.vectors(ids)[1], a, b)
    assert np.all(np.diff(where) > 0), where
    assert where[0] < 0.3 and where[-1] > 0.7
    assert set(ids) <= set(lib.of(2))  # the bridge, never the unrelated tracks


def test_path_with_the_seeds_starts_at_a_and_ends_at_b() -> None:
    lib, a_ids, b_ids = bridge(seed=3)
    space = lib.space()
    c = Constraints(count=20, include_seed=True, max_per_artist=0, max_per_album=0, no_artist_repeat=False)
    ids = one("path", lib, a_ids[:2], b_ids[:2], constraints=c)
    assert set(ids[:2]) == set(a_ids[:2]) and set(ids[-2:]) == set(b_ids[:2]) and len(ids) == 20
    a, b = space.centroid(a_ids[:2]), space.centroid(b_ids[:2])
    assert np.all(np.diff(progress(space.vectors(ids)[1], a, b)) > 0)


def test_path_fits_a_duration_and_still_reaches_b() -> None:
    lib, a_ids, b_ids = bridge(seed=1)
    c = Constraints(count=None, duration=30 * 60.0, max_per_artist=0, max_per_album=0)
    ids = one("path", lib, a_ids, b_ids, constraints=c)
    assert sum(lib.tracks[i].duration for i in ids) <= 30 * 60
    assert len(ids) == 9  # 200 s tracks: nine fit in 30 minutes
    space = lib.space()
    where = progress(space.vectors(ids)[1], space.centroid(a_ids), space.centroid(b_ids))
    assert np.all(np.diff(where) > 0) and where[-1] > 0.7


def test_path_fills_every_step_even_where_little_lies_between() -> None:
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(400, 64))  # no structure: projections crowd round the middle
    ids = np.arange(1, 401)
    lib = Library(ids, vectors, np.zeros(400), {int(i): Track(int(i), artist=f"A{int(i) % 50}") for i in ids})
    ids_out = one(
        "path", lib, [1, 2], [3], constraints=Constraints(count=20, max_per_artist=1, max_per_album=0)
    )
    assert len(ids_out) == 20 and len({lib.tracks[i].artist for i in ids_out}) == 20
    space = lib.space()
    where = progress(space.vectors(ids_out)[1], space.centroid([1, 2]), space.centroid([3]))
    assert np.all(np.diff(where) > 0)


def test_path_between_identical_queries_is_an_error() -> None:
    lib = planted(groups=1, per=5)
    with pytest.raises(McbrError, match="sound the same"):
        run("path", lib, lib.of(0), lib.of(0))


# -- cluster -------------------------------------------------------------------------


def test_cluster_membership_matches_the_planted_clusters() -> None:
    lib = planted(groups=4, per=25)
    playlists = run("cluster", lib, clusters=4)
    assert len(playlists) == 4
    found = sorted(sorted(p.item_ids) for p in playlists)
    assert found == sorted(sorted(lib.of(g)) for g in range(4))
    names = {p.name: {lib.labels[lib.ids.tolist().index(i)] for i in p.item_ids} for p in playlists}
    assert names == {"Sad Jazz": {0}, "Happy Rock": {1}, "Energetic Electronic": {2}, "Calm Folk": {3}}


def test_cluster_of_a_query_and_its_caps() -> None:
    lib = planted(groups=4, per=25)
    query = lib.of(0) + lib.of(3)
    c = Constraints(count=5, max_per_artist=1, max_per_album=1)
    playlists = run("cluster", lib, query, constraints=c, clusters=2)
    assert len(playlists) == 2
    for p in playlists:
        tracks = [lib.tracks[i] for i in p.item_ids]
        assert len(tracks) == 5 and len({t.artist for t in tracks}) == 5
        assert len({lib.labels[lib.ids.tolist().index(i)] for i in p.item_ids}) == 1
    assert {p.name for p in playlists} == {"Sad Jazz", "Calm Folk"}


def test_cluster_is_deterministic_for_a_seed() -> None:
    lib = planted(groups=5, per=12, noise=0.5)
    first = run("cluster", lib, clusters=3, constraints=Constraints(count=None, random_seed=7))
    again = run("cluster", lib, clusters=3, constraints=Constraints(count=None, random_seed=7))
    assert [p.item_ids for p in first] == [p.item_ids for p in again]


def test_kmeans_recovers_planted_groups_and_handles_duplicates() -> None:
    lib = planted(groups=3, per=20, dim=8)
    labels, centres = kmeans(prepare(lib.vectors, "angular"), 3, seed=1, spherical=True)
    assert centres.shape == (3, 8) and np.allclose(np.linalg.norm(centres, axis=1), 1.0)
    pairs = Counter(zip(labels.tolist(), lib.labels.tolist(), strict=True))
    assert len(pairs) == 3
    labels, _ = kmeans(np.ones((5, 2)), 2, seed=0)  # fewer distinct points than clusters
    assert labels.shape == (5,)
    with pytest.raises(ValueError, match="1 <= k <= 5"):
        kmeans(np.ones((5, 2)), 6)


def test_cluster_names_are_distinct() -> None:
    def group(genre: str, mood: str, extra: str, n: int = 4) -> list[Track]:
        return [Track(i, genres=(genre, extra) if i % 2 else (genre,), mood=(mood,)) for i in range(n)]

    names = name_clusters(
        [group("Rock", "Happy", "Punk"), group("Rock", "Happy", "Metal"), group("Jazz", "", "")]
    )
    assert names == ["Happy Rock (Punk)", "Happy Rock (Metal)", "Jazz"]
    assert name_clusters([[Track(1)], [Track(2)]]) == ["Cluster 1", "Cluster 2"]
    assert name_clusters([group("Rock", "Sad", ""), group("Rock", "Sad", "")]) == ["Sad Rock 1", "Sad Rock 2"]


def test_seed_descriptions() -> None:
    a = Track(1, artist="Miles Davis", title="So What", album_id=7, album="Kind of Blue")
    b = Track(2, artist="Miles Davis", title="Blue in Green", album_id=7, album="Kind of Blue")
    c = Track(3, artist="Miles Davis", title="Tutu", album_id=8, album="Tutu")
    assert describe([a]) == "Miles Davis - So What"
    assert describe([a, b]) == "Miles Davis - Kind of Blue"
    assert describe([a, c]) == "Miles Davis"
    assert describe([a, Track(4, artist="Coltrane")], "artist:Miles") == "artist:Miles"


# -- signature -------------------------------------------------------------------------


def signature_library(seed: int = 0) -> tuple[Library, list[int], list[int]]:
    """Random tracks; a group shares three dimensions (+3 sd) and is random elsewhere."""
    rng = np.random.default_rng(seed)
    n, dim, shared = 300, 16, [2, 5, 9]
    vectors = rng.normal(size=(n, dim))
    group = np.arange(20)
    vectors[np.ix_(group, shared)] = 3.0 + 0.15 * rng.normal(size=(len(group), len(shared)))
    labels = np.zeros(n, dtype=int)
    labels[group] = 1
    ids = np.arange(1, n + 1)
    tracks = {int(i): Track(int(i), artist=f"A{int(i) % 40}", album_id=int(i), duration=240.0) for i in ids}
    return Library(ids, vectors, labels, tracks), ids[group].tolist(), shared


def test_signature_finds_the_shared_dimensions_and_extends_by_them() -> None:
    lib, group, shared = signature_library()
    seed = group[:5]
    space = lib.space("euclidean")
    mean, std = space.moments()
    sig = signature(space.vectors(seed)[1], mean, std, dims=3)
    assert sorted(sig.dims.tolist()) == shared
    c = Constraints(count=15, max_per_artist=0, max_per_album=0, order="rank")
    ids = one("signature", lib, seed, metric="euclidean", constraints=c, dims=3)
    assert set(ids) == set(group[5:]) and not set(ids) & set(seed)
    # plain similarity over all dimensions finds fewer of them
    radio = one("radio", lib, seed, metric="euclidean", constraints=c)
    assert len(set(radio) & set(group)) < len(ids)


def test_signature_of_one_track_and_with_the_seed() -> None:
    lib, group, shared = signature_library(seed=1)
    c = Constraints(count=8, include_seed=True, max_per_artist=0, max_per_album=0)
    ids = one("signature", lib, group[:1], metric="euclidean", constraints=c, dims=3)
    assert ids[0] == group[0] and len(ids) == 8
    assert len(set(ids[1:]) & set(group)) >= 6


# -- constraints every mode respects -----------------------------------------------------


def few_artists(seed: int = 0) -> Library:
    """One loose cluster where four artists made everything, on two albums each."""
    lib = planted(groups=1, per=60, noise=0.4, seed=seed, artists_per_group=4)
    lib.tracks = {
        i: Track(i, artist=t.artist, album_id=f"{t.artist}/{i % 2}", duration=t.duration, title=t.title)
        for i, t in lib.tracks.items()
    }
    return lib


def all_modes(lib: Library, c: Constraints) -> dict[str, list[list[int]]]:
    seed = lib.ids[:3].tolist()
    other = lib.ids[-3:].tolist()
    return {
        "radio": [one("radio", lib, seed, constraints=c)],
        "path": [one("path", lib, seed, other, constraints=c)],
        "signature": [one("signature", lib, seed, constraints=c)],
        "cluster": [list(p.item_ids) for p in run("cluster", lib, constraints=c, clusters=2)],
    }


@pytest.mark.parametrize("order", ["smooth", "rank", "shuffle"])
def test_caps_hold_in_every_mode(order: str) -> None:
    lib = few_artists()
    c = Constraints(count=6, max_per_artist=2, max_per_album=1, order=order)
    for mode, playlists in all_modes(lib, c).items():
        for ids in playlists:
            tracks = [lib.tracks[i] for i in ids]
            assert 0 < len(ids) <= 6 and len(set(ids)) == len(ids), mode
            assert max(Counter(t.artist for t in tracks).values()) <= 2, mode
            assert max(Counter(t.album_id for t in tracks).values()) <= 1, mode
            assert all(x.artist != y.artist for x, y in itertools.pairwise(tracks)), mode
            assert not set(ids) & set(lib.ids[:3].tolist()) or mode == "cluster"


def test_duration_limits_hold_in_every_mode() -> None:
    lib = few_artists(seed=2)
    c = Constraints(count=None, duration=25 * 60.0, max_per_artist=0, max_per_album=0)
    longest = max(t.duration for t in lib.tracks.values())
    for mode, playlists in all_modes(lib, c).items():
        for ids in playlists:
            total = sum(lib.tracks[i].duration for i in ids)
            assert total <= 25 * 60, mode
            if mode != "path":  # a path spaces its steps out: it may stop a little earlier
                assert total > 25 * 60 - longest, mode


def test_no_artist_twice_in_a_row_even_when_one_artist_dominates() -> None:
    tracks = [Track(i, artist="A" if i < 4 else f"B{i}") for i in range(8)]
    chosen = select(tracks, Constraints(count=None))
    assert [t.item_id for t in chosen] == list(range(8))  # 4 A, 4 others: an order exists
    vecs = np.random.default_rng(0).normal(size=(8, 4))
    transitions = Transitions(vecs, chosen, Constraints())
    matrix = transitions.matrix()
    order = tour(lambda i: matrix[i], chosen, matrix=matrix)
    artists = [chosen[i].artist for i in order]
    assert sorted(order) == list(range(8)) and all(x != y for x, y in itertools.pairwise(artists))
    crowded = [Track(i, artist="A" if i < 6 else f"B{i}") for i in range(8)]
    assert [t.item_id for t in select(crowded, Constraints(count=None))] == [0, 1, 2, 6, 7]  # 3 A at most


def test_duplicates_and_the_same_song_twice_are_left_out() -> None:
    lib = planted(groups=1, per=20)
    first = lib.tracks[int(lib.ids[1])]
    twin_id = 99_999
    lib.tracks[twin_id] = Track(
        twin_id, artist=first.artist, title=first.title.upper(), album_id="compilation"
    )
    lib.ids = np.append(lib.ids, twin_id)
    lib.vectors = np.vstack([lib.vectors, lib.vectors[1]])
    lib.labels = np.append(lib.labels, 0)
    ids = one(
        "radio",
        lib,
        [int(lib.ids[0])],
        constraints=Constraints(count=None, no_artist_repeat=False, max_per_artist=0, max_per_album=0),
    )
    assert len(ids) == len(set(ids)) == 19 and not {int(lib.ids[1]), twin_id} <= set(ids)


def test_restriction_limits_the_candidates() -> None:
    lib = planted(groups=2, per=30)
    allowed = lib.of(0)[::2]
    space = lib.space(allowed=allowed)
    ids = one(
        "radio",
        lib,
        [lib.of(0)[1]],
        space=space,
        constraints=Constraints(count=10, max_per_artist=0, max_per_album=0),
    )
    assert len(ids) == 10 and set(ids) <= set(allowed)
    clusters = run("cluster", lib, space=space, clusters=3, constraints=OPEN)
    assert {i for p in clusters for i in p.item_ids} == set(allowed)


def test_smooth_order_is_cheaper_than_rank_and_follows_tempo_and_key() -> None:
    rng = np.random.default_rng(4)
    n = 24
    vecs = np.tile(prepare(rng.normal(size=(1, 8)), "angular"), (n, 1)) + 1e-3 * rng.normal(size=(n, 8))
    keys = ["Am", "C", "Em", "G", "F#m", "A"]
    tracks = {
        i: Track(i, artist=f"A{i}", bpm=(90.0 if i % 2 else 128.0), key=keys[i % 6], duration=200.0)
        for i in range(1, n + 1)
    }
    lib = Library(np.arange(1, n + 1), vecs, np.zeros(n), tracks)
    seed = [1]
    smooth = one("signature", lib, seed, constraints=Constraints(count=12, order="smooth"))
    ranked = one("signature", lib, seed, constraints=Constraints(count=12, order="rank"))
    assert set(smooth) == set(ranked)

    def cost(ids: list[int]) -> float:
        t = [tracks[i] for i in ids]
        return sum(
            bpm_cost(x.bpm, y.bpm) + key_cost(camelot(x.key), camelot(y.key))
            for x, y in itertools.pairwise(t)
        )

    assert cost(smooth) < cost(ranked)
    tempo_changes = sum(tracks[x].bpm != tracks[y].bpm for x, y in itertools.pairwise(smooth))
    assert tempo_changes <= 2


def test_shuffle_is_seeded() -> None:
    lib = planted(groups=1, per=30)
    c = Constraints(count=10, order="shuffle", random_seed=3, max_per_artist=0, max_per_album=0)
    first = one("signature", lib, lib.of(0)[:2], constraints=c)
    assert first == one("signature", lib, lib.of(0)[:2], constraints=c)
    assert sorted(first) == sorted(
        one(
            "signature",
            lib,
            lib.of(0)[:2],
            constraints=Constraints(count=10, order="rank", max_per_artist=0, max_per_album=0),
        )
    )


# -- keys and tempo --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("Am", (8, 0)),
        ("C", (8, 1)),
        ("C major", (8, 1)),
        ("F#m", (11, 0)),
        ("Gbm", (11, 0)),
        ("Dbm", (12, 0)),
        ("C#m", (12, 0)),
        ("Bb minor", (3, 0)),
        ("B", (1, 1)),
        ("Abm", (1, 0)),
        ("8A", (8, 0)),
        ("12b", (12, 1)),
        ("1m", (8, 0)),
        ("1d", (8, 1)),
        ("E♭", (5, 1)),
        ("", None),
        ("x", None),
        ("13A", None),
    ],
)
def test_keys_read_as_camelot_codes(key: str, code: tuple[int, int] | None) -> None:
    assert camelot(key) == code


def test_key_and_tempo_costs() -> None:
    assert key_cost(camelot("Am"), camelot("Am")) == 0.0
    assert key_cost(camelot("Am"), camelot("C")) == 0.25  # relative major
    assert key_cost(camelot("Am"), camelot("Em")) == 0.25  # one step round the wheel
    assert key_cost(camelot("B"), camelot("E")) == 0.25  # 1B -> 12B wraps round
    assert key_cost(camelot("Am"), camelot("D#")) == 1.0
    assert key_cost(None, camelot("Am")) == 0.0
    assert bpm_cost(120, 120) == 0.0 and bpm_cost(70, 140) == pytest.approx(0.0)
    assert 0.3 < bpm_cost(120, 126) < 0.4 and bpm_cost(90, 128) == 1.0 and bpm_cost(None, 90) == 0.0


# -- space ---------------------------------------------------------------------------


class ExactIndex:
    """An index stand-in that answers like the store's: nearest ids over raw vectors."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.ids, self.vectors = ids, prepare(vectors, "angular")
        self.calls = 0

    def query(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        d = np.linalg.norm(self.vectors - vector, axis=1)
        order = np.argsort(d)[:n]
        return self.ids[order], d[order]


def test_space_with_an_index_reads_only_what_it_visits() -> None:
    lib = planted(groups=3, per=40)
    loads: list[object] = []
    memory = lib.space()

    def loader(ids):
        loads.append(None if ids is None else len(ids))
        return memory._loader(ids)

    index = ExactIndex(lib.ids, lib.vectors)
    allowed = lib.ids[::3].tolist()
    space = Space(
        loader=loader,
        tracks=lambda ids: {i: lib.tracks[i] for i in ids if i in lib.tracks},
        metric="angular",
        allowed=allowed,
        index=index,
    )
    point = memory.centroid(lib.of(1))
    near = space.nearest(point, 5, exclude=allowed[:1])
    exact = lib.space(allowed=allowed).nearest(point, 5, exclude=allowed[:1])
    assert near.tolist() == exact.tolist() and index.calls >= 1
    assert None not in loads  # never read the whole store
    ids = one(
        "radio",
        lib,
        lib.of(1)[:1],
        space=space,
        constraints=Constraints(count=5, no_artist_repeat=False, max_per_artist=0, max_per_album=0),
    )
    assert set(ids) <= set(allowed) and None not in loads


# -- settings --------------------------------------------------------------------------


def test_constraints_validate() -> None:
    with pytest.raises(ConfigError, match="count must be a positive"):
        Constraints(count=0)
    with pytest.raises(ConfigError, match="order must be one of smooth, rank, shuffle"):
        Constraints(order="random")
    with pytest.raises(ConfigError, match="max_per_artist"):
        Constraints(max_per_artist=-1)
    with pytest.raises(ConfigError, match="duration must be positive"):
        Constraints(duration=0)


def test_playlist_settings_from_config() -> None:
    s = PlaylistSettings.from_config({"count": 10, "duration": 0, "cluster": {"clusters": 3}})
    assert s.modes == {"cluster": {"clusters": 3}}
    c = s.constraints()
    assert c.count == 10 and c.duration is None and c.max_per_artist == 3
    c = s.constraints(count=0, duration=45)
    assert c.count is None and c.duration == 45 * 60
    with pytest.raises(ConfigError, match=r"mcbr.playlist: unknown key 'lenght'"):
        PlaylistSettings.from_config({"lenght": 3})
    with pytest.raises(ConfigError, match="mcbr.playlist.paths: must be one of absolute, relative"):
        PlaylistSettings(paths="relatif")
    with pytest.raises(ConfigError, match="mcbr.playlist.count: must be a whole number"):
        PlaylistSettings(count=-2)


# -- m3u -------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".m3u", ".m3u8"])
@pytest.mark.parametrize("relative", [False, True])
def test_m3u_round_trip_resolves_paths(tmp_path: Path, suffix: str, relative: bool) -> None:
    music = tmp_path / "music" / "Björk"
    music.mkdir(parents=True)
    files = [music / "01 Jóga.flac", tmp_path / "music" / "a, b" / "02 #hash.mp3"]
    files[1].parent.mkdir()
    for f in files:
        f.write_bytes(b"")
    tracks = [
        Track(1, artist="Björk", title="Jóga", duration=305.4, path=str(files[0])),
        Track(2, artist="X", title="Line\nbreak", duration=0.0, path=str(files[1])),
    ]
    target = tmp_path / "lists" / f"mix{suffix}"
    m3u.write(target, [m3u.entry(t) for t in tracks], name="My Mix", relative=relative)
    text = target.read_text("utf-8")
    assert text.startswith("#EXTM3U\n#PLAYLIST:My Mix\n#EXTINF:305,Björk - Jóga\n")
    assert "#EXTINF:-1,X - Line break\n" in text
    assert (not relative) == text.splitlines()[3].startswith(os.sep)
    name, entries = m3u.read(target)
    assert name == "My Mix"
    assert [Path(e.path) for e in entries] == files and all(Path(e.path).exists() for e in entries)
    assert [e.duration for e in entries] == [305.0, None]
    assert entries[0].title == "Björk - Jóga"
    assert not list(target.parent.glob(".*tmp*"))


def test_m3u_plain_and_what_players_write(tmp_path: Path) -> None:
    data = m3u.render([m3u.Entry("/a/b.mp3", 10, "t")], folder=tmp_path, extended=False)
    assert data == b"/a/b.mp3\n"
    sub = tmp_path / "sub"
    sub.mkdir()
    raw = (
        '\ufeff#EXTM3U\r\n#EXTINF:12.5 tvg-id="x",A - B\r\n../x.mp3\r\n# comment\r\n'
        "file:///tmp/a%20b.flac\r\nhttp://radio/stream\r\n"
    ).encode()
    name, entries = m3u.parse(raw, folder=sub)
    assert name == ""
    assert entries[0] == m3u.Entry(str(tmp_path / "x.mp3"), 12.5, "A - B")
    assert entries[1].path == "/tmp/a b.flac" and entries[2].path == "http://radio/stream"
    assert (
        m3u.render(
            [m3u.Entry(str(tmp_path / "a" / "b.mp3"))],
            folder=tmp_path,
            relative=True,
            forward_slash=True,
            extended=False,
        )
        == b"a/b.mp3\n"
    )
