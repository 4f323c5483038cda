"""Spectrogram helpers in plain numpy, numerically compatible with librosa >= 0.10.

``stft_power`` equals ``np.abs(librosa.stft(y, ...)) ** 2`` without importing librosa.
The mel filterbanks live in :mod:`mcbr_core.features.filterbanks` (re-exported here).

:class:`Spectra` holds one clip's STFT and CQT, each computed once, and derives
mel, MFCC, chroma, spectral contrast, tonnetz and tempograms from them. The
derived features and the CQT call librosa, imported inside the methods that need
it, so importing this module stays light.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from mcbr_core.features.filterbanks import hz_to_mel, kaldi_mel_filterbank, mel_filterbank, mel_to_hz

__all__ = [
    "C1_HZ",
    "Spectra",
    "cqt_magnitude",
    "hz_to_mel",
    "kaldi_mel_filterbank",
    "mel_filterbank",
    "mel_to_hz",
    "power_to_db",
    "stack_rows",
    "stft_power",
]

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
    win_length = n_fft if win_length is None else win_length
    _check_stft(n_fft=n_fft, hop_length=hop_length, win_length=win_length, pad_mode=pad_mode)
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


def _check_stft(*, n_fft: int, hop_length: int, win_length: int, pad_mode: str) -> None:
    """Raise ``ValueError`` on STFT parameters ``stft_power`` cannot use."""
    if not isinstance(n_fft, (int, np.integer)) or n_fft < 2:
        raise ValueError(f"n_fft must be an integer >= 2, got {n_fft!r}")
    if not isinstance(hop_length, (int, np.integer)) or hop_length < 1:
        raise ValueError(f"hop_length must be a positive integer, got {hop_length!r}")
    if not isinstance(win_length, (int, np.integer)) or not 1 <= win_length <= n_fft:
        raise ValueError(f"win_length must be an integer in [1, n_fft={n_fft}], got {win_length!r}")
    if pad_mode not in ("constant", "reflect"):
        raise ValueError(f"pad_mode must be 'constant' or 'reflect', got {pad_mode!r}")


# ---------------------------------------------------------------------------
# Shared spectra: the STFT and the CQT of a clip, computed once, and everything
# derived from them (mel, MFCC, chroma, contrast, tonnetz, tempograms).
# librosa is imported inside the functions that need it, never at module import.
# ---------------------------------------------------------------------------

C1_HZ = 32.70319566257483  # librosa.note_to_hz("C1"), the lowest CQT bin of every paper here


def power_to_db(S: np.ndarray, *, amin: float = 1e-10, top_db: float | None = 80.0) -> np.ndarray:
    """``10 log10(max(amin, S))``, clipped to ``top_db`` below the peak (``librosa.power_to_db``, ref 1).

    Parameters
    ----------
    S
        Power (or energy) ``[shape=(..., F, T)]``, non-negative.
    amin
        Floor before the logarithm.
    top_db
        Dynamic range kept below the clip's maximum; ``None`` keeps everything.

    Returns
    -------
    np.ndarray
        ``[shape=(..., F, T)]`` float32 decibels.

    Raises
    ------
    ValueError
        On a non-positive ``amin`` or a negative ``top_db``.
    """
    if not amin > 0:
        raise ValueError(f"amin must be positive, got {amin!r}")
    if top_db is not None and top_db < 0:
        raise ValueError(f"top_db must be non-negative, got {top_db!r}")
    db = 10.0 * np.log10(np.maximum(np.float32(amin), np.asarray(S, dtype=np.float32)))
    if top_db is not None and db.size:
        db = np.maximum(db, db.max() - np.float32(top_db))
    return db.astype(np.float32, copy=False)


def cqt_magnitude(
    y: np.ndarray, *, sr: float, hop_length: int, fmin: float, n_bins: int, bins_per_octave: int
) -> np.ndarray:
    """Magnitude of librosa's constant-Q transform (Hann filters, zero centre padding, tuning 0).

    Parameters
    ----------
    y
        Mono signal ``[shape=(n_samples,)]``.
    sr
        Sample rate in Hz.
    hop_length
        Samples between frames; a multiple of ``2 ** (n_octaves - 1)`` as librosa requires.
    fmin
        Centre frequency of the lowest bin in Hz.
    n_bins, bins_per_octave
        Number of bins and their density.

    Returns
    -------
    np.ndarray
        ``[shape=(n_bins, 1 + n_samples // hop_length)]`` float32.

    Raises
    ------
    ValueError
        If the top bin lies above the Nyquist frequency or a size is not positive.
    """
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    if not isinstance(bins_per_octave, (int, np.integer)) or bins_per_octave < 1:
        raise ValueError(f"bins_per_octave must be a positive integer, got {bins_per_octave!r}")
    if not fmin > 0:
        raise ValueError(f"fmin must be positive, got {fmin!r}")
    top = fmin * 2.0 ** ((n_bins - 1) / bins_per_octave)
    if top >= sr / 2.0:
        raise ValueError(f"the top CQT bin ({top:.0f} Hz) lies above the Nyquist frequency {sr / 2.0}")
    import librosa

    C = librosa.cqt(
        np.asarray(y, dtype=np.float32),
        sr=sr,
        hop_length=hop_length,
        fmin=fmin,
        n_bins=n_bins,
        bins_per_octave=bins_per_octave,
        tuning=0.0,
    )
    return np.abs(C).astype(np.float32)


def stack_rows(blocks: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """Stack ``(F_i, T)`` feature blocks along the feature axis, after checking their frame counts.

    Parameters
    ----------
    blocks
        ``(name, array [shape=(F_i, T)])`` pairs, in output order.

    Returns
    -------
    np.ndarray
        ``[shape=(sum F_i, T)]`` float32.

    Raises
    ------
    ValueError
        If the blocks disagree on ``T`` (every block must come from the same hop and centring).
    """
    counts = {name: block.shape[-1] for name, block in blocks}
    if len(set(counts.values())) != 1:
        raise ValueError(f"feature blocks have different frame counts: {counts}")
    return np.concatenate([block for _, block in blocks], axis=0).astype(np.float32, copy=False)


@functools.lru_cache(maxsize=8)
def _cyclic_tempo_basis(
    win_length: int, frames_per_second: float, n_bins: int, min_bpm: float, n_octaves: int
) -> np.ndarray:
    # Row j sums the autocorrelation tempogram at tempi min_bpm * 2**(j / n_bins + k),
    # k = 0..n_octaves-1, read at fractional lags by linear interpolation.
    basis = np.zeros((n_bins, win_length), dtype=np.float32)
    for j in range(n_bins):
        for k in range(n_octaves):
            bpm = min_bpm * 2.0 ** (j / n_bins + k)
            lag = 60.0 * frames_per_second / bpm  # frames
            lo = int(np.floor(lag))
            frac = lag - lo
            basis[j, lo] += (1.0 - frac) / n_octaves
            basis[j, lo + 1] += frac / n_octaves
    basis.setflags(write=False)
    return basis


class Spectra:
    """The spectral representations of one clip, each computed at most once.

    The STFT (power and magnitude) and the constant-Q transform are computed on
    first use and cached; mel spectrograms, MFCCs, chromagrams, spectral contrast,
    tonnetz and tempograms are derived from them (librosa is handed the precomputed
    ``S`` or ``C``, so nothing is transformed twice) and cached as well. This is the
    pattern of mdeff/fma's ``features.py``.

    Every representation has ``1 + n_samples // hop_length`` frames (centred frames,
    zero padding), so they can be stacked.

    Parameters
    ----------
    y
        Mono signal ``[shape=(n_samples,)]``; a read-only float32 copy is kept.
    sr
        Sample rate in Hz.
    n_fft
        STFT size (periodic Hann window of the same length); even.
    hop_length
        Samples between frames, shared by the STFT and the CQT.
    cqt_fmin
        Lowest CQT bin in Hz (C1 by default).
    cqt_bins, cqt_bins_per_octave
        CQT size and density (7 octaves of 12 bins by default).

    Raises
    ------
    ValueError
        On bad parameters, or an empty, multi-channel or non-finite signal.
    """

    def __init__(
        self,
        y: np.ndarray,
        *,
        sr: int,
        n_fft: int,
        hop_length: int,
        cqt_fmin: float = C1_HZ,
        cqt_bins: int = 84,
        cqt_bins_per_octave: int = 12,
    ) -> None:
        if not isinstance(sr, (int, np.integer)) or sr < 1:
            raise ValueError(f"sr must be a positive integer, got {sr!r}")
        if not isinstance(n_fft, (int, np.integer)) or n_fft < 2 or n_fft % 2:
            raise ValueError(f"n_fft must be an even integer >= 2, got {n_fft!r}")
        if not isinstance(hop_length, (int, np.integer)) or hop_length < 1:
            raise ValueError(f"hop_length must be a positive integer, got {hop_length!r}")
        if not isinstance(cqt_bins, (int, np.integer)) or cqt_bins < 1:
            raise ValueError(f"cqt_bins must be a positive integer, got {cqt_bins!r}")
        if not isinstance(cqt_bins_per_octave, (int, np.integer)) or cqt_bins_per_octave < 1:
            raise ValueError(f"cqt_bins_per_octave must be a positive integer, got {cqt_bins_per_octave!r}")
        if not cqt_fmin > 0:
            raise ValueError(f"cqt_fmin must be positive, got {cqt_fmin!r}")
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"expected a mono signal of shape (n_samples,), got shape {y.shape}")
        if y.size == 0:
            raise ValueError("cannot analyse an empty signal")
        if not np.all(np.isfinite(y)):
            raise ValueError("signal contains NaN or infinite samples")
        y = np.array(y, dtype=np.float32)  # private copy
        y.setflags(write=False)
        self._y = y
        self._sr = int(sr)
        self._n_fft = int(n_fft)
        self._hop = int(hop_length)
        self._cqt = (float(cqt_fmin), int(cqt_bins), int(cqt_bins_per_octave))
        self._cache: dict[tuple, np.ndarray] = {}

    # -- inputs (read-only) ------------------------------------------------

    @property
    def y(self) -> np.ndarray:
        """The signal ``[shape=(n_samples,)]`` (read-only)."""
        return self._y

    @property
    def sr(self) -> int:
        """Sample rate in Hz."""
        return self._sr

    @property
    def n_fft(self) -> int:
        """STFT size."""
        return self._n_fft

    @property
    def hop_length(self) -> int:
        """Samples between frames."""
        return self._hop

    @property
    def cqt_settings(self) -> tuple[float, int, int]:
        """``(cqt_fmin, cqt_bins, cqt_bins_per_octave)``."""
        return self._cqt

    @property
    def n_frames(self) -> int:
        """Frames of every representation: ``1 + n_samples // hop_length``."""
        return 1 + self._y.size // self._hop

    def _cached(self, key: tuple, compute: Callable[[], np.ndarray]) -> np.ndarray:
        if key not in self._cache:
            value = np.asarray(compute(), dtype=np.float32)
            value.setflags(write=False)
            self._cache[key] = value
        return self._cache[key]

    # -- the two transforms ------------------------------------------------

    @property
    def power(self) -> np.ndarray:
        """``|STFT|**2`` ``[shape=(1 + n_fft // 2, T)]`` (computed once)."""
        return self._cached(("power",), lambda: stft_power(self._y, n_fft=self._n_fft, hop_length=self._hop))

    @property
    def magnitude(self) -> np.ndarray:
        """``|STFT|`` ``[shape=(1 + n_fft // 2, T)]``, the square root of :attr:`power`."""
        return self._cached(("magnitude",), lambda: np.sqrt(self.power))

    @property
    def cqt(self) -> np.ndarray:
        """``|CQT|`` ``[shape=(cqt_bins, T)]`` (computed once)."""
        fmin, n_bins, bpo = self._cqt
        return self._cached(
            ("cqt",),
            lambda: cqt_magnitude(
                self._y, sr=self._sr, hop_length=self._hop, fmin=fmin, n_bins=n_bins, bins_per_octave=bpo
            ),
        )

    # -- derived representations ------------------------------------------

    def mel(self, *, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
        """Mel power spectrogram ``[shape=(n_mels, T)]`` from :attr:`power` (Slaney filters)."""
        fb = mel_filterbank(sr=self._sr, n_fft=self._n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)  # validates
        return self._cached(("mel", n_mels, fmin, fmax), lambda: fb @ self.power)  # (n_mels, T)

    def log_mel(
        self, *, n_mels: int, fmin: float = 0.0, fmax: float | None = None, top_db: float | None = 80.0
    ) -> np.ndarray:
        """Mel spectrogram in dB ``[shape=(n_mels, T)]`` (``power_to_db``, ref 1)."""
        mel = self.mel(n_mels=n_mels, fmin=fmin, fmax=fmax)
        return self._cached(("log_mel", n_mels, fmin, fmax, top_db), lambda: power_to_db(mel, top_db=top_db))

    def mfcc(
        self,
        *,
        n_mfcc: int,
        n_mels: int,
        fmin: float = 0.0,
        fmax: float | None = None,
        top_db: float | None = 80.0,
    ) -> np.ndarray:
        """MFCCs ``[shape=(n_mfcc, T)]``: orthonormal DCT-II of :meth:`log_mel` (``librosa.feature.mfcc``)."""
        if not isinstance(n_mfcc, (int, np.integer)) or not 1 <= n_mfcc <= n_mels:
            raise ValueError(f"n_mfcc must be an integer in [1, n_mels={n_mels}], got {n_mfcc!r}")
        log_mel = self.log_mel(n_mels=n_mels, fmin=fmin, fmax=fmax, top_db=top_db)

        def compute() -> np.ndarray:
            import librosa

            return librosa.feature.mfcc(S=log_mel, n_mfcc=n_mfcc)

        return self._cached(("mfcc", n_mfcc, n_mels, fmin, fmax, top_db), compute)

    def chroma(self, *, source: str = "stft", n_chroma: int = 12) -> np.ndarray:
        """Chromagram ``[shape=(n_chroma, T)]``, each frame scaled to a peak of 1.

        ``source="stft"`` folds :attr:`power` (``librosa.feature.chroma_stft``, tuning 0);
        ``source="cqt"`` folds :attr:`cqt` (``librosa.feature.chroma_cqt``).
        """
        if source not in ("stft", "cqt"):
            raise ValueError(f"chroma source must be 'stft' or 'cqt', got {source!r}")
        if not isinstance(n_chroma, (int, np.integer)) or n_chroma < 1:
            raise ValueError(f"n_chroma must be a positive integer, got {n_chroma!r}")
        fmin, _, bpo = self._cqt
        if source == "cqt" and bpo % n_chroma:
            raise ValueError(f"cqt_bins_per_octave={bpo} is not a multiple of n_chroma={n_chroma}")

        def compute() -> np.ndarray:
            import librosa

            if source == "stft":
                return librosa.feature.chroma_stft(
                    S=self.power, sr=self._sr, n_fft=self._n_fft, tuning=0.0, n_chroma=n_chroma
                )
            return librosa.feature.chroma_cqt(
                C=self.cqt, sr=self._sr, fmin=fmin, bins_per_octave=bpo, n_chroma=n_chroma, tuning=0.0
            )

        return self._cached(("chroma", source, n_chroma), compute)

    def contrast(self, *, n_bands: int = 6, fmin: float = 200.0, quantile: float = 0.02) -> np.ndarray:
        """Spectral contrast ``[shape=(n_bands + 1, T)]`` of :attr:`magnitude` (librosa's algorithm)."""
        if not isinstance(n_bands, (int, np.integer)) or n_bands < 1:
            raise ValueError(f"n_bands must be a positive integer, got {n_bands!r}")
        if not fmin > 0 or fmin * 2.0 ** (n_bands - 1) >= self._sr / 2.0:
            # librosa's rule: every band edge but the last (which runs to Nyquist) lies below Nyquist
            raise ValueError(
                f"contrast band edge fmin * 2**(n_bands - 1) = {fmin * 2.0 ** (n_bands - 1)} Hz "
                f"is not below the Nyquist frequency"
            )
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"quantile must lie in (0, 1), got {quantile!r}")

        def compute() -> np.ndarray:
            import librosa

            return librosa.feature.spectral_contrast(
                S=self.magnitude,
                sr=self._sr,
                n_fft=self._n_fft,
                n_bands=n_bands,
                fmin=fmin,
                quantile=quantile,
            )

        return self._cached(("contrast", n_bands, fmin, quantile), compute)

    def tonnetz(self, *, source: str = "cqt") -> np.ndarray:
        """Tonal centroids ``[shape=(6, T)]`` of the 12-bin :meth:`chroma` (``librosa.feature.tonnetz``)."""
        chroma = self.chroma(source=source, n_chroma=12)

        def compute() -> np.ndarray:
            import librosa

            return librosa.feature.tonnetz(chroma=chroma)

        return self._cached(("tonnetz", source), compute)

    def onset_envelope(self, *, n_mels: int = 128) -> np.ndarray:
        """Spectral-flux onset strength ``[shape=(T,)]`` of the dB mel spectrogram."""
        log_mel = self.log_mel(n_mels=n_mels)

        def compute() -> np.ndarray:
            import librosa

            return librosa.onset.onset_strength(
                S=log_mel, sr=self._sr, n_fft=self._n_fft, hop_length=self._hop
            )

        return self._cached(("onset", n_mels), compute)

    def tempogram(self, *, win_length: int = 384, n_mels: int = 128) -> np.ndarray:
        """Autocorrelation tempogram ``[shape=(win_length, T)]`` of :meth:`onset_envelope`; row k is lag k."""
        if not isinstance(win_length, (int, np.integer)) or win_length < 2:
            raise ValueError(f"win_length must be an integer >= 2, got {win_length!r}")
        onset = self.onset_envelope(n_mels=n_mels)

        def compute() -> np.ndarray:
            import librosa

            return librosa.feature.tempogram(
                onset_envelope=onset, sr=self._sr, hop_length=self._hop, win_length=win_length
            )

        return self._cached(("tempogram", win_length, n_mels), compute)

    def cyclic_tempogram(
        self,
        *,
        n_bins: int = 15,
        min_bpm: float = 30.0,
        n_octaves: int = 4,
        win_length: int = 384,
        n_mels: int = 128,
    ) -> np.ndarray:
        """Cyclic tempogram (Grosche, Müller & Kurth 2010) ``[shape=(n_bins, T)]``.

        Tempi that differ by a power of two are identified: row ``j`` is the mean of
        the autocorrelation :meth:`tempogram` at ``min_bpm * 2**(j / n_bins + k)`` BPM
        for ``k = 0 .. n_octaves - 1`` (linear interpolation between lags).

        Parameters
        ----------
        n_bins
            Tempo classes per octave.
        min_bpm
            Reference tempo: the first octave spans ``[min_bpm, 2 min_bpm)``.
        n_octaves
            Octaves folded together (30-480 BPM by default).
        win_length, n_mels
            Passed to :meth:`tempogram`.

        Raises
        ------
        ValueError
            If the tempo range needs lags outside ``[1, win_length - 2]``.
        """
        if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
            raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
        if not isinstance(n_octaves, (int, np.integer)) or n_octaves < 1:
            raise ValueError(f"n_octaves must be a positive integer, got {n_octaves!r}")
        if not min_bpm > 0:
            raise ValueError(f"min_bpm must be positive, got {min_bpm!r}")
        fps = self._sr / self._hop
        longest = 60.0 * fps / min_bpm
        shortest = 60.0 * fps / (min_bpm * 2.0**n_octaves)
        if longest >= win_length - 2 or shortest < 1.0:
            raise ValueError(
                f"tempi {min_bpm}-{min_bpm * 2**n_octaves} BPM need lags {shortest:.1f}-{longest:.1f} "
                f"frames, outside [1, win_length - 2 = {win_length - 2}]"
            )
        basis = _cyclic_tempo_basis(int(win_length), fps, int(n_bins), float(min_bpm), int(n_octaves))
        tempogram = self.tempogram(win_length=win_length, n_mels=n_mels)
        return self._cached(
            ("cyclic_tempogram", n_bins, min_bpm, n_octaves, win_length, n_mels), lambda: basis @ tempogram
        )  # (n_bins, T)
