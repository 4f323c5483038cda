"""One track in, tag scores and an embedding out.

``Analyzer`` wires the registered parts together: decoder -> feature extractor ->
model backend. It is the heavy object of the system (it imports torch and loads
weights), so hosts create it lazily.
"""

from __future__ import annotations

import logging
import time
from importlib import import_module
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mcbr_core.audio.decode import AudioInfo, Decoder, load_audio, probe
from mcbr_core.audio.segments import choose_windows
from mcbr_core.backends.base import ModelBackend
from mcbr_core.models.shipped import resolve_model
from mcbr_core.backends.device import pick_device, set_threads
from mcbr_core.errors import DecodeError, ModelError
from mcbr_core.features.base import FeatureExtractor
from mcbr_core.models.checkpoint import read_card
from mcbr_core.plugins import Plugins, get_plugins
from mcbr_core.settings import AnalysisSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Analysis:
    """The result of analysing one file.

    Attributes
    ----------
    path : str
    model_id : str
    feature_version : str
    duration : float
        Seconds of audio in the file.
    analysed : float
        Seconds of audio that went through the model.
    scores : dict[str, dict[str, float]]
        Head -> label -> clip-level probability (mean over patches).
    embedding : np.ndarray [shape=(D,), dtype=float32]
        Mean of the per-patch embeddings.
    timings : dict[str, float]
        Seconds spent in ``decode``, ``features`` and ``model``.
    """

    path: str
    model_id: str
    feature_version: str
    duration: float
    analysed: float
    scores: dict[str, dict[str, float]]
    embedding: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)


class Analyzer:
    """Decodes, featurises and runs the model on audio files.

    Parameters
    ----------
    settings
        Model, decoders, device and analysis windows.
    plugins
        Plugin manager (defaults to the process-wide one).
    base_dir
        Folder that relative model paths start from.
    """

    def __init__(self, settings: AnalysisSettings, plugins: Plugins | None = None, base_dir: Path | None = None):
        if plugins is None:
            plugins = Plugins(tuple(import_module(m) for m in settings.extra_plugins)) if settings.extra_plugins else get_plugins()
        self.settings = settings
        set_threads(settings.threads)
        model_path = resolve_model(settings.model, base_dir=base_dir)
        card = read_card(model_path)
        backend_name = card["backend"] if settings.backend == "auto" else settings.backend
        factory = plugins.registry("model backend").get(backend_name)
        self.backend: ModelBackend = factory(
            model=model_path, card=card, device=pick_device(settings.device), options={"batch_size": settings.batch_size}
        )
        extractor_name = self.backend.extractor if settings.extractor == "auto" else settings.extractor
        self.extractor: FeatureExtractor = plugins.registry("feature extractor").get(extractor_name)(
            dict(self.backend.extractor_options)
        )
        if self.extractor.version != self.backend.feature_version:
            raise ModelError(
                f"model {self.backend.model_id} expects {self.backend.extractor} features "
                f"v{self.backend.feature_version}, but {extractor_name} gives v{self.extractor.version}"
            )
        self.decoders: list[Decoder] = [plugins.registry("decoder").get(n)() for n in settings.decoders]

    @property
    def model_id(self) -> str:
        """Id of the model behind the embeddings."""
        return self.backend.model_id

    def patch_seconds(self) -> float | None:
        """Seconds of audio per model patch (``None`` when the model takes whole clips)."""
        if self.backend.patch_frames is None:
            return None
        return self.backend.patch_frames / self.extractor.frames_per_second

    def windows(self, info: AudioInfo) -> list[tuple[float, float | None]]:
        """The ``(start, duration)`` windows to decode for a file of this length."""
        seconds = self.patch_seconds()
        if seconds is None:
            return [(0.0, None)]
        return choose_windows(
            info.duration,
            patch_seconds=seconds,
            max_patches=self.settings.max_patches,
            window_patches=self.settings.window_patches,
        )

    def features(self, path: str | Path) -> tuple[np.ndarray, AudioInfo, dict[str, float]]:
        """Decode the analysis windows of ``path`` and cut them into model patches.

        Returns
        -------
        patches : np.ndarray [shape=(B, C, F, T)]
        info : AudioInfo
        timings : dict[str, float]
        """
        from mcbr_core.features.patches import patches as cut

        info, _ = probe(path, self.decoders)
        decode_s = feat_s = 0.0
        batches = []
        for start, duration in self.windows(info):
            t0 = time.perf_counter()
            y = load_audio(path, sr=self.extractor.sample_rate, decoders=self.decoders, start=start, duration=duration)
            t1 = time.perf_counter()
            feats = self.extractor(y)  # (C, F, T)
            if self.backend.patch_frames is None:
                batches.append(feats[None])  # (1, C, F, T)
            else:
                batches.append(cut(feats, patch_frames=self.backend.patch_frames, hop=self.backend.patch_hop or 1))
            decode_s += t1 - t0
            feat_s += time.perf_counter() - t1
        return np.concatenate(batches), info, {"decode": decode_s, "features": feat_s}

    def analyze(self, path: str | Path) -> Analysis:
        """Analyse one file.

        Raises
        ------
        DecodeError
            If the file cannot be decoded.
        """
        patches, info, timings = self.features(path)
        if not np.isfinite(patches).all():
            raise DecodeError("features are not finite")
        t0 = time.perf_counter()
        out = self.backend.infer(patches)
        timings["model"] = time.perf_counter() - t0
        scores = {
            head: dict(zip(self.backend.heads[head], probs.mean(axis=0).tolist(), strict=True))
            for head, probs in out.heads.items()
        }
        embedding = out.embedding.mean(axis=0).astype(np.float32)  # (D,)
        seconds = self.patch_seconds() or info.duration
        return Analysis(
            path=str(path),
            model_id=self.backend.model_id,
            feature_version=self.backend.feature_version,
            duration=info.duration,
            analysed=len(patches) * seconds,
            scores=scores,
            embedding=embedding,
            timings=timings,
        )
