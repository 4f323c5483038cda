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

A damaged file often decodes in part: both decoders return what they decoded
before (and, for ffmpeg, after) the damage instead of failing or hiding it, so
that the caller can compare the decoded length with the header's duration
(``mcbr_core.analysis`` fails a file whose coverage is too low).

libsndfile only estimates the length of an MP3 without a Xing/Info/VBRI header
(from the first frame's bitrate; off by -60 % to +400 % for VBR files) and stops
decoding at that estimate, so such files go to ffmpeg, which counts their frames.
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

# libsndfile reads in blocks of this many seconds (or 1 % of the request, if longer): a read
# error loses the block it happens in, and each read costs ~0.15 ms (soundfile seeks after it)
_BLOCK_SECONDS = 0.5
_WHOLE = 0.99  # a decode this close to the expected length needs no second opinion
# ffmpeg decodes this much before a window's start and drops it: a codec's first frames after a
# seek lack their history (without it, an MP3 window's first 0.1 s differed from the whole decode)
_PREROLL_SECONDS = 0.3


@dataclass(frozen=True)
class AudioInfo:
    """What a decoder learns from a file's header."""

    samplerate: int
    channels: int
    duration: float  # seconds; MP3s without a length header are counted frame by frame


@runtime_checkable
class Decoder(Protocol):
    """Decodes a file (or a time window of it) to float32 samples."""

    name: str
    extensions: frozenset[str]  # lower-case suffixes this decoder prefers, e.g. {".flac"}

    def info(self, path: Path) -> AudioInfo:
        """Read sample rate, channel count and duration without decoding."""
        ...

    def decode(
        self, path: Path, *, start: float = 0.0, duration: float | None = None
    ) -> tuple[np.ndarray, int]:
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
                _refuse_estimated_mp3(f, path)
                sr, channels, frames = int(f.samplerate), int(f.channels), int(f.frames)
        except DecodeError:
            raise
        except OSError as exc:
            raise DecodeError(f"cannot open it ({exc.strerror or exc})") from exc
        except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError
            raise DecodeError(f"libsndfile cannot open it ({_short(exc)})") from exc
        return AudioInfo(sr, channels, frames / max(sr, 1))

    def decode(
        self, path: Path, *, start: float = 0.0, duration: float | None = None
    ) -> tuple[np.ndarray, int]:
        """Decode a window; a read error after the first block ends it early (the caller sees it short)."""
        import soundfile as sf

        done = 0
        try:
            with open(path, "rb") as fh, sf.SoundFile(fh) as f:
                _refuse_estimated_mp3(f, path)
                sr = int(f.samplerate)
                first = int(round(start * sr))
                if first:
                    f.seek(min(first, max(f.frames - 1, 0)))
                left = max(f.frames - f.tell(), 0)
                wanted = left if duration is None else min(round(duration * sr), left)
                out = np.empty((wanted, f.channels), dtype=np.float32)
                block = max(int(_BLOCK_SECONDS * sr), len(out) // 100, 1024)
                while done < len(out):
                    try:
                        n = len(f.read(out=out[done : done + block]))
                    except Exception as exc:
                        if not done:
                            raise
                        log.debug("%s: libsndfile stopped after %.1f s: %s", path, done / sr, _short(exc))
                        break
                    if not n:
                        break
                    done += n
        except DecodeError:
            raise
        except Exception as exc:
            raise DecodeError(f"libsndfile cannot decode it ({_short(exc)})") from exc
        return out[:done], sr


class PyAVDecoder:
    """FFmpeg's libraries through PyAV (no system ffmpeg needed)."""

    name = "pyav"
    extensions = frozenset(
        {".m4a", ".mp4", ".aac", ".alac", ".wma", ".asf", ".mka", ".webm", ".ape", ".wv", ".opus"}
    )

    def info(self, path: Path) -> AudioInfo:
        import av

        try:
            with av.open(str(path)) as container:
                stream = _audio_stream(container)
                if container.format.name == "mp3" and not _mp3_length_known(path):
                    duration = _demuxed_seconds(container, stream)  # ffmpeg's figure is a bitrate estimate
                elif stream.duration is not None:
                    duration = float(stream.duration * stream.time_base)
                else:
                    duration = float(container.duration or 0) / 1e6
                return AudioInfo(
                    int(stream.rate or stream.codec_context.sample_rate), int(stream.channels), duration
                )
        except DecodeError:
            raise
        except Exception as exc:
            raise DecodeError(f"ffmpeg cannot open it ({_short(exc)})") from exc

    def decode(
        self, path: Path, *, start: float = 0.0, duration: float | None = None
    ) -> tuple[np.ndarray, int]:
        """Decode a window, skipping packets the codec rejects (as the ffmpeg tool does).

        What decodes before a fatal error (the demuxer losing sync) is returned, so
        a damaged file comes back short rather than failing or looking whole.
        """
        import av

        chunks: list[np.ndarray] = []
        bad: list[Exception] = []  # packets the codec rejected
        try:
            with av.open(str(path)) as container:
                stream = _audio_stream(container)
                sr = int(stream.rate or stream.codec_context.sample_rate)
                # the first sample's pts: after an MP3's encoder delay (LAME tag) it is not 0, and
                # libsndfile's timeline, which the windows follow, starts at the first sample
                origin = stream.start_time or 0
                if start > 0:
                    # seek lands on a packet at or before `start` - preroll (decoded to fill the codec's
                    # history: MP3's bit reservoir and overlap, Opus' pre-roll); frames are trimmed by pts
                    target = origin + int(max(start - _PREROLL_SECONDS, 0.0) / stream.time_base)
                    container.seek(target, stream=stream, any_frame=False, backward=True)
                end = None if duration is None else start + duration
                for packet in container.demux(stream):
                    try:
                        frames = packet.decode()
                    except av.FFmpegError as exc:
                        bad.append(exc)
                        continue
                    for frame in frames:
                        block, t0 = _frame_block(frame, start, sr, origin)
                        if block is not None:
                            chunks.append(block)
                        if end is not None and t0 is not None and t0 >= end:
                            break
                    else:
                        continue
                    break
        except DecodeError:
            raise
        except Exception as exc:
            if not chunks:
                raise DecodeError(f"ffmpeg cannot decode it ({_short(exc)})") from exc
            log.debug("%s: ffmpeg stopped after %.1f s: %s", path, _seconds(chunks, sr), _short(exc))
        if bad:
            log.debug("%s: ffmpeg skipped %d damaged packet(s): %s", path, len(bad), _short(bad[0]))
        if not chunks:
            if bad:
                raise DecodeError(f"ffmpeg cannot decode it ({_short(bad[0])})")
            raise DecodeError("no audio frames")
        data = np.concatenate(chunks, axis=0)
        if duration is not None:
            data = data[: int(round(duration * sr))]
        return data, sr


def _frame_block(frame: object, start: float, sr: int, origin: int) -> tuple[np.ndarray | None, float | None]:
    """One decoded frame as float32 samples from ``start`` on, and the time just past it.

    Times are seconds from the stream's first sample, whose pts is ``origin``.

    Returns
    -------
    block : np.ndarray [shape=(n, channels), dtype=float32] or None
        ``None`` when the frame lies wholly before ``start``.
    t_end : float or None
        Seconds at the frame's end (``None`` when it has no timestamp).
    """
    block = frame.to_ndarray()  # type: ignore[attr-defined]
    # planar formats give (channels, n); packed give (1, n * channels)
    if frame.format.is_planar:  # type: ignore[attr-defined]
        block = block.T  # (n, channels)
    else:
        block = block.reshape(-1, len(frame.layout.channels))  # type: ignore[attr-defined]  # (n, channels)
    block = _to_float32(block)
    pts = frame.pts  # type: ignore[attr-defined]
    if pts is None:
        return block, None
    t0 = float((pts - origin) * frame.time_base)  # type: ignore[attr-defined]
    t_end = t0 + len(block) / sr
    if start > 0:
        skip = int(round((start - t0) * sr))
        if skip >= len(block):
            return None, t_end
        if skip > 0:
            block = block[skip:]
    return block, t_end


def _demuxed_seconds(container: object, stream: object) -> float:
    """Sum the packet durations of ``stream`` (reads the file without decoding it: ~5 ms per 30 s MP3)."""
    import av

    total = 0
    try:
        for packet in container.demux(stream):  # type: ignore[attr-defined]
            total += packet.duration or 0
    except av.FFmpegError as exc:  # a damaged file: what was counted so far
        log.debug("demuxing stopped: %s", _short(exc))
    return float(total * stream.time_base)  # type: ignore[attr-defined]


def _mp3_length_known(path: Path) -> bool:
    """Whether an MP3 states its length (a Xing, Info or VBRI header in its first frame).

    Without one, decoders estimate the length from the first frame's bitrate, which
    is exact for constant and wrong for variable bitrate. Unparseable starts count
    as known (the decoders then fail or decide on their own).
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(10)
            offset = 0
            if head[:3] == b"ID3" and len(head) == 10:
                size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]  # synchsafe
                offset = 10 + size + (10 if head[5] & 0x10 else 0)  # footer flag
            fh.seek(offset)
            data = fh.read(8192)
    except OSError:
        return True
    i = data.find(b"\xff")
    while 0 <= i < len(data) - 1:
        if data[i + 1] & 0xE0 == 0xE0:  # frame sync
            # the tag follows the side information: 13 to 36 bytes in (Xing/Info), 36 (VBRI)
            frame = data[i : i + 64]
            return any(tag in frame for tag in (b"Xing", b"Info", b"VBRI"))
        i = data.find(b"\xff", i + 1)
    return True


def _refuse_estimated_mp3(f: object, path: Path) -> None:
    """Leave MP3s without a length header to ffmpeg: libsndfile would stop at its estimate."""
    if f.format == "MP3" and not _mp3_length_known(path):  # type: ignore[attr-defined]
        raise DecodeError("libsndfile only estimates the length of an MP3 without a Xing header")


def _seconds(blocks: list[np.ndarray], sr: int) -> float:
    return sum(len(b) for b in blocks) / max(sr, 1)


def _audio_stream(container: object):
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
    mono = (
        samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0].astype(np.float32)
    )
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
    expected: float | None = None,
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
    expected
        Seconds the window should yield (from the header). A decoder that yields
        less (a damaged file) does not end the search: the others are tried too
        and the longest result wins. ``None``: the first decoder that yields
        anything wins. The caller judges the result's length.

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
    best: tuple[np.ndarray, int] | None = None
    for decoder in order_decoders(decoders, path):
        try:
            samples, sr_in = decoder.decode(path, start=start, duration=duration)
        except DecodeError as exc:
            reasons.append(f"{decoder.name}: {exc}")
            continue
        if samples.size == 0:
            reasons.append(f"{decoder.name}: no samples")
            continue
        seconds = len(samples) / sr_in
        if best is None or seconds > len(best[0]) / best[1]:
            best = samples, sr_in
        if expected is None or seconds >= _WHOLE * expected:
            break
        log.debug("%s: %s decoded %.2f of %.2f s from %.2f s", path, decoder.name, seconds, expected, start)
    if best is None:
        raise DecodeError("; ".join(reasons) or "no decoder")
    return resample(to_mono(best[0]), best[1], sr)
