"""Tower & Vegner's input: a log-mel spectrogram (registered as ``tower-mel``).

The paper converts every FMA clip "to a uniform sampling rate for use with
Librosa" and then to a mel spectrogram, without naming parameters; we take
librosa's defaults (22.05 kHz, 2048-point FFT, hop 512, 128 Slaney mel bands)
and its dB scale. These defaults are also the only ones under which the encoder
of Table 2 reduces a 30-s clip to exactly one latent vector: 128 bands and
1292 frames become ``1 x 1`` (see ``mcbr_core/models/tower.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcbr_core.errors import ConfigError
from mcbr_core.features.normalise import ExtractorBase, check_stats, require_positive_ints
from mcbr_core.features.spectral import Spectra

__all__ = ["TowerMel", "TowerMelConfig"]


@dataclass(frozen=True)
class TowerMelConfig:
    """Parameters of ``tower-mel``.

    Attributes
    ----------
    sr, n_fft, hop_length
        Rate, FFT size and hop (librosa's defaults: 93 ms windows every 23 ms).
    n_mels, fmin, fmax
        Mel bands and their span (``fmax=None``: Nyquist).
    top_db
        Dynamic range kept below each clip's peak, in dB.
    mean, std
        Per-band normalisation statistics (``n_mels`` values each), or ``None``.
    version
        Bumped whenever the output changes for the same input and statistics.
    """

    sr: int = 22050  # the paper resamples to "a uniform sampling rate for librosa": librosa's default
    n_fft: int = 2048  # librosa.feature.melspectrogram defaults (the paper gives no STFT parameters)
    hop_length: int = 512  # 1292 frames per 30-s clip: what Table 2 needs to end at 1 x 1
    n_mels: int = 128  # 128 bands: Table 2's strides take them to exactly 1
    fmin: float = 0.0
    fmax: float | None = None
    top_db: float | None = 80.0  # librosa.power_to_db default
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    version: str = "1"

    def __post_init__(self) -> None:
        require_positive_ints(self, ("sr", "n_fft", "hop_length", "n_mels"), name="TowerMelConfig")
        if self.n_fft % 2:
            raise ConfigError(f"TowerMelConfig: n_fft must be even, got {self.n_fft}")
        fmax = self.sr / 2 if self.fmax is None else self.fmax
        if not 0 <= self.fmin < fmax <= self.sr / 2:
            raise ConfigError(
                f"TowerMelConfig: need 0 <= fmin < fmax <= sr / 2, got {self.fmin}, {self.fmax}"
            )
        if self.top_db is not None and self.top_db <= 0:
            raise ConfigError(f"TowerMelConfig: top_db must be positive or None, got {self.top_db!r}")
        check_stats(self, self.n_rows)

    @property
    def n_rows(self) -> int:
        """Feature rows of the output (``n_mels``)."""
        return self.n_mels


class TowerMel(ExtractorBase):
    """Log-mel spectrogram for the Tower & Vegner autoencoder.

    Parameters
    ----------
    config
        Extractor parameters (default: librosa's).

    Notes
    -----
    ``__call__(y)`` maps ``[shape=(n_samples,)]`` to ``[shape=(1, n_mels, T)]``
    float32, ``T = 1 + n_samples // hop_length``.
    """

    name = "tower-mel"

    def __init__(self, config: TowerMelConfig | None = None) -> None:
        super().__init__(config or TowerMelConfig())

    def spectra(self, y: np.ndarray) -> Spectra:
        """The shared STFT of a clip."""
        c = self.config
        return Spectra(y, sr=c.sr, n_fft=c.n_fft, hop_length=c.hop_length)

    def raw(self, spectra: Spectra) -> np.ndarray:
        """dB mel spectrogram ``[shape=(1, n_mels, T)]``."""
        c = self.config
        return spectra.log_mel(n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax, top_db=c.top_db)[None]  # (1, M, T)
