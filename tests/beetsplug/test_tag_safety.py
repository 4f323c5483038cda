"""Writing genres and mood changes only those tags; failed writes leave files intact."""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from pathlib import Path

import mediafile
import mutagen
import pytest

from tests.beetsplug.test_plugin import HIGH, McbrHelper

OURS = {"TCON", "TMOO", "TXXX:MOOD", "GENRE", "MOOD", "\xa9gen", "----:com.apple.iTunes:MOOD"}


def png() -> bytes:
    """A valid 2x2 PNG."""
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def snapshot(path: Path) -> dict[str, object]:
    """Every tag except the ones the plugin owns, as comparable raw values (art included)."""
    f = mutagen.File(path)
    tags = f.tags
    out: dict[str, object] = {}
    if hasattr(tags, "getall") and hasattr(tags, "version"):  # ID3
        out["__version__"] = tags.version
        for key, frame in tags.items():
            if key.split(":")[0] in ("TCON", "TMOO") or key == "TXXX:MOOD":
                continue
            out[key] = frame._writeData(None) if hasattr(frame, "_writeData") else repr(frame)
    else:
        for key in tags.keys():
            if key.upper() in {"GENRE", "MOOD"} or key in OURS:
                continue
            out[key] = [bytes(v) if isinstance(v, (bytes, bytearray)) else repr(v) for v in tags[key]]
        if hasattr(f, "pictures"):
            out["__pictures__"] = [p.data for p in f.pictures]
    return out


class TestNoTagLoss(McbrHelper):
    def rich_track(self, name: str, fmt: str, *, id3v23: bool = False) -> Path:
        path = self.make_track(name, freq=HIGH, fmt=fmt)
        mf = mediafile.MediaFile(str(path), id3v23=id3v23)
        mf.update({
            "albumartist": "Album Artist", "track": 3, "tracktotal": 12, "year": 1999, "composer": "Composer",
            "comments": "a comment", "lyrics": "la la la", "mb_trackid": "0b7d6f1e-0000-4000-8000-000000000001",
            "rg_track_gain": -6.5, "bpm": 128,
        })  # fmt: skip
        mf.images = [mediafile.Image(data=png(), desc="front", type=mediafile.ImageType.front)]
        mf.save()
        return path

    @pytest.mark.parametrize(
        ("fmt", "id3v23"),
        [
            ("mp3", True),
            ("mp3", False),
            ("flac", False),
            ("ogg", False),
            ("opus", False),
            ("m4a", False),
        ],  # fmt: skip
    )
    def test_only_genre_and_mood_change(self, fmt: str, id3v23: bool) -> None:
        path = self.rich_track("t", fmt, id3v23=id3v23)
        before = snapshot(path)
        assert before  # the fixture really has tags
        self.import_singletons()
        item = self.lib.items("title:t").get()
        after_path = item.filepath
        tags = mediafile.MediaFile(str(after_path))
        assert tags.genres == ["Rock"] and tags.mood == "Happy"
        assert snapshot(after_path) == before
        assert tags.images and tags.images[0].data == png()

    def test_read_only_file_fails_cleanly_and_stays_intact(
        self, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.make_track("ro", freq=HIGH)
        self.config["mcbr"]["auto"] = False
        self.unload_plugins()
        self.load_plugins()
        self.import_singletons()
        item = self.lib.items("title:ro").get()
        os.chmod(item.filepath, 0o444)
        digest = hashlib.sha256(item.filepath.read_bytes()).hexdigest()
        if os.access(item.filepath, os.W_OK):  # root ignores file modes: emulate what a user sees
            import beetsplug.mcbr

            real = os.access
            monkeypatch.setattr(
                beetsplug.mcbr.os, "access", lambda p, m: False if m == os.W_OK else real(p, m)
            )
        self.run_with_output("mcbr")
        assert hashlib.sha256(item.filepath.read_bytes()).hexdigest() == digest
        assert any("read-only" in r.getMessage() for r in caplog.records)
        assert self.lib.items("title:ro").get().genres == ["Rock"]  # the database still learns the tags

    def test_deleted_file_is_marked_failed_every_run(self, caplog: pytest.LogCaptureFixture) -> None:
        self.make_track("gone", freq=HIGH)
        self.config["mcbr"]["auto"] = False
        self.unload_plugins()
        self.load_plugins()
        self.import_singletons()
        item = self.lib.items("title:gone").get()
        item.filepath.unlink()
        out = self.run_with_output("mcbr")
        assert "1 failed" in out
        item = self.lib.items("title:gone").get()
        assert item["mcbr_status"] == "failed" and "not found" in item["mcbr_error"]
        # a missing file is a failure every run (never "up to date") until it is back or removed
        assert "skipped 0 up to date, 1 failed (1 file missing)" in self.run_with_output("mcbr")
        assert "1 failed" in self.run_with_output("mcbr", "-f")


class TestId3v23RoundTrip(McbrHelper):
    def test_joined_genres_read_back_from_id3v23_stay_the_plugins(self) -> None:
        from beetsplug.mcbr.train_command import library_rows

        self.config["id3v23"] = True
        self.config["mcbr"]["genre"] = {"threshold": 0.0, "count": 2}
        path = self.make_track("hi", freq=HIGH)
        mediafile.MediaFile(str(path), id3v23=True).save()  # an ID3v2.3 file (it keeps its version)
        self.import_singletons()
        item = self.lib.items("title:hi").get()
        assert item.genres == ["Rock", "Jazz"]
        assert mediafile.MediaFile(str(item.filepath)).genres == ["Rock/Jazz"]  # one TCON value in v2.3
        stat = item.filepath.stat()
        os.utime(
            item.filepath, (stat.st_atime, stat.st_mtime + 10)
        )  # changed by another tool: update reads it
        self.run_command("update")
        item = self.lib.items("title:hi").get()
        assert item.genres == ["Rock/Jazz"]  # what beets reads back
        assert library_rows([item]) == []  # not a user label
        self.run_with_output("mcbr", "-f")  # refreshed as the plugin's own value, no force needed
        assert self.lib.items("title:hi").get().genres == ["Rock", "Jazz"]

    def test_a_users_joined_value_stays_the_users(self) -> None:
        self.config["id3v23"] = True
        path = self.make_track("hi", freq=HIGH, genres=["Pop/Rock"])
        mediafile.MediaFile(str(path), id3v23=True).save()
        self.import_singletons()
        assert self.lib.items("title:hi").get().genres == ["Pop/Rock"]
