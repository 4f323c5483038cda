"""The log-mel input of Won et al.'s taggers (registered as the ``won-mel`` extractor).

Reproduces, in numpy, the front end the FCN, CRNN and short-chunk musicnn of
Won, Ferraro, Bogdanov & Serra (SMC 2020) were trained with: torchaudio's
``MelSpectrogram(sample_rate=16000, n_fft=512, f_min=0, f_max=8000, n_mels=96)``
with its defaults (hop 256, periodic Hann window, centred frames with reflect
padding, power 2, HTK mel scale, no filter normalisation), then
``AmplitudeToDB()`` (``10 log10(max(x, 1e-10))``, no ``top_db`` clipping). The
network's own ``BatchNorm2d(1)`` comes after, inside the model
(``mcbr_core.models.won``).

The STFT is ``mcbr_core.features.spectral.stft_power`` (float64 FFT rounded to
complex64; torch's float32 STFT differs by float rounding only) and the
filterbank ``spectral.mel_filterbank(htk=True, norm=None)`` (at most 1.1e-5 from
the float32 one stored in the released weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcbr_core.errors import ConfigError
from mcbr_core.features.base import FrontEnd
from mcbr_core.features.normalise import require_positive_ints
from mcbr_core.features.spectral import mel_filterbank, power_to_db, stft_power

__all__ = ["WonMel", "WonMelConfig"]


@dataclass(frozen=True)
class WonMelConfig:
    """Parameters of ``won-mel`` (the values the released taggers were trained with).

    Attributes
    ----------
    sr
        Sample rate the input must have.
    n_fft, hop_length
        STFT size and hop (torchaudio's default hop is ``n_fft // 2``).
    n_mels, fmin, fmax
        HTK mel bands (peak-1 triangles) and their span.
    amin
        Floor of the power before the logarithm.
    patch_frames
        Frames per network input: 1813 (29 s, FCN and CRNN) or 188 (3 s, musicnn).
    patch_hop
        Frames between patch starts (non-overlapping by default).
    version
        Bumped whenever the output of the extractor changes.
    """

    sr: int = 16000
    n_fft: int = 512
    hop_length: int = 256
    n_mels: int = 96
    fmin: float = 0.0
    fmax: float = 8000.0
    amin: float = 1e-10  # torchaudio.transforms.AmplitudeToDB's floor
    patch_frames: int = 1813  # 1 + 464000 // 256: 29 s, the FCN/CRNN training chunks
    patch_hop: int = 1813
    version: str = "1"

    def __post_init__(self) -> None:
        require_positive_ints(
            self, ("sr", "n_fft", "hop_length", "n_mels", "patch_frames", "patch_hop"), name="WonMelConfig"
        )
        if not 0.0 <= self.fmin < self.fmax <= self.sr / 2:
            raise ConfigError(f"WonMelConfig: need 0 <= fmin < fmax <= sr / 2, got {self.fmin}, {self.fmax}")
        if not self.amin > 0:
            raise ConfigError(f"WonMelConfig: amin must be positive, got {self.amin!r}")


class WonMel(FrontEnd):
    """Log-mel spectrogram in dB for Won's taggers.

    Parameters
    ----------
    config
        Extractor parameters (default: the released models' ones, 29-s patches).
    """

    name = "won-mel"

    config: WonMelConfig

    def __init__(self, config: WonMelConfig | None = None) -> None:
        super().__init__(config or WonMelConfig())
        c = self.config
        self._fb = mel_filterbank(
            sr=c.sr, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax, htk=True, norm=None
        )  # (96, 257)

    def __call__(self, y: np.ndarray) -> np.ndarray:
        """Compute the network input for a whole clip.

        Parameters
        ----------
        y
            Mono signal ``[shape=(n_samples,)]`` at ``config.sr``, float32.

        Returns
        -------
        np.ndarray
            ``[shape=(1, n_mels, T)]`` float32 dB, ``T = 1 + n_samples // hop_length``.

        Raises
        ------
        ValueError
            If ``y`` is not one-dimensional.
        """
        c = self.config
        y = np.asarray(y, dtype=np.float32)
        if y.ndim != 1:
            raise ValueError(f"expected a mono signal of shape (n_samples,), got shape {y.shape}")
        if y.size <= c.n_fft // 2:
            # reflect padding needs more than n_fft // 2 samples (torchaudio fails here);
            # a few milliseconds of audio become one or two frames of a zero-padded signal
            y = np.pad(y, (0, c.n_fft // 2 + 1 - y.size))
        power = stft_power(y, n_fft=c.n_fft, hop_length=c.hop_length, pad_mode="reflect")  # (257, T)
        mel = self._fb @ power  # (96, T)
        return power_to_db(mel, amin=c.amin, top_db=None)[None]  # (1, 96, T)
