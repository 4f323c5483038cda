"""Whitell's artist embeddings, and the loss that regresses audio onto them.

Artist embeddings ("Training artist embeddings", Fig. 18): every artist is a row
of an embedding table; a pair (artist, context artist) is scored by the cosine
similarity of their rows, fed into a sigmoid; the context is a related artist
(label 1) or a random artist (label 0), and the loss is binary cross-entropy.
:class:`ArtistEmbedding` returns the cosine as the logit and
:func:`related_artist_loss` applies ``BCEWithLogitsLoss`` to it.

Regression ("Regression"): an audio model with its output activation removed
and ``n_classes`` equal to the embedding size predicts its track's artist
embedding; the loss is the negative cosine similarity
(:func:`negative_cosine_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mcbr_core.errors import ConfigError

__all__ = ["ArtistEmbedding", "ArtistEmbeddingConfig", "negative_cosine_loss", "related_artist_loss"]


@dataclass(frozen=True)
class ArtistEmbeddingConfig:
    """Hyper-parameters of the artist-embedding table.

    Attributes
    ----------
    n_artists
        Rows of the table (the thesis: 109,883 artists and related artists).
    dim
        Embedding size.
    logit_scale
        Multiplies the cosine before the sigmoid.
    init_scale
        Rows start uniform in ``[-init_scale, init_scale]``.
    """

    n_artists: int = 2
    dim: int = 800  # "the embedding dimension of 800 was chosen" (Conclusion)
    logit_scale: float = 1.0  # the thesis feeds the cosine straight into the sigmoid
    init_scale: float = 0.05  # Keras' Embedding default (uniform +-0.05)

    def __post_init__(self) -> None:
        for field in ("n_artists", "dim"):
            value = getattr(self, field)
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or value < (2 if field == "n_artists" else 1)
            ):
                raise ConfigError(f"ArtistEmbeddingConfig: {field} must be a positive integer, got {value!r}")
        if not self.logit_scale > 0 or not self.init_scale > 0:
            raise ConfigError("ArtistEmbeddingConfig: logit_scale and init_scale must be positive")

    @property
    def embedding_dim(self) -> int:
        """Size of :meth:`ArtistEmbedding.embed`."""
        return self.dim


class ArtistEmbedding(nn.Module):
    """An artist-embedding table scored by cosine similarity.

    Parameters
    ----------
    config
        Hyper-parameters.
    """

    def __init__(self, config: ArtistEmbeddingConfig) -> None:
        super().__init__()
        self.config = c = config
        self.table = nn.Embedding(c.n_artists, c.dim)
        nn.init.uniform_(self.table.weight, -c.init_scale, c.init_scale)

    def embed(self, artists: torch.Tensor) -> torch.Tensor:
        """Embeddings ``[shape=(B, dim)]`` of artist ids ``[shape=(B,)]`` (int64)."""
        return self.table(artists)

    def forward(self, artists: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Logits ``[shape=(B,)]``: ``logit_scale * cos(e_artist, e_context)`` (sigmoid -> P(related)).

        Parameters
        ----------
        artists, context
            Artist ids ``[shape=(B,)]`` int64.
        """
        cos = F.cosine_similarity(self.table(artists), self.table(context), dim=-1, eps=1e-8)  # (B,)
        return self.config.logit_scale * cos


def related_artist_loss(
    model: ArtistEmbedding,
    artists: torch.Tensor,
    related: torch.Tensor,
    negatives: torch.Tensor | None = None,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Binary cross-entropy of related pairs (label 1) against random pairs (label 0).

    Parameters
    ----------
    model
        The embedding table.
    artists, related
        Related pairs ``[shape=(B,)]`` int64.
    negatives
        Random context artists ``[shape=(B,)]`` or ``[shape=(B, n_neg)]``; drawn
        uniformly from all artists (with ``generator``) when ``None``. As in the
        thesis, a random artist may by chance be related; over many pairs that is
        negligible.
    generator
        Seeds the negative draw.

    Returns
    -------
    torch.Tensor
        Scalar mean BCE over the positive and negative pairs.
    """
    if artists.shape != related.shape or artists.ndim != 1:
        raise ValueError(
            f"artists and related must be 1-D and equal in shape, got {artists.shape}, {related.shape}"
        )
    if negatives is None:
        negatives = torch.randint(
            0, model.config.n_artists, artists.shape, generator=generator, device=torch.device("cpu")
        ).to(artists.device)
    if negatives.ndim == 1:
        negatives = negatives[:, None]  # (B, 1)
    n_neg = negatives.shape[1]
    pos = model(artists, related)  # (B,)
    neg = model(artists[:, None].expand(-1, n_neg).reshape(-1), negatives.reshape(-1))  # (B * n_neg,)
    logits = torch.cat([pos, neg])
    labels = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
    return F.binary_cross_entropy_with_logits(logits, labels)


def negative_cosine_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean negative cosine similarity between predictions and targets (in ``[-1, 1]``, lower is better).

    Parameters
    ----------
    pred
        Model outputs (logits) ``[shape=(B, D)]``.
    target
        Artist embeddings ``[shape=(B, D)]``.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    return -F.cosine_similarity(pred, target, dim=-1, eps=1e-8).mean()
