"""A generated corpus of awkward and broken audio files (used by tests and bench/faults.py).

Each case names what analysis may do with it: ``ok`` (analysed), ``failed``
(a clear one-line error), or either. It must never crash or hang the host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.audiogen import tone, write_audio

SR = 22050


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], Path]
    expect: frozenset[str]  # allowed outcomes: "ok", "failed"


def _tone_file(folder: Path, name: str, *, seconds: float = 4.0, sr: int = SR, channels: int = 1,
               subtype: str | None = None) -> Path:  # fmt: skip
    path = folder / name
    y = tone(seconds, sr=sr, channels=channels)
    if subtype:
        sf.write(path, y, sr, subtype=subtype)
    elif len(str(path)) > 1000:  # libsndfile refuses long path names: write through a file object
        with open(path, "wb") as fh:
            sf.write(fh, y, sr, format="FLAC", subtype="PCM_16")
    else:
        write_audio(path, y, sr)
    return path


def overwrite(path: Path, start: float, stop: float, *, seed: int = 7) -> Path:
    """Overwrite the bytes from ``start`` to ``stop`` (fractions of the size) with random bytes, in place."""
    data = bytearray(path.read_bytes())
    lo, hi = int(start * len(data)), int(stop * len(data))
    data[lo:hi] = np.random.default_rng(seed).integers(0, 256, hi - lo, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def strip_xing(path: Path) -> Path:
    """Drop an MP3's first frame when it is a Xing/Info header, in place (no ID3 tag expected).

    Without it, decoders can only estimate a VBR file's length from its first frame's bitrate.
    """
    data = path.read_bytes()
    header = int.from_bytes(data[:4], "big")
    if header >> 21 != 0x7FF or not any(tag in data[:64] for tag in (b"Xing", b"Info")):
        raise ValueError(f"{path} does not start with a Xing frame")
    mpeg1 = (header >> 19) & 3 == 3
    kbps = (
        (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
        if mpeg1
        else (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
    )[(header >> 12) & 15]
    rate = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}[(header >> 19) & 3][
        (header >> 10) & 3
    ]
    size = (144 if mpeg1 else 72) * kbps * 1000 // rate + ((header >> 9) & 1)  # Layer III frame length
    path.write_bytes(data[size:])
    return path


def damaged_tail_mp3(folder: Path) -> Path:
    """A 30-s MP3 whose last 90 % is random bytes (its Xing header still says 30 s)."""
    return overwrite(_tone_file(folder, "damaged-tail.mp3", seconds=30.0), 0.1, 1.0)


def overwritten_flac(folder: Path) -> Path:
    """A 30-s FLAC with all but its first and last 5 % overwritten by random bytes."""
    return overwrite(_tone_file(folder, "overwritten.flac", seconds=30.0), 0.05, 0.95)


def glitched_mp3(folder: Path) -> Path:
    """A 30-s MP3 with 2 KB of random bytes in its middle (about 0.4 s of it).

    libmpg123 gives up resyncing after 1 KB and stops there; ffmpeg skips the damage.
    """
    path = _tone_file(folder, "glitched.mp3", seconds=30.0)
    return overwrite(path, 0.5, 0.5 + 2048 / path.stat().st_size)


def vbr_mp3_without_xing(folder: Path, *, seconds: float = 30.0) -> Path:
    """A healthy VBR MP3 without a Xing header, opening with silence.

    Its first frame's bitrate is tiny, so libsndfile estimates it at about four times
    its length (and used to stop decoding there when the estimate was short).
    """
    path = folder / "vbr-without-xing.mp3"
    y = tone(seconds)
    quiet = int(3 * SR)
    y[:quiet] = 0.0
    y[quiet:] += 0.3 * np.random.default_rng(0).standard_normal(y[quiet:].shape).astype(np.float32)
    sf.write(path, np.clip(y, -1.0, 1.0), SR, format="MP3", bitrate_mode="VARIABLE", compression_level=0.5)
    return strip_xing(path)


def zero_byte(folder: Path) -> Path:
    path = folder / "zero-byte.mp3"
    path.write_bytes(b"")
    return path


def truncated_mp3(folder: Path) -> Path:
    path = _tone_file(folder, "truncated.mp3", seconds=6.0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def truncated_header_mp3(folder: Path) -> Path:
    path = _tone_file(folder, "truncated-header.mp3", seconds=6.0)
    path.write_bytes(path.read_bytes()[:64])
    return path


def random_bytes_mp3(folder: Path) -> Path:
    path = folder / "random.mp3"
    path.write_bytes(np.random.default_rng(7).integers(0, 256, 64 * 1024, dtype=np.uint8).tobytes())
    return path


def text_flac(folder: Path) -> Path:
    path = folder / "text.flac"
    path.write_text("This is not a FLAC file.\n" * 200)
    return path


def no_audio_stream(folder: Path) -> Path:
    """An MP4 container holding one video stream and no audio."""
    import av

    path = folder / "video-only.m4a"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=1)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), dtype=np.uint8), format="rgb24")
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def tiny_clip(folder: Path) -> Path:
    return _tone_file(folder, "tenth-of-a-second.wav", seconds=0.1)


def hour_of_silence(folder: Path) -> Path:
    """One hour of digital silence (FLAC compresses it to a few hundred KB)."""
    path = folder / "hour-of-silence.flac"
    with sf.SoundFile(path, "w", samplerate=8000, channels=1, format="FLAC", subtype="PCM_16") as f:
        block = np.zeros(8000 * 60, dtype=np.int16)
        for _ in range(60):
            f.write(block)
    return path


def silence(folder: Path) -> Path:
    path = folder / "silence.flac"
    sf.write(path, np.zeros(SR * 10, dtype=np.float32), SR, subtype="PCM_16")
    return path


def clipping(folder: Path) -> Path:
    path = folder / "clipping.wav"
    y = np.clip(tone(5.0)[:, 0] * 40.0, -1.0, 1.0)
    sf.write(path, y, SR, subtype="PCM_16")
    return path


def nan_inf_float_wav(folder: Path) -> Path:
    path = folder / "nan-inf.wav"
    y = tone(4.0)[:, 0].copy()
    y[::97] = np.nan
    y[::89] = np.inf
    y[::83] = -np.inf
    sf.write(path, y, SR, subtype="FLOAT")
    return path


def corrupt_tag_frames(folder: Path) -> Path:
    """An MP3 whose ID3 tag has a frame with a nonsense size."""
    path = _tone_file(folder, "corrupt-tags.mp3", seconds=4.0)
    body = path.read_bytes()
    frame = b"TIT2" + (0x7FFFFFF0).to_bytes(4, "big") + b"\x00\x00" + b"\x03broken"
    size = len(frame)
    synchsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    path.write_bytes(b"ID3\x03\x00\x00" + synchsafe + frame + body)
    return path


def unicode_name(folder: Path) -> Path:
    return _tone_file(folder, "Björk – 日本語 🎵 «ünïcødé».flac")


def long_path(folder: Path) -> Path:
    deep = folder
    for i in range(6):
        deep = deep / (f"very-long-folder-name-{i}-" + "x" * 150)
    deep.mkdir(parents=True, exist_ok=True)
    return _tone_file(deep, ("long-file-name-" + "y" * 200)[:240] + ".flac")


CASES: tuple[Case, ...] = (
    Case("zero-byte file", zero_byte, frozenset({"failed"})),
    Case("truncated MP3 (a third of it)", truncated_mp3, frozenset({"failed"})),
    Case("MP3 with its last 90% random bytes", damaged_tail_mp3, frozenset({"failed"})),
    Case("FLAC with 90% of it overwritten", overwritten_flac, frozenset({"failed"})),
    Case("MP3 with a glitch in the middle", glitched_mp3, frozenset({"ok"})),
    Case("VBR MP3 without a Xing header", vbr_mp3_without_xing, frozenset({"ok"})),
    Case("truncated MP3 (header only)", truncated_header_mp3, frozenset({"failed"})),
    Case("random bytes named .mp3", random_bytes_mp3, frozenset({"failed"})),
    Case("text named .flac", text_flac, frozenset({"failed"})),
    Case("container with no audio stream", no_audio_stream, frozenset({"failed"})),
    Case("0.1 s clip", tiny_clip, frozenset({"ok"})),
    Case("one hour of silence", hour_of_silence, frozenset({"ok"})),
    Case("all silence", silence, frozenset({"ok"})),
    Case("clipping", clipping, frozenset({"ok"})),
    Case("NaN/Inf samples in float WAV", nan_inf_float_wav, frozenset({"ok"})),
    Case("8 kHz", lambda f: _tone_file(f, "8khz.wav", sr=8000), frozenset({"ok"})),
    Case("192 kHz", lambda f: _tone_file(f, "192khz.flac", sr=192000, seconds=3.0), frozenset({"ok"})),
    Case("6 channels", lambda f: _tone_file(f, "six-channels.wav", channels=6), frozenset({"ok"})),
    Case("8-bit PCM", lambda f: _tone_file(f, "8bit.wav", subtype="PCM_U8"), frozenset({"ok"})),
    Case("24-bit PCM", lambda f: _tone_file(f, "24bit.flac", subtype="PCM_24"), frozenset({"ok"})),
    Case("32-bit float PCM", lambda f: _tone_file(f, "float32.wav", subtype="FLOAT"), frozenset({"ok"})),
    Case("corrupt tag frames", corrupt_tag_frames, frozenset({"ok", "failed"})),
    Case("unicode path", unicode_name, frozenset({"ok"})),
    Case("very long path", long_path, frozenset({"ok"})),
)


def build_corpus(folder: Path) -> list[tuple[Case, Path]]:
    """Write every case into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return [(case, case.build(folder)) for case in CASES]
