"""Spectrogram helpers in plain numpy, numerically compatible with librosa >= 0.10.

``stft_power`` equals ``np.abs(librosa.stft(y, ...)) ** 2`` and ``mel_filterbank``
equals ``librosa.filters.mel(...)`` (Slaney mel scale and Slaney area
normalisation by default), without importing librosa.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["hz_to_mel", "mel_filterbank", "mel_to_hz", "stft_power"]

_CHUNK_BYTES = 1 << 24  # bound on the float64 frame buffer per FFT chunk (16 MiB)


def stft_power(
    y: np.ndarray,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    center: bool = True,
    pad_mode: str = "constant",
) -> np.ndarray:
    """Power spectrogram ``|STFT|**2`` with a periodic Hann window, as librosa computes it.

    Parameters
    ----------
    y
        Mono signal ``[shape=(n_samples,)]``.
    n_fft
        FFT size.
    hop_length
        Samples between frame starts.
    win_length
        Hann window length, zero-padded to ``n_fft`` in the middle (default ``n_fft``).
    center
        Pad ``n_fft // 2`` samples on both sides so frame ``t`` is centred on
        sample ``t * hop_length``; then there are ``1 + n_samples // hop_length``
        frames (for even ``n_fft``).
    pad_mode
        ``"constant"`` (zeros, librosa >= 0.10) or ``"reflect"`` (librosa < 0.10).

    Returns
    -------
    np.ndarray
        ``[shape=(1 + n_fft // 2, T)]`` float32.

    Raises
    ------
    ValueError
        On bad parameters, a non-1-D signal, or a signal too short to frame.

    Notes
    -----
    Like librosa, the float64 window times the float32 frames is transformed in
    float64 and the spectrum is then rounded to complex64, so the power is the
    float32 square of the complex64 magnitude. Frames are transformed in chunks
    to bound memory on long signals.
    """
    if not isinstance(n_fft, (int, np.integer)) or n_fft < 2:
        raise ValueError(f"n_fft must be an integer >= 2, got {n_fft!r}")
    if not isinstance(hop_length, (int, np.integer)) or hop_length < 1:
        raise ValueError(f"hop_length must be a positive integer, got {hop_length!r}")
    win_length = n_fft if win_length is None else win_length
    if not isinstance(win_length, (int, np.integer)) or not 1 <= win_length <= n_fft:
        raise ValueError(f"win_length must be an integer in [1, n_fft={n_fft}], got {win_length!r}")
    if pad_mode not in ("constant", "reflect"):
        raise ValueError(f"pad_mode must be 'constant' or 'reflect', got {pad_mode!r}")
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"expected a mono signal of shape (n_samples,), got shape {y.shape}")
    y = y.astype(np.float32, copy=False)

    if center:
        pad = n_fft // 2
        if pad_mode == "reflect" and y.size <= pad:
            raise ValueError(f"signal of {y.size} samples is too short to reflect-pad by {pad}")
        y = np.pad(y, pad, mode=pad_mode)
    if y.size < n_fft:
        raise ValueError(f"signal of {y.size} samples is shorter than n_fft={n_fft}")
    n_frames = 1 + (y.size - n_fft) // hop_length

    # Periodic Hann 0.5 - 0.5 cos(2 pi n / N), evaluated the way scipy's
    # get_window('hann', N, fftbins=True) does (bit-equal), then centred in n_fft.
    fac = np.linspace(-np.pi, np.pi, win_length + 1)[:-1]
    window = 0.5 + 0.5 * np.cos(fac)
    lpad = (n_fft - win_length) // 2
    window = np.pad(window, (lpad, n_fft - win_length - lpad))  # (n_fft,) float64

    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop_length]  # (T, n_fft) view
    out = np.empty((1 + n_fft // 2, n_frames), dtype=np.float32)
    step = max(1, _CHUNK_BYTES // (8 * n_fft))
    for s in range(0, n_frames, step):
        spec = np.fft.rfft(frames[s : s + step] * window, axis=1).astype(np.complex64)  # (t, 1 + n_fft//2)
        out[:, s : s + step] = (np.abs(spec) ** 2).T  # (1 + n_fft//2, t)
    return out


def hz_to_mel(freqs: np.ndarray | float, *, htk: bool = False) -> np.ndarray:
    """Hz to mel: HTK formula, or the Slaney scale (linear to 1 kHz, then logarithmic)."""
    f = np.asarray(freqs, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp = 200.0 / 3  # Hz per mel below 1 kHz
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp  # = 15
    logstep = np.log(6.4) / 27.0
    with np.errstate(divide="ignore"):
        log_part = min_log_mel + np.log(np.maximum(f, 1e-300) / min_log_hz) / logstep
    return np.where(f >= min_log_hz, log_part, f / f_sp)


def mel_to_hz(mels: np.ndarray | float, *, htk: bool = False) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    m = np.asarray(mels, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@functools.lru_cache(maxsize=16)
def _mel_filterbank(
    sr: float, n_fft: int, n_mels: int, fmin: float, fmax: float, htk: bool, norm: str | None
) -> np.ndarray:
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sr)  # (1 + n_fft//2,)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin, htk=htk), hz_to_mel(fmax, htk=htk), n_mels + 2), htk=htk)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)  # (n_mels + 2, 1 + n_fft//2)
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0.0, np.minimum(lower, upper))  # rounded to float32 per row, as librosa
    if norm == "slaney":
        # Equal-area triangles; float64 factors applied in place to the float32 rows, as librosa.
        weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    weights.setflags(write=False)  # shared through the cache
    return weights


def mel_filterbank(
    *,
    sr: float,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
) -> np.ndarray:
    """Triangular mel filterbank, equal to ``librosa.filters.mel`` (float32).

    Parameters
    ----------
    sr
        Sample rate in Hz.
    n_fft
        FFT size of the spectrogram it will multiply.
    n_mels
        Number of bands.
    fmin, fmax
        Lowest and highest band edges in Hz (``fmax`` defaults to ``sr / 2``).
    htk
        Use the HTK mel formula instead of the Slaney scale.
    norm
        ``"slaney"``: scale each triangle by ``2 / (f_{i+2} - f_i)`` (constant
        area per band); ``None``: peak 1.

    Returns
    -------
    np.ndarray
        ``[shape=(n_mels, 1 + n_fft // 2)]`` float32, read-only (results are cached).

    Raises
    ------
    ValueError
        On non-positive sizes, an empty or out-of-range frequency span, or an
        unknown ``norm``.
    """
    if not sr > 0:
        raise ValueError(f"sr must be positive, got {sr!r}")
    if not isinstance(n_fft, (int, np.integer)) or n_fft < 2:
        raise ValueError(f"n_fft must be an integer >= 2, got {n_fft!r}")
    if not isinstance(n_mels, (int, np.integer)) or n_mels < 1:
        raise ValueError(f"n_mels must be a positive integer, got {n_mels!r}")
    fmax = sr / 2.0 if fmax is None else fmax
    if not 0.0 <= fmin < fmax:
        raise ValueError(f"need 0 <= fmin < fmax, got fmin={fmin!r}, fmax={fmax!r}")
    if fmax > sr / 2.0:
        raise ValueError(f"fmax={fmax!r} is above the Nyquist frequency {sr / 2.0}")
    if norm not in ("slaney", None):
        raise ValueError(f"norm must be 'slaney' or None, got {norm!r}")
    return _mel_filterbank(float(sr), int(n_fft), int(n_mels), float(fmin), float(fmax), bool(htk), norm)
