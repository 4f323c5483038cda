"""`beet similar` lists a recording once: copies of one song (mp3, flac, ogg) collapse to the nearest."""

from __future__ import annotations

import mediafile
import numpy as np
import pytest

from tests.audiogen import tone, write_audio
from tests.beetsplug.test_plugin import McbrHelper

SONG = "Same Song"


class TestDuplicates(McbrHelper):
    """One generated song imported as mp3, flac and ogg, beside a few other songs."""

    def setup_beets(self) -> None:
        super().setup_beets()
        for fmt in ("mp3", "flac", "ogg"):
            self.make_track(f"same-{fmt}", freq=500, fmt=fmt, title=SONG, artist="Dup")
        for name, freq in [("other", 520), ("far1", 900), ("far2", 1400), ("far3", 2500)]:
            self.make_track(name, freq=freq, artist="Dup")
        self.import_singletons()
        assert len(self.lib.items(f"title:{SONG}")) == 3

    def results(self, *args: str) -> list[str]:
        """The file of each result of ``beet similar ARGS`` (``same-mp3``, ``other``, ...), nearest first."""
        out = self.run_with_output("similar", "-f", "$album", *args)
        return [line.removeprefix("Album ") for line in out.splitlines() if line.strip()]

    def test_each_recording_is_listed_once(self) -> None:
        results = self.results("-n", "10", "title:other")
        assert len([r for r in results if r.startswith("same-")]) == 1
        assert len(results) == 4  # the song once, and the three far songs

    def test_the_nearest_copy_is_kept(self) -> None:
        every = self.results("-n", "10", "--duplicates", "title:other")
        nearest = next(r for r in every if r.startswith("same-"))
        assert nearest in self.results("-n", "10", "title:other")

    def test_still_n_results_when_copies_are_dropped(self) -> None:
        assert len(self.results("-n", "3", "title:other")) == 3

    def set_duplicates(self, value: bool) -> None:
        """Set ``similar.duplicates`` (the plugin reads its settings once, so reload it)."""
        self.config["mcbr"]["similar"]["duplicates"] = value
        self.unload_plugins()
        self.load_plugins()

    @pytest.mark.parametrize("how", ["--duplicates", "-d", "config"])
    def test_duplicates_lists_every_copy(self, how: str) -> None:
        args = [] if how == "config" else [how]
        if how == "config":
            self.set_duplicates(True)
        results = self.results("-n", "10", *args, "title:other")
        assert sorted(r for r in results if r.startswith("same-")) == ["same-flac", "same-mp3", "same-ogg"]

    def test_the_flag_overrides_the_config(self) -> None:
        self.set_duplicates(False)
        assert len([r for r in self.results("-n", "10", "-d", "title:other") if r.startswith("same-")]) == 3

    def test_copies_of_the_query_are_excluded(self) -> None:
        results = self.results("-n", "10", "album:same-mp3")
        assert results == ["other", "far1", "far2", "far3"]  # neither same-flac nor same-ogg
        results = self.results("-n", "10", "--duplicates", "album:same-mp3")
        assert {"same-flac", "same-ogg"} <= set(results)

    def test_a_namesake_that_sounds_different_is_listed(self) -> None:
        # another take of the song: loud and clipped, so its toy embedding (centroid, rms) points elsewhere
        path = self.import_path / "live.flac"
        write_audio(path, np.clip(8 * tone(3.0, sr=22050, freq=500), -1, 1), 22050)
        mf = mediafile.MediaFile(str(path))
        mf.update({"title": SONG, "artist": "Dup", "album": "Album live"})
        mf.save()
        self.import_singletons()
        results = self.results("-n", "10", "album:same-mp3")
        assert "live" in results and not {"same-flac", "same-ogg"} & set(results)
