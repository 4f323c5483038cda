"""Settings of MPD, the DJ and the mixes (``settings.load_mpd``, ``load_dj``, ``load_mixes``); no MPD needed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from beets.ui import UserError

from beetsplug.mcbr import settings
from tests.beetsplug.test_plugin import McbrHelper


class TestMpdSettings(McbrHelper):
    def test_read_as_mpdstats_reads_them(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("MPD_HOST", "secret@music.local")
        monkeypatch.setenv("MPD_PORT", "6601")
        s = settings.load_mpd(self.config["mcbr"])
        assert (s.host, s.port, s.password) == ("music.local", 6601, "secret")
        assert s.music_directory == self.config["directory"].as_filename()  # beets' directory
        self.config["mpd"]["host"] = "~/.mpd/socket"
        self.config["mpd"]["port"] = 6602
        self.config["mpd"]["password"] = "other"
        s = settings.load_mpd(self.config["mcbr"])
        assert (s.socket_path, s.port, s.password) == (os.path.expanduser("~/.mpd/socket"), 6602, "other")

    def test_music_directory_mcbr_then_mpdstats_then_directory(self, tmp_path: Path) -> None:
        self.config["mpd"]["music_directory"] = str(tmp_path / "mpdstats")
        assert settings.load_mpd(self.config["mcbr"]).music_directory == str(tmp_path / "mpdstats")
        self.config["mcbr"]["mpd"]["music_directory"] = str(tmp_path / "mine")
        assert settings.load_mpd(self.config["mcbr"]).music_directory == str(tmp_path / "mine")

    def test_bad_values_name_the_key(self) -> None:
        self.config["mcbr"]["mpd"]["musik_directory"] = "/x"
        with pytest.raises(UserError, match=r"mcbr.mpd: unknown key 'musik_directory' \(did you mean"):
            settings.load_mpd(self.config["mcbr"])

    def test_dj_overrides_and_errors(self) -> None:
        s = settings.load_dj(self.config["mcbr"], ahead=2, history=None)
        assert (s.ahead, s.history, s.seeds, s.replan) == (2, 50, 3, True)
        with pytest.raises(UserError, match=r"^mcbr.dj.ahead: must be at least 1, got 0$"):
            settings.load_dj(self.config["mcbr"], ahead=0)
        self.config["mcbr"]["dj"]["seed"] = 2
        with pytest.raises(UserError, match=r"mcbr.dj: unknown key 'seed' \(did you mean 'seeds'\?\)"):
            settings.load_dj(self.config["mcbr"])

    def test_mixes_folder(self, tmp_path: Path) -> None:
        assert settings.load_mixes(self.config["mcbr"]).folder is None
        self.config["smartplaylist"]["playlist_dir"] = str(tmp_path / "smart")
        assert settings.load_mixes(self.config["mcbr"]).folder == tmp_path / "smart"
        self.config["playlist"]["playlist_dir"] = str(tmp_path / "playlist")
        assert settings.load_mixes(self.config["mcbr"]).folder == tmp_path / "playlist"
        self.config["mcbr"]["mixes_dir"] = str(tmp_path / "mixes")
        assert settings.load_mixes(self.config["mcbr"]).folder == tmp_path / "mixes"
        self.config["mcbr"]["mixes_auto"] = "sometimes"
        with pytest.raises(UserError, match=r"^mcbr.mixes_auto: expected yes or no, got 'sometimes'$"):
            settings.load_mixes(self.config["mcbr"])

    def test_mixes_without_a_folder_are_a_one_line_error(self) -> None:
        self.config["mcbr"]["mixes"] = [{"name": "Calm", "query": "mood:Calm"}]
        with pytest.raises(UserError, match=r"^mcbr: mixes need a folder: set mcbr.mixes_dir"):
            self.run_command("mcbr-mixes")
