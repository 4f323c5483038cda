"""musicnn (Pons & Serra 2019) in PyTorch, numerically equal to the TF1 original.

The network is the "7774timbraltemporal" front-end, the dense (residual) mid-end
and the "globalpool_dense" back-end of ``musicnn/models.py`` (musicnn 0.1.0, ISC
licence, Copyright (c) Music Technology Group, Universitat Pompeu Fabra 2019).
The pretrained MSD_musicnn / MTT_musicnn checkpoints map onto it with
:func:`state_dict_from_tf`; ``tools/convert_musicnn.py`` writes them as model
files.

Details that matter for exactness (see ``shared/reference/musicnn.md``):

* every layer is conv (or matmul) + bias -> ReLU -> BatchNorm, not conv -> BN -> ReLU;
* every BatchNorm has ``eps = 1e-3`` (the TF default);
* time padding comes *after* the input BatchNorm, so padded frames are 0 in the
  normalised domain;
* the temporal convolutions use TF ``SAME`` padding with even kernels, which pads
  the end one frame more than the start;
* the 1506-d pooled vector is interleaved ``(max_0, mean_0, max_1, mean_1, ...)``.

Dropout (rate 0.5, before each dense layer) is omitted: it is the identity at
inference, and these modules are meant for inference only. Call ``.eval()``
before use, or the BatchNorms use batch statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from mcbr_core.models.musicnn_vgg import MusicnnVgg

__all__ = [
    "Musicnn",
    "MusicnnConfig",
    "checked",
    "load_musicnn",
    "state_dict_from_tf",
    "tf_batchnorm",
    "tf_tensor",
]


@dataclass(frozen=True)
class MusicnnConfig:
    """Hyper-parameters of musicnn; the defaults are those of MSD_musicnn and MTT_musicnn.

    Attributes
    ----------
    n_mels
        Mel bands of the input (the network's frequency axis).
    n_frames
        Patch length the checkpoints were trained on (3 s at 16 kHz / hop 256).
        The network itself accepts any length.
    timbral_filters, temporal_filters
        Filters per front-end branch.
    timbral_kernel_time
        Time extent (frames) of the timbral kernels.
    timbral_kernel_freqs
        Frequency extents (mel bands) of the two timbral kernels.
    temporal_lengths
        Time extents (frames) of the three temporal kernels (width 1 in frequency).
    midend_filters, midend_kernel_time
        Channels and time extent of the three mid-end convolutions.
    dense_units
        Width of the penultimate dense layer (the embedding).
    n_labels
        Output tags.
    bn_eps
        BatchNorm epsilon.
    """

    n_mels: int = 96
    n_frames: int = 187  # floor((3 s * 16000 - 256) / 256) + 1
    timbral_filters: int = 204  # int(1.6 * 128)
    temporal_filters: int = 51  # int(1.6 * 32)
    timbral_kernel_time: int = 7
    timbral_kernel_freqs: tuple[int, ...] = (38, 67)  # int(0.4 * 96), int(0.7 * 96)
    temporal_lengths: tuple[int, ...] = (128, 64, 32)
    midend_filters: int = 64
    midend_kernel_time: int = 7
    dense_units: int = 200
    n_labels: int = 50
    bn_eps: float = 1e-3  # tf.layers.batch_normalization default (PyTorch's is 1e-5)

    def __post_init__(self) -> None:
        if max(self.timbral_kernel_freqs) > self.n_mels:
            raise ValueError(f"timbral kernel widths {self.timbral_kernel_freqs} exceed n_mels={self.n_mels}")
        for name in ("timbral_kernel_time", "midend_kernel_time"):
            if getattr(self, name) % 2 != 1:
                raise ValueError(f"{name} must be odd (symmetric padding keeps the length)")

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> MusicnnConfig:
        """Rebuild a config from ``asdict`` output (e.g. a model card), lists becoming tuples.

        Raises
        ------
        ValueError
            On an unknown key.
        """
        from mcbr_core.models.checkpoint import config_from_dict

        return config_from_dict(cls, cfg, what="musicnn config")

    @property
    def frontend_channels(self) -> int:
        """Channels of the concatenated front-end map (561 for the defaults)."""
        return (
            len(self.timbral_kernel_freqs) * self.timbral_filters
            + len(self.temporal_lengths) * self.temporal_filters
        )

    @property
    def pooled_channels(self) -> int:
        """Channels that are pooled over time: front-end plus three mid-end maps (753)."""
        return self.frontend_channels + 3 * self.midend_filters


class _Conv2dBlock(nn.Module):
    """Conv2d (+bias) -> ReLU -> BatchNorm2d -> max over the whole frequency axis.

    ``pad_time`` is ``(before, after)`` zero frames added to the time axis first.
    """

    def __init__(self, out_ch: int, kernel: tuple[int, int], pad_time: tuple[int, int], eps: float) -> None:
        super().__init__()
        self.pad_time = pad_time
        self.conv = nn.Conv2d(1, out_ch, kernel)
        self.bn = nn.BatchNorm2d(out_ch, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``[shape=(B, 1, T, F)]`` to ``[shape=(B, out_ch, T)]``."""
        x = F.pad(x, (0, 0, *self.pad_time))  # (B, 1, T + pads, F)
        x = self.bn(F.relu(self.conv(x)))  # (B, out_ch, T, F')
        return x.amax(dim=3)


class _Conv1dBlock(nn.Module):
    """Zero-pad time -> Conv1d (+bias) -> ReLU -> BatchNorm1d, time length kept."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, eps: float) -> None:
        super().__init__()
        self.pad = kernel // 2
        self.conv = nn.Conv1d(in_ch, out_ch, kernel)
        self.bn = nn.BatchNorm1d(out_ch, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``[shape=(B, in_ch, T)]`` to ``[shape=(B, out_ch, T)]``."""
        return self.bn(F.relu(self.conv(F.pad(x, (self.pad, self.pad)))))


class Musicnn(nn.Module):
    """The musicnn tagger.

    Parameters
    ----------
    config
        Hyper-parameters; the default builds MSD_musicnn / MTT_musicnn.

    Notes
    -----
    Internally the spectrogram is laid out as ``(B, 1, T, F)`` (height = time,
    width = frequency), the NCHW image of TF's NHWC ``(B, T, F, 1)``, so TF
    kernels map with a plain permute. Frequency is never padded; the front-end
    max-pools it away completely.
    """

    def __init__(self, config: MusicnnConfig | None = None) -> None:
        super().__init__()
        cfg = config or MusicnnConfig()
        self.config = cfg
        eps = cfg.bn_eps
        kt = cfg.timbral_kernel_time
        self.bn_in = nn.BatchNorm2d(1, eps=eps)  # one scalar mean/var for the whole spectrogram
        self.timbral = nn.ModuleList(
            _Conv2dBlock(cfg.timbral_filters, (kt, kf), (kt // 2, kt // 2), eps)
            for kf in cfg.timbral_kernel_freqs
        )
        # TF SAME with an even kernel k: floor((k-1)/2) frames before, the rest (one more) after.
        self.temporal = nn.ModuleList(
            _Conv2dBlock(cfg.temporal_filters, (k, 1), ((k - 1) // 2, k - 1 - (k - 1) // 2), eps)
            for k in cfg.temporal_lengths
        )
        mid, km = cfg.midend_filters, cfg.midend_kernel_time
        self.midend = nn.ModuleList(
            [
                _Conv1dBlock(cfg.frontend_channels, mid, km, eps),
                _Conv1dBlock(mid, mid, km, eps),
                _Conv1dBlock(mid, mid, km, eps),
            ]
        )
        self.bn_pool = nn.BatchNorm1d(2 * cfg.pooled_channels, eps=eps)
        self.dense = nn.Linear(2 * cfg.pooled_channels, cfg.dense_units)
        self.bn_dense = nn.BatchNorm1d(cfg.dense_units, eps=eps)
        self.out = nn.Linear(cfg.dense_units, cfg.n_labels)

    def front_end(self, x: torch.Tensor) -> torch.Tensor:
        """The timbral and temporal front-end ``[shape=(B, 561, T)]`` of patches ``[shape=(B, 1, n_mels, T)]``."""
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != self.config.n_mels:
            raise ValueError(f"expected input of shape (B, 1, {self.config.n_mels}, T), got {tuple(x.shape)}")
        x = self.bn_in(x.transpose(2, 3))  # (B, 1, T, F)
        return torch.cat([blk(x) for blk in self.timbral] + [blk(x) for blk in self.temporal], dim=1)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and penultimate embedding in one pass.

        Parameters
        ----------
        x
            Log-mel patches ``[shape=(B, 1, F=n_mels, T)]`` (channel, mel, time),
            as made by ``MusicnnMel`` and ``patches``. Any ``T >= 1`` works; the
            checkpoints were trained on ``T = 187``.

        Returns
        -------
        logits : torch.Tensor
            ``[shape=(B, n_labels)]``, before the sigmoid.
        embedding : torch.Tensor
            ``[shape=(B, dense_units)]``, the output of the BatchNorm after the
            first dense layer (musicnn's "penultimate").
        """
        emb = self.embed_pooled(self.pooled(x))  # (B, 200)
        return self.out(emb), emb

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Front-end and mid-end features pooled over time, ``[shape=(B, 1506)]``.

        Max and mean of each of the 753 channels, interleaved ``(max_0, mean_0,
        max_1, ...)``: the back-end's input (musicnn's "max_pool" layer and its mean).
        """
        fe = self.front_end(x)  # (B, 561, T)
        m1 = self.midend[0](fe)  # (B, 64, T)
        m2 = self.midend[1](m1) + m1  # (B, 64, T)
        m3 = self.midend[2](m2) + m2  # (B, 64, T)
        return pool_max_mean(torch.cat([fe, m1, m2, m3], dim=1))  # (B, 1506)

    def embed_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """The penultimate embedding ``[shape=(B, dense_units)]`` of :meth:`pooled` features."""
        return self.bn_dense(F.relu(self.dense(self.bn_pool(pooled))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tag logits ``[shape=(B, n_labels)]`` for patches ``[shape=(B, 1, F, T)]`` (no sigmoid)."""
        return self.forward_features(x)[0]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate embedding ``[shape=(B, dense_units)]`` for patches ``[shape=(B, 1, F, T)]``."""
        return self.forward_features(x)[1]


def pool_max_mean(h: torch.Tensor) -> torch.Tensor:
    """Max and mean over time of ``[shape=(B, C, T)]``, interleaved per channel: ``[shape=(B, 2 * C)]``."""
    return torch.stack([h.amax(dim=2), h.mean(dim=2)], dim=2).reshape(h.shape[0], -1)


def load_musicnn(path: str | Path) -> tuple[Musicnn | MusicnnVgg, dict[str, Any]]:
    """A musicnn model file (family ``musicnn`` or ``musicnn-vgg``) as a network in eval mode on the CPU, and its card.

    Raises
    ------
    ModelError
        If the card's family or architecture config, or the weights, do not fit.
    """
    from mcbr_core.errors import ModelError
    from mcbr_core.models.checkpoint import config_from_dict, load_model
    from mcbr_core.models.musicnn_vgg import MusicnnVgg, MusicnnVggConfig

    families: dict[str, tuple[type[nn.Module], Any]] = {
        "musicnn": (Musicnn, MusicnnConfig),
        "musicnn-vgg": (MusicnnVgg, MusicnnVggConfig),
    }
    tensors, card = load_model(path, device="cpu")
    family = card["architecture"].get("family", "musicnn")
    if family not in families:
        raise ModelError(f"{path}: architecture family {family!r} is not {' or '.join(families)}")
    net_cls, cfg_cls = families[family]
    try:
        net = net_cls(config_from_dict(cfg_cls, card["architecture"]["config"], what=f"{family} config"))
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{path}: architecture config does not fit {family} ({exc})") from exc
    missing, unexpected = net.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise ModelError(
            f"{path}: weights do not fit {family} (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return net.eval(), card


def _tf_layer_names(config: MusicnnConfig) -> list[tuple[str, str, str]]:
    """``(module prefix, TF conv/dense name, TF BN name)`` in TF creation order.

    TF named layers by creation order: the input BN first, then per front-end
    branch a conv and its BN, the mid-end, and the back-end (BN, dense, BN, dense).
    """
    rows: list[tuple[str, str, str]] = [("bn_in", "", "batch_normalization")]
    conv_i, bn_i = 0, 1

    def name(base: str, i: int) -> str:
        return base if i == 0 else f"{base}_{i}"

    blocks = [f"timbral.{i}" for i in range(len(config.timbral_kernel_freqs))]
    blocks += [f"temporal.{i}" for i in range(len(config.temporal_lengths))]
    blocks += [f"midend.{i}" for i in range(3)]
    for prefix in blocks:
        rows.append((prefix, name("conv2d", conv_i), name("batch_normalization", bn_i)))
        conv_i, bn_i = conv_i + 1, bn_i + 1
    rows.append(("bn_pool", "", name("batch_normalization", bn_i)))
    rows.append(("dense", "dense", ""))
    rows.append(("bn_dense", "", name("batch_normalization", bn_i + 1)))
    rows.append(("out", "dense_1", ""))
    return rows


def state_dict_from_tf(
    tf: Mapping[str, np.ndarray], config: MusicnnConfig | None = None
) -> dict[str, torch.Tensor]:
    """Map musicnn TF checkpoint variables to a :class:`Musicnn` state dict.

    Parameters
    ----------
    tf
        The 64 inference variables (``read_tf_bundle`` output; optimizer slots
        are ignored if present).
    config
        The architecture the checkpoint belongs to (default: MSD/MTT musicnn).

    Returns
    -------
    dict[str, torch.Tensor]
        float32 tensors keyed like ``Musicnn(config).state_dict()``, without the
        BatchNorms' ``num_batches_tracked`` counters (PyTorch fills those in).

    Raises
    ------
    KeyError
        If a variable is missing.
    ValueError
        If a variable has an unexpected shape.
    """
    cfg = config or MusicnnConfig()
    out: dict[str, torch.Tensor] = {}
    for prefix, lin, bn in _tf_layer_names(cfg):
        if bn:
            out |= tf_batchnorm(tf, prefix if not lin else f"{prefix}.bn", bn)
        if lin:
            kernel = tf_tensor(tf, f"{lin}/kernel")
            if prefix.startswith("midend."):
                # TF [kh=time, kw=C_in, 1, out] -> Conv1d [out, C_in, time]
                weight = kernel[:, :, 0, :].permute(2, 1, 0)  # (out, C_in, kh)
                key = f"{prefix}.conv"
            elif prefix.startswith(("timbral.", "temporal.")):
                weight = kernel.permute(3, 2, 0, 1)  # (out, in, kh=time, kw=freq)
                key = f"{prefix}.conv"
            else:
                weight = kernel.T  # (out, in)
                key = prefix
            out[f"{key}.weight"] = weight.contiguous()
            out[f"{key}.bias"] = tf_tensor(tf, f"{lin}/bias")
    return checked(out, Musicnn(cfg))


def tf_tensor(tf: Mapping[str, np.ndarray], name: str) -> torch.Tensor:
    """TF variable ``name`` as a float32 tensor of its own (``KeyError`` if missing)."""
    return torch.from_numpy(np.asarray(tf[name], dtype=np.float32).copy())


def tf_batchnorm(tf: Mapping[str, np.ndarray], prefix: str, name: str) -> dict[str, torch.Tensor]:
    """TF BatchNorm ``name`` (gamma, beta, moving mean and variance) as ``prefix.*`` BatchNorm entries."""
    parts = {
        "weight": "gamma",
        "bias": "beta",
        "running_mean": "moving_mean",
        "running_var": "moving_variance",
    }
    return {f"{prefix}.{ours}": tf_tensor(tf, f"{name}/{theirs}") for ours, theirs in parts.items()}


def checked(out: dict[str, torch.Tensor], net: nn.Module) -> dict[str, torch.Tensor]:
    """``out`` if its keys and shapes are exactly ``net``'s state dict (BN counters aside), else ``ValueError``."""
    expected = {k: v.shape for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    if expected.keys() != out.keys():
        raise ValueError(
            f"mapped keys differ from {type(net).__name__}'s: {sorted(expected.keys() ^ out.keys())}"
        )
    for key, shape in expected.items():
        if out[key].shape != shape:
            raise ValueError(f"{key}: TF variable has shape {tuple(out[key].shape)}, expected {tuple(shape)}")
    return out
