"""Whitell (2019): the Simple, Time, Freq, TimeFreq and TimeFreqAvg CNNs, from one config.

The thesis describes the architectures in "Deep Learning Architectures"; the
details (widths, strides, per-representation choices) follow the author's Keras
code (github.com/RyanWhitell/Deep-Learning-for-Music-Recommendation, MIT
licence), and the parameter counts of Tables 3, 5 and 6 are reproduced exactly
(counting BatchNorm's moving statistics, as Keras does). All convolutions are
bias-free and followed by BatchNorm (Keras' eps 1e-3 and momentum 0.99).

``variant`` picks the network; ``feature`` (the input representation) picks the
per-representation choices of the thesis: strides that shrink big spectrograms,
"same" padding for the 12-row chromagram and MFCCs, and the heights of the Freq
input kernels.

**Simple** (Xception-like; ``embed``: 1024)::

    conv 3x3 / s, 8 ch, same -> BN -> ReLU          s = 2 (1 for chroma/MFCC)
    conv 3x3, 16 ch -> BN -> ReLU                   stride 2 "same" for STFTs, else 1 "valid"
    sepconv 3x3, 32 -> BN -> ReLU
    sepconv 3x3, 64 -> BN -> max 3x3/2 -> ReLU
    sepconv 3x3, 128 -> BN -> max 3x3/2 -> ReLU
    sepconv 3x3, 256 -> BN -> max 3x3/2 -> ReLU
    sepconv 3x3, 512 -> BN -> max 3x3/2 -> ReLU
    sepconv 3x3, 1024 -> BN -> ReLU -> global average (= embed) -> dense (= logits)

**Time** (``embed``: 256): six parallel ``1 x (n_frames // d)`` convolutions,
``d`` in (4, 8, 16, 32, 64, 96), 2 channels each, stride (1, 2), concatenated (12
channels); four ``1 x 9`` separable convolutions (16, 32, 64, 128), the first
three followed by a max pooling that halves frequency (time for chroma/MFCC); a
``F' x 1`` separable convolution (256) that flattens frequency; global average
(= embed); dense.

**Freq** (``embed``: 256): Time with the axes swapped: six ``(n_bins // d) x 1``
input kernels (stride (2, 1); 1 for chroma/MFCC), ``9 x 1`` blocks ("3 x 1",
"same", for chroma/MFCC), poolings that halve time, a ``1 x T'`` flattening.

**TimeFreq** (``embed``: 128): a Time and a Freq model (frozen, as in the thesis'
stacked ensemble of trained models), their logits concatenated, dense 256 ->
ReLU -> dropout 0.5 -> dense 128 -> ReLU -> dropout 0.5 (= embed) -> dense.

**TimeFreqAvg** (``embed``: 512): the mean of the Time and Freq logits; ``embed``
is the concatenation of the two 256-d embeddings (there is no shared layer).

``forward`` returns logits (the thesis' softmax/sigmoid outputs are the loss's
job). For the artist-embedding regression set ``n_classes`` to the artist
embedding size (800) and train with ``negative_cosine_loss``. The thesis' L2
weight 0.002 on the TimeFreq head is the training loop's weight decay.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from mcbr_core.errors import ConfigError
from mcbr_core.models.blocks import Conv2dSame, MaxPool2dSame, SeparableConv2d, keras_batch_norm, same_out

__all__ = ["FEATURES", "VARIANTS", "WhitellConfig", "WhitellNet"]

VARIANTS = ("simple", "time", "freq", "timefreq", "timefreqavg")
FEATURES = ("stft", "stft_half", "mel", "cqt", "mfcc", "chroma")

#: Freq input kernel heights are n_bins // d for these d (the thesis' code, per representation).
FREQ_DIVISORS = {
    "stft": (6, 12, 32, 64, 128, 256),  # 341, 170, 64, 32, 16, 8 bins
    "stft_half": (6, 12, 32, 64, 128, 256),  # 170, 85, 32, 16, 8, 4
    "mel": (6, 8, 12, 24, 32, 64),  # 42, 32, 21, 10, 8, 4
    "cqt": (4, 5, 6, 12, 24, 48),  # 42, 33, 28, 14, 7, 3
    "mfcc": (1, 2, 3, 4, 6, 12),  # 12, 6, 4, 3, 2, 1
    "chroma": (1, 2, 3, 4, 6, 12),
}
_PITCH = ("mfcc", "chroma")  # 12-row inputs: no downsampling of frequency


@dataclass(frozen=True)
class WhitellConfig:
    """Hyper-parameters of the Whitell CNNs.

    Attributes
    ----------
    variant
        ``"simple"``, ``"time"``, ``"freq"``, ``"timefreq"`` or ``"timefreqavg"``.
    feature
        Input representation (``"stft"``, ``"stft_half"``, ``"mel"``, ``"cqt"``,
        ``"mfcc"``, ``"chroma"``), as the ``whitell-*`` extractors name them.
    n_classes
        Outputs (16 FMA-medium genres, 161 FMA-large genres, 800 for artist embeddings).
    in_channels, n_bins, n_frames
        Input map ``(C, F, T)``; fixed, because the Time/Freq kernels and flattening
        layers are sized from it.
    simple_channels
        Widths of Simple's two convolutions and six separable convolutions.
    input_filters
        Channels of each of the six Time/Freq input convolutions.
    time_divisors
        Time input kernels are ``1 x (n_frames // d)``.
    freq_divisors
        Freq input kernels are ``(n_bins // d) x 1``; ``None``: the thesis' values for ``feature``.
    block_channels
        Widths of the four Time/Freq separable blocks.
    flat_channels
        Width of the flattening separable convolution (the Time/Freq embedding).
    head_units
        TimeFreq's dense layers (the last is the TimeFreq embedding).
    dropout
        Dropout after each TimeFreq dense layer.
    freeze_branches
        TimeFreq: train only the head; the Time and Freq branches stay in eval mode.
    """

    variant: str = "simple"
    feature: str = "mel"
    n_classes: int = 16  # FMA-medium genres
    in_channels: int = 1
    n_bins: int = 256  # whitell-mel
    n_frames: int = 643  # the thesis crops 30-s clips to 643 frames (hop 1024)
    simple_channels: tuple[int, ...] = (8, 16, 32, 64, 128, 256, 512, 1024)
    input_filters: int = 2
    time_divisors: tuple[int, ...] = (4, 8, 16, 32, 64, 96)  # 160, 80, 40, 20, 10, 6 of 643 frames
    freq_divisors: tuple[int, ...] | None = None
    block_channels: tuple[int, ...] = (16, 32, 64, 128)
    flat_channels: int = 256
    head_units: tuple[int, ...] = (256, 128)
    dropout: float = 0.5
    freeze_branches: bool = True  # the thesis stacks *trained* Time and Freq models

    def __post_init__(self) -> None:
        for field in ("simple_channels", "time_divisors", "block_channels", "head_units"):
            object.__setattr__(self, field, tuple(getattr(self, field)))
        if self.freq_divisors is not None:
            object.__setattr__(self, "freq_divisors", tuple(self.freq_divisors))
        name = type(self).__name__
        if self.variant not in VARIANTS:
            raise ConfigError(f"{name}: variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.feature not in FEATURES:
            raise ConfigError(f"{name}: feature must be one of {FEATURES}, got {self.feature!r}")
        for field in ("n_classes", "in_channels", "n_bins", "n_frames", "input_filters", "flat_channels"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name}: {field} must be a positive integer, got {value!r}")
        for field, n in (
            ("simple_channels", 8),
            ("time_divisors", None),
            ("block_channels", 4),
            ("head_units", None),
            ("freq_divisors", None),
        ):
            value = getattr(self, field)
            if value is None:
                continue
            if (n is not None and len(value) != n) or not value or min(value) < 1:
                raise ConfigError(f"{name}: {field} must be {n or 'some'} positive integers, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{name}: dropout must lie in [0, 1), got {self.dropout!r}")
        problem = self._geometry_problem()
        if problem:
            raise ConfigError(f"{name}: {problem}")

    # -- geometry (pure Python, so configs validate without torch) --------

    @property
    def pitch(self) -> bool:
        """12-row input (chroma or MFCCs): frequency is never downsampled."""
        return self.feature in _PITCH

    @property
    def divisors(self) -> tuple[int, ...]:
        """Freq input kernel divisors in use."""
        return self.freq_divisors if self.freq_divisors is not None else FREQ_DIVISORS[self.feature]

    def simple_size(self) -> tuple[int, int]:
        """``(F, T)`` before Simple's global average pooling."""
        out = []
        for n in (self.n_bins, self.n_frames):
            n = same_out(n, 1 if self.pitch else 2)
            n = same_out(n, 2) if self.feature in ("stft", "stft_half") else n - 2
            shrink = 0 if self.pitch else 2  # "same" or "valid" 3x3 separable convolutions
            n -= 2 * shrink  # 32, 64
            for _ in range(4):  # (pool, conv) x 4
                n = same_out(n, 2) - shrink
            out.append(n)
        return out[0], out[1]

    def time_size(self) -> tuple[int, int]:
        """``(F, T)`` before Time's frequency-flattening convolution."""
        f, t = self.n_bins, same_out(self.n_frames, 2)
        for i in range(4):
            t -= 8  # 1x9 valid
            if i < 3:
                if self.pitch:
                    t = same_out(t, 2)
                else:
                    f = same_out(f, 2)
        return f, t

    def freq_size(self) -> tuple[int, int]:
        """``(F, T)`` before Freq's time-flattening convolution."""
        f, t = same_out(self.n_bins, 1 if self.pitch else 2), self.n_frames
        for i in range(4):
            f -= 0 if self.pitch else 8  # 3x1 same, or 9x1 valid
            if i < 3:
                t = same_out(t, 2)
        return f, t

    def _geometry_problem(self) -> str | None:
        size = f"{self.n_bins} x {self.n_frames}"
        needs = {
            "simple": ("simple",),
            "time": ("time",),
            "freq": ("freq",),
            "timefreq": ("time", "freq"),
            "timefreqavg": ("time", "freq"),
        }[self.variant]
        if "simple" in needs and min(self.simple_size()) < 1:
            return f"an input of {size} is too small for Simple (ends at {self.simple_size()})"
        if "time" in needs:
            if self.n_frames // max(self.time_divisors) < 1:
                largest = max(self.time_divisors)
                return f"n_frames={self.n_frames} is smaller than the largest time divisor {largest}"
            if min(self.time_size()) < 1:
                return f"an input of {size} is too small for Time (ends at {self.time_size()})"
        if "freq" in needs:
            if self.n_bins // max(self.divisors) < 1:
                return (
                    f"n_bins={self.n_bins} is smaller than the largest frequency divisor {max(self.divisors)}"
                )
            if min(self.freq_size()) < 1:
                return f"an input of {size} is too small for Freq (ends at {self.freq_size()})"
        return None

    @property
    def embedding_dim(self) -> int:
        """Size of :meth:`WhitellNet.embed`."""
        return {
            "simple": self.simple_channels[-1],
            "time": self.flat_channels,
            "freq": self.flat_channels,
            "timefreq": self.head_units[-1],
            "timefreqavg": 2 * self.flat_channels,
        }[self.variant]


class _SepBlock(nn.Sequential):
    """Separable conv -> BN [-> max pool] -> ReLU (the thesis' pool-before-ReLU order)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: tuple[int, int],
        padding: str,
        pool: tuple[tuple[int, int], tuple[int, int]] | None,
    ) -> None:
        layers: list[nn.Module] = [SeparableConv2d(cin, cout, kernel, padding), keras_batch_norm(cout)]
        if pool is not None:
            layers.append(MaxPool2dSame(*pool))
        layers.append(nn.ReLU())
        super().__init__(*layers)


class _InputBank(nn.Module):
    """Six parallel bias-free convolutions (+BN+ReLU) of different extents, concatenated."""

    def __init__(
        self, cin: int, filters: int, kernels: list[tuple[int, int]], stride: tuple[int, int]
    ) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Sequential(
                Conv2dSame(cin, filters, k, stride, bias=False), keras_batch_norm(filters), nn.ReLU()
            )
            for k in kernels
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[shape=(B, C, F, T)]`` -> ``[shape=(B, 6 * filters, F', T')]``."""
        return torch.cat([conv(x) for conv in self.convs], dim=1)


class WhitellNet(nn.Module):
    """Any of Whitell's CNNs, as ``config.variant`` says.

    Parameters
    ----------
    config
        Hyper-parameters.

    Notes
    -----
    The TimeFreq variants hold a Time and a Freq ``WhitellNet`` as ``self.time`` and
    ``self.freq``; load trained ones with :meth:`load_branches`.
    """

    def __init__(self, config: WhitellConfig) -> None:
        super().__init__()
        self.config = c = config
        if c.variant == "simple":
            self._build_simple()
        elif c.variant in ("time", "freq"):
            self._build_branch()
        else:
            self.time = WhitellNet(dataclasses.replace(c, variant="time"))
            self.freq = WhitellNet(dataclasses.replace(c, variant="freq"))
            if c.variant == "timefreq":
                widths = (2 * c.n_classes, *c.head_units)
                self.head = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(widths))
                self.drop = nn.Dropout(c.dropout)
                self.out = nn.Linear(widths[-1], c.n_classes)
                if c.freeze_branches:
                    for p in [*self.time.parameters(), *self.freq.parameters()]:
                        p.requires_grad_(False)
                    self.train(self.training)

    # -- builders ---------------------------------------------------------

    def _build_simple(self) -> None:
        c = self.config
        ch = c.simple_channels
        stft = c.feature in ("stft", "stft_half")
        pad = "same" if c.pitch else "valid"
        pool = ((3, 3), (2, 2))
        conv2 = Conv2dSame(ch[0], ch[1], 3, 2, bias=False) if stft else nn.Conv2d(ch[0], ch[1], 3, bias=False)
        self.stem = nn.Sequential(
            Conv2dSame(c.in_channels, ch[0], 3, 1 if c.pitch else 2, bias=False),
            keras_batch_norm(ch[0]),
            nn.ReLU(),
            conv2,
            keras_batch_norm(ch[1]),
            nn.ReLU(),
        )
        self.blocks = nn.Sequential(
            _SepBlock(ch[1], ch[2], (3, 3), pad, None),
            *(_SepBlock(ch[i], ch[i + 1], (3, 3), pad, pool) for i in range(2, 6)),
            _SepBlock(ch[6], ch[7], (3, 3), pad, None),
        )
        self.out = nn.Linear(ch[7], c.n_classes)

    def _build_branch(self) -> None:
        c = self.config
        bc = c.block_channels
        if c.variant == "time":
            kernels = [(1, c.n_frames // d) for d in c.time_divisors]
            self.inputs = _InputBank(c.in_channels, c.input_filters, kernels, (1, 2))
            n_in = len(kernels) * c.input_filters
            block_kernel, pad = (1, 9), "valid"
            pool = ((1, 2), (1, 2)) if c.pitch else ((2, 1), (2, 1))
            f, _ = c.time_size()
            flat_kernel = (f, 1)
        else:
            kernels = [(c.n_bins // d, 1) for d in c.divisors]
            self.inputs = _InputBank(c.in_channels, c.input_filters, kernels, (1 if c.pitch else 2, 1))
            n_in = len(kernels) * c.input_filters
            block_kernel, pad = ((3, 1), "same") if c.pitch else ((9, 1), "valid")
            pool = ((1, 2), (1, 2))
            _, t = c.freq_size()
            flat_kernel = (1, t)
        widths = (n_in, *bc)
        self.blocks = nn.Sequential(
            *(
                _SepBlock(widths[i], widths[i + 1], block_kernel, pad, pool if i < 3 else None)
                for i in range(4)
            )
        )
        self.flat = _SepBlock(bc[-1], c.flat_channels, flat_kernel, "valid", None)
        self.out = nn.Linear(c.flat_channels, c.n_classes)

    @property
    def trained_branches(self) -> dict[str, str]:
        """Branches to train before this network, as ``{load_branches argument: architecture}``.

        A TimeFreq with frozen branches stacks trained Time and Freq models; the
        training loop trains them first on the same data. Empty for the others.
        """
        if self.config.variant == "timefreq" and self.config.freeze_branches:
            return {"time": "whitell_time", "freq": "whitell_freq"}
        return {}

    # -- running ----------------------------------------------------------

    def train(self, mode: bool = True) -> WhitellNet:
        """Set training mode; frozen TimeFreq branches stay in eval mode (fixed BatchNorm statistics)."""
        super().train(mode)
        if self.config.variant == "timefreq" and self.config.freeze_branches:
            self.time.eval()
            self.freq.eval()
        return self

    def load_branches(self, time: WhitellNet | dict, freq: WhitellNet | dict) -> None:
        """Load trained Time and Freq models (or their state dicts) into a TimeFreq variant.

        Raises
        ------
        ValueError
            If this is not a TimeFreq variant.
        """
        if self.config.variant not in ("timefreq", "timefreqavg"):
            raise ValueError(f"load_branches needs a TimeFreq variant, not {self.config.variant!r}")
        self.time.load_state_dict(time.state_dict() if isinstance(time, nn.Module) else time)
        self.freq.load_state_dict(freq.state_dict() if isinstance(freq, nn.Module) else freq)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer.

        Parameters
        ----------
        x
            ``[shape=(B, C, n_bins, n_frames)]`` float32.

        Returns
        -------
        torch.Tensor
            ``[shape=(B, config.embedding_dim)]``: 1024 (Simple), 256 (Time, Freq),
            128 (TimeFreq), 512 (TimeFreqAvg: both branch embeddings).
        """
        v = self.config.variant
        if v == "simple":
            x = self.blocks(self.stem(x))  # (B, 1024, F', T')
            return x.mean(dim=(2, 3))  # (B, 1024)
        if v in ("time", "freq"):
            x = self.flat(self.blocks(self.inputs(x)))  # (B, 256, 1, T') or (B, 256, F', 1)
            return x.mean(dim=(2, 3))  # (B, 256)
        if v == "timefreqavg":
            return torch.cat([self.time.embed(x), self.freq.embed(x)], dim=1)  # (B, 512)
        h = torch.cat([self.time(x), self.freq(x)], dim=1)  # (B, 2 * n_classes)
        for layer in self.head:
            h = self.drop(F.relu(layer(h)))  # (B, units)
        return h  # (B, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[shape=(B, n_classes)]`` of ``[shape=(B, C, n_bins, n_frames)]``."""
        if self.config.variant == "timefreqavg":
            return (self.time(x) + self.freq(x)) / 2  # (B, n_classes)
        return self.out(self.embed(x))
