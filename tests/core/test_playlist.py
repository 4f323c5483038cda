"""Playlist strategies (radio, path, cluster, signature) on generated libraries with planted structure (pure: no beets)."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from mcbr_core.errors import ConfigError, McbrError
from mcbr_core.hookspecs import hookimpl
from mcbr_core.playlist.base import Constraints, Playlist, PlaylistRequest, PlaylistStrategy, Track
from mcbr_core.playlist.generate import get_strategy, make_playlists, strategy_names
from mcbr_core.playlist.kmeans import kmeans
from mcbr_core.playlist.naming import describe, name_clusters
from mcbr_core.playlist.space import prepare
from mcbr_core.playlist.strategies import progress, signature
from mcbr_core.plugins import Plugins
from tests.core.playlist_library import Library, bridge, one, planted, run


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
