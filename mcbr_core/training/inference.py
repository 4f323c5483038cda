"""A network's clip-level predictions on cached features, and their metrics.

Evaluation runs as the plugin does: every clip is cut into patches of the crop
length (at the evaluation hop), and the clip's probabilities and embedding are the
means over its patches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from mcbr_core.training import metrics as M
from mcbr_core.training.context import RunContext
from mcbr_core.training.inputs import Norm, load_clip

if TYPE_CHECKING:
    from torch import nn

__all__ = ["autocast", "evaluate", "loss_fn_of", "predict", "short"]


def loss_fn_of(ctx: RunContext) -> Any:
    """Cross-entropy (single-label) or binary cross-entropy on logits (multi-label)."""
    import torch.nn.functional as F

    def loss(logits: Any, y: Any, reduction: str = "mean") -> Any:
        if ctx.multilabel:
            per_clip = F.binary_cross_entropy_with_logits(logits, y.float(), reduction="none").mean(
                dim=-1
            )  # (B,)
        else:
            per_clip = F.cross_entropy(logits, y.long(), reduction="none")  # (B,)
        return per_clip if reduction == "none" else per_clip.mean()

    return loss


def autocast(ctx: RunContext) -> Any:
    """Mixed precision on CUDA when the run asks for it (bfloat16 where supported), else a no-op context."""
    import torch

    if not ctx.amp:
        return torch.autocast(device_type="cpu", enabled=False)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


class _ClipMeans:
    """Per-clip sums of patch outputs, and their means over each clip's patches."""

    def __init__(self, n: int, n_labels: int) -> None:
        self.probs = np.zeros((n, n_labels))
        self.embs: np.ndarray | None = None
        self.counts = np.zeros(n)
        self.loss_sum, self.loss_n = 0.0, 0

    def add(self, owners: np.ndarray, probs: np.ndarray, embs: np.ndarray | None, loss_sum: float) -> None:
        """Add a batch: each patch's clip ``(B,)``, probabilities ``(B, K)``, embeddings ``(B, D)``, summed loss."""
        self.loss_sum += loss_sum
        self.loss_n += len(owners)
        np.add.at(self.probs, owners, probs)
        if embs is not None:
            if self.embs is None:
                self.embs = np.zeros((len(self.counts), embs.shape[1]))
            np.add.at(self.embs, owners, embs)
        np.add.at(self.counts, owners, 1)

    def means(self) -> tuple[np.ndarray, np.ndarray | None, float]:
        counts = np.maximum(self.counts, 1)[:, None]
        embs = self.embs / counts if self.embs is not None else None
        return self.probs / counts, embs, self.loss_sum / max(self.loss_n, 1)


def _patch_batches(ctx: RunContext, idx: np.ndarray, norm: Norm) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of the clips' normalised patches ``(B, C, F, frames)``, and each patch's position in ``idx`` ``(B,)``."""
    from mcbr_core.features.patches import patches as cut

    bs = max(ctx.config.batch_size, 16)
    xs: list[np.ndarray] = []
    owners: list[int] = []
    for j, i in enumerate(idx):
        feats = norm.apply(load_clip(ctx, int(i)))
        for p in cut(feats, patch_frames=ctx.frames, hop=ctx.hop):  # (C, F, frames)
            xs.append(p)
            owners.append(j)
            if len(xs) >= bs:
                yield np.stack(xs), np.asarray(owners)
                xs, owners = [], []
    if xs:
        yield np.stack(xs), np.asarray(owners)


def predict(ctx: RunContext, net: nn.Module, idx: np.ndarray, norm: Norm, *, embeddings: bool
            ) -> tuple[np.ndarray, np.ndarray | None, float]:  # fmt: skip
    """Clip-level probabilities ``(n, K)`` and embeddings ``(n, D)`` (means over patches), and the mean loss."""
    import torch

    loss_fn = loss_fn_of(ctx)
    sums = _ClipMeans(len(idx), len(ctx.labels))
    net.eval()
    for batch, owners in _patch_batches(ctx, idx, norm):
        x = torch.from_numpy(batch).to(ctx.device)  # (B, C, F, T)
        y = torch.from_numpy(np.asarray(ctx.y[idx[owners]])).to(ctx.device)
        with torch.inference_mode(), autocast(ctx):
            logits = net(x).float()
            loss_sum = float(loss_fn(logits, y, reduction="none").sum())
            p = logits.sigmoid() if ctx.multilabel else logits.softmax(dim=-1)
            e = net.embed(x).float().cpu().numpy() if embeddings else None  # (B, D)
        sums.add(owners, p.cpu().numpy(), e, loss_sum)
    return sums.means()


def evaluate(
    ctx: RunContext, net: nn.Module, idx: np.ndarray, norm: Norm, *, embeddings: bool
) -> dict[str, Any]:
    """:func:`mcbr_core.training.metrics.evaluate` of the clips ``idx`` (with ``embeddings``: the embedding metrics too), and ``loss``."""
    probs, embs, loss = predict(ctx, net, idx, norm, embeddings=embeddings)
    out = M.evaluate(
        ctx.y[idx],
        probs,
        labels=ctx.labels,
        multilabel=ctx.multilabel,
        threshold=ctx.config.threshold,
        embeddings=embs,
        artists=[ctx.clips[int(i)].artist for i in idx],
    )
    out["loss"] = loss
    return out


def short(metrics: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The headline metrics, renamed ``<prefix><name>`` (a ``metrics.jsonl`` epoch line)."""
    keys = ("loss", "accuracy", "macro_f1", "micro_f1", "precision_at_1", "precision_at_3", "hamming_loss")
    return {f"{prefix}{k}": metrics.get(k) for k in keys}
