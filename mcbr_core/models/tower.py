"""Tower & Vegner: a convolutional encoder to a 32-d latent, a genre predictor, and an optional decoder.

Encoder (their Table 2), input ``(B, 1, M, T)`` mel spectrograms; for the paper's
input, 128 mel bands x 1292 frames (30 s, librosa defaults)::

    conv 3x11 / (2,5), pad (1,5), 512 ch -> ReLU                     (B, 512, 64, 259)
    conv 3x3, pad 1, 256 ch -> ReLU -> max 2x2                       (B, 256, 32, 129)
    conv 3x3, pad 1, 256 ch -> ReLU -> max 2x2                       (B, 256, 16, 64)
    conv 3x3, pad 1, 128 ch -> ReLU -> max 2x2                       (B, 128, 8, 32)
    conv 3x3, pad 1, 64 ch  -> ReLU -> max 2x2                       (B, 64, 4, 16)
    conv 3x3, pad 1, 32 ch  -> ReLU -> max 2x2                       (B, 32, 2, 8)
    conv 2x4, no pad, 32 ch -> ReLU                                  (B, 32, 1, 5)
    max over what is left (their max 1x5)                            (B, 32) = the latent

Predictor (their Table 3): ``32 -> 256 -> 128 -> 64 -> n_classes`` with ReLUs.

Deviations, and why:

* Table 2 lists the 2x2 max poolings with stride (1, 1). With stride 1 the map
  stays ~58 x 247 and the last layers cannot yield the ``(N, F)`` output the text
  describes ("the last convolutional layer of the encoder is shaped so as to
  yield a (N,F)-shaped output"); with stride 2 (non-overlapping pooling) the
  paper's input ends at exactly ``1 x 5`` before the final ``1 x 5`` pooling, i.e.
  at ``1 x 1``. We use stride 2.
* The final ``1 x 5`` max pooling is a global max pooling (``amax`` over the
  remaining map): identical for the paper's input size, and it still yields one
  vector when clips are longer or shorter (our input sizes differ from theirs).
* Table 3 calls the last three predictor layers "Conv+ReLU" on a vector: a 1x1
  convolution of a ``(N, C)`` vector is a dense layer, so we use ``nn.Linear``.
  The ReLU of the output layer is dropped, because ``forward`` returns logits
  (a ReLU before the softmax would clip negative logits and can kill classes).
* The decoder head, abandoned in the paper (section 6.1), is ours: a dense layer
  from the latent to the map before the last convolution, five 2x2 transposed
  convolutions mirroring the poolings, one mirroring the first convolution, and
  a bilinear resize to exactly ``(n_bins, n_frames)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from mcbr_core.errors import ConfigError
from mcbr_core.models.blocks import conv_out

__all__ = ["Tower", "TowerConfig"]


@dataclass(frozen=True)
class TowerConfig:
    """Hyper-parameters of the Tower & Vegner autoencoder.

    Attributes
    ----------
    n_classes
        Genres.
    in_channels, n_bins, n_frames
        Input map ``(C, F, T)``; the encoder accepts other sizes that survive its
        strides, but the decoder reconstructs exactly ``(n_bins, n_frames)``.
    channels
        Channels of convolutions 1-6 (Table 2).
    latent_dim
        Channels of the 7th convolution: the latent size F.
    first_kernel, first_stride, first_padding
        The first, time-compressing convolution.
    last_kernel
        The 7th convolution (no padding).
    pool
        Size and stride of the five max poolings.
    predictor
        Hidden widths of the genre predictor (Table 3).
    dropout
        Dropout before each predictor layer (their best model used none).
    decoder
        Build the decoder head (:meth:`Tower.decode`).
    """

    n_classes: int = 8  # FMA-small genres
    in_channels: int = 1
    n_bins: int = 128  # librosa's default mel bands
    n_frames: int = 1292  # 30 s at 22050 Hz / hop 512
    channels: tuple[int, ...] = (512, 256, 256, 128, 64, 32)
    latent_dim: int = 32
    first_kernel: tuple[int, int] = (3, 11)
    first_stride: tuple[int, int] = (2, 5)
    first_padding: tuple[int, int] = (1, 5)
    last_kernel: tuple[int, int] = (2, 4)
    pool: int = 2  # Table 2 says stride (1,1); stride 2 is what makes the encoder end at (N, F)
    predictor: tuple[int, ...] = (256, 128, 64)
    dropout: float = 0.0  # "Dropout similarly failed to enhance performance"
    decoder: bool = False

    def __post_init__(self) -> None:
        for field in (
            "channels",
            "first_kernel",
            "first_stride",
            "first_padding",
            "last_kernel",
            "predictor",
        ):
            object.__setattr__(self, field, tuple(getattr(self, field)))
        for field in ("n_classes", "in_channels", "n_bins", "n_frames", "latent_dim", "pool"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"TowerConfig: {field} must be a positive integer, got {value!r}")
        if len(self.channels) != 6 or min(self.channels) < 1:
            raise ConfigError(f"TowerConfig: channels must be six positive widths, got {self.channels!r}")
        for field in ("first_kernel", "first_stride", "first_padding", "last_kernel"):
            value = getattr(self, field)
            if len(value) != 2 or min(value) < (0 if field == "first_padding" else 1):
                raise ConfigError(f"TowerConfig: {field} must be a pair of sizes, got {value!r}")
        if not self.predictor or min(self.predictor) < 1:
            raise ConfigError(f"TowerConfig: predictor must list positive widths, got {self.predictor!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"TowerConfig: dropout must lie in [0, 1), got {self.dropout!r}")
        f, t = self.latent_map_size()
        if f < 1 or t < 1:
            raise ConfigError(
                f"TowerConfig: an input of {self.n_bins} x {self.n_frames} is too small for the encoder "
                f"(it ends at {f} x {t}; the paper's 128 x 1292 ends at 1 x 5)"
            )

    def sizes(self) -> list[tuple[int, int]]:
        """``(F, T)`` after the first convolution and after each pooling (six entries)."""
        f = conv_out(self.n_bins, self.first_kernel[0], self.first_stride[0], self.first_padding[0])
        t = conv_out(self.n_frames, self.first_kernel[1], self.first_stride[1], self.first_padding[1])
        out = [(f, t)]
        for _ in range(5):
            f, t = f // self.pool, t // self.pool
            out.append((f, t))
        return out

    def latent_map_size(self) -> tuple[int, int]:
        """``(F, T)`` after the 7th convolution, before the global max pooling."""
        f, t = self.sizes()[-1]
        return f - self.last_kernel[0] + 1, t - self.last_kernel[1] + 1

    @property
    def embedding_dim(self) -> int:
        """Size of :meth:`Tower.embed` (the latent, 32)."""
        return self.latent_dim


class Tower(nn.Module):
    """The Tower & Vegner encoder, genre predictor and optional decoder.

    Parameters
    ----------
    config
        Hyper-parameters.
    """

    def __init__(self, config: TowerConfig) -> None:
        super().__init__()
        self.config = c = config
        convs = [nn.Conv2d(c.in_channels, c.channels[0], c.first_kernel, c.first_stride, c.first_padding)]
        for cin, cout in pairwise(c.channels):
            convs.append(nn.Conv2d(cin, cout, 3, padding=1))
        convs.append(nn.Conv2d(c.channels[-1], c.latent_dim, c.last_kernel))
        self.encoder = nn.ModuleList(convs)
        self.pool = nn.MaxPool2d(c.pool)
        widths = (c.latent_dim, *c.predictor)
        self.predictor = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(widths))
        self.out = nn.Linear(widths[-1], c.n_classes)
        self.drop = nn.Dropout(c.dropout)
        if c.decoder:
            f, t = c.sizes()[-1]
            self.dec_in = nn.Linear(c.latent_dim, c.channels[-1] * f * t)
            rev = c.channels[::-1]  # (32, 64, 128, 256, 256, 512)
            self.dec_up = nn.ModuleList(
                nn.ConvTranspose2d(a, b, c.pool, stride=c.pool) for a, b in pairwise(rev)
            )
            self.dec_out = nn.ConvTranspose2d(
                c.channels[0], c.in_channels, c.first_kernel, c.first_stride, c.first_padding
            )
        for m in self.modules():  # "initialized using Kaiming initialization"
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The latent vector (the encoder output, the paper's recommendation space).

        Parameters
        ----------
        x
            Mel spectrograms ``[shape=(B, C, F, T)]`` float32.

        Returns
        -------
        torch.Tensor
            ``[shape=(B, latent_dim)]``, non-negative (ReLU then max).
        """
        convs = self.encoder
        x = F.relu(convs[0](x))  # (B, 512, F1, T1)
        for conv in convs[1:-1]:
            x = self.pool(F.relu(conv(x)))  # (B, C_i, F_i / 2, T_i / 2)
        x = F.relu(convs[-1](x))  # (B, latent, F7, T7)
        return x.amax(dim=(2, 3))  # (B, latent)

    def predict(self, z: torch.Tensor) -> torch.Tensor:
        """Genre logits ``[shape=(B, n_classes)]`` of latents ``[shape=(B, latent_dim)]``."""
        for layer in self.predictor:
            z = F.relu(layer(self.drop(z)))  # (B, width)
        return self.out(self.drop(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[shape=(B, n_classes)]`` of ``[shape=(B, C, F, T)]``."""
        return self.predict(self.embed(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruct the input from latents.

        Parameters
        ----------
        z
            ``[shape=(B, latent_dim)]``.

        Returns
        -------
        torch.Tensor
            ``[shape=(B, in_channels, n_bins, n_frames)]`` (linear output: compare with
            the normalised input, e.g. by MSE).

        Raises
        ------
        RuntimeError
            If the model was built without ``decoder=True``.
        """
        if not self.config.decoder:
            raise RuntimeError("this Tower model has no decoder head (config.decoder is false)")
        c = self.config
        f, t = c.sizes()[-1]
        x = F.relu(self.dec_in(z)).reshape(z.shape[0], c.channels[-1], f, t)  # (B, 32, F6, T6)
        for up in self.dec_up:
            x = F.relu(up(x))  # (B, C_i, 2 F_i, 2 T_i)
        x = self.dec_out(x)  # (B, C, ~n_bins, ~n_frames)
        return F.interpolate(
            x, size=(c.n_bins, c.n_frames), mode="bilinear", align_corners=False
        )  # (B, C, F, T)
