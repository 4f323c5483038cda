"""One track in, tag scores and an embedding out.

``Analyzer`` wires the registered parts together: decoder -> feature extractor ->
model backend. It is the heavy object of the system (it imports torch and loads
weights), so hosts create it lazily.

A damaged file often decodes in part. ``Analyzer.features`` compares what the
decoders yielded with what the header promises (for long tracks: with the
windows asked for) and fails the file below ``min_coverage``, unless the
settings ask for ``partial`` results, which carry their ``coverage``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mcbr_core.audio.decode import AudioInfo, Decoder, load_audio, probe
from mcbr_core.audio.segments import choose_windows
from mcbr_core.backends.base import ModelBackend
from mcbr_core.backends.device import pick_device, set_threads
from mcbr_core.errors import DecodeError, ModelError
from mcbr_core.features.base import FeatureExtractor
from mcbr_core.models.checkpoint import read_card
from mcbr_core.models.shipped import resolve_model
from mcbr_core.plugins import Plugins, plugins_with
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
    coverage : float
        Decoded seconds over the seconds the header promises (within the analysis
        windows), in [0, 1]. Below ``AnalysisSettings.min_coverage`` only with
        ``partial`` set: the file is damaged and was analysed on what decoded.
    """

    path: str
    model_id: str
    feature_version: str
    duration: float
    analysed: float
    scores: dict[str, dict[str, float]]
    embedding: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    coverage: float = 1.0


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

    def __init__(
        self, settings: AnalysisSettings, plugins: Plugins | None = None, base_dir: Path | None = None
    ):
        if plugins is None:
            plugins = plugins_with(settings.extra_plugins)
        self.settings = settings
        set_threads(settings.threads)
        model_path = resolve_model(settings.model, base_dir=base_dir)
        card = read_card(model_path)
        backend_name = card["backend"] if settings.backend == "auto" else settings.backend
        factory = plugins.registry("model backend").get(backend_name)
        self.backend: ModelBackend = factory(
            model=model_path,
            card=card,
            device=pick_device(settings.device),
            options={"batch_size": settings.batch_size},
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

        Raises
        ------
        DecodeError
            If the file cannot be decoded, or less than ``min_coverage`` of it
            decodes and ``partial`` is not set.
        """
        patches, info, timings, _ = self.features_and_coverage(path)
        return patches, info, timings

    def features_and_coverage(
        self, path: str | Path
    ) -> tuple[np.ndarray, AudioInfo, dict[str, float], float]:
        """``features``, and the fraction of the requested audio that decoded.

        Returns
        -------
        patches : np.ndarray [shape=(B, C, F, T)]
        info : AudioInfo
        timings : dict[str, float]
        coverage : float
            Decoded over expected seconds, in [0, 1]; 1 when the header states no length.
        """
        from mcbr_core.features.patches import patches as cut

        info, _ = probe(path, self.decoders)
        sr = self.extractor.sample_rate
        decode_s = feat_s = 0.0
        batches = []
        windows = self.windows(info)
        expected = decoded = 0.0
        error: DecodeError | None = None
        for start, duration in windows:
            # what this window should yield: the part of it inside the header's duration
            end = info.duration if duration is None else min(start + duration, info.duration)
            want = max(end - start, 0.0)
            expected += want
            t0 = time.perf_counter()
            try:
                y = load_audio(
                    path, sr=sr, decoders=self.decoders, start=start, duration=duration, expected=want or None
                )
            except DecodeError as exc:  # a window inside a damaged stretch: it counts as missing
                error = error or exc
                log.debug("%s: window at %.1f s does not decode: %s", path, start, exc)
                continue
            finally:
                decode_s += time.perf_counter() - t0
            decoded += min(len(y) / sr, want)
            t1 = time.perf_counter()
            feats = self.extractor(y)  # (C, F, T)
            if self.backend.patch_frames is None:
                batches.append(feats[None])  # (1, C, F, T)
            else:
                batches.append(
                    cut(feats, patch_frames=self.backend.patch_frames, hop=self.backend.patch_hop or 1)
                )
            feat_s += time.perf_counter() - t1
        where = "" if len(windows) == 1 else f" in {len(windows)} windows"
        if not batches:  # every window failed
            if expected <= 0 or error is None:
                raise error or DecodeError("no audio decodes")
            message = f"none of the audio decodes (0.0 of {expected:.1f} s{where}): {error}"
            raise DecodeError(message) from error
        coverage = min(decoded / expected, 1.0) if expected > 0 else 1.0
        if coverage < self.settings.min_coverage:
            # floored, so that 89.6 % never reads as the 90 % it falls short of
            percent = math.floor(coverage * 100 + 1e-9)
            figures = f"{percent}% of the audio decodes ({decoded:.1f} of {expected:.1f} s{where})"
            if not self.settings.partial:
                raise DecodeError(f"only {figures}; the rest is damaged")
            log.info("%s: analysing the %s", path, figures)
        return np.concatenate(batches), info, {"decode": decode_s, "features": feat_s}, coverage

    def analyze(self, path: str | Path) -> Analysis:
        """Analyse one file.

        Raises
        ------
        DecodeError
            If the file cannot be decoded, or less than ``min_coverage`` of it
            decodes and ``partial`` is not set.
        """
        patches, info, timings, coverage = self.features_and_coverage(path)
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
            coverage=coverage,
        )
