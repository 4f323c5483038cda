"""Audio decoding without a system ffmpeg.

Two built-in decoders, registered through the ``register_decoders`` hook:

``soundfile``
    libsndfile (bundled in the ``soundfile`` wheel): WAV, FLAC, Ogg Vorbis, Opus,
    MP3, AIFF. Sample-accurate seeking, gapless MP3.
``pyav``
    FFmpeg's libraries as bundled in the ``av`` wheel: everything else, notably
    MP4/M4A (AAC, ALAC), WMA, and anything libsndfile refuses.

``load_audio`` tries the decoders in order (those claiming the file's extension
first), downmixes to mono by averaging channels, replaces non-finite samples by
zero, and resamples once with soxr HQ to the model's rate.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from mcbr_core.errors import DecodeError
from mcbr_core.hookspecs import Register, hookimpl

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AudioInfo:
    """What a decoder learns from a file's header."""

    samplerate: int
    channels: int
    duration: float  # seconds; an estimate for some compressed formats


@runtime_checkable
class Decoder(Protocol):
    """Decodes a file (or a time window of it) to float32 samples."""

    name: str
    extensions: frozenset[str]  # lower-case suffixes this decoder prefers, e.g. {".flac"}

    def info(self, path: Path) -> AudioInfo:
        """Read sample rate, channel count and duration without decoding."""
        ...

    def decode(self, path: Path, *, start: float = 0.0, duration: float | None = None) -> tuple[np.ndarray, int]:
        """Decode ``duration`` seconds from ``start``.

        Returns
        -------
        samples : np.ndarray [shape=(n_samples, n_channels), dtype=float32]
        samplerate : int
        """
        ...


class SoundfileDecoder:
    """libsndfile through ``soundfile``."""

    name = "soundfile"
    extensions = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".w64"})

    def info(self, path: Path) -> AudioInfo:
        import soundfile as sf

        try:
            # a Python file object, not a path: libsndfile rejects paths over ~1 KB
            with open(path, "rb") as fh, sf.SoundFile(fh) as f:
                sr, channels, frames = int(f.samplerate), int(f.channels), int(f.frames)
        except OSError as exc:
            raise DecodeError(f"cannot open it ({exc.strerror or exc})") from exc
        except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError
            raise DecodeError(f"libsndfile cannot open it ({_short(exc)})") from exc
        return AudioInfo(sr, channels, frames / max(sr, 1))

    def decode(self, path: Path, *, start: float = 0.0, duration: float | None = None) -> tuple[np.ndarray, int]:
        import soundfile as sf

        try:
            with open(path, "rb") as fh, sf.SoundFile(fh) as f:
                sr = int(f.samplerate)
                first = int(round(start * sr))
                if first:
                    f.seek(min(first, max(f.frames - 1, 0)))
                frames = -1 if duration is None else int(round(duration * sr))
                data = f.read(frames=frames, dtype="float32", always_2d=True)
        except Exception as exc:
            raise DecodeError(f"libsndfile cannot decode it ({_short(exc)})") from exc
        return data, sr


class PyAVDecoder:
    """FFmpeg's libraries through PyAV (no system ffmpeg needed)."""

    name = "pyav"
    extensions = frozenset({".m4a", ".mp4", ".aac", ".alac", ".wma", ".asf", ".mka", ".webm", ".ape", ".wv", ".opus"})

    def info(self, path: Path) -> AudioInfo:
        import av

        try:
            with av.open(str(path)) as container:
                stream = _audio_stream(container)
                duration = (
                    float(stream.duration * stream.time_base)
                    if stream.duration is not None
                    else float(container.duration or 0) / 1e6
                )
                return AudioInfo(int(stream.rate or stream.codec_context.sample_rate), int(stream.channels), duration)
        except DecodeError:
            raise
        except Exception as exc:
            raise DecodeError(f"ffmpeg cannot open it ({_short(exc)})") from exc

    def decode(self, path: Path, *, start: float = 0.0, duration: float | None = None) -> tuple[np.ndarray, int]:
        import av

        chunks: list[np.ndarray] = []
        try:
            with av.open(str(path)) as container:
                stream = _audio_stream(container)
                sr = int(stream.rate or stream.codec_context.sample_rate)
                if start > 0:
                    # seek lands on a packet at or before `start`; frames are trimmed by pts below
                    container.seek(int(start / stream.time_base), stream=stream, any_frame=False, backward=True)
                end = None if duration is None else start + duration
                for frame in container.decode(stream):
                    block = frame.to_ndarray()
                    # planar formats give (channels, n); packed give (1, n * channels)
                    if frame.format.is_planar:
                        block = block.T  # (n, channels)
                    else:
                        block = block.reshape(-1, len(frame.layout.channels))  # (n, channels)
                    block = _to_float32(block)
                    t0 = float(frame.pts * frame.time_base) if frame.pts is not None else None
                    if t0 is not None and start > 0:
                        skip = int(round((start - t0) * sr))
                        if skip >= len(block):
                            continue
                        if skip > 0:
                            block = block[skip:]
                            t0 = start
                    chunks.append(block)
                    if end is not None and t0 is not None and t0 + len(block) / sr >= end:
                        break
        except DecodeError:
            raise
        except Exception as exc:
            if not chunks:
                raise DecodeError(f"ffmpeg cannot decode it ({_short(exc)})") from exc
            log.debug("%s: decoding stopped early: %s", path, exc)
        if not chunks:
            raise DecodeError("no audio frames")
        data = np.concatenate(chunks, axis=0)
        if duration is not None:
            data = data[: int(round(duration * sr))]
        return data, sr


def _audio_stream(container: object):  # noqa: ANN202 - av types are optional
    streams = [s for s in container.streams if s.type == "audio"]  # type: ignore[attr-defined]
    if not streams:
        raise DecodeError("the file has no audio stream")
    return streams[0]


def _to_float32(block: np.ndarray) -> np.ndarray:
    """Scale integer PCM to [-1, 1) float32."""
    if np.issubdtype(block.dtype, np.integer):
        info = np.iinfo(block.dtype)
        # cast before scaling: NumPy 2 keeps narrow dtypes in mixed arithmetic
        return (block.astype(np.float32) - (info.max + info.min + 1) / 2) / ((info.max - info.min + 1) / 2)
    return block.astype(np.float32, copy=False)


def _short(exc: BaseException) -> str:
    # libsndfile's own reason, without the "Error opening <file object>" preamble
    reason = getattr(exc, "error_string", None)
    if reason:
        return str(reason).strip()[:200]
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


@hookimpl
def register_decoders(register: Register) -> None:
    """Register the built-in decoders."""
    register("soundfile", SoundfileDecoder)
    register("pyav", PyAVDecoder)


def order_decoders(decoders: list[Decoder], path: Path) -> list[Decoder]:
    """Put decoders that claim ``path``'s extension first, keeping the given order otherwise."""
    ext = path.suffix.lower()
    return sorted(decoders, key=lambda d: ext not in d.extensions)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average channels and zero non-finite samples.

    Parameters
    ----------
    samples : np.ndarray [shape=(n_samples, n_channels)]

    Returns
    -------
    np.ndarray [shape=(n_samples,), dtype=float32]
    """
    mono = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0].astype(np.float32)
    if not np.isfinite(mono).all():
        mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
    return mono


def resample(y: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample with soxr HQ to exactly ``ceil(n * sr_out / sr_in)`` samples (librosa's rule).

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
    sr_in, sr_out : int

    Returns
    -------
    np.ndarray [shape=(ceil(n_samples * sr_out / sr_in),), dtype=float32]
    """
    if sr_in == sr_out:
        return y.astype(np.float32, copy=False)
    import soxr

    n_out = int(math.ceil(len(y) * sr_out / sr_in))
    out = soxr.resample(y, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)
    if len(out) > n_out:
        out = out[:n_out]
    elif len(out) < n_out:
        out = np.pad(out, (0, n_out - len(out)))
    return out


def check_readable(path: Path) -> None:
    """Raise ``DecodeError`` for a missing, unreadable or empty file."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise DecodeError("file not found") from None
    except OSError as exc:
        raise DecodeError(f"cannot stat it ({exc.strerror})") from None
    if size == 0:
        raise DecodeError("the file is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise DecodeError("the file is not readable (permission denied)")


def probe(path: str | Path, decoders: list[Decoder]) -> tuple[AudioInfo, Decoder]:
    """Read a file's audio info with the first decoder that can open it."""
    path = Path(path)
    check_readable(path)
    reasons = []
    for decoder in order_decoders(decoders, path):
        try:
            return decoder.info(path), decoder
        except DecodeError as exc:
            reasons.append(f"{decoder.name}: {exc}")
    raise DecodeError("; ".join(reasons) or "no decoder")


def load_audio(
    path: str | Path,
    *,
    sr: int,
    decoders: list[Decoder],
    start: float = 0.0,
    duration: float | None = None,
) -> np.ndarray:
    """Decode, downmix and resample one file (or a window of it).

    Parameters
    ----------
    path
        Audio file.
    sr
        Target sample rate.
    decoders
        Decoders to try; those claiming the extension go first.
    start, duration
        Window in seconds (``duration=None``: to the end).

    Returns
    -------
    np.ndarray [shape=(n_samples,), dtype=float32]
        Mono audio at ``sr``.

    Raises
    ------
    DecodeError
        If no decoder can read the file or it holds no samples.
    """
    path = Path(path)
    check_readable(path)
    reasons = []
    for decoder in order_decoders(decoders, path):
        try:
            samples, sr_in = decoder.decode(path, start=start, duration=duration)
        except DecodeError as exc:
            reasons.append(f"{decoder.name}: {exc}")
            continue
        if samples.size == 0:
            reasons.append(f"{decoder.name}: no samples")
            continue
        return resample(to_mono(samples), sr_in, sr)
    raise DecodeError("; ".join(reasons) or "no decoder")
