"""The log-mel input of musicnn (registered as the ``musicnn-mel`` extractor).

Reproduces ``musicnn.extractor.batch_data`` as run with librosa >= 0.10:
power STFT (n_fft 512, hop 256, periodic Hann, zero centre padding) -> 96 Slaney
mel bands up to 8 kHz -> float16 round-trip -> ``log10(10000 x + 1)``.
The input must already be 16-kHz mono float32 (decode and resample with soxr HQ
to match the reference outputs; the resampler is the main source of mismatch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcbr_core.features.base import FrontEnd
from mcbr_core.features.spectral import mel_filterbank, stft_power

__all__ = ["MusicnnMel", "MusicnnMelConfig"]


@dataclass(frozen=True)
class MusicnnMelConfig:
    """Parameters of the musicnn log-mel (the values the checkpoints were trained with).

    Attributes
    ----------
    sr
        Sample rate the input must have.
    n_fft, hop_length
        STFT size and hop (32 ms window, 16 ms hop).
    n_mels, fmin, fmax
        Mel bands and their frequency span (0 Hz to Nyquist).
    patch_frames
        Frames per network input (187 = 3 s).
    patch_hop
        Frames between patch starts (187: non-overlapping, as musicnn's default).
    version
        Bumped whenever the output of the extractor changes.
    """

    sr: int = 16000
    n_fft: int = 512
    hop_length: int = 256
    n_mels: int = 96
    fmin: float = 0.0
    fmax: float = 8000.0
    patch_frames: int = 187  # floor((48000 - 256) / 256) + 1
    patch_hop: int = 187
    version: str = "1"


class MusicnnMel(FrontEnd):
    """Log-compressed mel spectrogram for musicnn.

    Parameters
    ----------
    config
        Extractor parameters (default: the musicnn ones).
    """

    name = "musicnn-mel"

    config: MusicnnMelConfig

    def __init__(self, config: MusicnnMelConfig | None = None) -> None:
        super().__init__(config or MusicnnMelConfig())
        c = self.config
        self._fb = mel_filterbank(
            sr=c.sr, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax
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
            ``[shape=(1, n_mels, T)]`` float32, ``T = 1 + n_samples // hop_length``.
        """
        c = self.config
        power = stft_power(y, n_fft=c.n_fft, hop_length=c.hop_length)  # (257, T)
        mel = self._fb @ power  # (96, T) float32
        # musicnn stores float16 and compresses with log10(10000 x + 1). Upcast *before*
        # the multiply: under NumPy >= 2 a float16 product overflows above 6.55 (NaN
        # outputs); NumPy < 2, which musicnn ran on, computed it in float32.
        mel = mel.astype(np.float16).astype(np.float32)
        return np.log10(np.float32(10000.0) * mel + np.float32(1.0))[None]  # (1, 96, T)
