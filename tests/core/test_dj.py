"""The sonic DJ's decisions (mcbr_core.players.dj) and MPD's path mapping, without a player."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mcbr_core.errors import ConfigError
from mcbr_core.players.dj import Actions, Dj, DjSettings, PlayerState, QueueEntry, choose
from mcbr_core.players.mpd import MpdSettings, MusicDirectory, Stopper
from mcbr_core.playlist.base import Constraints, Track
from mcbr_core.playlist.space import Space

#: 40 tracks on a line (euclidean, 1-D plus a constant): id i sits at x = i; artist changes every 2.
N = 40


def space(allowed: list[int] | None = None) -> Space:
    ids = np.arange(1, N + 1)
    vecs = np.stack([ids.astype(float), np.ones(N)], axis=1)  # (N, 2)
    tracks = [Track(int(i), artist=f"artist{(int(i) - 1) // 2}", duration=200.0, title=f"t{i}") for i in ids]
    return Space.from_arrays(ids, vecs, tracks, metric="euclidean", allowed=allowed)


OPEN = Constraints(count=25, max_per_artist=0, max_per_album=0, no_artist_repeat=False)


class TestChoose:
    def test_picks_near_the_seeds_and_skips_banned_and_recent(self) -> None:
        picks = choose(space(), seeds=[20], recent=[19, 20], banned=[21], n=4, constraints=OPEN)
        assert len(picks) == 4
        assert not {19, 20, 21} & set(picks)
        assert all(abs(p - 20) <= 6 for p in picks), picks  # a radio walk: near the seed, each step smooth

    def test_caps_count_over_recent_tracks(self) -> None:
        capped = Constraints(count=25, max_per_artist=1, max_per_album=0, no_artist_repeat=True)
        # 21 and 22 share an artist with recent 22's neighbour 21 (artist10): one of them is enough
        picks = choose(space(), seeds=[22], recent=[21], n=3, constraints=capped)
        artists = [(p - 1) // 2 for p in picks]
        assert 10 not in artists  # artist10 played already (21)
        assert len(set(artists)) == 3

    def test_caps_are_lifted_rather_than_running_dry(self) -> None:
        tiny = space(allowed=[1, 2, 3, 4])  # two artists, two tracks each
        capped = Constraints(count=25, max_per_artist=1, max_per_album=0, no_artist_repeat=True)
        picks = choose(tiny, seeds=[1], n=4, constraints=capped)
        assert sorted(picks) == [1, 2, 3, 4]

    def test_weights_steer_toward_the_newest_seed(self) -> None:
        picks = choose(space(), seeds=[30, 10], weights=[1.0, 0.0001], recent=[30, 10], n=1, constraints=OPEN)
        assert abs(picks[0] - 30) <= 2


def entry(song: int, item: int | None = None, duration: float = 200.0) -> QueueEntry:
    return QueueEntry(str(song), item if item is not None else song, duration)


class TestDj:
    def make(self, **settings: object) -> Dj:
        return Dj(space(), DjSettings(**{"ahead": 3, "history": 10, "seeds": 2, **settings}), OPEN)

    def test_fills_the_queue_ahead_and_never_repeats_history(self) -> None:
        dj = self.make()
        dj.start([18, 19])
        actions = dj.update(PlayerState("play", entry(100, 20)), now=0.0)
        assert len(actions.add) == 3 and not actions.delete
        assert not {18, 19, 20} & set(actions.add)
        for n, item in enumerate(actions.add):
            dj.added(str(200 + n), item)
        full = PlayerState(
            "play", entry(100, 20), tuple(entry(200 + n, i) for n, i in enumerate(actions.add))
        )
        assert dj.update(full, now=1.0) == Actions()

    def test_a_played_song_is_history_and_a_seed(self) -> None:
        dj = self.make()
        dj.update(PlayerState("play", entry(1, 20), elapsed=0.0), now=0.0)
        dj.update(PlayerState("play", entry(2, 5), elapsed=0.0), now=300.0)  # 20 played through
        assert dj.seeds() == [5, 20]
        assert dj.recent() == [20]
        picks = dj.update(PlayerState("play", entry(2, 5)), now=301.0).add
        assert 20 not in picks

    def test_a_skip_is_no_seed_and_replans_the_djs_own_tracks(self) -> None:
        dj = self.make()
        first = dj.update(PlayerState("play", entry(1, 20)), now=0.0).add
        for n, item in enumerate(first):
            dj.added(str(10 + n), item)
        user_song = entry(99, 35)  # the listener's own, never taken out
        queue = (*[entry(10 + n, i) for n, i in enumerate(first)], user_song)
        dj.update(PlayerState("play", entry(1, 20), queue), now=1.0)
        # five seconds in, the listener jumps to their own song: 20 was skipped
        actions = dj.update(PlayerState("play", user_song, ()), now=5.0)
        assert dj.history[-1].skipped
        assert dj.seeds() == [35]
        assert set(actions.delete) == set() and len(actions.add) == 3  # ours were jumped past: gone already
        assert all(abs(p - 35) <= 5 for p in actions.add)

    def test_replan_deletes_only_the_djs_queued_songs(self) -> None:
        dj = self.make()
        dj.update(PlayerState("play", entry(1, 20)), now=0.0)
        dj.added("11", 21)
        dj.added("12", 22)
        queue = (entry(11, 21), entry(12, 22), entry(13, 3))
        dj.update(PlayerState("play", entry(1, 20), queue), now=1.0)
        actions = dj.update(PlayerState("play", entry(11, 21), queue[1:]), now=3.0)  # 20 skipped
        assert actions.delete == ("12",)
        assert len(actions.add) == 2  # three ahead: the listener's 3, then two new
        without = self.make(replan=False)
        without.update(PlayerState("play", entry(1, 20)), now=0.0)
        without.added("11", 21)
        without.added("12", 22)
        without.update(PlayerState("play", entry(1, 20), queue), now=1.0)
        kept = without.update(PlayerState("play", entry(11, 21), queue[1:]), now=3.0)
        assert not kept.delete and len(kept.add) == 1  # 12 stays; one more makes three ahead

    def test_a_song_taken_out_of_the_queue_is_never_offered_again(self) -> None:
        dj = self.make(ahead=1)
        picked = dj.update(PlayerState("play", entry(1, 20)), now=0.0).add
        dj.added("11", picked[0])
        again = dj.update(PlayerState("play", entry(1, 20), ()), now=1.0).add  # the listener deleted it
        assert picked[0] in dj.avoid and picked[0] not in again

    def test_pause_does_not_count_as_listening(self) -> None:
        dj = self.make()
        dj.update(PlayerState("play", entry(1, 20, duration=100.0), elapsed=10.0), now=0.0)
        dj.update(PlayerState("pause", entry(1, 20, duration=100.0), elapsed=12.0), now=2.0)
        dj.update(PlayerState("play", entry(2, 5), elapsed=0.0), now=500.0)  # paused for ages, then next
        assert dj.history[-1].skipped  # heard 12 s of 100 s

    def test_after_a_reconnection_new_song_ids_are_no_skip(self) -> None:
        dj = self.make(ahead=2)
        picks = dj.update(PlayerState("play", entry(1, 20)), now=0.0).add
        for n, item in enumerate(picks):
            dj.added(str(2 + n), item)
        dj.reconnected()  # MPD restarted and numbered its queue anew: 20 is now song 7
        renumbered = tuple(entry(8 + n, item) for n, item in enumerate(picks))
        assert dj.update(PlayerState("play", entry(7, 20), renumbered), now=5.0) == Actions()
        assert not dj.history and set(dj.ours) == {"8", "9"}

    def test_nothing_to_steer_by_means_no_action(self) -> None:
        assert self.make().update(PlayerState("stop", None, ()), now=0.0) == Actions()

    @pytest.mark.parametrize(
        ("key", "value", "match"),
        [
            ("ahead", 0, "ahead"),
            ("seeds", 0, "seeds"),
            ("history", -1, "history"),
            ("reconnect", -1, "reconnect"),
        ],
    )
    def test_settings_are_checked(self, key: str, value: int, match: str) -> None:
        with pytest.raises(ConfigError, match=f"mcbr.dj.{match}"):
            DjSettings(**{key: value})


class TestMpdPaths:
    def test_uris_are_relative_to_the_music_folder(self, tmp_path: Path) -> None:
        music = MusicDirectory(str(tmp_path / "music"))
        inside = str(tmp_path / "music" / "A" / "b c.flac")
        assert music.uri(inside) == "A/b c.flac"
        assert music.path("A/b c.flac") == inside
        assert music.uri(str(tmp_path / "elsewhere.flac")) is None
        assert music.uri(str(tmp_path / "music")) is None
        assert music.uri(str(tmp_path / "music-2" / "x.flac")) is None
        assert music.uri(os.fsdecode(os.fsencode(str(tmp_path / "music")) + b"/\xff.flac")) is None
        assert music.path("http://radio.example/stream") is None

    def test_settings(self) -> None:
        assert MpdSettings(host="~/.mpd/socket", music_directory="/m").socket_path == os.path.expanduser(
            "~/.mpd/socket"
        )
        assert MpdSettings(host="example", port=6601, music_directory="/m").where == "example:6601"
        assert "secret" not in repr(MpdSettings(password="secret", music_directory="/m"))
        with pytest.raises(ConfigError, match="port"):
            MpdSettings(port=0, music_directory="/m")

    def test_stopper_wakes_a_wait(self) -> None:
        stopper = Stopper()
        assert not stopper.wait(0.01)
        stopper.stop()
        assert stopper.stopped and stopper.wait(5.0)
        stopper.close()
