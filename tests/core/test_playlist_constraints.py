"""What every playlist mode respects (caps, durations, artist spacing, duplicates, restriction), ordering, keys, the
search space, settings and M3U files (pure: no beets)."""

from __future__ import annotations

import itertools
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mcbr_core.errors import ConfigError
from mcbr_core.playlist import m3u
from mcbr_core.playlist.base import Constraints, Track
from mcbr_core.playlist.constraints import Transitions, bpm_cost, camelot, key_cost, select, tour
from mcbr_core.playlist.settings import PlaylistSettings
from mcbr_core.playlist.space import Space, prepare
from tests.core.playlist_library import OPEN, Library, one, planted, run

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
