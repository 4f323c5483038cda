"""`beet mcbr-playlist` through beets' own test helpers, on a library with planted embeddings.

The toy model of tests/toymodel.py embeds a track as (spectral centroid in kHz, rms)
with the euclidean metric. Here most items get their embedding written straight into
the store, so the clusters sit exactly where the tests put them: low tones (Jazz,
Sad), high tones (Rock, Happy), and a bridge of tones in between.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from beets.ui import UserError

from mcbr_core.playlist import m3u
from mcbr_core.plugins import Plugins
from mcbr_core.store.embeddings import EmbeddingStore
from tests.audiogen import tone, write_audio
from tests.beetsplug.helpers import LIBRARY, ToyHelper


class PlaylistHelper(ToyHelper):
    def setup_beets(self) -> None:
        super().setup_beets()

        def empty_file(title: str) -> Path:
            path = self.lib_path / f"{title}.mp3"
            path.write_bytes(b"")
            return path

        self.store_vectors(self.plant_library(empty_file, lambda n: 180.0 + 10 * n))

    def output(self, *args: str) -> str:
        return self.run_with_output("mcbr-playlist", *args)

    def titles(self, *args: str) -> list[str]:
        """Titles listed by the command (open caps unless the test sets them)."""
        return self.output(*args, "-f", "$title").split()

    def khz(self, titles: list[str]) -> list[float]:
        return [LIBRARY[t][0] for t in titles]


OPEN = ("--max-per-artist", "0", "--max-per-album", "0")


class TestModes(PlaylistHelper):
    def test_radio_stays_near_the_seed_and_leaves_it_out(self) -> None:
        titles = self.titles("radio", "title:low1", "-n", "4", *OPEN)
        assert len(titles) == 4 and "low1" not in titles
        assert all(t.startswith("low") for t in titles)

    def test_radio_include_seed(self) -> None:
        titles = self.titles("radio", "title:low1", "-n", "3", "--include-seed", *OPEN)
        assert titles[0] == "low1" and len(titles) == 3

    def test_path_moves_monotonically_from_a_to_b(self) -> None:
        titles = self.titles("path", "title:low0", "title:high0", "-n", "8", *OPEN)
        assert len(titles) == 8 and not {"low0", "high0"} & set(titles)
        khz = self.khz(titles)
        assert all(x < y for x, y in zip(khz, khz[1:], strict=False)), titles
        assert LIBRARY["low0"][0] < khz[0] and khz[-1] < LIBRARY["high0"][0]
        assert sum(t.startswith("bridge") for t in titles) >= 6

    def test_path_queries_of_several_terms(self) -> None:
        titles = self.titles(
            "path", "artist:A", "title:low0", "to", "artist:D", "title:high0", "-n", "5", *OPEN
        )
        khz = self.khz(titles)
        assert len(titles) == 5 and all(x < y for x, y in zip(khz, khz[1:], strict=False))

    def test_cluster_membership_matches_the_planted_clusters(self) -> None:
        folder = self.temp_path / "clusters"
        out = self.output(
            "cluster", "^genres:Fusion", "--clusters", "2", "-n", "0", *OPEN, "-o", f"{folder}{os.sep}"
        )
        assert "wrote" in out
        found = {}
        for path in sorted(folder.glob("*.m3u")):
            name, entries = m3u.read(path)
            found[name] = {Path(e.path).stem for e in entries}
        assert found == {
            "Sad Jazz": {f"low{i}" for i in range(6)},
            "Happy Rock": {f"high{i}" for i in range(6)},
        }

    def test_cluster_listing_has_a_header_per_playlist(self) -> None:
        out = self.output("cluster", "--clusters", "3", "-n", "2", "-f", "$title")
        headers = [ln for ln in out.splitlines() if "tracks," in ln]
        assert len(headers) == 3

    def test_signature_extends_a_playlist_file(self) -> None:
        seed_file = self.temp_path / "seed.m3u8"
        items = [self.lib.items(f"title:{t}").get() for t in ("high0", "high1")]
        m3u.write(seed_file, [m3u.Entry(os.fsdecode(i.path)) for i in items])
        titles = self.titles("signature", str(seed_file), "-n", "3", "--dims", "1", *OPEN)
        assert len(titles) == 3 and not {"high0", "high1"} & set(titles)
        assert all(t.startswith("high") for t in titles)


class TestConstraints(PlaylistHelper):
    def test_caps_and_no_artist_twice_in_a_row(self) -> None:
        titles = self.titles("radio", "title:low0", "-n", "12", "--max-per-artist", "1")
        artists = [LIBRARY[t][1] for t in titles]
        assert len(set(artists)) == len(artists) == 12
        titles = self.titles(
            "radio", "title:low0", "-n", "12", "--max-per-artist", "2", "--max-per-album", "0"
        )
        artists = [LIBRARY[t][1] for t in titles]
        assert all(a != b for a, b in zip(artists, artists[1:], strict=False))
        assert max(artists.count(a) for a in artists) <= 2

    def test_restrict_query(self) -> None:
        titles = self.titles("radio", "title:low0", "-n", "20", "-r", "^genres:Jazz", *OPEN)
        assert titles and not any(t.startswith("low") for t in titles)
        self.config["mcbr"]["playlist"]["restrict"] = "genres:Rock"
        titles = self.titles("radio", "title:low0", "-n", "20", *OPEN)
        assert titles and all(t.startswith("high") for t in titles)

    def test_duration_limit_lifts_the_count(self) -> None:
        out = self.output("radio", "title:low0", "--duration", "20", *OPEN, "-f", "$length")
        seconds = [int(m) * 60 + int(s) for m, s in (ln.split(":") for ln in out.split())]
        assert sum(seconds) <= 20 * 60 and sum(seconds) > 20 * 60 - 300
        assert len(seconds) > 3

    def test_config_defaults_apply(self) -> None:
        self.config["mcbr"]["playlist"]["count"] = 2
        self.config["mcbr"]["playlist"]["format"] = "<$title>"
        out = self.output("radio", "title:low0")
        assert len(out.split()) == 2 and out.startswith("<")


class TestOutput(PlaylistHelper):
    def item_paths(self) -> dict[str, str]:
        return {i.title: os.fsdecode(i.path) for i in self.lib.items()}

    @pytest.mark.parametrize("relative", [False, True])
    def test_m3u_file_parses_and_its_paths_resolve(self, relative: bool) -> None:
        target = self.temp_path / "lists" / "mix.m3u"
        args = ["radio", "title:low0", "-n", "4", *OPEN, "-o", str(target)] + (
            ["--relative"] if relative else []
        )
        out = self.output(*args)
        assert f"mcbr: wrote {target} (4 tracks," in out
        text = target.read_text("utf-8")
        assert text.startswith("#EXTM3U\n#PLAYLIST:Radio: A - low0\n#EXTINF:")
        paths = [ln for ln in text.splitlines() if not ln.startswith("#")]
        assert all(os.path.isabs(p) != relative for p in paths)
        name, entries = m3u.read(target)
        assert name == "Radio: A - low0" and len(entries) == 4
        by_title = self.item_paths()
        for e in entries:
            title = e.title.split(" - ", 1)[1]
            assert os.path.samefile(e.path, by_title[title])
            assert e.duration == pytest.approx(self.lib.items(f"title:{title}").get().length, abs=0.5)

    def test_m3u8_plain(self) -> None:
        target = self.temp_path / "mix.m3u8"
        self.output("radio", "title:low0", "-n", "2", "--plain", "-o", str(target))
        lines = target.read_text("utf-8").splitlines()
        assert len(lines) == 2 and all(Path(p).exists() for p in lines)

    def test_save_into_the_beets_playlist_folder(self) -> None:
        with pytest.raises(UserError, match="needs a playlist folder"):
            self.run_command("mcbr-playlist", "radio", "title:low0", "-s")
        self.config["playlist"]["playlist_dir"] = str(self.temp_path / "beets-lists")
        out = self.output("radio", "title:low0", "-n", "2", "-s", "--name", "Evening / late")
        saved = self.temp_path / "beets-lists" / "Evening _ late.m3u"
        assert saved.exists() and str(saved) in out
        self.config["mcbr"]["playlist"]["dir"] = str(self.temp_path / "mine")
        self.config["mcbr"]["playlist"]["extension"] = "m3u8"
        self.output("radio", "title:low0", "-n", "2", "-s")
        assert (self.temp_path / "mine" / "Radio - A - low0.m3u8").exists()

    def test_pretend_prints_and_writes_nothing(self) -> None:
        target = self.temp_path / "mix.m3u"
        out = self.output("radio", "title:low0", "-n", "3", "-o", str(target), "-p", "-f", "$title")
        assert not target.exists()
        assert f"mcbr: would write {target} (3 tracks," in out and len(out.splitlines()) == 4

    def test_several_playlists_to_one_file_name(self) -> None:
        target = self.temp_path / "mix.m3u"
        self.output("cluster", "^genres:Fusion", "--clusters", "2", "-o", str(target), "--name", "Set")
        assert sorted(p.name for p in self.temp_path.glob("mix*.m3u")) == [
            "mix - Set - Happy Rock.m3u",
            "mix - Set - Sad Jazz.m3u",
        ]


def test_config_defaults_mirror_the_core_settings() -> None:
    from dataclasses import fields

    from beetsplug.mcbr.settings import DEFAULTS
    from mcbr_core.playlist.generate import get_strategy
    from mcbr_core.playlist.settings import PlaylistSettings

    defaults = dict(DEFAULTS["playlist"])
    plugins = Plugins(entry_points=False)
    for mode in ("radio", "path", "cluster", "signature"):
        assert defaults.pop(mode) == dict(get_strategy(mode, plugins).defaults), mode
    core = PlaylistSettings()
    assert defaults == {f.name: getattr(core, f.name) for f in fields(core) if f.name != "modes"}


class TestErrorsAndAnalysis(PlaylistHelper):
    @pytest.mark.parametrize(
        ("args", "message"),
        [
            ((), "name a mode"),
            (
                ("shuffle", "title:low0"),
                r"unknown playlist strategy 'shuffle' \(registered: cluster, path, radio, signature\)",
            ),
            (("radio",), "radio needs a query"),
            (("radio", "title:nothing"), "no items match"),
            (("path", "title:low0", "title:high0", "title:low1"), "path takes two queries"),
            (("radio", "title:low0", "--clusters", "2"), "--clusters does not apply to radio"),
            (("radio", "title:low0", "-O", "colour=red"), r"mcbr.playlist.radio: unknown key 'colour'"),
            (("radio", "title:low0", "-O", "nonsense"), r"-O: expected KEY=VALUE, got 'nonsense'"),
            (
                ("radio", "title:low0", "-O", "pool=abc"),
                r"^mcbr.playlist.radio.pool: expected a whole number, got 'abc'$",
            ),
            (("radio", "title:low0", "-O", "pool=yes"), r"pool: expected a whole number, got True"),
        ],
    )
    def test_clear_errors(self, args: tuple[str, ...], message: str) -> None:
        with pytest.raises(UserError, match=message):
            self.run_command("mcbr-playlist", *args)

    def test_config_typo_is_an_error(self) -> None:
        self.config["mcbr"]["playlist"]["lenght"] = 3
        with pytest.raises(UserError, match=r"mcbr.playlist: unknown key 'lenght'"):
            self.run_command("mcbr-playlist", "radio", "title:low0")

    def test_mode_options_from_config_and_command_line(self) -> None:
        self.config["mcbr"]["playlist"]["radio"]["previous_weight"] = 0.0
        titles = self.titles(
            "radio", "title:low0", "-n", "3", "--artist-repeat", *OPEN, "-O", "seed_weight=1"
        )
        assert titles == ["low1", "low2", "low3"]

    def test_item_without_embedding_is_analysed_on_demand(self) -> None:
        path = self.lib_path / "fresh.wav"
        write_audio(path, tone(3.0, sr=22050, freq=300.0), 22050)
        self.add_item(title="fresh", artist="Z", path=str(path), format="WAV")
        titles = self.titles("radio", "title:fresh", "-n", "2", "--artist-repeat", *OPEN)
        item = self.lib.items("title:fresh").get()
        assert item["mcbr_status"] == "ok"
        with EmbeddingStore(self.temp_path / "library.mcbr.db") as store:
            khz, rms = store.get(item.id, "toy-1")
        nearest = sorted(LIBRARY, key=lambda t: np.hypot(LIBRARY[t][0] - khz, 0.1 - rms))[:2]
        assert titles == nearest
