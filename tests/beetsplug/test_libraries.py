"""Two libraries sharing one beets config folder: each keeps its own embeddings."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from beets.library import Item, Library
from beets.ui import UserError

from mcbr_core.store.embeddings import EmbeddingStore
from tests.beetsplug.test_plugin import HIGH, LOW, McbrHelper


class TestTwoLibraries(McbrHelper):
    def other_library(self, name: str = "other") -> Library:
        music = self.temp_path / f"{name}-music"
        music.mkdir(exist_ok=True)
        lib = Library(self.temp_path / f"{name}.db", str(music))
        lib.path_formats = self.lib.path_formats
        return lib

    def import_into(self, lib: Library, tracks: dict[str, float]) -> None:
        """Import generated tracks (name -> tone frequency) into ``lib`` (beets' helpers use ``self.lib``)."""
        shutil.rmtree(self.import_path, ignore_errors=True)
        self.import_path.mkdir()
        for name, freq in tracks.items():
            self.make_track(name, freq=freq)
        main, self.lib = self.lib, lib
        try:
            self.import_singletons()
        finally:
            self.lib = main

    def similar_titles(self, lib: Library, query: str) -> list[str]:
        self._capsys.readouterr()
        self.run_command("similar", "-n", "20", "-f", "$title", query, lib=lib)
        return self._capsys.readouterr().out.split()

    def test_interleaved_imports_keep_separate_stores(self) -> None:
        other = self.other_library()
        self.import_into(self.lib, {"a1": 2000, "a2": 2400, "a3": 2800})
        self.import_into(other, {"b1": 200, "b2": 300, "b3": 400, "b4": 500})
        self.import_into(self.lib, {"a4": 3200})  # ids 1-4 exist in both libraries
        # nearest first: each library answers from its own vectors, not the other's rows of the same id
        assert self.similar_titles(self.lib, "title:a1") == ["a2", "a3", "a4"]
        assert self.similar_titles(other, "title:b1") == ["b2", "b3", "b4"]
        assert self.similar_titles(self.lib, "title:a4") == ["a3", "a2", "a1"]
        with (
            EmbeddingStore(self.temp_path / "library.mcbr.db") as mine,
            EmbeddingStore(self.temp_path / "other.mcbr.db") as theirs,
        ):
            assert (mine.count(), theirs.count()) == (4, 4)
            assert {bytes(r.path) for r in mine.rows()} == {bytes(i.path) for i in self.lib.items()}
            assert {bytes(r.path) for r in theirs.rows()} == {bytes(i.path) for i in other.items()}
            assert mine.owner() == str((self.temp_path / "library.db").resolve())
        other._close()

    def test_a_store_of_another_library_is_refused(self) -> None:
        other = self.other_library()
        self.import_into(self.lib, {"a1": HIGH, "a2": HIGH * 1.2})
        self.config["mcbr"]["store"] = str(self.temp_path / "library.mcbr.db")  # shared on purpose
        self.unload_plugins()
        self.load_plugins()
        other.add(Item.from_path(self.make_track("b1", freq=LOW)))
        with pytest.raises(UserError, match="belongs to the library .*library.db"):
            self.run_command("mcbr", lib=other)
        other._close()


class TestTakeOver(McbrHelper):
    """A store shared per config folder (before stores went beside the library) is taken over."""

    def legacy_import(self, freqs: dict[str, float]) -> None:
        self.config["mcbr"]["store"] = "mcbr.db"  # the old default: the config folder
        for name, freq in freqs.items():
            self.make_track(name, freq=freq)
        self.import_singletons()
        assert (self.temp_path / "mcbr.db").exists()

    def reload_with_auto_store(self) -> None:
        self.unload_plugins()
        self.config["mcbr"]["store"] = "auto"
        self.load_plugins()

    def test_unambiguous_rows_are_taken_over_without_analysis(self) -> None:
        self.legacy_import({"hi": HIGH, "hi2": HIGH * 1.1, "lo": LOW})
        for item in self.lib.items():  # analysing again would now fail
            Path(item.filepath).write_bytes(b"not audio")
        self.reload_with_auto_store()
        out = self.run_with_output("similar", "-f", "$title", "title:hi2")
        assert out.split()[0] == "hi"
        with EmbeddingStore(self.temp_path / "library.mcbr.db") as store:
            assert store.count() == 3
        assert all(item["mcbr_status"] == "ok" for item in self.lib.items())

    def test_rows_of_another_library_are_not_taken_over(self) -> None:
        self.legacy_import({"hi": HIGH, "lo": LOW})
        with EmbeddingStore(self.temp_path / "mcbr.db") as legacy:  # another library wrote item 1 since
            vector = legacy.get(1, "toy-1")
            legacy.put(
                1, vector, model_id="toy-1", feature_version="toy-features-1", path=b"/elsewhere/x.mp3"
            )
        self.reload_with_auto_store()
        self.run_command("ls")  # opens the library: the takeover is considered, and declined
        with EmbeddingStore(self.temp_path / "library.mcbr.db") as store:
            assert store.count() == 0
        out = self.run_with_output("mcbr", "--check")
        assert "items without an embedding: 2" in out
