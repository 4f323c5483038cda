"""EfficientAT's MobileNetV3 audio tagger (Schmid, Koutini & Widmer, ICASSP 2023) in PyTorch.

The network is torchvision's MobileNetV3-Large layout with every channel count scaled
by ``width_mult`` (0.4 for ``mn04_as``), one input channel (a log-mel spectrogram) and
527 AudioSet outputs. It was trained on AudioSet by knowledge distillation from PaSST.
This module is written from the published facts and the checkpoint's key names and
shapes; the layer names are those of the released state dicts, so they load with
``strict=True`` (``tools/convert_efficientat.py``).

Where EfficientAT differs from torchvision's MobileNetV3:

* the squeeze-and-excitation gate is a **sigmoid**, not a hard sigmoid, and its two
  layers are ``nn.Linear`` (``conc_se_layers.0.fc1/fc2``) on the channel means over
  frequency and time; the squeeze width is ``make_divisible(expanded // 4, 8)``. The
  released models use one SE on the channel axis only (EfficientAT's ``se_dims='c'``),
  whose "concurrent" max-aggregation over one branch is the branch itself;
* the classifier (``classifier.2``, ``classifier.5``) is global average pooling ->
  ``Linear(6 * last_block_channels, make_divisible(1280 * width_mult, 8))`` ->
  Hardswish -> Dropout -> ``Linear(..., 527)``.

Shared with torchvision: convolutions without bias, BatchNorm ``eps = 1e-3``, padding
``(kernel - 1) // 2``, a stride-2 stem conv (Hardswish), strides 2 at the four "C"
blocks (1, 3, 6 and 12, counting from 0), ReLU in the first six blocks and Hardswish
after, and a residual connection wherever the stride is 1 and the width is kept.

Dropout is omitted: it is the identity at inference, and this module is meant for
inference. Call ``.eval()`` before use, or the BatchNorms use batch statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "MOBILENET_V3_LARGE",
    "BlockSpec",
    "EfficientAT",
    "EfficientATConfig",
    "block_specs",
    "load_efficientat",
    "make_divisible",
]


@dataclass(frozen=True)
class BlockSpec:
    """One inverted-residual block (the columns of MobileNetV3's Table 1).

    Attributes
    ----------
    in_ch, expanded, out_ch
        Channels in, after the 1x1 expansion (= ``in_ch``: no expansion layer), and out.
    kernel
        Depthwise kernel size (square).
    se
        Squeeze-and-excitation after the depthwise conv.
    hardswish
        Hardswish activations (else ReLU).
    stride
        Depthwise stride (both axes).
    """

    in_ch: int
    kernel: int
    expanded: int
    out_ch: int
    se: bool
    hardswish: bool
    stride: int


#: torchvision's MobileNetV3-Large at width 1: (in, kernel, expanded, out, SE, Hardswish, stride).
#: The four stride-2 rows (1, 3, 6, 12) take ``EfficientATConfig.strides`` in order.
MOBILENET_V3_LARGE: tuple[tuple[int, int, int, int, bool, bool, int], ...] = (
    (16, 3, 16, 16, False, False, 1),
    (16, 3, 64, 24, False, False, 2),
    (24, 3, 72, 24, False, False, 1),
    (24, 5, 72, 40, True, False, 2),
    (40, 5, 120, 40, True, False, 1),
    (40, 5, 120, 40, True, False, 1),
    (40, 3, 240, 80, False, True, 2),
    (80, 3, 200, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 480, 112, True, True, 1),
    (112, 3, 672, 112, True, True, 1),
    (112, 5, 672, 160, True, True, 2),
    (160, 5, 960, 160, True, True, 1),
    (160, 5, 960, 160, True, True, 1),
)
_STRIDED_ROWS = (1, 3, 6, 12)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of ``divisor`` (torchvision's rule).

    The result is at least ``divisor`` and never more than 10 % below ``value``.
    """
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


@dataclass(frozen=True)
class EfficientATConfig:
    """Hyper-parameters of an EfficientAT MobileNetV3; the defaults build ``mn04_as``.

    Attributes
    ----------
    width_mult
        Scales every channel count (``mn04`` = 0.4, ``mn10`` = 1.0).
    n_mels
        Mel bands of the input (the network's frequency axis).
    n_frames
        Input length the checkpoint was trained on: 10 s at hop 320 and 32 kHz. The
        network is convolutional up to global pooling and accepts any length.
    n_labels
        Outputs (AudioSet's 527 classes).
    strides
        Strides of the four downsampling blocks (EfficientAT's ``strides`` option).
    stem_channels, last_block_channels
        Width-1 channels of the stem conv and of the last block (scaled by ``width_mult``).
    head_channels
        Width-1 size of the classifier's hidden layer (scaled: 512 at 0.4).
    se_ratio
        Squeeze factor of the SE blocks.
    bn_eps
        BatchNorm epsilon (torchvision's MobileNetV3 value; PyTorch's default is 1e-5).
    """

    width_mult: float = 0.4
    n_mels: int = 128
    n_frames: int = 1000  # 1 + (10 s * 32000 - 1) // 320: pre-emphasis drops one sample
    n_labels: int = 527
    strides: tuple[int, ...] = (2, 2, 2, 2)
    stem_channels: int = 16
    last_block_channels: int = 160
    head_channels: int = 1280
    se_ratio: int = 4
    bn_eps: float = 1e-3

    def __post_init__(self) -> None:
        if not self.width_mult > 0:
            raise ValueError(f"width_mult must be positive, got {self.width_mult!r}")
        if len(self.strides) != len(_STRIDED_ROWS) or any(s not in (1, 2) for s in self.strides):
            raise ValueError(f"strides must be four values of 1 or 2, got {self.strides!r}")
        for name in ("n_mels", "n_frames", "n_labels", "se_ratio"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> EfficientATConfig:
        """Rebuild a config from ``asdict`` output (e.g. a model card), lists becoming tuples.

        Raises
        ------
        ValueError
            On an unknown key.
        """
        from mcbr_core.models.checkpoint import config_from_dict

        return config_from_dict(cls, cfg, what="EfficientAT config")

    def channels(self, width1: int) -> int:
        """A width-1 channel count scaled by ``width_mult``."""
        return make_divisible(width1 * self.width_mult)

    @property
    def pooled_dim(self) -> int:
        """Channels of the last conv, globally pooled (384 for ``mn04``)."""
        return 6 * self.channels(self.last_block_channels)

    @property
    def embedding_dim(self) -> int:
        """Width of the classifier's hidden layer, the embedding (512 for ``mn04``)."""
        return self.channels(self.head_channels)


def block_specs(config: EfficientATConfig) -> list[BlockSpec]:
    """The 15 inverted-residual blocks of ``config``, channels scaled and strides set."""
    strides = dict(zip(_STRIDED_ROWS, config.strides, strict=True))
    specs = []
    for i, (cin, k, exp, cout, se, hs, _) in enumerate(MOBILENET_V3_LARGE):
        specs.append(
            BlockSpec(
                in_ch=config.channels(cin),
                kernel=k,
                expanded=config.channels(exp),
                out_ch=config.channels(cout),
                se=se,
                hardswish=hs,
                stride=strides.get(i, 1),
            )
        )
    return specs


def _conv_bn(
    in_ch: int,
    out_ch: int,
    kernel: int,
    *,
    stride: int = 1,
    groups: int = 1,
    act: type[nn.Module] | None,
    eps: float,
) -> nn.Sequential:
    """Conv2d (no bias) -> BatchNorm2d [-> activation]: keys ``.0`` and ``.1``, as torchvision's ConvNormActivation."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=(kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch, eps=eps),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class _SqueezeExcite(nn.Module):
    """Channel gate: mean over (F, T) -> Linear -> ReLU -> Linear -> sigmoid, times the input."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, squeeze)
        self.fc2 = nn.Linear(squeeze, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[shape=(B, C, F, T)]`` -> same shape."""
        s = x.mean(dim=(2, 3))  # (B, C)
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))  # (B, C)
        return x * s[:, :, None, None]  # (B, C, F, T)


class _ConcurrentSE(nn.Module):
    """EfficientAT's container of SE branches (``conc_se_layers``), max-aggregated.

    The released models have one branch, on the channel axis, so this is that branch.
    """

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.conc_se_layers = nn.ModuleList([_SqueezeExcite(channels, squeeze)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[shape=(B, C, F, T)]`` -> same shape."""
        out = self.conc_se_layers[0](x)
        for layer in self.conc_se_layers[1:]:
            out = torch.maximum(out, layer(x))
        return out


class _InvertedResidual(nn.Module):
    """[1x1 expand] -> depthwise kxk -> [SE] -> 1x1 project (no activation) [+ input]."""

    def __init__(self, spec: BlockSpec, config: EfficientATConfig) -> None:
        super().__init__()
        act = nn.Hardswish if spec.hardswish else nn.ReLU
        eps = config.bn_eps
        layers: list[nn.Module] = []
        if spec.expanded != spec.in_ch:
            layers.append(_conv_bn(spec.in_ch, spec.expanded, 1, act=act, eps=eps))
        layers.append(
            _conv_bn(
                spec.expanded,
                spec.expanded,
                spec.kernel,
                stride=spec.stride,
                groups=spec.expanded,
                act=act,
                eps=eps,
            )
        )
        if spec.se:
            layers.append(_ConcurrentSE(spec.expanded, make_divisible(spec.expanded // config.se_ratio)))
        layers.append(_conv_bn(spec.expanded, spec.out_ch, 1, act=None, eps=eps))
        self.block = nn.Sequential(*layers)
        self.residual = spec.stride == 1 and spec.in_ch == spec.out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[shape=(B, in_ch, F, T)]`` -> ``[shape=(B, out_ch, F / stride, T / stride)]``."""
        out = self.block(x)
        return out + x if self.residual else out


class EfficientAT(nn.Module):
    """The EfficientAT MobileNetV3 tagger (``mn04_as`` with the default config).

    Parameters
    ----------
    config
        Hyper-parameters; the default builds ``mn04_as`` (0.99 M parameters).

    Notes
    -----
    Module names follow the released state dicts: ``features.0`` is the stem,
    ``features.1`` .. ``features.15`` the blocks, ``features.16`` the last 1x1 conv,
    and ``classifier.2`` / ``classifier.5`` the two linear layers (indices 0, 1, 3 and 4
    of EfficientAT's classifier are pooling, flattening, Hardswish and Dropout, which
    hold no weights and are applied in :meth:`embed_pooled` and :meth:`forward_features`).
    """

    def __init__(self, config: EfficientATConfig | None = None) -> None:
        super().__init__()
        cfg = config or EfficientATConfig()
        self.config = cfg
        specs = block_specs(cfg)
        eps = cfg.bn_eps
        last = specs[-1].out_ch
        layers: list[nn.Module] = [_conv_bn(1, specs[0].in_ch, 3, stride=2, act=nn.Hardswish, eps=eps)]
        layers += [_InvertedResidual(s, cfg) for s in specs]
        layers.append(_conv_bn(last, cfg.pooled_dim, 1, act=nn.Hardswish, eps=eps))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.ModuleDict(
            {
                "2": nn.Linear(cfg.pooled_dim, cfg.embedding_dim),
                "5": nn.Linear(cfg.embedding_dim, cfg.n_labels),
            }
        )

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The last conv's output averaged over frequency and time, ``[shape=(B, 384)]``.

        Parameters
        ----------
        x
            Log-mel patches ``[shape=(B, 1, n_mels, T)]`` as made by ``EfficientATMel``.
            Any ``T >= 1`` works; the checkpoint was trained on ``T = 1000``.
        """
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != self.config.n_mels:
            raise ValueError(f"expected input of shape (B, 1, {self.config.n_mels}, T), got {tuple(x.shape)}")
        h = self.features(x)  # (B, 384, F / 32, T / 32)
        return h.mean(dim=(2, 3))  # (B, 384)

    def embed_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """The hidden layer ``[shape=(B, 512)]`` (after its Hardswish) of :meth:`pooled` features."""
        return nn.functional.hardswish(self.classifier["2"](pooled))

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and embedding in one pass.

        Parameters
        ----------
        x
            Log-mel patches ``[shape=(B, 1, n_mels, T)]``.

        Returns
        -------
        logits : torch.Tensor
            ``[shape=(B, n_labels)]``, before the sigmoid.
        embedding : torch.Tensor
            ``[shape=(B, embedding_dim)]``, the classifier's hidden layer after its
            Hardswish (the penultimate layer; Dropout is the identity at inference).
        """
        emb = self.embed_pooled(self.pooled(x))  # (B, 512)
        return self.classifier["5"](emb), emb

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tag logits ``[shape=(B, n_labels)]`` for patches ``[shape=(B, 1, F, T)]`` (no sigmoid)."""
        return self.forward_features(x)[0]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate embedding ``[shape=(B, embedding_dim)]`` for patches ``[shape=(B, 1, F, T)]``."""
        return self.forward_features(x)[1]


def load_efficientat(path: str | Path) -> tuple[EfficientAT, dict[str, Any]]:
    """An EfficientAT model file as a network in eval mode on the CPU, and its card.

    Raises
    ------
    ModelError
        If the card's architecture config or the weights do not fit the network.
    """
    from mcbr_core.errors import ModelError
    from mcbr_core.models.checkpoint import load_model

    tensors, card = load_model(path, device="cpu")
    try:
        config = EfficientATConfig.from_dict(card["architecture"]["config"])
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{path}: architecture config does not fit EfficientAT ({exc})") from exc
    net = EfficientAT(config)
    try:
        net.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not fit EfficientAT ({str(exc).splitlines()[0]})") from None
    return net.eval(), card
