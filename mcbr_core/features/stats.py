"""The statistics baseline's features (registered as ``mcbr-stats``).

MFCC, chroma and spectral-contrast means and standard deviations over a clip: the
input of the ``stats`` training mode's logistic regression (statistics of the kind
mdeff/fma's ``features.py`` computes). One STFT is computed; mel -> MFCC, chroma and
contrast derive from it. Needs librosa (the ``train`` extra).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from mcbr_core.errors import ConfigError

__all__ = ["StatsConfig", "StatsExtractor"]


@dataclass(frozen=True)
class StatsConfig:
    """MFCC / chroma / spectral-contrast statistics (the linear baseline's input).

    Attributes
    ----------
    sr, n_fft, hop_length
        One STFT (periodic Hann) from which everything is derived.
    n_mels, n_mfcc
        Mel bands under the MFCCs, and MFCCs kept.
    n_bands
        Spectral-contrast bands (``n_bands + 1`` rows).
    version
        Bumped whenever the output changes.
    """

    sr: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    n_mfcc: int = 20
    n_bands: int = 6
    version: str = "1"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "version" and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"mcbr-stats: {f.name} must be a positive integer, got {value!r}")

    @property
    def n_rows(self) -> int:
        """Rows of the output: mean and std of MFCC + 12 chroma + contrast bands."""
        return 2 * (self.n_mfcc + 12 + self.n_bands + 1)


class StatsExtractor:
    """Clip-level statistics: ``(1, 2 * (n_mfcc + 12 + n_bands + 1), 1)``.

    The STFT is computed once; mel -> MFCC, chroma and spectral contrast derive from
    it, the rows are stacked (equal frame counts asserted) and summarised by their
    mean and standard deviation over time.
    """

    name = "mcbr-stats"

    def __init__(self, config: StatsConfig | None = None) -> None:
        self.config = config or StatsConfig()
        self.version = self.config.version
        self.sample_rate = self.config.sr
        # one "frame" per clip; a nominal rate for patch arithmetic
        self.frames_per_second = 1.0

    def __call__(self, y: np.ndarray) -> np.ndarray:
        """Statistics of a clip ``[shape=(n_samples,)]`` -> ``[shape=(1, n_rows, 1)]`` float32."""
        import librosa

        c = self.config
        y = np.asarray(y, dtype=np.float32)
        if y.ndim != 1:
            raise ValueError(f"mcbr-stats: expected mono audio (n_samples,), got {y.shape}")
        if len(y) < c.n_fft:
            y = np.pad(y, (0, c.n_fft - len(y)))
        mag = np.abs(librosa.stft(y, n_fft=c.n_fft, hop_length=c.hop_length))  # (1 + n_fft // 2, T)
        power = mag.astype(np.float64) ** 2  # cast before squaring: NumPy 2 keeps float32
        mel = librosa.feature.melspectrogram(S=power, sr=c.sr, n_mels=c.n_mels)  # (n_mels, T)
        mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=c.n_mfcc)  # (n_mfcc, T)
        chroma = librosa.feature.chroma_stft(S=power, sr=c.sr, tuning=0.0)  # (12, T)
        contrast = librosa.feature.spectral_contrast(S=mag, sr=c.sr, n_bands=c.n_bands)  # (n_bands + 1, T)
        assert mfcc.shape[1] == chroma.shape[1] == contrast.shape[1], "frame counts differ"
        rows = np.concatenate([mfcc, chroma, contrast])  # (R, T)
        stats = np.concatenate([rows.mean(axis=1), rows.std(axis=1)])  # (2R,)
        return stats.astype(np.float32)[None, :, None]  # (1, 2R, 1)
