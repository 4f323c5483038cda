"""``beet mcbr-train`` on the library's own labels: a clean error before any work, retries, each line once.

The clip head (``--mode head``) reads the toy model's embedding, so a run takes seconds.
"""

from __future__ import annotations

import logging
import re
import sys

import pytest
from beets.ui import UserError

from tests.beetsplug.test_plugin import HIGH, LOW, McbrHelper


class TestTrain(McbrHelper):
    def setup_beets(self) -> None:
        super().setup_beets()
        train = self.config["mcbr"]["train"]
        train["base_model"] = self.config["mcbr"]["model"].as_str()  # a head on the toy model's embedding
        train["mode"] = "head"
        train["cache"] = str(self.temp_path / "cache")
        train["out"] = str(self.temp_path / "runs")
        train["device"] = "cpu"
        self.config["mcbr"]["auto"] = False  # the items keep the user's own genres only

    def add_items(self) -> None:
        """12 Rock items of 6 artists, 2 Jazz items of one artist, 4 unlabelled low tones of two artists."""
        for i in range(12):
            self.make_track(
                f"rock{i}", freq=HIGH * (1 + 0.02 * i), genres=["Rock"], artist=f"Rock artist {i // 2}"
            )
        for i in range(6):
            genres = {"genres": ["Jazz"]} if i < 2 else {}
            self.make_track(f"jazz{i}", freq=LOW * (1 + 0.05 * i), artist=f"Jazz artist {i // 2}", **genres)
        self.unload_plugins()
        self.load_plugins()
        self.import_singletons()

    def label_the_rest(self) -> None:
        for item in self.lib.items("title:jazz"):
            item.genres = ["Jazz"]
            item.store()

    def train(self, *args: str) -> tuple[str, str]:
        """Run ``beet mcbr-train``; what it wrote to stdout and stderr (beets' log lines included)."""
        # beets' console log handler keeps the stderr of the first command in this process: point it at this test's
        handlers = [h for h in logging.getLogger("beets").handlers if isinstance(h, logging.StreamHandler)]
        streams = [h.stream for h in handlers]
        for h in handlers:
            h.stream = sys.stderr
        self._capsys.readouterr()
        try:
            self.run_command("mcbr-train", "--task", "genre", "--name", "r", *args)
        finally:
            out = self._capsys.readouterr()
            for h, stream in zip(handlers, streams, strict=True):
                h.stream = sys.__stderr__ if getattr(stream, "closed", False) else stream
        return out.out, out.err

    def test_one_usable_label_is_a_one_line_error_before_any_work(self) -> None:
        self.add_items()
        with pytest.raises(UserError) as exc:
            self.train()
        assert str(exc.value) == (
            "mcbr-train: the library has 1 genre label with at least 5 items (Rock: 12 items) among 14 labelled "
            "items; training needs at least 2 labels"
        )
        assert not (self.temp_path / "runs").exists()  # no run folder
        assert not (self.temp_path / "cache").exists()  # nothing decoded

    def test_a_retry_after_fixing_the_labels_trains(self) -> None:
        self.add_items()
        with pytest.raises(UserError, match="training needs at least 2 labels"):
            self.train()
        self.label_the_rest()
        out, _ = self.train()
        run = self.temp_path / "runs" / "r"
        assert (run / "model.safetensors").is_file() and "mcbr-train: model " in out
        assert "mcbr-train: to tag with it, set  mcbr: {genre: {source:" in out

    def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_folder(self) -> None:
        self.add_items()
        self.label_the_rest()
        self.config["mcbr"]["train"]["arch"] = "no-such-net"
        with pytest.raises(UserError, match="no-such-net"):
            self.train(
                "--mode", "net", "--features", "toy-features"
            )  # fails after decoding, building the net
        assert not (self.temp_path / "runs").exists()
        self.train()  # the same name: no "already holds a run"
        assert (self.temp_path / "runs" / "r" / "model.safetensors").is_file()

    def test_cross_validation_needs_artists_for_every_fold(self) -> None:
        self.add_items()
        for item in self.lib.items("title::^jazz[23]$"):  # Jazz: 4 items of 2 artists
            item.genres = ["Jazz"]
            item.store()
        with pytest.raises(UserError) as exc:
            self.train("--folds", "3", "--min-count", "4")
        assert re.fullmatch(
            r"mcbr-train: 3-fold cross-validation leaves fold \d's training part with only Rock: each label needs "
            r"items of more artists \(Jazz: 2 artists, Rock: 6 artists; 16 items\)",
            str(exc.value),
        )
        assert not (self.temp_path / "runs").exists()

    def test_each_progress_line_is_shown_once(self) -> None:
        self.add_items()
        self.label_the_rest()
        for item in self.lib.items("title::^rock[01]$"):  # Blues: one artist's 2 items
            item.genres = ["Blues"]
            item.store()
        out, err = self.train("--folds", "3", "--min-count", "2")
        lines = (out + err).splitlines()
        for fold in range(3):
            shown = [
                ln for ln in lines if re.search(rf"\bfold {fold}: \d+ train, \d+ val, \d+ test clips", ln)
            ]
            assert len(shown) == 1, lines
        assert sum("refitting on training + validation" in ln for ln in lines) == 3
        assert sum("a label is on a single artist (Blues)" in ln for ln in lines) == 1  # a warning too
