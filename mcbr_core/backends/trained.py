"""Model backend for models trained with ``mcbr train`` / ``beet mcbr-train`` (``backend: trained``).

A trained model file is a ``.safetensors`` state dict with a model card (see
``mcbr_core.models.checkpoint``). The card says how to rebuild the network:

``architecture.family``
    ``"dense-head"``: a linear or one-hidden-layer head on a feature vector
    (:class:`DenseHead`; the linear probe and the statistics baseline), or any other
    name registered through the ``register_architectures`` hook (the papers' CNNs of
    ``mcbr_core.models.registry``, or a third-party plugin's).
``features.embedding_of``
    present for a probe or head: the pretrained model whose per-patch embedding the
    head reads. That model runs first, through its own backend (e.g. musicnn).
``features.pool``
    ``"clip"`` for a head trained on the clip embedding (``mcbr train --mode head``):
    the head reads the mean of the patches' embeddings, so every patch gets the
    same clip-level probabilities.
``features.normalisation``
    ``{"where": "extractor"}`` when the extractor config carries the statistics, or
    ``{"where": "model", "mean": [...], "std": [...]}`` (one value per feature row)
    when this backend applies them.
``activation``
    ``{head: "softmax" | "sigmoid"}``: single- or multi-label outputs.
``features.state``
    present when the extractor learned a state from the training data (Zhang's
    audio-word codebook): its arrays are the file's ``features.state.*`` tensors and
    reach the extractor as ``options["state"]``.

The backend outputs ``{head: probabilities}`` and the network's ``embed()``. This
module also registers the ``dense-head`` architecture.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mcbr_core.backends.base import Inference
from mcbr_core.errors import ConfigError, ModelError, PluginError
from mcbr_core.hookspecs import Register, hookimpl

if TYPE_CHECKING:
    from torch import nn

    from mcbr_core.plugins import Plugins

__all__ = [
    "DENSE_HEAD",
    "TrainedBackend",
    "architecture_defaults",
    "architecture_names",
    "build_architecture",
]

DENSE_HEAD = "dense-head"
STATE_PREFIX = "features.state."  # model-file tensors holding the extractor's learned state


def _architectures(plugins: Plugins | None) -> Any:
    from mcbr_core.plugins import get_plugins

    return (plugins or get_plugins()).registry("architecture")


def architecture_names(*, plugins: Plugins | None = None) -> list[str]:
    """Every architecture name :func:`build_architecture` knows, in registration order."""
    return _architectures(plugins).names()


def architecture_defaults(family: str, *, plugins: Plugins | None = None) -> dict[str, Any]:
    """The config fields (and defaults) an architecture takes; ``{}`` when it does not say.

    The training loop passes a derived field (``n_bins``, ``n_frames``, ...) only
    where the architecture's config has it.
    """
    try:
        defaults = getattr(_architectures(plugins).get(family), "defaults", None)
        return dict(defaults()) if defaults is not None else {}
    except (PluginError, ConfigError, TypeError, ValueError):
        return {}


def build_architecture(family: str, config: dict[str, Any], *, plugins: Plugins | None = None) -> nn.Module:
    """Build a network from its registered architecture name and config dict.

    Raises
    ------
    ModelError
        If the name is unknown or the config does not fit it.
    """
    registry = _architectures(plugins)
    try:
        factory = registry.get(family)
    except PluginError:
        raise ModelError(f"unknown architecture {family!r} (known: {', '.join(registry.names())})") from None
    try:
        return factory(dict(config))
    except (TypeError, ValueError, ConfigError) as exc:
        raise ModelError(f"architecture {family}: {exc}") from None


@dataclass(frozen=True)
class DenseHeadConfig:
    """A dense head on a feature vector: the linear probe and the statistics baseline.

    Attributes
    ----------
    in_features
        Length of the input vector (``C * F`` of a ``(C, F, T)`` input, averaged over ``T``).
    n_classes
        Outputs.
    hidden
        Units of one ReLU hidden layer (the embedding); 0 = a linear head, whose
        embedding is its input.
    dropout
        Dropout before each dense layer (training only).
    """

    in_features: int
    n_classes: int
    hidden: int = 0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.in_features < 1 or self.n_classes < 1 or self.hidden < 0:
            raise ValueError(f"bad dense head sizes {asdict(self)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@functools.cache
def _dense_head_class() -> type:
    from torch import nn

    class _DenseHead(nn.Module):
        """See :class:`DenseHeadConfig`."""

        def __init__(self, config: DenseHeadConfig) -> None:
            super().__init__()
            self.config = config
            self.drop = nn.Dropout(config.dropout)
            width = config.in_features
            self.hidden = None
            if config.hidden:
                self.hidden = nn.Linear(width, config.hidden)
                width = config.hidden
            self.out = nn.Linear(width, config.n_classes)

        def embed(self, x):
            """``(B, C, F, T)`` -> ``(B, D)``: the hidden layer, or the (time-averaged) input."""
            h = x.mean(dim=-1).flatten(1)  # (B, C * F)
            if self.hidden is not None:
                h = self.hidden(self.drop(h)).relu()  # (B, hidden)
            return h

        def forward(self, x):
            """Logits ``(B, n_classes)``."""
            return self.out(self.drop(self.embed(x)))

    return _DenseHead


def DenseHead(config: DenseHeadConfig) -> nn.Module:
    """Build a :class:`DenseHeadConfig` network."""
    return _dense_head_class()(config)


def dense_head(config: dict[str, Any]) -> nn.Module:
    """Factory registered as the ``dense-head`` architecture."""
    return DenseHead(DenseHeadConfig(**config))


# -- the backend -----------------------------------------------------------------------


class TrainedBackend:
    """Runs a model file written by the training loop.

    Parameters
    ----------
    model
        The ``.safetensors`` model file.
    card
        Its card.
    device
        Torch device (already resolved).
    options
        ``batch_size`` (patches per forward pass; 0 = 16 on CPU, 64 on GPU).
    """

    def __init__(self, *, model: Path, card: dict[str, Any], device: str, options: dict[str, Any]) -> None:
        import torch

        from mcbr_core.models.checkpoint import load_model

        tensors, card = load_model(model, device="cpu")
        # the extractor's learned state (Zhang's codebook) travels in the same file
        state = {k[len(STATE_PREFIX) :]: v.numpy() for k, v in tensors.items() if k.startswith(STATE_PREFIX)}
        tensors = {k: v for k, v in tensors.items() if not k.startswith(STATE_PREFIX)}
        arch = card["architecture"]
        net = build_architecture(arch["family"], dict(arch.get("config", {})))
        try:
            net.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:
            raise ModelError(
                f"{model}: weights do not fit {arch['family']} ({str(exc).splitlines()[0]})"
            ) from None
        self._torch = torch
        self._device = device
        self._net = net.to(device).eval()
        feats = card["features"]
        self.base: Any = None
        if "embedding_of" in feats:
            self.base = self._base_backend(feats["embedding_of"], device, options, source=model)
        norm = feats.get("normalisation") or {}
        self._mean = self._std = None
        if norm.get("where") == "model":
            self._mean = np.asarray(norm["mean"], dtype=np.float32)
            self._std = np.asarray(norm["std"], dtype=np.float32)
        self.batch_size = int(options.get("batch_size", 0)) or (16 if device == "cpu" else 64)
        self.model_id: str = card["id"]
        self.heads: dict[str, list[str]] = {k: list(v) for k, v in card["heads"].items()}
        if len(self.heads) != 1:
            raise ModelError(f"{model}: a trained model has one head, this card names {len(self.heads)}")
        (self._head,) = self.heads
        self._sigmoid = card.get("activation", {}).get(self._head, "softmax") == "sigmoid"
        self.tag_kinds: dict[str, dict[str, str]] = card.get("tag_kinds", {})
        self.embedding_dim: int = int(card["embedding"]["dim"])
        self.metric: str = card["embedding"].get("metric", "angular")
        self.extractor: str = feats["extractor"]
        self.extractor_options: dict[str, Any] = dict(feats.get("config", {}))
        if state:
            self.extractor_options["state"] = state
        self.feature_version: str = str(feats["version"])
        self._clip_pool = feats.get("pool") == "clip"
        if self.base is not None:
            self.patch_frames: int | None = self.base.patch_frames
            self.patch_hop: int | None = self.base.patch_hop
        else:
            self.patch_frames = feats.get("patch_frames")
            self.patch_hop = feats.get("patch_hop") or self.patch_frames

    @staticmethod
    def _base_backend(ref: dict[str, Any], device: str, options: dict[str, Any], *, source: Path) -> Any:
        from mcbr_core.models.checkpoint import read_card
        from mcbr_core.models.shipped import resolve_model
        from mcbr_core.plugins import get_plugins

        path = resolve_model(str(ref["model"]), base_dir=Path(source).parent)
        base_card = read_card(path)
        if ref.get("id") and base_card["id"] != ref["id"]:
            raise ModelError(f"{source}: probes {ref['id']}, but {path} is {base_card['id']}")
        factory = get_plugins().registry("model backend").get(base_card["backend"])
        return factory(model=path, card=base_card, device=device, options=options)

    def _inputs(self, patches: np.ndarray) -> np.ndarray:
        """Network inputs ``(B, C, F, T)``: the base model's embeddings for a probe, normalised."""
        x = np.asarray(patches, dtype=np.float32)
        if self.base is not None:
            emb = self.base.infer(x).embedding  # (B, D)
            x = np.asarray(emb, dtype=np.float32)[:, None, :, None]  # (B, 1, D, 1)
        if self._mean is not None:
            c, f = x.shape[1], x.shape[2]
            x = (x - self._mean.reshape(1, c, f, 1)) / self._std.reshape(1, c, f, 1)  # (B, C, F, T)
        return np.ascontiguousarray(x, dtype=np.float32)

    def infer(self, patches: np.ndarray) -> Inference:
        """Head probabilities ``(B, n_labels)`` and embeddings ``(B, D)`` of ``(B, C, F, T)`` patches."""
        torch = self._torch
        x_all = self._inputs(patches)
        probs, embs = [], []
        with torch.inference_mode():
            for i in range(0, len(x_all), self.batch_size):
                x = torch.from_numpy(x_all[i : i + self.batch_size]).to(self._device)
                if not self._clip_pool:
                    probs.append(self._probs(self._net(x)))
                embs.append(self._net.embed(x).float().cpu().numpy())
            if self._clip_pool:  # one prediction from the clip embedding, given to every patch
                x = torch.from_numpy(np.ascontiguousarray(x_all.mean(axis=0, keepdims=True))).to(self._device)
                probs.append(np.repeat(self._probs(self._net(x)), len(x_all), axis=0))
        return Inference(heads={self._head: np.concatenate(probs)}, embedding=np.concatenate(embs))

    def _probs(self, logits: Any) -> np.ndarray:
        logits = logits.float()
        return (logits.sigmoid() if self._sigmoid else logits.softmax(dim=-1)).cpu().numpy()


def trained_backend(
    *, model: Path, card: dict[str, Any], device: str, options: dict[str, Any]
) -> TrainedBackend:
    """Factory registered as ``trained``."""
    return TrainedBackend(model=model, card=card, device=device, options=options)


@hookimpl
def register_model_backends(register: Register) -> None:
    """Register the ``trained`` backend."""
    register("trained", trained_backend)


@hookimpl
def register_architectures(register: Register) -> None:
    """Register the dense head of probes, heads and the statistics baseline."""
    register(DENSE_HEAD, dense_head)
