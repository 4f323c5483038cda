"""A model made of several pretrained models run on one decode (``backend: fusion``).

The card of a fusion model names its parts (other model files, by shipped name or
path relative to the fusion file) and their ids::

    "backend": "fusion",
    "architecture": {"family": "fusion", "config": {"parts": [
        {"model": "msd-musicnn", "name": "msd-musicnn", "id": "msd-musicnn-1"},
        {"model": "as-mn04", "name": "as-mn04", "id": "as-mn04-1"}]}},
    "features": {"extractor": "waveform", "version": "1",
                 "config": {"sr": 32000, "patch_frames": 95744, "patch_hop": 95744, "version": "1"}},
    "heads": {"msd-musicnn": [...50 tags], "as-mn04": [...527 AudioSet classes]},
    "embedding": {"dim": 712, "metric": "angular", "parts": [
        {"part": "msd-musicnn", "id": "msd-musicnn-1", "start": 0, "stop": 200, "layer": ...},
        {"part": "as-mn04", "id": "as-mn04-1", "start": 200, "stop": 712, "layer": ...}]}

How it runs. The Analyzer decodes at the highest rate any part needs (the
``waveform`` extractor, ``mcbr_core.features.waveform``) and cuts the audio into
patches of ``patch_frames`` samples, one patch of the *first* part (msd-musicnn's
2.992 s above), so the analysis windows are exactly those of that part alone. Each
patch is then analysed by every part as if it were a whole short track: resampled
to the part's rate (soxr HQ, as the decoder does), through the part's own feature
extractor, cut into the part's own patches (a shorter excerpt is repeated to fill
one, the Analyzer's rule), through the part's backend, and averaged over those
patches. The patch's embedding is the concatenation of the parts' embeddings, in
card order (``embedding.parts`` gives each part's slice); each part's tags form a
head named after the part (``part/head`` for a part with several heads).

So a clip head trained on a fusion model's clip embedding reads every part at once,
and the fusion adds no second decode: its cost is the parts' networks and front ends.
A part's own patch rule is kept, so the first part's outputs are those of the part
alone up to the resampling path and the edge frames of each patch.

Parts are built through the process-wide plugin registry (``mcbr_core.plugins.get_plugins``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcbr_core.backends.base import Inference
from mcbr_core.errors import ModelError
from mcbr_core.hookspecs import Register, hookimpl

__all__ = ["FusionBackend", "fusion_card", "head_name", "make_fusion"]


def head_name(part: str, head: str, heads: Any) -> str:
    """A part's head as the fusion names it: the part's name, or ``part/head`` for a part with several heads."""
    return part if len(heads) == 1 else f"{part}/{head}"


@dataclass
class _Part:
    name: str
    backend: Any
    extractor: Any
    start: int
    stop: int


def _part_path(ref: str, base: Path) -> Path:
    """A part named by shipped name, absolute path, or path relative to the fusion file's folder."""
    from mcbr_core.models.shipped import resolve_model

    try:
        return resolve_model(ref, base_dir=base)
    except ModelError:
        raise ModelError(
            f"fusion: part {ref!r} is neither a shipped model nor a file beside {base}"
        ) from None


def _build_part(ref: str, base: Path, device: str, options: dict[str, Any], plugins: Any) -> tuple[Any, Any]:
    """A part's backend and feature extractor (checked against each other)."""
    from mcbr_core.models.checkpoint import read_card

    path = _part_path(ref, base)
    card = read_card(path)
    if card["backend"] == "fusion":
        raise ModelError(f"fusion: part {ref!r} is itself a fusion model")
    backend = plugins.registry("model backend").get(card["backend"])(
        model=path, card=card, device=device, options=options
    )
    extractor = plugins.registry("feature extractor").get(backend.extractor)(dict(backend.extractor_options))
    if str(extractor.version) != str(backend.feature_version):
        raise ModelError(f"fusion: part {ref} expects {backend.extractor} v{backend.feature_version}, "
                         f"the extractor gives v{extractor.version}")  # fmt: skip
    return backend, extractor


class FusionBackend:
    """Runs the parts of a fusion model on waveform patches.

    Parameters
    ----------
    model
        Path of the fusion model file.
    card
        Its model card (see the module docstring).
    device
        Torch device name, shared by every part.
    options
        Passed to every part's backend (``batch_size``).
    """

    def __init__(self, *, model: Path, card: dict[str, Any], device: str, options: dict[str, Any]) -> None:
        from mcbr_core.plugins import get_plugins

        plugins = get_plugins()
        specs = card["architecture"]["config"].get("parts") or []
        if len(specs) < 2:
            raise ModelError(f"{model}: a fusion model needs at least two parts, the card names {len(specs)}")
        self.model_id: str = card["id"]
        self.extractor: str = card["features"]["extractor"]
        self.extractor_options: dict[str, Any] = dict(card["features"]["config"])
        self.feature_version: str = str(card["features"]["version"])
        self.sample_rate = int(self.extractor_options["sr"])
        self.patch_frames: int | None = int(self.extractor_options["patch_frames"])
        self.patch_hop: int | None = int(self.extractor_options.get("patch_hop") or self.patch_frames)
        self.metric: str = card["embedding"].get("metric", "angular")
        self.heads: dict[str, list[str]] = {k: list(v) for k, v in card["heads"].items()}
        self.tag_kinds: dict[str, dict[str, str]] = card.get("tag_kinds", {})
        self.parts: list[_Part] = []
        start = 0
        for spec in specs:
            backend, extractor = _build_part(spec["model"], Path(model).parent, device, options, plugins)
            if backend.model_id != spec["id"]:
                raise ModelError(f"{model}: part {spec['model']} is {backend.model_id}, the card was made with "
                                 f"{spec['id']} (heads trained on this fusion read that model's embedding)")  # fmt: skip
            if extractor.sample_rate > self.sample_rate:
                raise ModelError(f"{model}: part {spec['model']} needs {extractor.sample_rate} Hz, the fusion "
                                 f"decodes at {self.sample_rate} Hz")  # fmt: skip
            name = spec.get("name") or Path(spec["model"]).stem
            for head, labels in backend.heads.items():
                if self.heads.get(head_name(name, head, backend.heads)) != list(labels):
                    raise ModelError(f"{model}: the card's heads do not list part {name}'s {head} labels")
            self.parts.append(_Part(name, backend, extractor, start, start + int(backend.embedding_dim)))
            start += int(backend.embedding_dim)
        self.embedding_dim: int = start
        if int(card["embedding"]["dim"]) != start:
            raise ModelError(f"{model}: the card says {card['embedding']['dim']}-d, the parts give {start}-d")

    def _part_patches(self, part: _Part, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One part's input patches for every waveform patch, and how many each gave."""
        from mcbr_core.audio.decode import resample
        from mcbr_core.features.patches import patches as cut

        b = part.backend
        batches, counts = [], []
        for wave in y:  # (N,)
            feats = part.extractor(resample(wave, self.sample_rate, part.extractor.sample_rate))  # (C, F, T)
            if b.patch_frames is None:
                sub = feats[None]  # (1, C, F, T)
            else:
                sub = cut(
                    feats, patch_frames=b.patch_frames, hop=b.patch_hop or b.patch_frames
                )  # (b, C, F, P)
            batches.append(sub)
            counts.append(len(sub))
        return np.concatenate(batches), np.asarray(counts)

    def infer(self, patches: np.ndarray) -> Inference:
        """Each part's tags ``{part: (B, K)}`` and the concatenated embeddings ``(B, D)``.

        Parameters
        ----------
        patches : np.ndarray [shape=(B, 1, 1, patch_frames)]
            Waveform patches at the fusion's rate.
        """
        if patches.ndim != 4 or patches.shape[1:3] != (1, 1):
            raise ModelError(f"fusion: expected waveform patches (B, 1, 1, N), got {patches.shape}")
        y = patches[:, 0, 0, :]  # (B, N)
        n = len(y)
        heads: dict[str, np.ndarray] = {}
        embs = []
        for part in self.parts:
            x, counts = self._part_patches(part, y)
            out = part.backend.infer(x)
            owner = np.repeat(np.arange(n), counts)  # which waveform patch each part patch came from

            def mean(v: np.ndarray, owner: np.ndarray = owner, counts: np.ndarray = counts) -> np.ndarray:
                total = np.zeros((n, v.shape[1]), dtype=np.float64)
                np.add.at(total, owner, v)
                return (total / counts[:, None]).astype(np.float32)  # (B, K)

            for head, probs in out.heads.items():
                heads[head_name(part.name, head, out.heads)] = mean(np.asarray(probs))
            embs.append(mean(np.asarray(out.embedding)))
        return Inference(heads=heads, embedding=np.concatenate(embs, axis=1))  # (B, D)


def fusion_card(parts: Sequence[str], *, name: str, model_id: str, base: Path | None = None,
                plugins: Any = None) -> dict[str, Any]:  # fmt: skip
    """The card of a fusion of ``parts`` (model names or files), the first part setting the patch.

    Raises
    ------
    ModelError
        If fewer than two parts are given, or a part is missing.
    """
    from mcbr_core.models.checkpoint import read_card
    from mcbr_core.plugins import get_plugins

    if len(parts) < 2:
        raise ModelError("fusion: name at least two parts")
    plugins = plugins or get_plugins()
    base = base or Path.cwd()
    cards = [read_card(_part_path(p, base)) for p in parts]
    rates, seconds = [], []
    for ref in parts:  # the parts' own backends say what patches they take
        backend, ext = _build_part(ref, base, "cpu", {}, plugins)
        rates.append(int(ext.sample_rate))
        seconds.append(backend.patch_frames / float(ext.frames_per_second) if backend.patch_frames else None)
    if seconds[0] is None:
        raise ModelError(f"fusion: the first part ({parts[0]}) must have a fixed patch length")
    sr = max(rates)
    patch = round(seconds[0] * sr)
    heads, kinds, slices = {}, {}, []
    start = 0
    for ref, card in zip(parts, cards, strict=True):
        part = Path(ref).stem if ref.endswith(".safetensors") else ref
        for head, labels in card["heads"].items():
            heads[head_name(part, head, card["heads"])] = list(labels)
            if head in card.get("tag_kinds", {}):
                kinds[head_name(part, head, card["heads"])] = dict(card["tag_kinds"][head])
        dim = int(card["embedding"]["dim"])
        slices.append({"part": part, "model": ref, "id": card["id"], "start": start, "stop": start + dim,
                       "layer": card["embedding"].get("layer", "")})  # fmt: skip
        start += dim
    return {
        "id": model_id,
        "name": name,
        "backend": "fusion",
        "description": "Runs " + " and ".join(parts) + " on one decode; the embedding concatenates theirs.",
        "architecture": {"family": "fusion", "config": {"parts": [
            {"model": part.pop("model"), "name": part["part"], "id": part["id"]} for part in slices]}},  # fmt: skip
        "features": {"extractor": "waveform", "version": "1",
                     "config": {"sr": sr, "patch_frames": patch, "patch_hop": patch, "version": "1"}},  # fmt: skip
        "heads": heads,
        "tag_kinds": kinds,
        "embedding": {"dim": start, "metric": "angular", "parts": slices,
                      "layer": "concatenation of the parts' penultimate layers (see parts), mean over patches"},
        "licence": {"weights": "none of its own: see each part's card"},
    }  # fmt: skip


def make_fusion(path: Path, parts: Sequence[str], *, name: str, model_id: str, **extra: Any) -> Path:
    """Write a fusion model file (no weights of its own; ``extra`` keys go into the card)."""
    from mcbr_core.models.checkpoint import save_model

    card = fusion_card(parts, name=name, model_id=model_id, base=Path(path).parent) | extra
    dims = np.array([p["stop"] - p["start"] for p in card["embedding"]["parts"]], dtype=np.int64)
    return save_model(path, {"parts.dims": dims}, card)


def fusion_backend(
    *, model: Path, card: dict[str, Any], device: str, options: dict[str, Any]
) -> FusionBackend:
    """Factory registered as ``fusion``."""
    return FusionBackend(model=model, card=card, device=device, options=options)


def waveform(options: dict[str, Any]) -> Any:
    """Build the ``waveform`` extractor from a feature config dict.

    Raises
    ------
    ConfigError
        On an unknown key or a bad value.
    """
    from mcbr_core.features.normalise import config_from_options
    from mcbr_core.features.waveform import Waveform, WaveformConfig

    return Waveform(config_from_options(WaveformConfig, options, name="waveform"))


@hookimpl
def register_model_backends(register: Register) -> None:
    """Register the fusion backend."""
    register("fusion", fusion_backend)


@hookimpl
def register_feature_extractors(register: Register) -> None:
    """Register the waveform extractor the fusion backend reads."""
    register("waveform", waveform)
