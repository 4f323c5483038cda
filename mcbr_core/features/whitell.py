"""Whitell's six spectral representations (registered as ``whitell-stft``, ``whitell-stft-half``,
``whitell-mel``, ``whitell-cqt``, ``whitell-mfcc`` and ``whitell-chroma``).

From Whitell (2019), "Features / Spectral features": audio at 22050 Hz; an STFT
with a 4096-point FFT and Hann window of the same length and a hop of 1024
(2049 x 643 for a 30-s clip); its bottom half (1024 bins); a 256-band mel
spectrogram; the first 13 MFCCs without the first (12 rows); a CQT of 24 bins
per octave from C1 over 7 octaves (168 bins); and the 12-class chromagram
folded from it. Magnitudes are compressed as ``X -> 10 log10(X**2)``.

One config class serves all six; ``kind`` picks the representation, so the
registered names differ only in that field. Extractors of different kinds share
a :class:`~mcbr_core.features.spectral.Spectra` (same rate, FFT and hop), so a
cache that needs several of them computes the STFT and the CQT once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcbr_core.errors import ConfigError
from mcbr_core.features.normalise import ExtractorBase, check_stats, require_positive_ints
from mcbr_core.features.spectral import C1_HZ, Spectra, power_to_db

__all__ = ["KINDS", "NAMES", "WhitellFeature", "WhitellFeatureConfig"]

#: kind -> registered extractor name
NAMES = {
    "stft": "whitell-stft",
    "stft_half": "whitell-stft-half",
    "mel": "whitell-mel",
    "cqt": "whitell-cqt",
    "mfcc": "whitell-mfcc",
    "chroma": "whitell-chroma",
}
KINDS = tuple(NAMES)


@dataclass(frozen=True)
class WhitellFeatureConfig:
    """Parameters of the Whitell extractors.

    Attributes
    ----------
    kind
        ``"stft"``, ``"stft_half"``, ``"mel"``, ``"cqt"``, ``"mfcc"`` or ``"chroma"``.
    sr, n_fft, hop_length
        Rate, FFT size (= Hann window length) and hop.
    n_mels
        Mel bands (also the MFCCs' input).
    cqt_fmin, cqt_bins_per_octave, cqt_octaves
        CQT span (also the chromagram's input).
    mfcc_first, mfcc_last
        Coefficients ``[mfcc_first, mfcc_last)`` of the DCT are kept.
    top_db
        Dynamic range kept below each clip's peak, in dB.
    mean, std
        Per-row statistics (``n_rows`` values each), or ``None``.
    version
        Bumped whenever the output changes for the same input and statistics.
    """

    kind: str = "mel"
    sr: int = 22050  # "All audio was sampled at 22050Hz"
    n_fft: int = 4096  # FFT size = Hann window length (185 ms)
    hop_length: int = 1024  # a quarter of the window (46 ms): 646 frames per 30 s (the thesis keeps 643)
    n_mels: int = 256  # "a mel basis of size 256"
    cqt_fmin: float = C1_HZ  # "starting at C1 (~32.7 Hz)"
    cqt_bins_per_octave: int = 24
    cqt_octaves: int = 7  # 168 bins, up to ~4.1 kHz
    mfcc_first: int = 1  # "the first 13 MFCCs (discarding the first)": coefficients 1..12
    mfcc_last: int = 13
    top_db: float | None = 80.0  # librosa.amplitude_to_db default, as in Whitell's code
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    version: str = "1"

    def __post_init__(self) -> None:
        name = type(self).__name__
        if self.kind not in NAMES:
            raise ConfigError(f"{name}: kind must be one of {KINDS}, got {self.kind!r}")
        require_positive_ints(
            self, ("sr", "n_fft", "hop_length", "n_mels", "cqt_bins_per_octave", "cqt_octaves", "mfcc_last")
        )
        if self.n_fft % 2:
            raise ConfigError(f"{name}: n_fft must be even, got {self.n_fft}")
        if not 0 <= self.mfcc_first < self.mfcc_last <= self.n_mels:
            raise ConfigError(
                f"{name}: need 0 <= mfcc_first < mfcc_last <= n_mels, got {self.mfcc_first}, {self.mfcc_last}"
            )
        if self.cqt_bins_per_octave % 12:
            raise ConfigError(
                f"{name}: cqt_bins_per_octave must be a multiple of 12 (chroma), "
                f"got {self.cqt_bins_per_octave}"
            )
        if self.cqt_fmin * 2.0 ** ((self.cqt_bins - 1) / self.cqt_bins_per_octave) >= self.sr / 2:
            raise ConfigError(f"{name}: the top CQT bin lies above the Nyquist frequency")
        if self.hop_length % 2 ** (self.cqt_octaves - 1) and self.kind in ("cqt", "chroma"):
            raise ConfigError(
                f"{name}: hop_length must be a multiple of 2**(cqt_octaves - 1) "
                f"= {2 ** (self.cqt_octaves - 1)} for the CQT"
            )
        if self.top_db is not None and self.top_db <= 0:
            raise ConfigError(f"{name}: top_db must be positive or None, got {self.top_db!r}")
        check_stats(self, self.n_rows)

    @property
    def cqt_bins(self) -> int:
        """CQT bins (168 for the defaults)."""
        return self.cqt_bins_per_octave * self.cqt_octaves

    @property
    def n_rows(self) -> int:
        """Feature rows of the output."""
        return {
            "stft": self.n_fft // 2 + 1,  # 2049
            "stft_half": (self.n_fft // 2 + 1) // 2,  # 1024: "from 2049 x time to 1024 x time"
            "mel": self.n_mels,
            "cqt": self.cqt_bins,
            "mfcc": self.mfcc_last - self.mfcc_first,
            "chroma": 12,
        }[self.kind]


class WhitellFeature(ExtractorBase):
    """One of Whitell's spectral representations.

    Parameters
    ----------
    config
        Extractor parameters; ``config.kind`` picks the representation.

    Notes
    -----
    ``__call__(y)`` maps ``[shape=(n_samples,)]`` to ``[shape=(1, n_rows, T)]``
    float32, ``T = 1 + n_samples // hop_length``: dB magnitudes for ``stft``,
    ``stft_half``, ``mel`` and ``cqt``; cepstral coefficients of the dB mel
    spectrogram for ``mfcc``; a unit-peak chromagram for ``chroma``.
    """

    def __init__(self, config: WhitellFeatureConfig | None = None) -> None:
        super().__init__(config or WhitellFeatureConfig())
        self.name = NAMES[self.config.kind]

    def spectra(self, y: np.ndarray) -> Spectra:
        """The STFT and CQT of a clip, shareable by every Whitell kind."""
        c = self.config
        return Spectra(
            y,
            sr=c.sr,
            n_fft=c.n_fft,
            hop_length=c.hop_length,
            cqt_fmin=c.cqt_fmin,
            cqt_bins=c.cqt_bins,
            cqt_bins_per_octave=c.cqt_bins_per_octave,
        )

    def raw(self, spectra: Spectra) -> np.ndarray:
        """Features ``[shape=(1, n_rows, T)]`` before the row statistics."""
        c = self.config
        wanted = (c.cqt_fmin, c.cqt_bins, c.cqt_bins_per_octave)
        if c.kind in ("cqt", "chroma") and spectra.cqt_settings != wanted:
            raise ValueError(f"{self.name}: spectra have CQT {spectra.cqt_settings}, expected {wanted}")
        if c.kind == "stft":
            out = power_to_db(spectra.power, top_db=c.top_db)  # 10 log10 |X|^2, (2049, T)
        elif c.kind == "stft_half":
            out = power_to_db(spectra.power[: c.n_rows], top_db=c.top_db)  # (1024, T)
        elif c.kind == "mel":
            out = spectra.log_mel(n_mels=c.n_mels, top_db=c.top_db)  # (256, T)
        elif c.kind == "cqt":
            out = power_to_db(spectra.cqt**2, top_db=c.top_db)  # (168, T)
        elif c.kind == "mfcc":
            out = spectra.mfcc(n_mfcc=c.mfcc_last, n_mels=c.n_mels, top_db=c.top_db)[
                c.mfcc_first :
            ]  # (12, T)
        else:
            out = spectra.chroma(source="cqt")  # (12, T)
        return np.asarray(out, dtype=np.float32)[None]  # (1, n_rows, T)
