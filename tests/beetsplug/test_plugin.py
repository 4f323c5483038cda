"""The beets plugin through beets' own test helpers, with the toy model of tests/toymodel.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import mediafile
import mutagen
import pytest
from beets.ui import UserError

from beetsplug.mcbr.settings import DEFAULTS
from mcbr_core.plugins import reset_plugins
from tests.audiogen import tone, write_audio
from tests.beetsplug.helpers import ToyHelper
from tests.toymodel import make_toy_head

HIGH, LOW = 2500.0, 300.0  # toy model: centroid above 1.6 kHz -> Rock/Happy, below -> Jazz/Sad


class McbrHelper(ToyHelper):
    def setup_beets(self) -> None:
        super().setup_beets()
        self.config["import"]["quiet"] = True

    def make_track(
        self, name: str, *, freq: float, fmt: str = "mp3", seconds: float = 3.0, **tags: object
    ) -> Path:
        """A generated track in the import folder, with beets-style tags."""
        path = self.import_path / f"{name}.{fmt}"
        write_audio(path, tone(seconds, sr=22050, freq=freq), 22050)
        mf = mediafile.MediaFile(str(path))
        mf.update(
            {"title": name, "artist": tags.pop("artist", "Test Artist"), "album": f"Album {name}", **tags}
        )
        mf.save()
        return path

    def import_singletons(self, **kwargs: object) -> None:
        self.setup_singleton_importer(autotag=False, **kwargs).run()

    def file_tags(self, title: str) -> mediafile.MediaFile:
        item = self.lib.items(f"title:{title}").get()
        return mediafile.MediaFile(str(item.filepath))


class TestImport(McbrHelper):
    @pytest.mark.parametrize("fmt", ["mp3", "flac", "ogg", "m4a"])
    def test_as_is_import_writes_genres_and_mood_into_the_file(self, fmt: str) -> None:
        self.make_track("hi", freq=HIGH, fmt=fmt)
        self.make_track("lo", freq=LOW, fmt=fmt)
        self.import_singletons()
        hi, lo = self.file_tags("hi"), self.file_tags("lo")
        assert hi.genres == ["Rock"] and hi.mood == "Happy"
        assert lo.genres == ["Jazz"] and lo.mood == "Sad"
        item = self.lib.items("title:hi").get()
        assert item.genres == ["Rock"] and item["mood"] == "Happy"
        assert item["mcbr_model"] == "toy-1" and item["mcbr_status"] == "ok"
        assert item["mcbr_genre_rock"] > 0.9 > item["mcbr_genre_jazz"]

    def test_mood_frames_per_format(self) -> None:
        for fmt in ("mp3", "flac", "m4a"):
            self.make_track(f"t{fmt}", freq=HIGH, fmt=fmt)
        self.import_singletons()
        raw = {
            fmt: mutagen.File(self.lib.items(f"title:t{fmt}").get().filepath)
            for fmt in ("mp3", "flac", "m4a")
        }
        assert str(raw["mp3"].tags["TXXX:MOOD"]) == "Happy"
        assert str(raw["mp3"].tags["TMOO"]) == "Happy"
        assert raw["flac"].tags["MOOD"] == ["Happy"]
        assert bytes(raw["m4a"].tags["----:com.apple.iTunes:MOOD"][0]) == b"Happy"

    def test_score_attributes_are_typed_and_queryable(self) -> None:
        self.make_track("hi", freq=HIGH)
        self.make_track("lo", freq=LOW)
        self.import_singletons()
        assert [i.title for i in self.lib.items("mcbr_genre_rock:0.5..")] == ["hi"]
        assert [i.title for i in self.lib.items("mcbr_mood_sad:0.5..")] == ["lo"]

    def test_existing_genre_survives_without_force(self) -> None:
        self.make_track("hi", freq=HIGH, genres=["Polka"], mood="Grumpy")
        self.import_singletons()
        tags = self.file_tags("hi")
        assert tags.genres == ["Polka"] and tags.mood == "Grumpy"
        assert self.lib.items("title:hi").get().genres == ["Polka"]

    def test_force_replaces_and_keep_existing_extends(self) -> None:
        self.make_track("a", freq=HIGH, genres=["Polka"])
        self.config["mcbr"]["force"] = True
        self.import_singletons()
        assert self.file_tags("a").genres == ["Rock"]

    def test_force_with_keep_existing_extends(self) -> None:
        self.make_track("a", freq=HIGH, genres=["Polka"])
        self.config["mcbr"]["force"] = True
        self.config["mcbr"]["keep_existing"] = True
        self.import_singletons()
        assert self.file_tags("a").genres == ["Polka", "Rock"]

    def test_training_never_learns_the_plugins_own_values(self) -> None:
        from beetsplug.mcbr.train_command import library_rows

        self.make_track("a", freq=HIGH, genres=["Polka"], mood="Grumpy")
        self.config["mcbr"]["force"] = True
        self.config["mcbr"]["keep_existing"] = True
        self.import_singletons()
        self.run_with_output("mcbr", "-f")  # a second analysis: ours stays ours
        item = self.lib.items("title:a").get()
        assert item.genres == ["Polka", "Rock"] and item["mood"] == "Grumpy; Happy"
        (row,) = library_rows([item])
        assert row["genres"] == ["Polka"] and row["mood"] == ["Grumpy"]
        (row,) = library_rows([item], include_predicted=True)
        assert row["genres"] == ["Polka", "Rock"]

    def test_import_write_off_leaves_files_alone(self) -> None:
        path = self.make_track("hi", freq=HIGH)
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        self.import_singletons(write=False)
        item = self.lib.items("title:hi").get()
        assert item.genres == ["Rock"]  # in the database
        assert hashlib.sha256(item.filepath.read_bytes()).hexdigest() == before  # not in the file

    def test_undecodable_file_is_marked_and_the_import_goes_on(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        import numpy as np
        import soundfile as sf

        self.make_track("good", freq=HIGH)
        sf.write(
            self.import_path / "silent.wav", np.zeros((0, 1), dtype=np.float32), 22050
        )  # valid, no samples
        self.import_singletons()
        assert self.lib.items("title:good").get()["mcbr_status"] == "ok"
        bad = self.lib.items("format:WAV").get()
        assert bad["mcbr_status"] == "failed"
        assert "no samples" in bad["mcbr_error"]
        lines = [  # what beets shows: the core's record, bridged into the plugin's logger
            r.getMessage()
            for r in caplog.records
            if "silent.wav" in r.getMessage() and r.levelname == "ERROR" and r.name.startswith("beets")
        ]
        assert len(lines) == 1 and "no samples" in lines[0]


class TestCommands(McbrHelper):
    def add_tracks(self, *specs: tuple[str, float]) -> None:
        for name, freq in specs:
            self.make_track(name, freq=freq)
        self.config["mcbr"]["auto"] = False
        self.unload_plugins()
        self.load_plugins()
        self.import_singletons()
        self.config["mcbr"]["auto"] = True

    def test_pretend_writes_nothing(self) -> None:
        self.add_tracks(("hi", HIGH))
        item = self.lib.items().get()
        before = hashlib.sha256(item.filepath.read_bytes()).hexdigest()
        out = self.run_with_output("mcbr", "-p")
        assert "Rock" in out
        item = self.lib.items().get()
        assert hashlib.sha256(item.filepath.read_bytes()).hexdigest() == before
        assert "mcbr_model" not in item and not item.genres
        from mcbr_core.store.embeddings import EmbeddingStore

        with EmbeddingStore(self.temp_path / "library.mcbr.db") as store:
            assert store.count() == 0

    def test_mcbr_analyses_then_skips_unchanged_items(self) -> None:
        self.add_tracks(("hi", HIGH), ("lo", LOW))
        out = self.run_with_output("mcbr")
        assert "analysed 2, skipped 0" in out
        assert self.file_tags("hi").genres == ["Rock"]
        out = self.run_with_output("mcbr")
        assert "analysed 0, skipped 2" in out
        out = self.run_with_output("mcbr", "-f", "title:hi")
        assert "analysed 1, skipped 0" in out

    def test_items_tagged_by_other_clip_heads_are_reanalysed(self) -> None:
        self.add_tracks(("hi", HIGH), ("lo", LOW))
        self.run_with_output("mcbr")
        item = self.lib.items("title:hi").get()
        assert item["mcbr_heads"] == ""  # the toy model has no shipped head: its own tags
        item["mcbr_heads"] = "genre=some-head-1"  # as if a head's source setting changed since
        item.store()
        assert "analysed 1, skipped 1" in self.run_with_output("mcbr")
        assert self.lib.items("title:hi").get()["mcbr_heads"] == ""

    def test_new_clip_heads_retag_from_stored_embeddings_without_decoding(self) -> None:
        self.add_tracks(("hi", HIGH), ("lo", LOW))
        self.run_with_output("mcbr")
        assert self.file_tags("hi").genres == ["Rock"]
        for kind, labels in (("genre", ("Electronic", "Folk")), ("mood", ("Tense", "Calm"))):
            self.config["mcbr"][kind] = {"source": str(make_toy_head(self.temp_path / f"{kind}.safetensors", kind,
                                                                     labels))}  # fmt: skip
        self.unload_plugins()
        self.load_plugins()
        for item in self.lib.items():  # the audio cannot be decoded now: a re-analysis would fail
            item.filepath.write_bytes(b"not audio")
            item["mcbr_mtime"] = item.filepath.stat().st_mtime
            item.store()
        from mcbr_core.store.embeddings import EmbeddingStore

        with EmbeddingStore(
            self.temp_path / "library.mcbr.db"
        ) as store:  # file changes are judged by the store's mtime
            for item in self.lib.items():
                store.set_path(item.id, bytes(item.path), item.filepath.stat().st_mtime)
        out = self.run_with_output("mcbr", "-W")
        assert "analysed 0, re-tagged 2 from stored embeddings, skipped 0" in out
        hi, lo = self.lib.items("title:hi").get(), self.lib.items("title:lo").get()
        assert hi.genres == ["Electronic"] and hi["mood"] == "Tense" and lo.genres == ["Folk"]
        assert hi["mcbr_heads"] == "genre=toy-genre-head-1,mood=toy-mood-head-1" and hi["mcbr_status"] == "ok"
        assert "mcbr_genre_rock" not in hi and float(hi["mcbr_genre_electronic"]) > 0.9
        assert "analysed 0, skipped 2" in self.run_with_output("mcbr")

    def test_a_wrong_source_stops_the_run_without_failing_items(self) -> None:
        self.add_tracks(("hi", HIGH))
        self.config["mcbr"]["mood"] = {"source": "no-such-head"}
        self.load_plugins()
        with pytest.raises(UserError, match="mcbr: model 'no-such-head' is neither a shipped model"):
            self.run_command("mcbr")
        assert "mcbr_status" not in self.lib.items().get()

    def test_scores_of_labels_the_source_no_longer_has_are_dropped(self) -> None:
        self.add_tracks(("hi", HIGH))
        item = self.lib.items().get()
        item["mcbr_genre_chillout"] = 0.4  # from an earlier source
        item["mcbr_genres_note"] = "not a score"  # not ours: kept
        item.store()
        self.run_with_output("mcbr")
        item = self.lib.items().get()
        assert "mcbr_genre_chillout" not in item and item["mcbr_genres_note"] == "not a score"
        assert item["mcbr_genre_rock"] > 0.5

    def test_changed_file_is_reanalysed(self) -> None:
        self.add_tracks(("hi", HIGH))
        self.run_with_output("mcbr")
        item = self.lib.items().get()
        write_audio(item.filepath, tone(3.0, freq=LOW), 22050)  # new audio, same path
        out = self.run_with_output("mcbr")
        assert "analysed 1" in out
        assert self.lib.items().get().genres == ["Jazz"]  # our own earlier value is refreshed

    def test_nowrite_keeps_files(self) -> None:
        self.add_tracks(("hi", HIGH))
        before = hashlib.sha256(self.lib.items().get().filepath.read_bytes()).hexdigest()
        self.run_with_output("mcbr", "-W")
        item = self.lib.items().get()
        assert item.genres == ["Rock"]
        assert hashlib.sha256(item.filepath.read_bytes()).hexdigest() == before


@pytest.mark.slow
class TestWorkers(McbrHelper):
    """Analysis in worker processes, with a plugin module loaded through `extra_plugins`."""

    def setup_beets(self) -> None:
        super().setup_beets()
        reset_plugins(None)
        self.config["mcbr"]["workers"] = 2
        self.config["mcbr"]["extra_plugins"] = ["tests.faulty"]  # registers the toy model in the workers

    def test_import_through_workers(self) -> None:
        self.make_track("hi", freq=HIGH)
        self.make_track("lo", freq=LOW)
        self.import_singletons()
        assert self.file_tags("hi").genres == ["Rock"]
        assert self.file_tags("lo").genres == ["Jazz"]
        out = self.run_with_output("mcbr", "-f")
        assert "analysed 2" in out


class TestSimilar(McbrHelper):
    def setup_beets(self) -> None:
        super().setup_beets()
        for name, freq, artist in [
            ("low1", 300, "A"), ("low2", 320, "A"), ("low3", 340, "B"),
            ("high1", 2500, "C"), ("high2", 2600, "C"), ("high3", 2700, "D"),
        ]:  # fmt: skip
            self.make_track(name, freq=freq, artist=artist)
        self.import_singletons()

    def titles(self, *args: str) -> list[str]:
        out = self.run_with_output("similar", "-f", "$title", *args)
        return out.split()

    def test_nearest_tracks_exclude_the_query(self) -> None:
        result = self.titles("-n", "2", "title:low1")
        assert result == ["low2", "low3"]
        result = self.titles("-n", "5", "title:high2")
        assert "high2" not in result and set(result[:2]) == {"high1", "high3"}

    def test_artist_query_and_artist_mode(self) -> None:
        result = self.titles("-n", "3", "artist:C")
        assert result[0] == "high3" and not {"high1", "high2"} & set(result)
        out = self.run_with_output("similar", "--artist", "-n", "2", "-f", "$artist", "artist:A")
        assert out.split() == ["B", "D"] or out.split()[0] == "B"

    def test_default_format_shows_distance(self) -> None:
        out = self.run_with_output("similar", "-n", "1", "title:low1")
        assert "low2" in out and out.strip()[0].isdigit()

    def test_item_without_embedding_is_analysed_on_demand(self) -> None:
        item = self.lib.items("title:low1").get()
        from mcbr_core.store.embeddings import EmbeddingStore

        store = EmbeddingStore(self.temp_path / "library.mcbr.db")
        store.remove([item.id])
        store.close()
        assert self.titles("-n", "1", "title:low1") == ["low2"]

    def test_removed_item_leaves_the_store(self) -> None:
        self.run_command("remove", "-f", "title:low2")
        assert "low2" not in self.titles("-n", "5", "title:low1")

    def test_no_match_is_a_clear_error(self) -> None:
        with pytest.raises(UserError, match="no items match"):
            self.run_command("similar", "title:nothing-like-this")


@pytest.mark.shipped
class TestShippedModel(McbrHelper):
    """The default model, end to end through `beet import` (thresholds at 0: tags always written)."""

    def setup_beets(self) -> None:
        super().setup_beets()
        reset_plugins(None)
        self.config["mcbr"]["model"] = "msd-musicnn"
        self.config["mcbr"]["device"] = "cpu"
        self.config["mcbr"]["genre"] = {"threshold": 0.0, "count": 2}
        self.config["mcbr"]["mood"] = {"threshold": 0.0, "count": 1}

    def test_import_tags_with_the_default_model(self) -> None:
        self.make_track("a", freq=440.0, seconds=5.0)
        self.make_track("b", freq=880.0, seconds=5.0, fmt="flac")
        self.import_singletons()
        for title in ("a", "b"):
            tags = self.file_tags(title)
            assert len(tags.genres) == 2 and tags.mood
            item = self.lib.items(f"title:{title}").get()
            assert item["mcbr_model"] == "msd-musicnn-1"
            assert 0.0 <= item["mcbr_genre_rock"] <= 1.0
        assert self.run_with_output("similar", "-f", "$title", "title:a").split() == ["b"]


@pytest.mark.shipped
class TestDefaultModel(McbrHelper):
    """The shipped default (mcbr-fusion and its heads), untouched settings, end to end through `beet import`."""

    def setup_beets(self) -> None:
        super().setup_beets()
        reset_plugins(None)
        self.config["mcbr"]["device"] = "cpu"
        for key in ("model", "genre", "mood"):  # McbrHelper's toy-model settings
            self.config["mcbr"][key] = DEFAULTS[key]
        # the attribute types beets caches come from the model configured when plugins load, as in `beet`
        from beets.util import cached_classproperty

        self.unload_plugins()
        cached_classproperty.cache.clear()
        self.load_plugins()

    def test_import_writes_genres_moods_arousal_and_valence(self) -> None:
        self.make_track("a", freq=440.0, seconds=4.0)
        self.make_track("b", freq=110.0, seconds=4.0, fmt="flac")
        self.import_singletons()
        for title in ("a", "b"):
            tags = self.file_tags(title)
            assert tags.genres and tags.mood  # every analysed track gets a genre and a mood
            item = self.lib.items(f"title:{title}").get()
            assert item["mcbr_model"].startswith("mcbr-fusion-1")
            assert "mcbr_arousal=mcbr-arousal-1" in item["mcbr_heads"]
            assert 0.0 <= item["mcbr_arousal"] <= 1.0 and 0.0 <= item["mcbr_valence"] <= 1.0
            assert 0.0 <= item["mcbr_genre_jazz"] <= 1.0 and 0.0 <= item["mcbr_mood_calm"] <= 1.0
        # typed attributes: a numeric range query, as `beet ls mcbr_arousal:0.5..` would run
        arousal = {i.title: i["mcbr_arousal"] for i in self.lib.items()}
        cut = sum(arousal.values()) / 2
        above = {i.title for i in self.lib.items(f"mcbr_arousal:{cut:.4f}..")}
        assert above == {t for t, a in arousal.items() if a >= round(cut, 4)}


class TestCheck(McbrHelper):
    def test_check_reports_and_fix_repairs(self) -> None:
        import numpy as np

        from mcbr_core.store.embeddings import EmbeddingStore

        for name, freq in (("a", HIGH), ("b", LOW), ("c", HIGH)):
            self.make_track(name, freq=freq)
        self.import_singletons()
        a = self.lib.items("title:a").get()
        with EmbeddingStore(self.temp_path / "library.mcbr.db") as store:
            store.remove([a.id])  # an item without embedding
            store.put(999, np.ones(2, dtype=np.float32), model_id="toy-1", feature_version="1")  # orphan
            store.put(
                a.id, np.ones(8, dtype=np.float32), model_id="old-model", feature_version="1"
            )  # stale model
        out = self.run_with_output("mcbr", "--check")
        assert "items without an embedding: 1" in out
        assert "orphaned embeddings (item gone): 1" in out
        assert "other models or feature versions: 1" in out
        assert "index: stale" in out
        out = self.run_with_output("mcbr", "--fix")
        assert "removed 2 embeddings, analysed 1 items" in out
        out = self.run_with_output("mcbr", "--check")
        assert "items without an embedding: 0" in out and "orphaned embeddings (item gone): 0" in out
        assert "index: fresh" in out and "--fix" not in out

    def test_changed_model_gives_a_way_forward(self) -> None:
        import numpy as np
        from beets.ui import UserError

        for i in range(3):
            self.make_track(f"t{i}", freq=HIGH)
        self.import_singletons()
        from mcbr_core.models.checkpoint import read_card, save_model

        card = read_card(self.temp_path / "toy.safetensors")
        other = save_model(self.temp_path / "toy2.safetensors", {"scale": np.ones(2, dtype=np.float32)},
                           {**card, "id": "toy-2"})  # fmt: skip
        self.config["mcbr"]["model"] = str(other)
        self.config["mcbr"]["similar"]["analyze_missing"] = 1
        self.unload_plugins()
        self.load_plugins()
        with pytest.raises(UserError, match="toy-1.*re-analyse"):
            self.run_command("similar", "title:t")


class TestReviewFixes(McbrHelper):
    def test_partial_kind_section_keeps_the_other_default(self) -> None:
        self.config["mcbr"]["genre"] = {"count": 5}
        settings = self.load_settings()
        assert (
            settings.tags.genre.count == 5
            and settings.tags.genre.threshold == "auto"
            and settings.tags.genre.specific == 0.4
            and settings.tags.genre.source == "auto"
        )

    def test_specific_no_turns_sub_genres_off_and_a_bad_threshold_is_one_line(self) -> None:
        self.config["mcbr"]["genre"] = {"specific": False, "threshold": 0.4}
        settings = self.load_settings()
        assert settings.tags.genre.specific is None and settings.tags.genre.threshold == 0.4
        self.config["mcbr"]["mood"] = {"threshold": "lots"}
        with pytest.raises(UserError, match=r"mcbr.mood: threshold must be auto or a number"):
            self.load_settings()

    def load_settings(self):
        from beetsplug.mcbr import settings

        return settings.load(self.config["mcbr"])

    def test_a_user_edit_of_our_value_is_never_replaced_later(self) -> None:
        self.make_track("hi", freq=HIGH)
        self.import_singletons()
        item = self.lib.items("title:hi").get()
        item.genres = ["Shoegaze"]  # the user edits what the plugin wrote
        item.store()
        for _ in range(2):
            self.run_with_output("mcbr", "-f")
            assert self.lib.items("title:hi").get().genres == ["Shoegaze"]

    def test_space_separator_for_moods(self) -> None:
        self.config["mcbr"]["mood_separator"] = " "
        self.config["mcbr"]["mood"] = {"threshold": 0.0, "count": 2}
        self.make_track("hi", freq=HIGH)
        self.import_singletons()
        assert self.lib.items("title:hi").get()["mood"] == "Happy Sad"
        assert "analysed 1" in self.run_with_output("mcbr", "-f")

    def test_failed_item_is_not_retried_until_its_file_changes(self) -> None:
        import numpy as np
        import soundfile as sf

        sf.write(self.import_path / "silent.wav", np.zeros((0, 1), dtype=np.float32), 22050)
        self.import_singletons()
        assert "skipped 1 up to date" in self.run_with_output("mcbr")
        assert "1 failed" in self.run_with_output("mcbr", "-f")

    @pytest.mark.parametrize("count", ["0", "-3"])
    def test_similar_rejects_counts_below_one(self, count: str) -> None:
        self.make_track("a", freq=HIGH)
        self.import_singletons()
        with pytest.raises(UserError, match=f"^mcbr: -n/--count must be at least 1, got {count}$"):
            self.run_command("similar", "-n", count, "title:a")
        self.config["mcbr"]["similar"]["count"] = int(count)
        self.unload_plugins()
        self.load_plugins()
        with pytest.raises(UserError, match=f"^mcbr.similar.count: must be at least 1, got {count}$"):
            self.run_command("similar", "title:a")

    def test_similar_album_on_singletons_says_why_it_has_nothing(self) -> None:
        self.make_track("a", freq=HIGH)
        self.make_track("b", freq=HIGH)
        self.import_singletons()
        with pytest.raises(UserError, match="every track was imported as a singleton"):
            self.run_command("similar", "--album", "title:a")


class TestMove(McbrHelper):
    def test_beet_move_keeps_the_embedding_with_the_new_path(self, tmp_path: Path) -> None:
        from mcbr_core.store.embeddings import EmbeddingStore

        self.make_track("a", freq=HIGH)
        self.make_track("b", freq=HIGH)
        self.import_singletons()
        item = self.lib.items("title:a").get()
        elsewhere = tmp_path / "moved"
        elsewhere.mkdir()
        self.run_command("move", "-d", str(elsewhere), "title:a")
        moved = self.lib.items("title:a").get()
        assert str(elsewhere) in str(moved.filepath) and moved.filepath.exists()
        with EmbeddingStore(self.temp_path / "library.mcbr.db") as store:
            row = store.row(item.id, "toy-1")
        assert row is not None and row.path == bytes(moved.path)
        assert "skipped 2 up to date" in self.run_with_output("mcbr")  # still current after the move
        assert self.run_with_output("similar", "-f", "$title", "title:a").split() == ["b"]
