"""The log-mel input of EfficientAT (registered as the ``efficientat-mel`` extractor).

Reproduces EfficientAT's ``AugmentMelSTFT`` in eval mode (no augmentation):

1. pre-emphasis ``y[n + 1] - 0.97 y[n]`` (a valid convolution: one sample shorter);
2. ``|STFT|**2`` with ``n_fft = 1024``, hop 320, a *symmetric* Hann window of 800
   samples centred in the 1024-sample frame, and ``n_fft // 2`` reflect padding at
   both ends (``torch.stft(center=True)``);
3. a Kaldi mel filterbank, 128 bands from 0 to 15 kHz, peak 1, with a zero Nyquist
   column (:func:`~mcbr_core.features.spectral.kaldi_mel_filterbank`);
4. ``log(mel + 1e-5)``, then ``(x + 4.5) / 5``.

The input must already be 32-kHz mono float32. The shared
:func:`~mcbr_core.features.spectral.stft_power` computes step 2: a symmetric Hann
window of ``M`` samples is the periodic Hann window of ``M - 1`` samples followed by
one zero, and centring 799 samples in 1024 (112 before, 113 after) puts them where
``torch.stft`` puts the 800-sample window (112 before, its last sample being 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcbr_core.features.base import FrontEnd
from mcbr_core.features.spectral import kaldi_mel_filterbank, stft_power

__all__ = ["EfficientATMel", "EfficientATMelConfig"]


@dataclass(frozen=True)
class EfficientATMelConfig:
    """Parameters of EfficientAT's log-mel (the values its AudioSet models were trained with).

    Attributes
    ----------
    sr
        Sample rate the input must have.
    n_fft, win_length, hop_length
        FFT size, symmetric Hann window length (centred in the frame) and hop: 32, 25
        and 10 ms.
    n_mels, fmin, fmax
        Kaldi mel bands and their span (EfficientAT's ``fmax = sr / 2 - 1000``).
    preemphasis
        Pre-emphasis coefficient.
    log_offset
        Added to the mel power before the natural logarithm.
    shift, scale
        ``(log_mel + shift) / scale``: EfficientAT's fixed normalisation.
    patch_frames
        Frames per network input: 10 s, the training length.
    patch_hop
        Frames between patch starts (1000: non-overlapping).
    version
        Bumped whenever the output of the extractor changes.
    """

    sr: int = 32000
    n_fft: int = 1024
    win_length: int = 800
    hop_length: int = 320
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float = 15000.0  # 32000 // 2 - 2000 // 2 (EfficientAT's fmax_aug_range)
    preemphasis: float = 0.97
    log_offset: float = 1e-5
    shift: float = 4.5
    scale: float = 5.0
    patch_frames: int = 1000  # 1 + (320000 - 1) // 320: 10 s after pre-emphasis
    patch_hop: int = 1000
    version: str = "1"

    def __post_init__(self) -> None:
        for name in ("sr", "n_fft", "win_length", "hop_length", "n_mels", "patch_frames", "patch_hop"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"efficientat-mel: {name} must be a positive integer, got {value!r}")
        if not 2 <= self.win_length <= self.n_fft:
            raise ValueError(
                f"efficientat-mel: win_length must lie in [2, n_fft={self.n_fft}], got {self.win_length}"
            )
        if not 0.0 <= self.preemphasis < 1.0:
            raise ValueError(f"efficientat-mel: preemphasis must lie in [0, 1), got {self.preemphasis!r}")
        if not self.log_offset > 0 or not self.scale > 0:
            raise ValueError("efficientat-mel: log_offset and scale must be positive")


class EfficientATMel(FrontEnd):
    """Normalised log-mel spectrogram for EfficientAT.

    Parameters
    ----------
    config
        Extractor parameters (default: those of the AudioSet checkpoints).
    """

    name = "efficientat-mel"

    config: EfficientATMelConfig

    def __init__(self, config: EfficientATMelConfig | None = None) -> None:
        super().__init__(config or EfficientATMelConfig())
        c = self.config
        self._fb = kaldi_mel_filterbank(
            sr=c.sr, n_fft=c.n_fft, n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax
        )  # (128, 513), validates the span

    def __call__(self, y: np.ndarray) -> np.ndarray:
        """Compute the network input for a whole clip.

        Parameters
        ----------
        y
            Mono signal ``[shape=(n_samples,)]`` at ``config.sr``, float32.

        Returns
        -------
        np.ndarray
            ``[shape=(1, n_mels, T)]`` float32, ``T = 1 + (n_samples - 1) // hop_length``
            (a signal shorter than ``n_fft // 2 + 2`` samples is first zero-padded to
            that length, which the reflect padding needs).

        Raises
        ------
        ValueError
            If ``y`` is not one-dimensional.
        """
        c = self.config
        y = np.asarray(y, dtype=np.float32)
        if y.ndim != 1:
            raise ValueError(f"efficientat-mel: expected mono audio (n_samples,), got shape {y.shape}")
        if y.size < c.n_fft // 2 + 2:
            y = np.pad(y, (0, c.n_fft // 2 + 2 - y.size))
        y = y[1:] - np.float32(c.preemphasis) * y[:-1]  # (n_samples - 1,)
        # symmetric Hann(win_length) == periodic Hann(win_length - 1) + one zero (see module docstring)
        power = stft_power(
            y, n_fft=c.n_fft, hop_length=c.hop_length, win_length=c.win_length - 1, pad_mode="reflect"
        )  # (513, T)
        mel = self._fb @ power  # (128, T) float32
        log_mel = np.log(mel + np.float32(c.log_offset))
        return ((log_mel + np.float32(c.shift)) / np.float32(c.scale))[None]  # (1, 128, T)
