"""Layers shared by the paper architectures.

* :func:`same_padding`, :class:`Conv2dSame`, :class:`MaxPool2dSame`: TensorFlow/Keras
  ``padding="same"`` (the extra row/column of an even total goes at the end), for
  the Keras-built Whitell models.
* :class:`SeparableConv2d`: Keras ``SeparableConv2D`` (depthwise then pointwise, no bias).
* :func:`keras_batch_norm`: ``BatchNormalization`` with Keras' defaults.
* :class:`LRN`: AlexNet's local response normalisation across channels (Xing).
* :class:`KMaxPool1d`: k-max pooling that keeps the order of the kept values (Zhang).
* :func:`conv_out`: the output length of a convolution or pooling, to size layers from a config.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LRN",
    "Conv2dSame",
    "KMaxPool1d",
    "MaxPool2dSame",
    "SeparableConv2d",
    "conv_out",
    "count_parameters",
    "keras_batch_norm",
    "same_out",
    "same_padding",
]


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution or pooling with floor rounding (PyTorch's rule)."""
    return (size + 2 * padding - kernel) // stride + 1


def same_out(size: int, stride: int) -> int:
    """Output length under ``padding="same"``: ``ceil(size / stride)``."""
    return -(-size // stride)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """``(before, after)`` padding of TensorFlow's ``"same"`` along one axis."""
    total = max((same_out(size, stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(
    x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], value: float
) -> torch.Tensor:
    top, bottom = same_padding(x.shape[-2], kernel[0], stride[0])
    left, right = same_padding(x.shape[-1], kernel[1], stride[1])
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom), value=value)  # (B, C, F + pads, T + pads)
    return x


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow ``"same"`` padding (asymmetric for even totals)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        *,
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__(
            in_channels, out_channels, _pair(kernel_size), _pair(stride), padding=0, groups=groups, bias=bias
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[shape=(B, C_in, F, T)]`` -> ``[shape=(B, C_out, ceil(F / s_f), ceil(T / s_t))]``."""
        return super().forward(_pad_same(x, self.kernel_size, self.stride, 0.0))


class MaxPool2dSame(nn.Module):
    """Max pooling with TensorFlow ``"same"`` padding (padded cells never win)."""

    def __init__(
        self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None
    ) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = self.kernel_size if stride is None else _pair(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[shape=(B, C, F, T)]`` -> ``[shape=(B, C, ceil(F / s_f), ceil(T / s_t))]``."""
        x = _pad_same(x, self.kernel_size, self.stride, -math.inf)
        return F.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding=same"


class SeparableConv2d(nn.Module):
    """Keras ``SeparableConv2D(use_bias=False)``: a depthwise then a 1x1 pointwise convolution.

    Parameters
    ----------
    in_channels, out_channels
        Channels.
    kernel_size
        Depthwise kernel.
    padding
        ``"valid"`` or ``"same"`` (TensorFlow's).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], padding: str = "valid"
    ) -> None:
        super().__init__()
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
        kernel = _pair(kernel_size)
        self.padding = padding
        if padding == "same":
            self.depthwise: nn.Conv2d = Conv2dSame(
                in_channels, in_channels, kernel, groups=in_channels, bias=False
            )
        else:
            self.depthwise = nn.Conv2d(in_channels, in_channels, kernel, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[shape=(B, C_in, F, T)]`` -> ``[shape=(B, C_out, F', T')]``."""
        return self.pointwise(self.depthwise(x))


def keras_batch_norm(channels: int) -> nn.BatchNorm2d:
    """``BatchNorm2d`` with Keras' defaults: ``epsilon=1e-3``, ``momentum=0.99`` (PyTorch 0.01)."""
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class LRN(nn.LocalResponseNorm):
    """Local response normalisation across channels (Krizhevsky et al. 2012, section 3.3).

    ``b_c = a_c / (k + alpha / size * sum_{c' near c} a_c'^2) ** beta``; AlexNet's
    ``alpha`` (1e-4) is per element, so it is multiplied by ``size`` here, as
    PyTorch divides by it.

    Parameters
    ----------
    size
        Channels in the window (AlexNet: 5).
    alpha, beta, k
        AlexNet's constants (1e-4, 0.75, 2).
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0) -> None:
        super().__init__(size, alpha=alpha * size, beta=beta, k=k)


class KMaxPool1d(nn.Module):
    """Keep the ``k`` largest values of each channel, in their original time order.

    Parameters
    ----------
    k
        Values kept per channel.
    """

    def __init__(self, k: int) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[shape=(B, C, T)]`` -> ``[shape=(B, C, k)]``.

        Raises
        ------
        ValueError
            If ``T < k``.
        """
        if x.shape[-1] < self.k:
            raise ValueError(f"k-max pooling needs at least k={self.k} steps, got {x.shape[-1]}")
        idx = x.topk(self.k, dim=-1).indices.sort(dim=-1).values  # (B, C, k), time order
        return x.gather(-1, idx)

    def extra_repr(self) -> str:
        return f"k={self.k}"


def count_parameters(module: nn.Module, *, buffers: bool = False, trainable_only: bool = False) -> int:
    """Number of parameters (plus floating-point buffers, e.g. BatchNorm statistics, as Keras counts them)."""
    n = sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
    if buffers:
        n += sum(b.numel() for b in module.buffers() if b.is_floating_point())
    return n
