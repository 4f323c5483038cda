"""Xing et al.'s audio "hyper-image" (registered as ``xing-hyperimage``).

Xing et al. (2018, section 3) stack six time-frequency representations into one
normalised image: a chromagram from the STFT, a cyclic tempogram (Grosche et al.
2010), a mel spectrogram, MFCCs, spectral contrast and tonnetz. The paper gives
no analysis parameters; we take librosa's defaults (those of mdeff/fma's
``features.py``), with the STFT and the CQT each computed once per clip and every
block derived from them (:class:`~mcbr_core.features.spectral.Spectra`).

"Normalised" is read as: each block is standardised over the clip before
stacking (``block_norm``), so blocks of different units (dB, unit-peak chroma,
tonal centroids) share a scale; per-row dataset statistics (``mean``/``std``)
are applied on top when fitted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcbr_core.errors import ConfigError
from mcbr_core.features.normalise import ExtractorBase, check_stats, require_positive_ints
from mcbr_core.features.spectral import Spectra, stack_rows

__all__ = ["BLOCKS", "XingHyperImage", "XingHyperImageConfig"]

#: Blocks in the order of Xing et al.'s list (and their Fig. 4).
BLOCKS = ("chroma", "tempogram", "mel", "mfcc", "contrast", "tonnetz")


@dataclass(frozen=True)
class XingHyperImageConfig:
    """Parameters of ``xing-hyperimage``.

    Attributes
    ----------
    sr, n_fft, hop_length
        Rate, FFT size and hop shared by every block.
    blocks
        Which blocks to stack, top to bottom (any order, each at most once).
    chroma_source
        ``"stft"`` (Xing: chroma "constructed using short-time Fourier transforms in
        combination with binning strategies") or ``"cqt"``.
    n_chroma
        Pitch classes.
    tempo_bins, tempo_min_bpm, tempo_octaves, tempogram_win
        Cyclic tempogram: classes per tempo octave, the lowest tempo, octaves folded,
        and the autocorrelation window (frames).
    n_mels, n_mfcc
        Mel bands (also the onset detector's input) and cepstral coefficients.
    contrast_bands, contrast_fmin
        Spectral contrast octave bands (``contrast_bands + 1`` rows) and the lowest edge.
    tonnetz_source
        Chromagram the tonal centroids are computed from.
    cqt_bins, cqt_bins_per_octave
        The shared CQT (from C1).
    top_db
        Dynamic range of the dB mel spectrogram.
    block_norm
        Standardise each block over the clip before stacking.
    mean, std
        Per-row statistics (``n_rows`` values each), or ``None``.
    version
        Bumped whenever the output changes for the same input and statistics.
    """

    sr: int = 22050  # Xing decode 44.1 kHz mp3 but give no analysis rate; librosa's default
    n_fft: int = 2048  # librosa defaults throughout (the paper gives no parameters)
    hop_length: int = 512
    blocks: tuple[str, ...] = BLOCKS
    chroma_source: str = "stft"  # Xing cite Bartsch & Wakefield: STFT bins folded into pitch classes
    n_chroma: int = 12
    tempo_bins: int = 15  # our choice: 15 tempo classes per octave (80 cents-of-tempo resolution)
    tempo_min_bpm: float = 30.0  # 30-480 BPM, the usual musical tempo range, folded to one octave
    tempo_octaves: int = 4
    tempogram_win: int = 384  # librosa's default: ~8.9 s of onset envelope per autocorrelation
    n_mels: int = 128
    n_mfcc: int = 20  # librosa's default
    contrast_bands: int = 6  # librosa's default: 7 rows (6 octave bands from 200 Hz + the top)
    contrast_fmin: float = 200.0
    tonnetz_source: str = "cqt"  # librosa computes tonal centroids from a CQT chromagram
    cqt_bins: int = 84  # 7 octaves from C1 at 12 bins per octave (librosa's default CQT)
    cqt_bins_per_octave: int = 12
    top_db: float | None = 80.0
    block_norm: bool = True  # "normalised hyper-image": each block standardised over the clip
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    version: str = "1"

    def __post_init__(self) -> None:
        name = type(self).__name__
        require_positive_ints(
            self,
            (
                "sr",
                "n_fft",
                "hop_length",
                "n_chroma",
                "tempo_bins",
                "tempo_octaves",
                "tempogram_win",
                "n_mels",
                "n_mfcc",
                "contrast_bands",
                "cqt_bins",
                "cqt_bins_per_octave",
            ),
        )
        if self.n_fft % 2:
            raise ConfigError(f"{name}: n_fft must be even, got {self.n_fft}")
        blocks = tuple(self.blocks)
        if not blocks or len(set(blocks)) != len(blocks) or not set(blocks) <= set(BLOCKS):
            raise ConfigError(f"{name}: blocks must be distinct names from {BLOCKS}, got {blocks!r}")
        object.__setattr__(self, "blocks", blocks)
        for field in ("chroma_source", "tonnetz_source"):
            if getattr(self, field) not in ("stft", "cqt"):
                raise ConfigError(f"{name}: {field} must be 'stft' or 'cqt', got {getattr(self, field)!r}")
        if self.n_mfcc > self.n_mels:
            raise ConfigError(f"{name}: n_mfcc={self.n_mfcc} exceeds n_mels={self.n_mels}")
        if not self.contrast_fmin > 0 or self.contrast_fmin * 2.0 ** (self.contrast_bands - 1) >= self.sr / 2:
            raise ConfigError(
                f"{name}: the contrast band edges fmin * 2**k must lie below the Nyquist frequency"
            )
        if not self.tempo_min_bpm > 0:
            raise ConfigError(f"{name}: tempo_min_bpm must be positive, got {self.tempo_min_bpm!r}")
        fps = self.sr / self.hop_length
        longest = 60.0 * fps / self.tempo_min_bpm
        shortest = 60.0 * fps / (self.tempo_min_bpm * 2.0**self.tempo_octaves)
        if longest >= self.tempogram_win - 2 or shortest < 1.0:
            raise ConfigError(
                f"{name}: tempo range needs lags {shortest:.1f}-{longest:.1f} frames, outside "
                f"[1, tempogram_win - 2 = {self.tempogram_win - 2}]"
            )
        if self.top_db is not None and self.top_db <= 0:
            raise ConfigError(f"{name}: top_db must be positive or None, got {self.top_db!r}")
        check_stats(self, self.n_rows)

    def block_rows(self) -> dict[str, int]:
        """Rows of each block, in stacking order."""
        sizes = {
            "chroma": self.n_chroma,
            "tempogram": self.tempo_bins,
            "mel": self.n_mels,
            "mfcc": self.n_mfcc,
            "contrast": self.contrast_bands + 1,
            "tonnetz": 6,
        }
        return {b: sizes[b] for b in self.blocks}

    @property
    def n_rows(self) -> int:
        """Feature rows of the hyper-image (188 for the defaults)."""
        return sum(self.block_rows().values())


class XingHyperImage(ExtractorBase):
    """The audio hyper-image of Xing et al. (2018).

    Parameters
    ----------
    config
        Extractor parameters.

    Notes
    -----
    ``__call__(y)`` maps ``[shape=(n_samples,)]`` to ``[shape=(1, n_rows, T)]``
    float32 with ``T = 1 + n_samples // hop_length``; rows are the blocks of
    :meth:`XingHyperImageConfig.block_rows`, stacked in order.
    """

    name = "xing-hyperimage"

    def __init__(self, config: XingHyperImageConfig | None = None) -> None:
        super().__init__(config or XingHyperImageConfig())

    def spectra(self, y: np.ndarray) -> Spectra:
        """The shared STFT and CQT of a clip."""
        c = self.config
        return Spectra(
            y,
            sr=c.sr,
            n_fft=c.n_fft,
            hop_length=c.hop_length,
            cqt_bins=c.cqt_bins,
            cqt_bins_per_octave=c.cqt_bins_per_octave,
        )

    def raw(self, spectra: Spectra) -> np.ndarray:
        """Stacked blocks ``[shape=(1, n_rows, T)]`` (block-normalised, before the row statistics)."""
        c = self.config
        make = {
            "chroma": lambda: spectra.chroma(source=c.chroma_source, n_chroma=c.n_chroma),
            "tempogram": lambda: spectra.cyclic_tempogram(
                n_bins=c.tempo_bins,
                min_bpm=c.tempo_min_bpm,
                n_octaves=c.tempo_octaves,
                win_length=c.tempogram_win,
                n_mels=c.n_mels,
            ),
            "mel": lambda: spectra.log_mel(n_mels=c.n_mels, top_db=c.top_db),
            "mfcc": lambda: spectra.mfcc(n_mfcc=c.n_mfcc, n_mels=c.n_mels, top_db=c.top_db),
            "contrast": lambda: spectra.contrast(n_bands=c.contrast_bands, fmin=c.contrast_fmin),
            "tonnetz": lambda: spectra.tonnetz(source=c.tonnetz_source),
        }
        blocks = []
        for name in c.blocks:
            block = np.asarray(make[name](), dtype=np.float32)  # (F_b, T)
            if c.block_norm:
                block = (block - block.mean()) / max(float(block.std()), 1e-6)
            blocks.append((name, block))
        return stack_rows(blocks)[None]  # (1, n_rows, T)
