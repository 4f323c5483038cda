"""Won et al.'s music taggers (FCN, CRNN, short-chunk musicnn) in PyTorch.

Won, Ferraro, Bogdanov & Serra, "Evaluation of CNN-based automatic music tagging
models", SMC 2020, trained three of the compared architectures on MTG-Jamendo and
the Million Song Dataset and released the weights (``sota-music-tagging-models``,
MIT licence, Copyright (c) 2020 Music Technology Group, Universitat Pompeu Fabra,
code by Minz Won). The networks are rebuilt here from the paper and from the
released state dicts' key names and shapes, so those state dicts load with
``strict=True``:

* **FCN** (Choi, Fazekas & Sandler 2016): five blocks of 3x3 conv -> BatchNorm ->
  ReLU -> max-pool that take a 96 x 1813 (29 s) log-mel down to 64 x 1 x 1, then a
  dense layer to 50 tags.
* **CRNN** (Choi et al. 2017): four such blocks (pools 2, 3, 4, 4 on both axes) take
  the frequency axis to 1; a two-layer GRU (32 units) reads the remaining time steps
  and its last output feeds the dense layer.
* **musicnn** (Pons & Serra 2019, as Won re-implemented it for 3-s chunks): vertical
  (timbral) and horizontal (temporal) front-end convolutions, a residual 1-d
  back-end, global max and mean pooling, dense -> BatchNorm -> ReLU -> dense.

All three start with the same front end (torchaudio's defaults): a 16-kHz power
mel spectrogram (512-point STFT, hop 256, reflect padding, 96 HTK bands up to
8 kHz, no filter normalisation), ``10 log10(max(x, 1e-10))``, and a
``BatchNorm2d(1)`` that is part of the network. The STFT window and the mel
filterbank are buffers of the released state dicts (``spec.spectrogram.window``,
``spec.mel_scale.fb``); :class:`WonMelSpectrogram` keeps them under the same names
and computes the front end in torch (:meth:`WonTagger.forward_waveform`). The
backends feed precomputed log-mel patches instead (``mcbr_core.features.won_mel``,
the same numbers in numpy) to :meth:`WonTagger.forward`.

Dropout (0.5, before the last dense layer of each network) is omitted: it is the
identity at inference, and these modules are meant for inference only. Call
``.eval()`` first, or the BatchNorms use batch statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "FAMILIES",
    "WonCRNN",
    "WonCRNNConfig",
    "WonFCN",
    "WonFCNConfig",
    "WonMelSpectrogram",
    "WonMusicnn",
    "WonMusicnnConfig",
    "WonTagger",
    "build_won",
    "load_won",
]


# --------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class _FrontEndConfig:
    """The shared front end (torchaudio's ``MelSpectrogram`` defaults as Won used them)."""

    sample_rate: int = 16000
    n_fft: int = 512  # hop = n_fft // 2 = 256 (torchaudio's default), 32 ms windows every 16 ms
    f_min: float = 0.0
    f_max: float = 8000.0
    n_mels: int = 96
    n_labels: int = 50
    n_frames: int = 1813  # 1 + 464000 // 256: the 29-s chunks FCN and CRNN were trained on

    def _check_front_end(self) -> None:
        for name in ("sample_rate", "n_fft", "n_mels", "n_labels", "n_frames"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError(f"need 0 <= f_min < f_max <= sample_rate / 2, got {self.f_min}, {self.f_max}")

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> Any:
        """Rebuild a config from ``asdict`` output (e.g. a model card).

        Raises
        ------
        ValueError
            On an unknown key or a value the config rejects.
        """
        from mcbr_core.models.checkpoint import config_from_dict

        return config_from_dict(cls, cfg)


def _check_pools(n_mels: int, channels: tuple[int, ...], pools: tuple[tuple[int, int], ...]) -> None:
    """One ``(freq, time)`` pool per conv block, and frequency pools that take ``n_mels`` to 1."""
    if len(channels) != len(pools) or not channels:
        raise ValueError(f"need one pool per conv block, got {len(channels)} blocks and {len(pools)} pools")
    f = n_mels
    for pf, _ in pools:
        f //= pf
    if f != 1:
        raise ValueError(f"the frequency pools {[p[0] for p in pools]} take {n_mels} bands to {f}, not 1")


@dataclass(frozen=True)
class WonFCNConfig(_FrontEndConfig):
    """FCN: conv blocks whose max-pools take the whole (F, T) input to 1 x 1.

    Attributes
    ----------
    channels
        Output channels of the conv blocks.
    pools
        ``(freq, time)`` max-pool of each block. The defaults take 96 bands to 1 and
        any 1280..2559 frames to 1 (the trained 1813 frames: 453, 113, 28, 5, 1).
    kernel
        Square conv kernel (``padding = kernel // 2`` keeps the size).
    """

    channels: tuple[int, ...] = (64, 128, 128, 128, 64)
    pools: tuple[tuple[int, int], ...] = ((2, 4), (2, 4), (2, 4), (3, 5), (4, 4))
    kernel: int = 3

    def __post_init__(self) -> None:
        self._check_front_end()
        _check_pools(self.n_mels, self.channels, self.pools)

    @property
    def embedding_dim(self) -> int:
        """Width of the penultimate layer (the last block's channels)."""
        return self.channels[-1]


@dataclass(frozen=True)
class WonCRNNConfig(_FrontEndConfig):
    """CRNN: conv blocks that pool the frequency axis to 1, then a GRU over time.

    Attributes
    ----------
    channels, pools, kernel
        As in :class:`WonFCNConfig`; the frequency pools must take ``n_mels`` to 1.
        With the defaults 1813 frames become 18 GRU steps (any T >= 96 gives one).
    gru_hidden, gru_layers
        GRU width and depth; the last step's top-layer output is the embedding.
    """

    channels: tuple[int, ...] = (64, 128, 128, 128)
    pools: tuple[tuple[int, int], ...] = ((2, 2), (3, 3), (4, 4), (4, 4))
    kernel: int = 3
    gru_hidden: int = 32
    gru_layers: int = 2

    def __post_init__(self) -> None:
        self._check_front_end()
        _check_pools(self.n_mels, self.channels, self.pools)
        if self.gru_hidden < 1 or self.gru_layers < 1:
            raise ValueError("gru_hidden and gru_layers must be positive")

    @property
    def embedding_dim(self) -> int:
        """Width of the penultimate layer (the GRU's hidden size)."""
        return self.gru_hidden


@dataclass(frozen=True)
class WonMusicnnConfig(_FrontEndConfig):
    """Won's short-chunk musicnn (Jamendo variant by default).

    Attributes
    ----------
    timbral_filters
        Filters of each vertical (timbral) convolution.
    timbral_kernel_freqs
        Their frequency extents, in front-end order: ``int(0.7 * 96)``, ``int(0.4 * 96)``.
    timbral_kernel_time
        Their time extent (odd; ``padding = k // 2`` keeps the length).
    temporal_filters
        Filters of each horizontal (temporal) convolution.
    temporal_lengths
        Their lengths in frames (odd), applied to the band-averaged spectrogram.
    backend_channels
        Channels of the three back-end convolutions (Won: 64, or 512 for MSD).
    backend_kernel
        Their length (odd).
    dense_units
        Width of the penultimate dense layer (Won: 200, or 500 for MSD).
    """

    n_frames: int = 188  # 1 + 48000 // 256: the 3-s chunks it was trained on
    timbral_filters: int = 204
    timbral_kernel_freqs: tuple[int, ...] = (67, 38)
    timbral_kernel_time: int = 7
    temporal_filters: int = 51
    temporal_lengths: tuple[int, ...] = (129, 65, 33)
    backend_channels: int = 64
    backend_kernel: int = 7
    dense_units: int = 200

    def __post_init__(self) -> None:
        self._check_front_end()
        if max(self.timbral_kernel_freqs) > self.n_mels:
            raise ValueError(f"timbral kernels {self.timbral_kernel_freqs} exceed n_mels={self.n_mels}")
        for k in (self.timbral_kernel_time, self.backend_kernel, *self.temporal_lengths):
            if k % 2 != 1:
                raise ValueError(f"time kernels must be odd so that padding k // 2 keeps the length, got {k}")

    @property
    def frontend_channels(self) -> int:
        """Channels of the concatenated front end (561 for the defaults)."""
        return (
            len(self.timbral_kernel_freqs) * self.timbral_filters
            + len(self.temporal_lengths) * self.temporal_filters
        )

    @property
    def pooled_channels(self) -> int:
        """Channels pooled over time: front end plus three back-end maps (753)."""
        return self.frontend_channels + 3 * self.backend_channels

    @property
    def embedding_dim(self) -> int:
        """Width of the penultimate layer."""
        return self.dense_units


# --------------------------------------------------------------------------- front end


class _Window(nn.Module):
    """Holds the STFT window under torchaudio's key (``spectrogram.window``)."""

    def __init__(self, n_fft: int) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(n_fft))  # periodic, as torchaudio


class _MelScale(nn.Module):
    """Holds the mel filterbank ``[shape=(1 + n_fft // 2, n_mels)]`` under torchaudio's key (``mel_scale.fb``)."""

    def __init__(self, fb: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("fb", fb)


class WonMelSpectrogram(nn.Module):
    """The front end in torch: waveform -> power mel -> dB (torchaudio's ``MelSpectrogram`` + ``AmplitudeToDB``).

    Parameters
    ----------
    config
        Any of the three configs (only the front-end fields are read).

    Notes
    -----
    The filterbank is computed in float64 (``mcbr_core.features.spectral``) and
    differs from the one stored in the released state dicts (torchaudio's, in
    float32) by at most 1.1e-5; loading a state dict replaces it by the stored one.
    """

    amin = 1e-10

    def __init__(self, config: _FrontEndConfig) -> None:
        super().__init__()
        from mcbr_core.features.spectral import mel_filterbank

        self.n_fft = config.n_fft
        self.hop_length = config.n_fft // 2
        fb = mel_filterbank(
            sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels,
            fmin=config.f_min, fmax=config.f_max, htk=True, norm=None,
        )  # fmt: skip
        self.spectrogram = _Window(config.n_fft)
        self.mel_scale = _MelScale(torch.from_numpy(fb.T.copy()))  # (1 + n_fft // 2, n_mels)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Log-mel ``[shape=(B, n_mels, T)]`` in dB of mono audio ``[shape=(B, n_samples)]``.

        ``T = 1 + n_samples // hop``; the signal is reflect-padded by ``n_fft // 2``
        at both ends (so ``n_samples`` must exceed ``n_fft // 2``).
        """
        spec = torch.stft(
            wave, self.n_fft, hop_length=self.hop_length, window=self.spectrogram.window,
            center=True, pad_mode="reflect", return_complex=True,
        ).abs().pow(2.0)  # fmt: skip  # (B, 1 + n_fft // 2, T)
        mel = torch.matmul(spec.transpose(1, 2), self.mel_scale.fb).transpose(1, 2)  # (B, n_mels, T)
        return 10.0 * torch.log10(torch.clamp(mel, min=self.amin))


# --------------------------------------------------------------------------- networks


class _ConvBlock(nn.Module):
    """Conv2d (same size) -> BatchNorm2d -> ReLU -> MaxPool2d (Won's ``Conv_2d``)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, pool: tuple[int, int]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)
        self.bn = nn.BatchNorm2d(c_out)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[shape=(B, c_in, F, T)]`` -> ``[shape=(B, c_out, F // pf, T // pt)]``."""
        return F.max_pool2d(F.relu(self.bn(self.conv(x))), self.pool)


class _Conv1dBlock(nn.Module):
    """Conv1d (same length) -> BatchNorm1d -> ReLU (Won's ``Conv_H`` after pooling, and ``Conv_1d``)."""

    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2)
        self.bn = nn.BatchNorm1d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[shape=(B, c_in, T)]`` -> ``[shape=(B, c_out, T)]``."""
        return F.relu(self.bn(self.conv(x)))


class _TimbralBlock(nn.Module):
    """Vertical conv (full-height kernel, same length) -> BN -> ReLU -> max over frequency (``Conv_V``)."""

    def __init__(self, c_out: int, kernel: tuple[int, int]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, c_out, kernel, padding=(0, kernel[1] // 2))
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[shape=(B, 1, F, T)]`` -> ``[shape=(B, c_out, T)]``."""
        return F.relu(self.bn(self.conv(x))).amax(dim=2)


class _TemporalBlock(_Conv1dBlock):
    """Mean over frequency, then a 1-d conv along time (``Conv_H``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[shape=(B, 1, F, T)]`` -> ``[shape=(B, c_out, T)]``."""
        return super().forward(x.mean(dim=2))  # (B, 1, T) -> (B, c_out, T)


class WonTagger(nn.Module):
    """What the three networks share: the front end, its BatchNorm, and the tagger API.

    Subclasses define :meth:`_embed` (the penultimate layer from the normalised
    log-mel) and ``dense`` (its map to the logits).
    """

    family: ClassVar[str]
    config: _FrontEndConfig

    def __init__(self, config: _FrontEndConfig) -> None:
        super().__init__()
        self.config = config
        self.spec = WonMelSpectrogram(config)
        self.spec_bn = nn.BatchNorm2d(1)  # one scalar mean/var for the whole spectrogram

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != self.config.n_mels:
            raise ValueError(f"expected input of shape (B, 1, {self.config.n_mels}, T), got {tuple(x.shape)}")

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and penultimate embedding in one pass.

        Parameters
        ----------
        x
            Log-mel patches in dB ``[shape=(B, 1, F=n_mels, T)]``, as made by
            ``WonMel`` and ``patches`` (or by :attr:`spec` plus ``unsqueeze(1)``).

        Returns
        -------
        logits : torch.Tensor
            ``[shape=(B, n_labels)]``, before the sigmoid.
        embedding : torch.Tensor
            ``[shape=(B, config.embedding_dim)]``, the input of the last dense layer.
        """
        self._check(x)
        emb = self._embed(self.spec_bn(x))
        return self.dense(emb), emb

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tag logits ``[shape=(B, n_labels)]`` for log-mel patches ``[shape=(B, 1, F, T)]`` (no sigmoid)."""
        return self.forward_features(x)[0]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate embedding ``[shape=(B, D)]`` for log-mel patches ``[shape=(B, 1, F, T)]``."""
        return self.forward_features(x)[1]

    def forward_waveform(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and embedding of 16-kHz mono chunks ``[shape=(B, n_samples)]``, front end in torch."""
        return self.forward_features(self.spec(wave).unsqueeze(1))  # (B, 1, n_mels, T)


class WonFCN(WonTagger):
    """Won's FCN. See :class:`WonFCNConfig`."""

    family = "won-fcn"

    def __init__(self, config: WonFCNConfig | None = None) -> None:
        cfg = config or WonFCNConfig()
        super().__init__(cfg)
        chans = (1, *cfg.channels)
        for i, pool in enumerate(cfg.pools):  # layer1 .. layer5, the released key names
            self.add_module(f"layer{i + 1}", _ConvBlock(chans[i], chans[i + 1], cfg.kernel, pool))
        self.dense = nn.Linear(cfg.channels[-1], cfg.n_labels)

    def valid_frames(self) -> tuple[int, int]:
        """The ``(min, max)`` input lengths the time pools take to exactly one step."""
        t = 1
        for _, pt in self.config.pools:  # type: ignore[attr-defined]
            t *= pt
        return t, 2 * t - 1

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self.valid_frames()
        if not lo <= x.shape[3] <= hi:
            raise ValueError(f"FCN needs {lo}..{hi} frames (its pools end at 1 x 1), got {x.shape[3]}")
        for i in range(len(self.config.pools)):  # type: ignore[attr-defined]
            x = getattr(self, f"layer{i + 1}")(x)  # (B, C_i, F_i, T_i)
        return x.reshape(x.shape[0], -1)  # (B, C_last, 1, 1) -> (B, C_last)


class WonCRNN(WonTagger):
    """Won's CRNN. See :class:`WonCRNNConfig`."""

    family = "won-crnn"

    def __init__(self, config: WonCRNNConfig | None = None) -> None:
        cfg = config or WonCRNNConfig()
        super().__init__(cfg)
        chans = (1, *cfg.channels)
        for i, pool in enumerate(cfg.pools):  # layer1 .. layer4
            self.add_module(f"layer{i + 1}", _ConvBlock(chans[i], chans[i + 1], cfg.kernel, pool))
        # layer5 (the released key name): the GRU over the conv map's time steps
        self.add_module(
            f"layer{len(cfg.pools) + 1}",
            nn.GRU(cfg.channels[-1], cfg.gru_hidden, cfg.gru_layers, batch_first=True),
        )
        self.dense = nn.Linear(cfg.gru_hidden, cfg.n_labels)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        pools = self.config.pools  # type: ignore[attr-defined]
        shortest = int(torch.tensor([pt for _, pt in pools]).prod())
        if x.shape[3] < shortest:
            raise ValueError(
                f"CRNN needs at least {shortest} frames (its pools leave one GRU step), got {x.shape[3]}"
            )
        n = len(pools)
        for i in range(n):
            x = getattr(self, f"layer{i + 1}")(x)  # (B, C_i, F_i, T_i)
        x = x.squeeze(2).transpose(1, 2)  # (B, T', C)
        out, _ = getattr(self, f"layer{n + 1}")(x)  # (B, T', hidden)
        return out[:, -1, :]  # (B, hidden)


class WonMusicnn(WonTagger):
    """Won's short-chunk musicnn. See :class:`WonMusicnnConfig`."""

    family = "won-musicnn"

    def __init__(self, config: WonMusicnnConfig | None = None) -> None:
        cfg = config or WonMusicnnConfig()
        super().__init__(cfg)
        kt = cfg.timbral_kernel_time
        self.layers = nn.ModuleList(
            [_TimbralBlock(cfg.timbral_filters, (kf, kt)) for kf in cfg.timbral_kernel_freqs]
            + [_TemporalBlock(1, cfg.temporal_filters, k) for k in cfg.temporal_lengths]
        )
        ch, k = cfg.backend_channels, cfg.backend_kernel
        self.layer1 = _Conv1dBlock(cfg.frontend_channels, ch, k)
        self.layer2 = _Conv1dBlock(ch, ch, k)
        self.layer3 = _Conv1dBlock(ch, ch, k)
        self.dense1 = nn.Linear(2 * cfg.pooled_channels, cfg.dense_units)
        self.bn = nn.BatchNorm1d(cfg.dense_units)
        self.dense2 = nn.Linear(cfg.dense_units, cfg.n_labels)

    @property
    def dense(self) -> nn.Linear:
        """The output layer (``dense2`` in the released state dict)."""
        return self.dense2

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Front- and back-end maps pooled over time ``[shape=(B, 2 * 753)]``: all maxima, then all means."""
        self._check(x)
        x = self.spec_bn(x)
        fe = torch.cat([layer(x) for layer in self.layers], dim=1)  # (B, 561, T)
        r1 = self.layer1(fe)  # (B, C, T)
        r2 = self.layer2(r1) + r1
        r3 = self.layer3(r2) + r2
        h = torch.cat([fe, r1, r2, r3], dim=1)  # (B, 753, T)
        return torch.cat([h.amax(dim=2), h.mean(dim=2)], dim=1)  # (B, 1506)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, n_labels)`` and the penultimate ``relu(bn(dense1))`` ``(B, dense_units)``."""
        emb = F.relu(self.bn(self.dense1(self.pooled(x))))  # (B, dense_units)
        return self.dense2(emb), emb


FAMILIES: dict[str, tuple[type[WonTagger], type[_FrontEndConfig]]] = {
    WonFCN.family: (WonFCN, WonFCNConfig),
    WonCRNN.family: (WonCRNN, WonCRNNConfig),
    WonMusicnn.family: (WonMusicnn, WonMusicnnConfig),
}


def build_won(family: str, config: Mapping[str, Any] | None = None) -> WonTagger:
    """A network of ``family`` (``"won-fcn"``, ``"won-crnn"``, ``"won-musicnn"``) from a config dict.

    Raises
    ------
    ValueError
        On an unknown family or config key.
    """
    try:
        cls, cfg_cls = FAMILIES[family]
    except KeyError:
        raise ValueError(f"unknown Won architecture {family!r} (known: {', '.join(FAMILIES)})") from None
    return cls(cfg_cls.from_dict(config or {}))


def load_won(path: str | Path, *, device: str = "cpu") -> tuple[WonTagger, dict[str, Any]]:
    """A converted Won model file as a network in eval mode on ``device``, and its card.

    Raises
    ------
    ModelError
        If the card's architecture does not fit, or the weights do not fit it exactly.
    """
    from mcbr_core.errors import ModelError
    from mcbr_core.models.checkpoint import load_model

    tensors, card = load_model(path, device="cpu")
    arch = card["architecture"]
    try:
        net = build_won(arch["family"], arch.get("config", {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: architecture does not fit a Won tagger ({exc})") from exc
    try:
        net.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not fit {arch['family']} ({str(exc)[:300]})") from exc
    return net.eval().to(device), card
