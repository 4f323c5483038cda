"""Feature cache: each clip's features computed once, stored as ``.npy``, memory-mapped after.

Layout::

    CACHE/<source>-<digest>/key.json                 what the digest stands for
    CACHE/<source>-<digest>/<dataset>/<clip>-<file>.npy
    CACHE/<source>-<digest>/<dataset>/<clip>-<file>.failed   why a clip could not be featurised

``<digest>`` hashes the feature source's key (extractor name, version and options,
sample rate, decoders, excerpt length; or the pretrained model id for embeddings),
and ``<file>`` hashes the audio file's path, size and mtime, so a changed file or a
changed extractor never meets stale features. Writes go to a temporary file that is
renamed into place, so parallel runs may share a cache. ``CACHE`` is ``$MCBR_CACHE``,
else ``~/.cache/mcbr``.

With ``workers >= 1`` the features are computed in the isolated worker pool of
:mod:`mcbr_core.workers`: a decoder that crashes, hangs past
:data:`FEATURE_LIMITS`' timeout or grows past its memory ceiling costs that clip
only (it is skipped, with the reason), never the training run.

Sources
-------
:class:`ExtractorSource`
    a registered feature extractor on decoded audio: ``(C, F, T)`` per clip.
:class:`FramesSource`
    the frame features an extractor with a learned state (Zhang's audio words) is
    fitted on.
:class:`EmbeddingSource`
    a pretrained model's per-patch embeddings (the linear probe's input):
    ``(1, D, n_patches)`` per clip, so one "frame" is one patch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mcbr_core.errors import DecodeError, McbrError
from mcbr_core.settings import PoolSettings
from mcbr_core.training.datasets.base import Clip
from mcbr_core.workers import AnalysisFailed, IsolatedPool

log = logging.getLogger(__name__)

#: One clip's feature computation in a worker process: past these limits the clip fails alone.
FEATURE_LIMITS = PoolSettings(workers=1, timeout=600.0, memory_mb=4096)

__all__ = [
    "FEATURE_LIMITS",
    "EmbeddingSource",
    "ExtractorSource",
    "FeatureCache",
    "FeatureSource",
    "FramesSource",
    "default_cache_dir",
    "random_crop",
]


def default_cache_dir() -> Path:
    """``$MCBR_CACHE``, else ``~/.cache/mcbr``."""
    env = os.environ.get("MCBR_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mcbr"


class FeatureSource(Protocol):
    """Computes one clip's feature map.

    Attributes
    ----------
    name : str
        Short name for the cache folder.
    frames_per_second : float
        Frames of the output per second of audio.
    """

    name: str

    @property
    def frames_per_second(self) -> float: ...

    def key(self) -> dict[str, Any]:
        """JSON-able description of everything that shapes the output."""
        ...

    def compute(self, path: Path) -> np.ndarray:
        """Features ``[shape=(C, F, T)]`` float32 of one file."""
        ...


def _check(features: np.ndarray, what: str) -> np.ndarray:
    features = np.asarray(features)
    if features.ndim != 3 or 0 in features.shape:
        raise ValueError(f"{what} gave features of shape {features.shape}, expected (C, F, T)")
    if not np.isfinite(features).all():
        raise ValueError(f"{what} gave non-finite features")
    return features.astype(np.float32, copy=False)


class ExtractorSource:
    """A registered feature extractor applied to decoded audio.

    Parameters
    ----------
    name
        Registered extractor name.
    options
        Its options (the feature config).
    plugins
        Plugin manager (default: the process-wide one).
    decoders
        Decoder names to try.
    max_seconds
        Decode only the middle ``max_seconds`` of each file (0 or ``None``: all of it).
    """

    def __init__(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        plugins: Any = None,
        decoders: Sequence[str] = ("soundfile", "pyav"),
        max_seconds: float | None = None,
    ) -> None:
        self.name = name
        self.options = dict(options or {})
        self.decoder_names = tuple(decoders)
        self.max_seconds = float(max_seconds) if max_seconds else None
        self._plugins = plugins
        self._extractor: Any = None
        self._decoders: list[Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # a worker process rebuilds the extractor and decoders from the same plugins (which pickle as their recipe)
        return {**self.__dict__, "_extractor": None, "_decoders": None}

    def _registry(self, kind: str) -> Any:
        from mcbr_core.plugins import get_plugins

        return (self._plugins or get_plugins()).registry(kind)

    @property
    def extractor(self) -> Any:
        """The extractor object (built on first use)."""
        if self._extractor is None:
            self._extractor = self._registry("feature extractor").get(self.name)(dict(self.options))
        return self._extractor

    @property
    def frames_per_second(self) -> float:
        return float(self.extractor.frames_per_second)

    def key(self) -> dict[str, Any]:
        e = self.extractor
        return {
            "source": "extractor",
            "name": self.name,
            "version": str(e.version),
            "options": self.options,
            "sample_rate": int(e.sample_rate),
            "decoders": list(self.decoder_names),
            "max_seconds": self.max_seconds,
        }

    def audio(self, path: Path) -> np.ndarray:
        """The decoded clip (its middle ``max_seconds``) at the extractor's rate."""
        from mcbr_core.audio.decode import load_audio, probe

        if self._decoders is None:
            self._decoders = [self._registry("decoder").get(n)() for n in self.decoder_names]
        start, duration = 0.0, None
        if self.max_seconds:
            info, _ = probe(path, self._decoders)
            start, duration = max(0.0, (info.duration - self.max_seconds) / 2), self.max_seconds
        return load_audio(path, sr=int(self.extractor.sample_rate), decoders=self._decoders, start=start,
                          duration=duration)  # fmt: skip

    def compute(self, path: Path) -> np.ndarray:
        return _check(self.extractor(self.audio(path)), self.name)


class FramesSource(ExtractorSource):
    """The frame features an extractor with a learned state is fitted on (``extractor.frames(y)``).

    Zhang et al.'s audio words need a codebook learned from training clips; their
    extractor's ``frames`` output (a normalised log-mel, ``(1, n_mels, T)``) is what
    the codebook is fitted on and what the word ids are computed from.
    """

    def key(self) -> dict[str, Any]:
        return {**super().key(), "output": "frames"}

    def compute(self, path: Path) -> np.ndarray:
        return _check(self.extractor.frames(self.audio(path)), f"{self.name} frames")


class EmbeddingSource:
    """Per-patch embeddings of a pretrained model, run exactly as the plugin runs it.

    Parameters
    ----------
    model
        Shipped model name or model file (e.g. ``"msd-musicnn"``).
    plugins
        Plugin manager (default: the process-wide one).
    device
        Torch device for the model.
    max_patches, window_patches
        Analysis windows, as in the plugin's settings.
    """

    def __init__(
        self,
        model: str = "msd-musicnn",
        *,
        plugins: Any = None,
        device: str = "auto",
        max_patches: int = 16,
        window_patches: int = 4,
    ) -> None:
        self.model = model
        self._plugins = plugins
        self._device = device
        self._windows = (max_patches, window_patches)
        self._analyzer: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # a worker process loads the model itself
        return {**self.__dict__, "_analyzer": None}

    @property
    def analyzer(self) -> Any:
        """The analyzer of the pretrained model (loaded on first use)."""
        if self._analyzer is None:
            from mcbr_core.analysis import Analyzer
            from mcbr_core.settings import AnalysisSettings

            settings = AnalysisSettings(
                model=self.model,
                device=self._device,
                max_patches=self._windows[0],
                window_patches=self._windows[1],
            )
            self._analyzer = Analyzer(settings, self._plugins)
        return self._analyzer

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"embedding-{self.analyzer.model_id}"

    @property
    def frames_per_second(self) -> float:
        seconds = self.analyzer.patch_seconds()
        return 1.0 / seconds if seconds else 1.0

    def key(self) -> dict[str, Any]:
        a = self.analyzer
        return {
            "source": "embedding",
            "model_id": a.model_id,
            "feature_version": a.backend.feature_version,
            "max_patches": self._windows[0],
            "window_patches": self._windows[1],
        }

    def compute(self, path: Path) -> np.ndarray:
        a = self.analyzer
        patches, _, _ = a.features(path)
        emb = a.backend.infer(patches).embedding  # (B, D)
        return _check(np.asarray(emb, dtype=np.float32).T[None], self.name)  # (1, D, B)


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(text: str, limit: int = 60) -> str:
    return _SAFE.sub("_", text)[:limit] or "x"


def _compute(source: FeatureSource, path: str | Path) -> np.ndarray | str:
    """The features, or the reason they could not be computed."""
    try:
        return source.compute(Path(path))
    except (McbrError, ValueError, OSError) as exc:
        return str(exc) or type(exc).__name__


@dataclass(frozen=True)
class _ComputeSetup:
    """Builds a feature worker's task: :func:`_compute` with the source (see ``mcbr_core.workers.TaskSetup``)."""

    source: FeatureSource

    def __call__(self, threads: int | None) -> Callable[[str], np.ndarray | str]:
        return lambda path: _compute(self.source, path)


class FeatureCache:
    """Features of a dataset's clips, computed once per source and memory-mapped.

    Parameters
    ----------
    source
        What computes the features.
    root
        Cache folder (default :func:`default_cache_dir`).
    namespace
        Sub-folder, usually the dataset's name.
    """

    def __init__(self, source: FeatureSource, *, root: str | Path | None = None, namespace: str = "default"):
        self.source = source
        key = source.key()
        blob = json.dumps(key, sort_keys=True, default=str).encode()
        self.digest = hashlib.sha256(blob).hexdigest()[:12]
        base = Path(root).expanduser() if root else default_cache_dir()
        self.folder = base / f"{_safe(source.name, 40)}-{self.digest}"
        self.dir = self.folder / _safe(namespace)
        self.dir.mkdir(parents=True, exist_ok=True)
        key_file = self.folder / "key.json"
        if not key_file.exists():
            self._write_atomic(key_file, json.dumps(key, indent=2, sort_keys=True, default=str).encode())

    def path(self, clip: Clip) -> Path:
        """The ``.npy`` file of a clip (named after its id and its file's real path, size and mtime).

        The path is resolved, so a dataset reached by another relative or linked path
        hits the same entries.
        """
        real = os.path.realpath(clip.path)
        try:
            st = os.stat(real)
            stamp = f"{real}|{st.st_size}|{st.st_mtime_ns}"
        except OSError:
            stamp = real
        digest = hashlib.sha1(stamp.encode()).hexdigest()[:10]
        return self.dir / f"{_safe(clip.id)}-{digest}.npy"

    @staticmethod
    def _write_atomic(path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def store(self, clip: Clip, features: np.ndarray) -> Path:
        """Write a clip's features (temporary file, then rename)."""
        path = self.path(clip)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        with tmp.open("wb") as fh:
            np.save(fh, np.ascontiguousarray(features, dtype=np.float32))
        os.replace(tmp, path)
        return path

    def load(self, clip: Clip) -> np.ndarray:
        """The clip's features ``[shape=(C, F, T)]``, memory-mapped (computed first if needed).

        Raises
        ------
        DecodeError
            If the clip cannot be featurised (the reason is cached too).
        """
        path = self.path(clip)
        if path.exists():
            try:
                return np.load(path, mmap_mode="r")
            except (ValueError, OSError):
                log.warning("%s: unreadable cache entry, recomputing", path)
        result = _compute(self.source, clip.path)
        if isinstance(result, str):
            self._fail(clip, result)
            raise DecodeError(result)
        self.store(clip, result)
        return np.load(path, mmap_mode="r")

    def _fail(self, clip: Clip, reason: str) -> None:
        self._write_atomic(self.path(clip).with_suffix(".failed"), reason.encode())

    def prepare(
        self,
        clips: Sequence[Clip],
        *,
        workers: int = 0,
        retry_failed: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[list[Clip], list[tuple[str, str]]]:
        """Make sure every clip's features are cached.

        Parameters
        ----------
        clips
            The clips.
        workers
            Isolated worker processes computing features (0: in this process). A clip
            whose decoder crashes, hangs or runs away with memory fails alone (see
            :data:`FEATURE_LIMITS`).
        retry_failed
            Try again clips that failed before (their reasons are cached).
        progress
            Called with ``(done, total)`` after each computed clip.

        Returns
        -------
        ok : list[Clip]
            Clips whose features are cached, in the given order.
        failed : list[tuple[str, str]]
            ``(clip id, reason)`` for the others.
        """
        todo: list[Clip] = []
        failed: dict[str, str] = {}
        for clip in clips:
            path = self.path(clip)
            marker = path.with_suffix(".failed")
            if path.exists():
                continue
            if marker.exists() and not retry_failed:
                failed[clip.id] = marker.read_text(errors="replace")
                continue
            todo.append(clip)
        if todo:
            log.info("computing %s features of %d clip(s) into %s", self.source.name, len(todo), self.dir)
        self._collect(todo, self._results(todo, workers), failed, progress)
        ok = [c for c in clips if c.id not in failed]
        for cid, reason in failed.items():
            log.warning("%s: skipped (%s)", cid, reason)
        return ok, list(failed.items())

    def _results(self, todo: list[Clip], workers: int) -> Iterator[tuple[int, Any]]:
        """``(index in todo, features | reason | AnalysisFailed)``: in isolated workers, else here, in order."""
        if workers < 1 or not todo:
            yield from ((i, _compute(self.source, clip.path)) for i, clip in enumerate(todo))
            return
        limits = replace(FEATURE_LIMITS, workers=min(workers, len(todo)))
        with IsolatedPool(_ComputeSetup(self.source), limits, what="feature") as pool:
            yield from pool.run((i, clip.path) for i, clip in enumerate(todo))

    def _collect(self, todo: list[Clip], results: Iterable[tuple[int, Any]], failed: dict[str, str],
                 progress: Callable[[int, int], None] | None) -> None:  # fmt: skip
        for done, (i, result) in enumerate(results, 1):
            clip = todo[i]
            if isinstance(result, (str, AnalysisFailed)):
                failed[clip.id] = str(result)
                self._fail(clip, str(result))
            else:
                self.store(clip, result)
            if progress is not None:
                progress(done, len(todo))


def random_crop(features: np.ndarray, frames: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``frames``-long excerpt of a ``(C, F, T)`` map (short maps are tiled first).

    Returns
    -------
    np.ndarray [shape=(C, F, frames), dtype=float32]
        A contiguous copy.
    """
    t = features.shape[2]
    if t < frames:
        reps = -(-frames // t)
        return np.ascontiguousarray(np.tile(features, (1, 1, reps))[:, :, :frames], dtype=np.float32)
    start = int(rng.integers(0, t - frames + 1))
    return np.ascontiguousarray(features[:, :, start : start + frames], dtype=np.float32)
