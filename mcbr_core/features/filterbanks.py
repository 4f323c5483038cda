"""Mel filterbanks in plain numpy: librosa's (Slaney or HTK) and Kaldi's (as EfficientAT uses).

``mel_filterbank`` equals ``librosa.filters.mel(...)`` (Slaney mel scale and Slaney
area normalisation by default) and ``kaldi_mel_filterbank`` equals torchaudio's
``compliance.kaldi.get_mel_banks``, without importing either. Both are cached and
returned read-only.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["hz_to_mel", "kaldi_mel_filterbank", "mel_filterbank", "mel_to_hz"]


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


@functools.lru_cache(maxsize=16)
def _kaldi_mel_filterbank(sr: float, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    def mel(f: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    delta = (mel(fmax) - mel(fmin)) / (n_mels + 1)  # n_mels + 2 equally spaced edges
    left = mel(fmin) + np.arange(n_mels, dtype=np.float64)[:, None] * delta  # (n_mels, 1)
    centre, right = left + delta, left + 2.0 * delta
    bins = mel(sr / n_fft * np.arange(n_fft // 2))[None, :]  # (1, n_fft // 2): Kaldi omits Nyquist
    up = (bins - left) / (centre - left)
    down = (right - bins) / (right - centre)
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    weights[:, :-1] = np.maximum(0.0, np.minimum(up, down))  # the Nyquist column stays 0
    weights.setflags(write=False)  # shared through the cache
    return weights


def kaldi_mel_filterbank(
    *, sr: float, n_fft: int, n_mels: int, fmin: float = 20.0, fmax: float = 0.0
) -> np.ndarray:
    """Kaldi's triangular mel filterbank (``torchaudio.compliance.kaldi.get_mel_banks``), float32.

    Mel is ``1127 ln(1 + f / 700)`` (HTK); ``n_mels + 2`` band edges are equally spaced
    in mel between ``fmin`` and ``fmax``, and each triangle, of peak 1, is evaluated in
    mel at the FFT bin frequencies ``k * sr / n_fft`` for ``k < n_fft / 2``. There is no
    area normalisation and no VTLN warping. A zero column is appended for the Nyquist
    bin, so the bank multiplies a ``1 + n_fft // 2``-bin spectrum (as EfficientAT pads it).

    Parameters
    ----------
    sr
        Sample rate in Hz.
    n_fft
        FFT size (even) of the spectrogram it will multiply.
    n_mels
        Number of bands (more than 3, as Kaldi requires).
    fmin, fmax
        Band edges in Hz. ``fmax <= 0`` is an offset from the Nyquist frequency (Kaldi's
        ``high_freq`` convention: 0 means Nyquist).

    Returns
    -------
    np.ndarray
        ``[shape=(n_mels, 1 + n_fft // 2)]`` float32, read-only (results are cached).
        torchaudio computes the same weights in float32; they agree to float32 rounding.

    Raises
    ------
    ValueError
        On an odd or too small ``n_fft``, ``n_mels <= 3``, or band edges outside
        ``0 <= fmin < fmax <= sr / 2``.
    """
    if not sr > 0:
        raise ValueError(f"sr must be positive, got {sr!r}")
    if not isinstance(n_fft, (int, np.integer)) or n_fft < 2 or n_fft % 2:
        raise ValueError(f"n_fft must be an even integer >= 2, got {n_fft!r}")
    if not isinstance(n_mels, (int, np.integer)) or n_mels <= 3:
        raise ValueError(f"n_mels must be an integer > 3, got {n_mels!r}")
    nyquist = sr / 2.0
    high = fmax + nyquist if fmax <= 0 else fmax
    if not 0.0 <= fmin < high <= nyquist:
        raise ValueError(f"need 0 <= fmin < fmax <= {nyquist}, got fmin={fmin!r}, fmax={high!r}")
    return _kaldi_mel_filterbank(float(sr), int(n_fft), int(n_mels), float(fmin), float(high))
