"""`--check` / `--fix` converge, missing files are failures, and runs end with a summary."""

from __future__ import annotations

import pytest

from beetsplug.mcbr.commands import Progress
from mcbr_core.store.embeddings import EmbeddingStore
from tests.beetsplug.test_plugin import HIGH, LOW, McbrHelper


class TestMissingFiles(McbrHelper):
    def setup_library(self) -> None:
        for name, freq in (("a", HIGH), ("b", LOW), ("gone", HIGH)):
            self.make_track(name, freq=freq)
        self.import_singletons()
        self.run_command("ls")  # any command's exit brings the index up to date, as after `beet import`
        self.lib.items("title:gone").get().filepath.unlink()

    def test_check_and_fix_converge_on_a_missing_file(self) -> None:
        self.setup_library()
        out = self.run_with_output("mcbr", "--check")
        assert "items whose file is missing: 1" in out and "gone" in out
        assert "items without an embedding: 0" in out
        assert "run `beet mcbr --fix`" not in out  # --fix cannot bring a file back
        assert "restore them, or `beet remove` their items" in out
        out = self.run_with_output("mcbr", "--fix")
        assert "missing files left as failed: 1" in out
        gone = self.lib.items("title:gone").get()
        assert gone["mcbr_status"] == "failed" and gone["mcbr_error"] == "file not found"
        assert self.run_with_output("mcbr", "--check") == out_check_again(self)

    def test_mcbr_counts_a_missing_file_as_failed_not_up_to_date(self) -> None:
        self.setup_library()
        out = self.run_with_output("mcbr")
        assert "skipped 2 up to date, 1 failed (1 file missing)" in out
        assert "mcbr_status:failed" in out
        assert self.lib.items("title:gone").get()["mcbr_status"] == "failed"

    def test_check_names_the_items_it_counts(self) -> None:
        self.setup_library()
        a = self.lib.items("title:a").get()
        with EmbeddingStore(self.temp_path / "library.mcbr.db") as store:
            store.remove([a.id])
        out = self.run_with_output("mcbr", "--check")
        assert "items without an embedding: 1" in out
        assert f"  {format(a)}" in out.splitlines()
        out = self.run_with_output("mcbr", "--fix")
        assert "analysed 1 items (0 failed)" in out
        out = self.run_with_output("mcbr", "--check")
        assert "items without an embedding: 0" in out and "run `beet mcbr --fix`" not in out


def out_check_again(helper: McbrHelper) -> str:
    """What a second ``--check`` prints: the same as the first after a ``--fix`` (converged)."""
    return helper.run_with_output("mcbr", "--check")


class TestImportSummary(McbrHelper):
    def test_an_import_ends_with_a_summary(self) -> None:
        import numpy as np
        import soundfile as sf

        self.make_track("a", freq=HIGH)
        self.make_track("b", freq=LOW)
        sf.write(
            self.import_path / "silent.wav", np.zeros((0, 1), dtype=np.float32), 22050
        )  # valid, no samples
        out = self.run_with_output("import", "-A", "-s", str(self.import_path))
        assert "mcbr: analysed 2, tagged 2, 1 failed" in out and "mcbr_status:failed" in out


def test_progress_estimates_the_time_left(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([100.0, 130.0, 130.0])
    monkeypatch.setattr("beetsplug.mcbr.commands.time.monotonic", lambda: next(clock))
    progress = Progress(7, enabled=False)
    assert progress.eta() == "?"
    progress.done = 3  # 30 s for 3 items: 40 s for the 4 left
    assert progress.eta() == "0:40"
    progress.total = 3 + 3600 // 10
    assert progress.eta() == "1:00:00"


class TestDamagedFiles(McbrHelper):
    def test_a_file_decoding_in_part_fails_or_is_partial(self) -> None:
        from tests.badinput import damaged_tail_mp3

        self.make_track("good", freq=HIGH)
        damaged = damaged_tail_mp3(self.import_path)
        self.import_singletons()
        good, bad = self.lib.items("title:good").get(), self.lib.items("^title:good").get()
        assert bad is not None and damaged.exists()
        assert bad["mcbr_status"] == "failed" and "% of the audio decodes" in bad["mcbr_error"]
        assert good["mcbr_status"] == "ok"
        self.config["mcbr"]["partial"] = True
        self.unload_plugins()
        self.load_plugins()
        out = self.run_with_output("mcbr", "-f", f"id:{bad.id}")
        bad = self.lib.get_item(bad.id)
        assert bad["mcbr_status"] == "partial" and bad.genres and "analysed 1" in out
