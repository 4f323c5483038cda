"""Generate small audio files in every format the project reads (no fixtures on disk)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FORMATS = ("wav", "flac", "ogg", "opus", "mp3", "m4a")


def tone(
    seconds: float = 4.0, *, sr: int = 22050, freq: float = 440.0, seed: int = 0, channels: int = 1
) -> np.ndarray:
    """A deterministic test signal: a tone, its harmonics, a little noise and a beat.

    Returns
    -------
    np.ndarray [shape=(n_samples, channels), dtype=float32]
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = sum(0.2 / k * np.sin(2 * np.pi * freq * k * t) for k in (1, 2, 3))
    y = y + 0.02 * rng.standard_normal(len(t))
    y = y * (0.6 + 0.4 * (np.sin(2 * np.pi * 2 * t) > 0))  # 2 Hz pulse
    y = y.astype(np.float32)
    return np.repeat(y[:, None], channels, axis=1)


def medley(seconds: float = 60.0, *, sr: int = 22050, channels: int = 1, part: float = 5.0) -> np.ndarray:
    """A signal that changes every ``part`` seconds (pitch, harmonics, noise, pulse rate), so
    that where an analysis window lands changes what the model hears.

    Returns
    -------
    np.ndarray [shape=(n_samples, channels), dtype=float32]
    """
    rng = np.random.default_rng(1)
    n, step = int(seconds * sr), int(part * sr)
    y = np.zeros(n, dtype=np.float64)
    for i, lo in enumerate(range(0, n, step)):
        t = np.arange(min(step, n - lo)) / sr
        freq = 110.0 * 2 ** (rng.integers(0, 36) / 12)  # three octaves of semitones
        weights = rng.uniform(0.0, 1.0, 6) / np.arange(1, 7) ** rng.uniform(0.5, 2.0)
        seg = sum(w * np.sin(2 * np.pi * freq * k * t) for k, w in enumerate(weights, 1))
        seg = 0.3 * seg / max(weights.sum(), 1e-9) + rng.uniform(0.0, 0.1) * rng.standard_normal(len(t))
        pulse = rng.uniform(1.0, 8.0)
        y[lo : lo + len(t)] = seg * (0.5 + 0.5 * (np.sin(2 * np.pi * pulse * t) > 0)) * (0.5 + 0.5 * (i % 3))
    y = np.clip(y, -1.0, 1.0).astype(np.float32)
    return np.repeat(y[:, None], channels, axis=1)


def write_audio(path: Path, y: np.ndarray, sr: int) -> Path:
    """Write ``y`` ``(n, channels)`` to ``path`` in the format its suffix names."""
    import soundfile as sf

    fmt = path.suffix.lower().lstrip(".")
    if fmt == "m4a":
        _write_m4a(path, y, sr)
    elif fmt == "opus":
        if sr not in (8000, 12000, 16000, 24000, 48000):  # rates Opus supports
            import soxr

            y, sr = soxr.resample(y, sr, 48000).astype(np.float32), 48000
        sf.write(str(path), y, sr, format="OGG", subtype="OPUS")
    elif fmt == "ogg":
        sf.write(str(path), y, sr, format="OGG", subtype="VORBIS")
    elif fmt == "mp3":
        sf.write(str(path), y, sr, format="MP3")
    elif fmt in ("wav", "flac"):
        sf.write(str(path), y, sr, format=fmt.upper(), subtype="PCM_16")
    else:
        raise ValueError(f"unknown format {fmt}")
    return path


def _write_m4a(path: Path, y: np.ndarray, sr: int) -> None:
    import av

    layout = "mono" if y.shape[1] == 1 else "stereo"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=sr)
        stream.layout = layout
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(y.T), format="fltp", layout=layout)
        frame.sample_rate = sr
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
