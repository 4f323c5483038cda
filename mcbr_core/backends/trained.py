"""Model backend for models trained with ``mcbr train`` / ``beet mcbr-train`` (``backend: trained``).

A trained model file is a ``.safetensors`` state dict with a model card (see
``mcbr_core.models.checkpoint``). The card says how to rebuild the network:

``architecture.family``
    ``"dense-head"``: a linear or one-hidden-layer head on a feature vector
    (:class:`DenseHead`; the linear probe and the statistics baseline), or any name
    of ``mcbr_core.models.registry`` (the papers' CNNs), or a name given to
    :func:`register_architecture`.
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

The backend outputs ``{head: probabilities}`` and the network's ``embed()``.

This module also registers the ``mcbr-stats`` feature extractor: MFCC, chroma and
spectral-contrast means and standard deviations, the input of the statistics
baseline (it needs librosa, from the ``train`` extra).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mcbr_core.backends.base import Inference
from mcbr_core.errors import ConfigError, ModelError
from mcbr_core.hookspecs import Register, hookimpl

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "DENSE_HEAD",
    "StatsConfig",
    "StatsExtractor",
    "TrainedBackend",
    "architecture_defaults",
    "architecture_names",
    "build_architecture",
    "register_architecture",
    "unregister_architecture",
]

DENSE_HEAD = "dense-head"
STATE_PREFIX = "features.state."  # model-file tensors holding the extractor's learned state
_EXTRA: dict[str, Callable[[dict[str, Any]], Any]] = {}


def register_architecture(name: str, builder: Callable[[dict[str, Any]], nn.Module]) -> None:
    """Make ``builder(config) -> nn.Module`` available as architecture ``name``.

    For architectures outside ``mcbr_core.models.registry`` (tests, experiments). The
    module must have ``forward(x (B, C, F, T)) -> logits`` and ``embed(x) -> (B, D)``.

    Raises
    ------
    ConfigError
        If the name is taken.
    """
    if name in _EXTRA or name == DENSE_HEAD:
        raise ConfigError(f"architecture {name!r} is registered twice")
    _EXTRA[name] = builder


def unregister_architecture(name: str) -> None:
    """Forget an architecture added with :func:`register_architecture`."""
    _EXTRA.pop(name, None)


def _registry() -> Any:
    try:
        from mcbr_core.models import registry
    except ImportError as exc:
        raise ModelError(f"the papers' architectures are not available ({exc})") from None
    return registry


def architecture_names() -> list[str]:
    """Every architecture name :func:`build_architecture` knows."""
    names = [DENSE_HEAD, *_EXTRA]
    try:
        names += [n for n in _registry().ARCHITECTURES if n not in names]
    except ModelError:
        pass
    return names


def architecture_defaults(family: str) -> dict[str, Any]:
    """The default config of a registry architecture (its fields); ``{}`` when not known.

    The training loop passes a derived field (``n_bins``, ``n_frames``, ...) only
    where the architecture's config has it.
    """
    if family == DENSE_HEAD or family in _EXTRA:
        return {}
    try:
        registry = _registry()
        import dataclasses

        return dataclasses.asdict(registry.config_from_dict(family, {}))
    except (ModelError, ConfigError, TypeError, ValueError, AttributeError):
        return {}


def build_architecture(family: str, config: dict[str, Any]) -> nn.Module:
    """Build a network from its architecture name and config dict.

    Raises
    ------
    ModelError
        If the name is unknown or the config does not fit it.
    """
    try:
        if family == DENSE_HEAD:
            return DenseHead(DenseHeadConfig(**config))
        if family in _EXTRA:
            return _EXTRA[family](dict(config))
        registry = _registry()
        if family not in registry.ARCHITECTURES:
            raise ModelError(f"unknown architecture {family!r} (known: {', '.join(architecture_names())})")
        return registry.build_model(family, dict(config))
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

        def embed(self, x):  # noqa: ANN001, ANN202
            """``(B, C, F, T)`` -> ``(B, D)``: the hidden layer, or the (time-averaged) input."""
            h = x.mean(dim=-1).flatten(1)  # (B, C * F)
            if self.hidden is not None:
                h = self.hidden(self.drop(h)).relu()  # (B, hidden)
            return h

        def forward(self, x):  # noqa: ANN001, ANN202
            """Logits ``(B, n_classes)``."""
            return self.out(self.drop(self.embed(x)))

    return _DenseHead


def DenseHead(config: DenseHeadConfig) -> nn.Module:  # noqa: N802 - a class factory (torch imported lazily)
    """Build a :class:`DenseHeadConfig` network."""
    return _dense_head_class()(config)


# -- the statistics baseline's features ---------------------------------------------------


@dataclass(frozen=True)
class StatsConfig:
    """MFCC / chroma / spectral-contrast statistics (the linear baseline's input).

    Attributes
    ----------
    sr, n_fft, hop_length
        One STFT (periodic Hann) from which everything is derived.
    n_mels, n_mfcc
        Mel bands under the MFCCs, and MFCCs kept.
    n_bands
        Spectral-contrast bands (``n_bands + 1`` rows).
    version
        Bumped whenever the output changes.
    """

    sr: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    n_mfcc: int = 20
    n_bands: int = 6
    version: str = "1"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "version" and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"mcbr-stats: {f.name} must be a positive integer, got {value!r}")

    @property
    def n_rows(self) -> int:
        """Rows of the output: mean and std of MFCC + 12 chroma + contrast bands."""
        return 2 * (self.n_mfcc + 12 + self.n_bands + 1)


class StatsExtractor:
    """Clip-level statistics: ``(1, 2 * (n_mfcc + 12 + n_bands + 1), 1)``.

    The STFT is computed once; mel -> MFCC, chroma and spectral contrast derive from
    it, the rows are stacked (equal frame counts asserted) and summarised by their
    mean and standard deviation over time.
    """

    name = "mcbr-stats"

    def __init__(self, config: StatsConfig | None = None) -> None:
        self.config = config or StatsConfig()
        self.version = self.config.version
        self.sample_rate = self.config.sr
        # one "frame" per clip; a nominal rate for patch arithmetic
        self.frames_per_second = 1.0

    def __call__(self, y: np.ndarray) -> np.ndarray:
        """Statistics of a clip ``[shape=(n_samples,)]`` -> ``[shape=(1, n_rows, 1)]`` float32."""
        import librosa

        c = self.config
        y = np.asarray(y, dtype=np.float32)
        if y.ndim != 1:
            raise ValueError(f"mcbr-stats: expected mono audio (n_samples,), got {y.shape}")
        if len(y) < c.n_fft:
            y = np.pad(y, (0, c.n_fft - len(y)))
        mag = np.abs(librosa.stft(y, n_fft=c.n_fft, hop_length=c.hop_length))  # (1 + n_fft // 2, T)
        power = mag.astype(np.float64) ** 2  # cast before squaring: NumPy 2 keeps float32
        mel = librosa.feature.melspectrogram(S=power, sr=c.sr, n_mels=c.n_mels)  # (n_mels, T)
        mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=c.n_mfcc)  # (n_mfcc, T)
        chroma = librosa.feature.chroma_stft(S=power, sr=c.sr, tuning=0.0)  # (12, T)
        contrast = librosa.feature.spectral_contrast(S=mag, sr=c.sr, n_bands=c.n_bands)  # (n_bands + 1, T)
        assert mfcc.shape[1] == chroma.shape[1] == contrast.shape[1], "frame counts differ"
        rows = np.concatenate([mfcc, chroma, contrast])  # (R, T)
        stats = np.concatenate([rows.mean(axis=1), rows.std(axis=1)])  # (2R,)
        return stats.astype(np.float32)[None, :, None]  # (1, 2R, 1)


def stats_extractor(options: dict[str, Any]) -> StatsExtractor:
    """Factory registered as ``mcbr-stats``."""
    known = {f.name for f in fields(StatsConfig)}
    unknown = set(options) - known
    if unknown:
        raise ConfigError(f"mcbr-stats: unknown feature options {sorted(unknown)}")
    return StatsExtractor(StatsConfig(**options))


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
            raise ModelError(f"{model}: weights do not fit {arch['family']} ({str(exc).splitlines()[0]})") from None
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


def trained_backend(*, model: Path, card: dict[str, Any], device: str, options: dict[str, Any]) -> TrainedBackend:
    """Factory registered as ``trained``."""
    return TrainedBackend(model=model, card=card, device=device, options=options)


@hookimpl
def register_model_backends(register: Register) -> None:
    """Register the ``trained`` backend."""
    register("trained", trained_backend)


@hookimpl
def register_feature_extractors(register: Register) -> None:
    """Register the statistics baseline's extractor."""
    register("mcbr-stats", stats_extractor)
