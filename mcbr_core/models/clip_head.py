"""Clip heads: small classifiers that read a model's clip embedding.

A head is a model file written by ``mcbr train --mode head``: logistic regression on
the mean embedding of another model (``features.embedding_of``, ``features.pool =
"clip"``). That mean is exactly :attr:`mcbr_core.analysis.Analysis.embedding`, the
vector the plugin already computes and stores, so a head adds no decoding and no
network pass: the engine applies it to each analysis in numpy
(:meth:`ClipHead.scores`). The shipped mood and genre models are heads on
msd-musicnn; the ``trained`` backend runs the same file as a standalone model
(for ``mcbr eval``) and gives the same probabilities.

Reading a head's card (:func:`head_card`) is import-light; :meth:`ClipHead.load`
needs numpy and safetensors (no torch).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcbr_core.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ClipHead", "head_card", "is_clip_head"]


def is_clip_head(card: Mapping[str, Any]) -> bool:
    """Whether a model card describes a clip head (a linear head on another model's clip embedding)."""
    feats = card.get("features", {})
    arch = card.get("architecture", {})
    return (
        feats.get("pool") == "clip"
        and "embedding_of" in feats
        and arch.get("family") == "dense-head"
        and not arch.get("config", {}).get("hidden")
        and len(card.get("heads", {})) == 1
    )


def head_card(path: str | Path) -> dict[str, Any]:
    """The card of a clip-head file.

    Raises
    ------
    ModelError
        If the file is not a model file or not a clip head.
    """
    from mcbr_core.models.checkpoint import read_card

    card = read_card(path)
    if not is_clip_head(card):
        raise ModelError(f"{path}: not a clip head (train one with `mcbr train --mode head`)")
    return card


@dataclass(frozen=True)
class ClipHead:
    """A loaded clip head.

    Attributes
    ----------
    model_id : str
        The head's id (from its card).
    base_id : str
        Id of the model whose clip embedding it reads.
    head : str
        Head name (the task it was trained on, e.g. ``"mood"``).
    labels : list[str]
        Output labels, in order.
    kinds : dict[str, str]
        Label -> ``"genre"`` / ``"mood"`` / ``"other"``.
    weight : np.ndarray [shape=(K, D)]
    bias : np.ndarray [shape=(K,)]
    mean, std : np.ndarray [shape=(D,)]
        Standardisation of the clip embedding, applied before the weights.
    sigmoid : bool
        Multi-label (independent sigmoids) rather than softmax.
    """

    model_id: str
    base_id: str
    head: str
    labels: list[str]
    kinds: dict[str, str]
    weight: np.ndarray
    bias: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    sigmoid: bool

    @classmethod
    def load(cls, path: str | Path) -> ClipHead:
        """Load a clip head without torch and without executing pickles.

        Raises
        ------
        ModelError
            If the file is not a clip head or its tensors do not fit its card.
        """
        import numpy as np
        from safetensors.numpy import load_file

        card = head_card(path)
        ((head, labels),) = card["heads"].items()
        feats = card["features"]
        norm = feats.get("normalisation") or {}
        try:
            tensors = load_file(str(path))
            weight = np.asarray(tensors["out.weight"], dtype=np.float64)  # (K, D)
            bias = np.asarray(tensors["out.bias"], dtype=np.float64)  # (K,)
        except (KeyError, OSError, ValueError) as exc:
            raise ModelError(f"{path}: not a readable clip head ({exc})") from None
        dim = weight.shape[1]
        mean = np.asarray(norm.get("mean") or np.zeros(dim), dtype=np.float64)
        std = np.asarray(norm.get("std") or np.ones(dim), dtype=np.float64)
        if (
            weight.shape != (len(labels), dim)
            or bias.shape != (len(labels),)
            or not mean.shape == std.shape == (dim,)
        ):
            raise ModelError(f"{path}: tensors of shape {weight.shape} do not fit {len(labels)} labels")
        return cls(
            model_id=str(card["id"]),
            base_id=str(feats["embedding_of"].get("id", "")),
            head=head,
            labels=list(labels),
            kinds=dict(card.get("tag_kinds", {}).get(head, {})),
            weight=weight,
            bias=bias,
            mean=mean,
            std=std,
            sigmoid=card.get("activation", {}).get(head) == "sigmoid",
        )

    @property
    def dim(self) -> int:
        """Length of the embedding the head reads."""
        return int(self.weight.shape[1])

    def probabilities(self, embedding: np.ndarray) -> np.ndarray:
        """Label probabilities of one clip embedding.

        Parameters
        ----------
        embedding : np.ndarray [shape=(D,)]
            The base model's clip embedding (mean over the analysed patches).

        Returns
        -------
        np.ndarray [shape=(K,)]
        """
        import numpy as np

        x = np.asarray(embedding, dtype=np.float64).reshape(-1)
        if x.shape != (self.dim,):
            raise ModelError(f"head {self.model_id} reads {self.dim}-d embeddings, got {x.shape[0]}-d")
        x = (x - self.mean) / self.std  # (D,)
        logits = self.weight @ x + self.bias  # (K,)
        if self.sigmoid:
            return 1.0 / (1.0 + np.exp(-logits))
        z = np.exp(logits - logits.max())
        return z / z.sum()

    def scores(self, embedding: np.ndarray) -> dict[str, float]:
        """Label -> probability for one clip embedding ``[shape=(D,)]``."""
        return dict(zip(self.labels, self.probabilities(embedding).tolist(), strict=True))


def resolve_sources(
    sources: Mapping[str, str], model_card: Mapping[str, Any], *, base_dir: Path | None = None
) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Which clip head tags each kind (import-light: reads cards only).

    Parameters
    ----------
    sources
        Kind (``"genre"``, ``"mood"``) -> ``"auto"``, ``"model"``, or a head's name or file.
    model_card
        Card of the configured model, whose clip embedding the heads must read.
    base_dir
        Folder relative head paths start from.

    Returns
    -------
    dict
        Kind -> (head file, head card), for the kinds a head tags; other kinds use the
        model's own tags. ``"auto"`` picks the shipped head whose card lists the kind in
        ``default_for`` (set when it measured better than the pretrained tags; see
        docs/results.md) and that reads this model's embedding.

    Raises
    ------
    ModelError
        If a named head does not exist, is not a clip head, or reads another model's
        embedding.
    """
    from mcbr_core.models.checkpoint import read_card
    from mcbr_core.models.shipped import resolve_model, shipped_models

    model_id = str(model_card["id"])
    out: dict[str, tuple[Path, dict[str, Any]]] = {}
    for kind, source in sources.items():
        if source == "model":
            continue
        if source == "auto":
            for path in shipped_models().values():
                card = read_card(path)
                if (is_clip_head(card) and kind in card.get("default_for", ())
                        and card["features"]["embedding_of"].get("id") == model_id):  # fmt: skip
                    out[kind] = (path, card)
                    break
            continue
        path = resolve_model(source, base_dir=base_dir)
        card = head_card(path)
        base = card["features"]["embedding_of"]
        if base.get("id") != model_id:
            raise ModelError(
                f"mcbr.{kind}.source: {source} reads the embedding of {base.get('id')}, "
                f"but the configured model is {model_id}"
            )
        out[kind] = (path, card)
    return out


def resolve_scales(model_card: Mapping[str, Any]) -> dict[str, tuple[Path, str, dict[str, Any]]]:
    """The shipped continuous-attribute heads that read the configured model's embedding.

    A head whose card has ``scale: {field, label}`` gives ``field`` (e.g.
    ``mcbr_arousal``) as the probability of ``label`` (e.g. ``"high"``), in [0, 1].

    Parameters
    ----------
    model_card
        Card of the configured model.

    Returns
    -------
    dict
        Attribute name -> (head file, the label whose probability it is, head card),
        sorted by name; empty when no shipped head reads this model's embedding.
    """
    from mcbr_core.models.checkpoint import read_card
    from mcbr_core.models.shipped import shipped_models

    model_id = str(model_card["id"])
    out: dict[str, tuple[Path, str, dict[str, Any]]] = {}
    for path in shipped_models().values():
        card = read_card(path)
        scale = card.get("scale")
        if (scale and is_clip_head(card)
                and card["features"]["embedding_of"].get("id") == model_id):  # fmt: skip
            out[str(scale["field"])] = (path, str(scale["label"]), card)
    return dict(sorted(out.items()))


def config_hint(path: str | Path) -> str:
    """The plugin setting that uses a trained model file.

    A clip head of genres or moods becomes that kind's ``source`` (it keeps the
    configured model and its embeddings); any other model becomes ``model``.
    """
    from mcbr_core.models.checkpoint import read_card

    path = Path(path).resolve()
    card = read_card(path)
    if is_clip_head(card):
        ((head, _labels),) = card["heads"].items()
        kinds = set(card.get("tag_kinds", {}).get(head, {}).values())
        if len(kinds) == 1 and kinds <= {"genre", "mood"}:
            return f"mcbr: {{{kinds.pop()}: {{source: {path}}}}}"
    return f"mcbr: {{model: {path}}}"
