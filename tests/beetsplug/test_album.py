"""Albums get one consensus set of genres and moods, as lastgenre gives an album one genre."""

from __future__ import annotations

from tests.beetsplug.test_plugin import HIGH, LOW, McbrHelper


class TestAlbumConsensus(McbrHelper):
    def setup_beets(self) -> None:
        super().setup_beets()
        for kind in ("genre", "mood"):  # the mean of 2 x 1.0 and 1 x 0.0 is 0.67: only the majority passes
            self.config["mcbr"][kind] = {"threshold": 0.5, "count": 2}

    def import_album(self, **config: object) -> None:
        for key, value in config.items():
            self.config["mcbr"][key] = value
        for name, freq in (("a", HIGH), ("b", HIGH * 1.1), ("c", LOW)):
            self.make_track(name, freq=freq, album="One Album", albumartist="Test Artist")
        self.setup_importer(autotag=False).run()

    def test_an_album_import_gives_every_track_the_albums_genres(self) -> None:
        self.import_album()
        album = self.lib.albums().get()
        items = list(album.items())
        assert len(items) == 3
        assert {tuple(i.genres) for i in items} == {("Rock",)}  # two rock tracks outvote one jazz track
        assert {i["mood"] for i in items} == {"Happy"}
        assert album.genres == ["Rock"] and album["mood"] == "Happy"
        low = self.lib.items("title:c").get()
        assert low["mcbr_genre_jazz"] > 0.9  # its own scores stay its own
        assert self.file_tags("c").genres == ["Rock"]

    def test_per_track_keeps_each_tracks_genres_and_the_album_gets_the_consensus(self) -> None:
        self.import_album(per_track=True)
        album = self.lib.albums().get()
        assert self.lib.items("title:c").get().genres == ["Jazz"]
        assert self.lib.items("title:a").get().genres == ["Rock"]
        assert album.genres == ["Rock"]
        self.run_command("modify", "-a", "-y", "album:One Album", "year=1999")  # an album store
        assert self.lib.items("title:c").get().genres == ["Jazz"]  # not replaced by another track's value

    def test_a_users_genre_survives_the_consensus(self) -> None:
        for name, freq in (("a", HIGH), ("b", HIGH)):
            self.make_track(name, freq=freq, album="One Album", albumartist="Test Artist")
        self.make_track("c", freq=LOW, album="One Album", albumartist="Test Artist", genres=["Polka"])
        self.setup_importer(autotag=False).run()
        assert self.lib.items("title:c").get().genres == ["Polka"]
        assert self.lib.items("title:a").get().genres == ["Rock"]

    def test_beet_mcbr_recomputes_the_consensus(self) -> None:
        self.import_album()
        self.run_with_output("mcbr", "-f", "title:a")
        assert {tuple(i.genres) for i in self.lib.albums().get().items()} == {("Rock",)}
