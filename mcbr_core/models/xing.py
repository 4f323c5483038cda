"""Xing et al. (2018): the CNN ``IC(5,15,64)LPC(1,5,64)LPF(384)F(192)O`` on the audio hyper-image.

In the paper's notation (section 5): ``I`` input; ``C(stride, receptive field,
depth)`` a convolution; ``L`` local response normalisation; ``P`` max pooling;
``F(n)`` a fully connected layer; ``O`` the output. Neurons are ReLUs (section 4);
the loss is softmax cross-entropy. The 192 neurons of the last fully connected
layer are the song embedding (section 6).

Layer table for the default config (input ``(B, 1, 188, 130)``)::

    conv 15x15 / 5, 64 ch, pad 7 -> ReLU -> LRN -> max 3x3 / 2   (B, 64, 18, 12)
    conv 5x5 / 1, 64 ch, pad 2   -> ReLU -> LRN -> max 3x3 / 2   (B, 64, 8, 5)
    flatten -> FC 384 -> ReLU -> FC 192 -> ReLU (= embed)          (B, 192)
    FC n_classes (= logits)                                        (B, n_classes)

What the paper leaves open and we chose: "same"-style zero padding of the
convolutions, AlexNet's overlapping pooling (3x3, stride 2) and LRN constants
(Xing cite Krizhevsky et al. for both), and ReLUs after the two fully connected
layers (the TensorFlow CIFAR-10 model this notation describes; ``fc_relu=False``
gives the purely linear reading of "a linear mapping is used to generate the
last two fully connected layers"). The input size is not given either: the
flattened size follows from ``n_bins`` and ``n_frames``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mcbr_core.errors import ConfigError
from mcbr_core.models.blocks import LRN, conv_out

__all__ = ["Xing", "XingConfig"]


@dataclass(frozen=True)
class XingConfig:
    """Hyper-parameters of the Xing et al. CNN.

    Attributes
    ----------
    n_classes
        Output labels.
    in_channels, n_bins, n_frames
        Input map ``(C, F, T)``; fixed, because the first dense layer sees the flattened map.
    conv1_channels, conv1_kernel, conv1_stride
        ``C(5,15,64)``.
    conv2_channels, conv2_kernel, conv2_stride
        ``C(1,5,64)``.
    pool_kernel, pool_stride
        Both max poolings.
    lrn_size, lrn_alpha, lrn_beta, lrn_k
        Both LRN layers (AlexNet's constants).
    fc1, fc2
        ``F(384)`` and ``F(192)``; ``fc2`` is the embedding size.
    fc_relu
        ReLU after both dense layers.
    dropout
        Dropout before each dense layer (the paper mentions none).
    """

    n_classes: int = 9  # the nine genres of Table 1
    in_channels: int = 1
    n_bins: int = 188  # rows of the default xing-hyperimage
    n_frames: int = 130  # ~3 s at 22050 Hz / hop 512; the paper's snippet length is not given
    conv1_channels: int = 64
    conv1_kernel: int = 15
    conv1_stride: int = 5
    conv2_channels: int = 64
    conv2_kernel: int = 5
    conv2_stride: int = 1
    pool_kernel: int = 3  # AlexNet's overlapping pooling; the paper says only "max pooling"
    pool_stride: int = 2
    lrn_size: int = 5  # AlexNet's LRN constants (the paper cites Krizhevsky et al.)
    lrn_alpha: float = 1e-4
    lrn_beta: float = 0.75
    lrn_k: float = 2.0
    fc1: int = 384
    fc2: int = 192
    fc_relu: bool = True  # TensorFlow's CIFAR-10 model (local3/local4) has ReLUs here
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for field in (
            "n_classes",
            "in_channels",
            "n_bins",
            "n_frames",
            "conv1_channels",
            "conv1_kernel",
            "conv1_stride",
            "conv2_channels",
            "conv2_kernel",
            "conv2_stride",
            "pool_kernel",
            "pool_stride",
            "lrn_size",
            "fc1",
            "fc2",
        ):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"XingConfig: {field} must be a positive integer, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"XingConfig: dropout must lie in [0, 1), got {self.dropout!r}")
        f, t = self.feature_size()
        if f < 1 or t < 1:
            raise ConfigError(
                f"XingConfig: an input of {self.n_bins} x {self.n_frames} is too small for the two "
                f"convolution/pooling stages (it ends at {f} x {t})"
            )

    def feature_size(self) -> tuple[int, int]:
        """``(F, T)`` of the map after the second pooling."""
        sizes = []
        for n in (self.n_bins, self.n_frames):
            n = conv_out(n, self.conv1_kernel, self.conv1_stride, self.conv1_kernel // 2)
            n = conv_out(n, self.pool_kernel, self.pool_stride)
            n = conv_out(n, self.conv2_kernel, self.conv2_stride, self.conv2_kernel // 2)
            n = conv_out(n, self.pool_kernel, self.pool_stride)
            sizes.append(n)
        return sizes[0], sizes[1]

    @property
    def embedding_dim(self) -> int:
        """Size of :meth:`Xing.embed` (192)."""
        return self.fc2


class Xing(nn.Module):
    """The CNN of Xing et al. (2018).

    Parameters
    ----------
    config
        Hyper-parameters.
    """

    def __init__(self, config: XingConfig) -> None:
        super().__init__()
        self.config = c = config
        self.conv1 = nn.Conv2d(
            c.in_channels, c.conv1_channels, c.conv1_kernel, c.conv1_stride, c.conv1_kernel // 2
        )
        self.lrn1 = LRN(c.lrn_size, c.lrn_alpha, c.lrn_beta, c.lrn_k)
        self.conv2 = nn.Conv2d(
            c.conv1_channels, c.conv2_channels, c.conv2_kernel, c.conv2_stride, c.conv2_kernel // 2
        )
        self.lrn2 = LRN(c.lrn_size, c.lrn_alpha, c.lrn_beta, c.lrn_k)
        self.pool = nn.MaxPool2d(c.pool_kernel, c.pool_stride)
        f, t = c.feature_size()
        self.fc1 = nn.Linear(c.conv2_channels * f * t, c.fc1)
        self.fc2 = nn.Linear(c.fc1, c.fc2)
        self.out = nn.Linear(c.fc2, c.n_classes)
        self.drop = nn.Dropout(c.dropout)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The 192-d song embedding (the last dense layer before the output).

        Parameters
        ----------
        x
            Hyper-images ``[shape=(B, C, F, T)]`` float32.

        Returns
        -------
        torch.Tensor
            ``[shape=(B, fc2)]``.
        """
        act = F.relu if self.config.fc_relu else (lambda v: v)
        x = self.pool(self.lrn1(F.relu(self.conv1(x))))  # (B, 64, F1, T1)
        x = self.pool(self.lrn2(F.relu(self.conv2(x))))  # (B, 64, F2, T2)
        x = x.flatten(1)  # (B, 64 * F2 * T2)
        x = act(self.fc1(self.drop(x)))  # (B, 384)
        return act(self.fc2(self.drop(x)))  # (B, 192)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[shape=(B, n_classes)]`` of hyper-images ``[shape=(B, C, F, T)]``."""
        return self.out(self.embed(x))
