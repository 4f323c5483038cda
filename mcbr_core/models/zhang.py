"""Zhang et al. (2015): the KCNN, a convolutional network with k-max pooling over audio words.

Layers (their section 3 and Table 1), input ``(B, 1, 1, S)`` audio-word ids::

    lookup table (n_words x d, initialised from the codebook)      (B, S, d)
    convolution over a window of 5 words, 500 units (affine)       (B, 500, S)
    k-max pooling, k = 5 (order kept)                              (B, 500, 5)
    concatenate the columns                                        (B, 2500)
    dense 300 -> sigmoid (= embed, the song representation)        (B, 300)
    dense n_classes (= logits; softmax cross-entropy outside)      (B, n_classes)

The convolution is affine, as in their equation (3); when ``n_conv_layers > 1``
the stacked convolutions are "interleaved with a non-linearity", the sigmoid of
equation (5). Words at the edges see zero vectors beyond the song. Table 1's
learning rate 0.02 and L2 weight 1e-4 belong to the training loop. The ULT
ablation (lookup table not fine-tuned) is ``freeze_lookup=True``; their
``k = 1`` ablation is ``k=1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import torch
from torch import nn

from mcbr_core.errors import ConfigError
from mcbr_core.models.blocks import KMaxPool1d

__all__ = ["ZhangKCNN", "ZhangKCNNConfig"]


@dataclass(frozen=True)
class ZhangKCNNConfig:
    """Hyper-parameters of the KCNN.

    Attributes
    ----------
    n_classes
        Output labels.
    in_channels
        Must be 1 (one sequence of word ids).
    n_words
        Codebook size (the ``zhang-audiowords`` state's ``n_words``).
    word_dim
        Lookup-table width (the codebook's ``n_components``).
    window
        Words per convolution window.
    conv_units
        Convolution outputs V.
    n_conv_layers
        Stacked convolutions.
    k
        Values kept per unit by k-max pooling.
    hidden_units
        Sigmoid hidden layer (the embedding).
    freeze_lookup
        Keep the lookup table at its codebook initialisation.
    """

    n_classes: int = 10  # GTZAN genres
    in_channels: int = 1
    n_words: int = 512  # must equal the codebook of the zhang-audiowords extractor
    word_dim: int = 64  # must equal the codebook's PCA dimensions
    window: int = 5  # Table 1
    conv_units: int = 500  # Table 1
    n_conv_layers: int = 1  # Fig. 2 draws one
    k: int = 5  # Table 1
    hidden_units: int = 300  # Table 1
    freeze_lookup: bool = False  # True: the "ULT" ablation of Table 2

    def __post_init__(self) -> None:
        for field in (
            "n_classes",
            "in_channels",
            "n_words",
            "word_dim",
            "window",
            "conv_units",
            "n_conv_layers",
            "k",
            "hidden_units",
        ):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"ZhangKCNNConfig: {field} must be a positive integer, got {value!r}")
        if self.in_channels != 1:
            raise ConfigError(
                f"ZhangKCNNConfig: the input is one word sequence, got in_channels={self.in_channels}"
            )
        if self.window % 2 != 1:
            raise ConfigError(f"ZhangKCNNConfig: window must be odd (centred on a word), got {self.window}")

    @property
    def embedding_dim(self) -> int:
        """Size of :meth:`ZhangKCNN.embed` (300)."""
        return self.hidden_units


class ZhangKCNN(nn.Module):
    """The KCNN of Zhang et al. (2015).

    Parameters
    ----------
    config
        Hyper-parameters.
    """

    def __init__(self, config: ZhangKCNNConfig) -> None:
        super().__init__()
        self.config = c = config
        self.lookup = nn.Embedding(c.n_words, c.word_dim)
        self.lookup.weight.requires_grad_(not c.freeze_lookup)
        widths = [c.word_dim] + [c.conv_units] * c.n_conv_layers
        self.convs = nn.ModuleList(
            nn.Conv1d(a, b, c.window, padding=c.window // 2) for a, b in pairwise(widths)
        )
        self.kmax = KMaxPool1d(c.k)
        self.hidden = nn.Linear(c.conv_units * c.k, c.hidden_units)
        self.out = nn.Linear(c.hidden_units, c.n_classes)

    @torch.no_grad()
    def init_lookup(self, centroids: np.ndarray | torch.Tensor) -> None:
        """Initialise the lookup table from the codebook centroids.

        Parameters
        ----------
        centroids
            ``[shape=(n_words, word_dim)]``, e.g. ``AudioWordsState.centroids``.

        Raises
        ------
        ConfigError
            If the shape does not match the config.
        """
        centroids = torch.as_tensor(np.asarray(centroids, dtype=np.float32))
        want = (self.config.n_words, self.config.word_dim)
        if tuple(centroids.shape) != want:
            raise ConfigError(
                f"codebook of shape {tuple(centroids.shape)} does not fit a lookup table of {want}"
            )
        self.lookup.weight.copy_(centroids.to(self.lookup.weight.device))

    def _ids(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != 1:
            raise ValueError(f"expected word ids of shape (B, 1, 1, S), got {tuple(x.shape)}")
        ids = x.reshape(x.shape[0], x.shape[3]).round().long()  # (B, S)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.config.n_words):
            raise ValueError(
                f"word ids must lie in [0, {self.config.n_words}), got [{int(ids.min())}, {int(ids.max())}]"
            )
        return ids

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The song representation: the sigmoid hidden layer.

        Parameters
        ----------
        x
            Word ids as floats ``[shape=(B, 1, 1, S)]``, ``S >= k``.

        Returns
        -------
        torch.Tensor
            ``[shape=(B, hidden_units)]`` in (0, 1).
        """
        h = self.lookup(self._ids(x)).transpose(1, 2)  # (B, d, S)
        for i, conv in enumerate(self.convs):
            h = conv(torch.sigmoid(h) if i else h)  # (B, V, S)
        h = self.kmax(h)  # (B, V, k)
        h = h.transpose(1, 2).reshape(h.shape[0], -1)  # (B, k * V): the k columns concatenated
        return torch.sigmoid(self.hidden(h))  # (B, 300)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[shape=(B, n_classes)]`` of word ids ``[shape=(B, 1, 1, S)]``."""
        return self.out(self.embed(x))
