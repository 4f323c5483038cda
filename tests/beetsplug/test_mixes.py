"""Mixes (``mcbr.mixes``): ``beet mcbr-mixes`` and the rewrite when the library changes.

On the planted library of test_playlist_command.py: low tones (Jazz, artists A-C),
high tones (Rock, artists D-F) and a bridge between them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from beets import plugins
from beets.ui import UserError

from mcbr_core.playlist import m3u
from tests.audiogen import tone, write_audio
from tests.beetsplug.test_playlist_command import PlaylistHelper

OPEN = {"max_per_artist": 0, "max_per_album": 0, "no_artist_repeat": False}


class MixesHelper(PlaylistHelper):
    def setup_beets(self) -> None:
        super().setup_beets()
        self.folder = self.temp_path / "mixes"
        self.config["mcbr"]["mixes_dir"] = str(self.folder)
        self.config["mcbr"]["mixes"] = [
            {"name": "Sad radio", "query": "title:low0", "count": 4, **OPEN},
            {"name": "Radio $artist", "for_each": "artist", "query": "genres:Rock", "count": 3, "limit": 2},
        ]

        # the planted items changed the library before any command: no command has run yet
        next(p for p in plugins.find_plugins() if p.name == "mcbr").mixes_watcher.changed = False

    def mixes(self, *args: str) -> list[str]:
        self._capsys.readouterr()
        self.run_command("mcbr-mixes", *args)
        return self._capsys.readouterr().out.splitlines()

    def files(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir()) if self.folder.exists() else []


class TestCommand(MixesHelper):
    def test_writes_relative_playlists_and_then_leaves_them_alone(self) -> None:
        lines = self.mixes()
        assert lines[0].startswith("new: Sad radio.m3u (4 tracks, ")
        assert {ln.split(" (")[0] for ln in lines[1:]} == {"new: Radio D.m3u", "new: Radio E.m3u"}
        assert self.files() == ["Radio D.m3u", "Radio E.m3u", "Sad radio.m3u"]  # no temporary file left
        sad = self.folder / "Sad radio.m3u"
        text = sad.read_text("utf-8")
        paths = [ln for ln in text.splitlines() if not ln.startswith("#")]
        assert len(paths) == 4 and not any(os.path.isabs(p) for p in paths)
        assert text.startswith("#EXTM3U\n#PLAYLIST:Sad radio\n")
        _, entries = m3u.read(sad)
        titles = [Path(e.path).stem for e in entries]
        assert all(Path(e.path).is_file() for e in entries) and all(t.startswith("low") for t in titles)
        before = sad.stat().st_mtime_ns
        again = self.mixes("Sad radio")
        assert again == [f"unchanged: Sad radio.m3u (4 tracks, {lines[0].split(', ', 1)[1]}"]
        assert sad.stat().st_mtime_ns == before

    def test_a_family_member_by_its_name(self) -> None:
        assert [ln.split(" (")[0] for ln in self.mixes("radio e")] == ["new: Radio E.m3u"]
        assert self.files() == ["Radio E.m3u"]

    def test_pretend_says_what_would_change_and_writes_nothing(self) -> None:
        lines = self.mixes("-p", "Sad radio")
        assert lines[0].startswith("would be new: Sad radio.m3u (4 tracks")
        assert lines[-1] == "mcbr-mixes: nothing written (-p)"
        assert self.files() == []
        self.mixes("Sad radio")
        self.config["mcbr"]["mixes"] = [{"name": "Sad radio", "query": "title:low0", "count": 6, **OPEN}]
        text = (self.folder / "Sad radio.m3u").read_bytes()
        assert self.mixes("-p", "Sad radio")[0].startswith("would change: Sad radio.m3u (6 tracks, ")
        assert self.mixes("-p", "Sad radio")[0].endswith(", was 4)")
        assert (self.folder / "Sad radio.m3u").read_bytes() == text

    def test_a_mix_that_matches_nothing_is_reported_and_its_file_kept(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        self.folder.mkdir()
        kept = self.folder / "Nothing.m3u"
        kept.write_text("#EXTM3U\nsomewhere.flac\n")
        self.config["mcbr"]["mixes"] = [{"name": "Nothing", "query": "title:nosuchtrack"}]
        with caplog.at_level(logging.WARNING):
            assert self.mixes() == []
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert warnings == ["mix Nothing: the query 'title:nosuchtrack' matches nothing; nothing written"]
        assert kept.read_text() == "#EXTM3U\nsomewhere.flac\n"

    def test_invalid_mixes_and_unknown_names_are_one_line_errors(self) -> None:
        with pytest.raises(UserError, match="no mix is called 'nope'"):
            self.config["mcbr"]["mixes"] = [{"name": "Sad radio", "query": "title:low0"}]
            self.run_command("mcbr-mixes", "nope")
        self.config["mcbr"]["mixes"] = [{"name": "Sad radio", "quary": "title:low0"}]
        with pytest.raises(
            UserError, match=r"mcbr.mixes\[0\]: unknown key 'quary' \(did you mean 'query'\?\)"
        ):
            self.run_command("mcbr-mixes")
        self.config["mcbr"]["mixes"] = [{"name": "Sad radio", "mode": "radoi"}]
        with pytest.raises(UserError, match=r"mcbr.mixes\[0\].mode: .*radoi"):
            self.run_command("mcbr-mixes")
        self.config["mcbr"]["mixes"] = [{"name": "C", "mode": "cluster", "options": {"clustres": 2}}]
        with pytest.raises(UserError, match=r"mcbr.mixes\[0\].options: unknown key 'clustres'"):
            self.run_command("mcbr-mixes")

    def test_cluster_mix_writes_one_file_per_cluster(self) -> None:
        self.config["mcbr"]["mixes"] = [
            {
                "name": "Moods",
                "mode": "cluster",
                "query": "^genres:Fusion",
                "options": {"clusters": 2},
                "count": 0,
            }
        ]
        assert {ln.split(" (")[0] for ln in self.mixes()} == {
            "new: Moods - Happy Rock.m3u",
            "new: Moods - Sad Jazz.m3u",
        }


class TestAutomatic(MixesHelper):
    def test_written_when_a_command_changes_the_library(self) -> None:
        self.run_command("ls")
        assert self.files() == []  # nothing changed: nothing written
        self.run_command("modify", "-y", "title:low5", "comments=x")
        assert self.files() == ["Radio D.m3u", "Radio E.m3u", "Sad radio.m3u"]

    def test_mixes_auto_off(self) -> None:
        self.config["mcbr"]["mixes_auto"] = False
        self.run_command("modify", "-y", "title:low5", "comments=x")
        assert self.files() == []

    def test_an_import_shows_up_in_the_mixes(self) -> None:
        self.config["mcbr"]["mixes"] = [{"name": "Everything", "query": "title:low0", "count": 0, **OPEN}]
        self.config["import"]["quiet"] = True
        self.mixes()
        before = len(m3u.read(self.folder / "Everything.m3u")[1])
        track = self.import_path / "newcomer.flac"
        write_audio(track, tone(3.0, sr=22050, freq=300.0), 22050)
        self.run_command("import", "-A", "-s", "-q", str(track))
        (item,) = self.lib.items("mcbr_status:ok")  # the planted items were never analysed
        _, entries = m3u.read(self.folder / "Everything.m3u")
        assert len(entries) == before + 1
        assert os.fsdecode(item.path) in {e.path for e in entries}
