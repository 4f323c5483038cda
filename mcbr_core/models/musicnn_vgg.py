"""musicnn's VGG baseline taggers (MSD_vgg, MTT_vgg) in PyTorch.

The network is ``vgg`` of ``musicnn/models.py`` (musicnn 0.1.0, ISC licence,
Copyright (c) Music Technology Group, Universitat Pompeu Fabra 2019), called there
with 128 filters: an input BatchNorm, then five blocks of 3x3 conv (TF ``SAME``) ->
ReLU -> BatchNorm -> max-pool (TF ``VALID``), flattened into one dense layer of 50
logits. The pretrained MSD_vgg / MTT_vgg checkpoints map onto it with
:func:`state_dict_from_tf`; ``tools/convert_musicnn.py`` writes them as model files.

Details that matter for exactness:

* as in musicnn, the order is conv + bias -> ReLU -> BatchNorm, and every
  BatchNorm has ``eps = 1e-3``;
* the pooling differs between the two checkpoints. MTT_vgg was trained with the
  pooling ``vgg`` in the wheel has: ``(time, freq)`` window (4, 1) with stride 2
  after the first block (so only every other mel band survives), (2, 2) after the
  next three and (4, 4) after the last. MSD_vgg's training graph (the ``.meta``
  beside its checkpoint) pools (4, 1) with stride (4, 1), then (1, 4) with stride
  (1, 4), then the same as MTT. Both end in the same map size, so the wheel's code
  loads MSD_vgg into the MTT pooling without complaint, and its MSD_vgg outputs are
  not those of the trained network; the converter stores each checkpoint's own
  pooling in its card (the defaults here are MTT_vgg's). TF's ``VALID`` pooling
  drops what does not fill a window, like PyTorch's default;
* a 187 x 96 patch ends as a 2 x 1 x 128 map, flattened in TF's NHWC order
  ``(t, f, c)``, which is the order the dense kernel expects. The dense layer fixes
  the input length: musicnn refuses ``input_length != 3`` for the VGG models.

Dropout (0.25 after each pooling, 0.5 before the dense layer) is the identity at
inference and is omitted. Call ``.eval()`` before use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MSD_VGG", "MusicnnVgg", "MusicnnVggConfig", "state_dict_from_tf"]


@dataclass(frozen=True)
class MusicnnVggConfig:
    """Hyper-parameters of musicnn's VGG; the defaults are those of MTT_vgg (see :data:`MSD_VGG`).

    Attributes
    ----------
    n_mels, n_frames
        Input patch size: 96 mel bands by 187 frames (3 s at 16 kHz / hop 256). Unlike
        musicnn, the network takes only this length: the dense layer sees the flattened map.
    filters
        Channels of every conv layer.
    pool_time, pool_freq
        Max-pool window of each block along time and frequency (one entry per block).
    stride_time, stride_freq
        Max-pool stride of each block along time and frequency.
    n_labels
        Output tags.
    bn_eps
        BatchNorm epsilon.
    """

    n_mels: int = 96
    n_frames: int = 187  # musicnn's time_to_frames(3 s) + 1
    filters: int = 128  # models.define_model passes 128 (vgg's own default is 32)
    pool_time: tuple[int, ...] = (4, 2, 2, 2, 4)  # MTT_vgg's; MSD_vgg's: (4, 1, 2, 2, 4)
    pool_freq: tuple[int, ...] = (1, 2, 2, 2, 4)  # MTT_vgg's; MSD_vgg's: (1, 4, 2, 2, 4)
    stride_time: tuple[int, ...] = (2, 2, 2, 2, 4)  # MTT: block 1 pools time only but strides both axes
    stride_freq: tuple[int, ...] = (2, 2, 2, 2, 4)  # MSD_vgg's strides equal its windows
    n_labels: int = 50
    bn_eps: float = 1e-3  # tf.layers.batch_normalization default (PyTorch's is 1e-5)

    def __post_init__(self) -> None:
        if len({len(self.pool_time), len(self.pool_freq), len(self.stride_time), len(self.stride_freq)}) != 1:
            raise ValueError("pool_time, pool_freq, stride_time and stride_freq need one entry per block")
        if min(self.pooled_size) < 1:
            raise ValueError(f"a {self.n_frames} x {self.n_mels} patch pools away to nothing")

    @property
    def pooled_size(self) -> tuple[int, int]:
        """``(time, freq)`` size of the last block's output ((2, 1) for the defaults)."""
        t, f = self.n_frames, self.n_mels
        for pt, pf, st, sf in self.pools():
            t, f = (t - pt) // st + 1, (f - pf) // sf + 1  # VALID pooling
        return t, f

    def pools(self) -> list[tuple[int, int, int, int]]:
        """``(pool_time, pool_freq, stride_time, stride_freq)`` of each block."""
        return list(zip(self.pool_time, self.pool_freq, self.stride_time, self.stride_freq, strict=True))

    @property
    def embedding_dim(self) -> int:
        """Size of the flattened last block, the dense layer's input (256 for the defaults)."""
        t, f = self.pooled_size
        return t * f * self.filters


class _VggBlock(nn.Module):
    """3x3 Conv2d (+bias, zero pad 1 = TF SAME) -> ReLU -> BatchNorm2d -> max-pool (VALID)."""

    def __init__(
        self, in_ch: int, out_ch: int, pool: tuple[int, int], stride: tuple[int, int], eps: float
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.bn = nn.BatchNorm2d(out_ch, eps=eps)
        self.pool = nn.MaxPool2d(pool, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``[shape=(B, in_ch, T, F)]`` to ``[shape=(B, out_ch, T', F')]``."""
        return self.pool(self.bn(F.relu(self.conv(x))))


class MusicnnVgg(nn.Module):
    """musicnn's VGG tagger.

    Parameters
    ----------
    config
        Hyper-parameters; the default builds MTT_vgg, :data:`MSD_VGG` MSD_vgg.

    Notes
    -----
    Internally the spectrogram is laid out as ``(B, 1, T, F)`` (height = time,
    width = frequency), the NCHW image of TF's NHWC ``(B, T, F, 1)``, so TF
    kernels map with a plain permute.
    """

    def __init__(self, config: MusicnnVggConfig | None = None) -> None:
        super().__init__()
        cfg = config or MusicnnVggConfig()
        self.config = cfg
        self.bn_in = nn.BatchNorm2d(1, eps=cfg.bn_eps)  # one scalar mean/var for the whole spectrogram
        self.blocks = nn.ModuleList(
            _VggBlock(1 if i == 0 else cfg.filters, cfg.filters, (pt, pf), (st, sf), cfg.bn_eps)
            for i, (pt, pf, st, sf) in enumerate(cfg.pools())
        )
        self.dense = nn.Linear(cfg.embedding_dim, cfg.n_labels)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and embedding in one pass.

        Parameters
        ----------
        x
            Log-mel patches ``[shape=(B, 1, F=n_mels, T=n_frames)]`` (channel, mel,
            time), as made by ``MusicnnMel`` and ``patches``.

        Returns
        -------
        logits : torch.Tensor
            ``[shape=(B, n_labels)]``, before the sigmoid.
        embedding : torch.Tensor
            ``[shape=(B, embedding_dim)]``, the last block's output (musicnn's
            ``pool5``) flattened in TF order: the dense layer's input.

        Raises
        ------
        ValueError
            If ``x`` is not ``(B, 1, n_mels, n_frames)``.
        """
        cfg = self.config
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, cfg.n_mels, cfg.n_frames):
            raise ValueError(
                f"expected input of shape (B, 1, {cfg.n_mels}, {cfg.n_frames}), got {tuple(x.shape)}"
            )
        h = self.bn_in(x.transpose(2, 3))  # (B, 1, T, F)
        for blk in self.blocks:
            h = blk(h)  # (B, filters, T', F')
        emb = h.permute(0, 2, 3, 1).flatten(1)  # (B, T' * F' * filters), TF's NHWC flatten
        return self.dense(emb), emb

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tag logits ``[shape=(B, n_labels)]`` for patches ``[shape=(B, 1, F, T)]`` (no sigmoid)."""
        return self.forward_features(x)[0]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Flattened ``pool5`` embedding ``[shape=(B, embedding_dim)]`` for patches ``[shape=(B, 1, F, T)]``."""
        return self.forward_features(x)[1]


#: MSD_vgg as its training graph (``musicnn/MSD_vgg/.meta``) pools: (4, 1) / (4, 1), then (1, 4) / (1, 4)
MSD_VGG = MusicnnVggConfig(
    pool_time=(4, 1, 2, 2, 4),
    pool_freq=(1, 4, 2, 2, 4),
    stride_time=(4, 1, 2, 2, 4),
    stride_freq=(1, 4, 2, 2, 4),
)


def state_dict_from_tf(
    tf: Mapping[str, np.ndarray], config: MusicnnVggConfig | None = None
) -> dict[str, torch.Tensor]:
    """Map MSD_vgg / MTT_vgg TF checkpoint variables to a :class:`MusicnnVgg` state dict.

    TF names the convs ``1CNN`` ... ``5CNN`` (named explicitly in ``vgg``), the
    BatchNorms ``batch_normalization`` (input), ``batch_normalization_1`` ... ``_5``
    (after each conv) and the output layer ``dense``.

    ``tf`` holds the 36 inference variables (optimizer slots are ignored if present),
    ``config`` the checkpoint's architecture (default: MTT_vgg's; :data:`MSD_VGG` for
    MSD_vgg). Returns and raises as :func:`mcbr_core.models.musicnn.state_dict_from_tf`:
    float32 tensors keyed like ``MusicnnVgg(config).state_dict()`` (BN counters aside),
    ``KeyError`` for a missing variable, ``ValueError`` for a wrong shape.
    """
    from mcbr_core.models.musicnn import checked, tf_batchnorm, tf_tensor

    cfg = config or MusicnnVggConfig()
    out = tf_batchnorm(tf, "bn_in", "batch_normalization")
    for i in range(len(cfg.pool_time)):
        conv = f"{i + 1}CNN"
        out[f"blocks.{i}.conv.weight"] = (
            tf_tensor(tf, f"{conv}/kernel").permute(3, 2, 0, 1).contiguous()
        )  # (out, in, t, f)
        out[f"blocks.{i}.conv.bias"] = tf_tensor(tf, f"{conv}/bias")
        out |= tf_batchnorm(tf, f"blocks.{i}.bn", f"batch_normalization_{i + 1}")
    out["dense.weight"] = tf_tensor(tf, "dense/kernel").T.contiguous()  # (n_labels, embedding_dim)
    out["dense.bias"] = tf_tensor(tf, "dense/bias")
    return checked(out, MusicnnVgg(cfg))
