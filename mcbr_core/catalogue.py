"""Analyse a folder outside beets into a catalogue (``mcbr analyze``), locally or on a Ray cluster.

The files go through the same pools as a library's (``AnalysisPool``, or
``RayAnalysisPool`` with a cluster address), and this process alone writes the
catalogue (``mcbr_core.store.catalogue``), in transactions of a few dozen rows: an
interrupted run keeps what it finished, and a second run analyses only what is new
or changed. A beets library adopts the rows later (``beet mcbr --adopt``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcbr_core.settings import AnalysisSettings, PoolSettings, RaySettings

if TYPE_CHECKING:
    from mcbr_core.ray_pool import RayAnalysisPool
    from mcbr_core.store.catalogue import Catalogue
    from mcbr_core.workers import AnalysisPool

log = logging.getLogger(__name__)

#: Suffixes analysed when no decoder claims more (those the decoders prefer are added).
AUDIO_SUFFIXES = frozenset(".mp3 .flac .ogg .oga .opus .m4a .mp4 .aac .wav .aif .aiff .wma .ape .wv".split())


@dataclass(frozen=True)
class FolderResult:
    """What ``analyze_folder`` did."""

    analysed: int
    skipped: int
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    seconds: float = 0.0


def audio_files(
    folder: Path, *, recursive: bool = True, suffixes: frozenset[str] = AUDIO_SUFFIXES
) -> list[Path]:
    """Audio files under ``folder`` (by suffix), sorted, as absolute paths."""
    folder = folder.resolve()
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if p.suffix.lower() in suffixes and p.is_file())


def analyze_folder(
    folder: Path,
    out: Path,
    *,
    settings: AnalysisSettings,
    pool: PoolSettings,
    ray: RaySettings | None = None,
    force: bool = False,
    recursive: bool = True,
    base_dir: Path | None = None,
    commit_every: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> FolderResult:
    """Analyse the audio files under ``folder`` into the catalogue ``out``.

    Parameters
    ----------
    folder
        Walked for audio files; rows record each file's absolute path here, as this
        host sees it (workers of a cluster may see it elsewhere: ``ray.path_map``).
    out
        The catalogue file (created if missing).
    settings, pool
        Analysis settings, and the local pool's workers and limits (the timeout
        and memory ceiling apply on a cluster too).
    ray
        A cluster to analyse on (when its ``address`` is set).
    force
        Analyse files the catalogue has already (same model, features and mtime).
    progress
        Called with ``(done, total)`` after each file.

    Raises
    ------
    McbrError
        If the model cannot be loaded, the cluster cannot be reached, or ``out`` is
        not a catalogue.
    """
    from mcbr_core.models.checkpoint import read_card
    from mcbr_core.models.shipped import resolve_model
    from mcbr_core.store.catalogue import Catalogue
    from mcbr_core.workers import AnalysisPool

    t0 = time.perf_counter()
    card = read_card(resolve_model(settings.model, base_dir=base_dir))
    model_id, feature_version = str(card["id"]), str(card["features"]["version"])
    files = audio_files(folder, recursive=recursive, suffixes=_decodable_suffixes())
    with Catalogue(out, create=True) as cat:
        todo = _changed(files, {} if force else cat.mtimes(model_id, feature_version))
        skipped = len(files) - len(todo)
        log.info("%d files under %s: %d to analyse, %d up to date", len(files), folder, len(todo), skipped)
        if ray is not None and ray.address:
            from mcbr_core.ray_pool import RayAnalysisPool

            workers: AnalysisPool | RayAnalysisPool = RayAnalysisPool(settings, pool, ray, base_dir=base_dir)
        else:
            workers = AnalysisPool(settings, pool, base_dir=base_dir)
        analysed, failed = _analyse_into(cat, workers, todo, commit_every=commit_every, progress=progress,
                                         kinds=card.get("tag_kinds", {}))  # fmt: skip
    return FolderResult(analysed, skipped, failed, time.perf_counter() - t0)


class AdoptingPool:
    """A pool that takes a file's analysis from a catalogue where it has one, and analyses the rest.

    What it yields for an adopted file is the catalogue's ``Analysis`` of that very
    file (same path, unchanged mtime, same model and features), so the host records
    it exactly as a fresh one (``ownership.adopt_by_path``).

    Parameters
    ----------
    pool
        The pool that analyses what the catalogue lacks (local or Ray).
    catalogue
        The catalogue file.
    model_id, feature_version
        What the host's own analysis would produce.
    """

    def __init__(self, pool: Any, catalogue: Path, *, model_id: str, feature_version: str) -> None:
        self.inner = pool
        self.catalogue = Path(catalogue)
        self.model_id = model_id
        self.feature_version = feature_version

    def __enter__(self) -> AdoptingPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.inner.close()

    def analyze(self, jobs: Iterable[tuple[Hashable, str | Path]]) -> Iterator[tuple[Hashable, Any]]:
        """Yield the catalogue's analyses first, then the pool's of the other jobs."""
        from mcbr_core.store.ownership import adopt_by_path

        jobs = [(key, path) for key, path in jobs]
        files = {}
        for key, path in jobs:
            try:
                mtime: float | None = os.stat(path).st_mtime
            except OSError:
                mtime = None
            files[key] = (os.fsencode(path), mtime)
        adopted = adopt_by_path(
            self.catalogue, files, model_id=self.model_id, feature_version=self.feature_version
        )  # fmt: skip
        if adopted:
            log.info(
                "%d of %d files adopt their analysis from the catalogue %s",
                len(adopted),
                len(jobs),
                self.catalogue,
            )
        yield from adopted.items()
        yield from self.inner.analyze((key, path) for key, path in jobs if key not in adopted)


def _decodable_suffixes() -> frozenset[str]:
    """The audio suffixes, with those the registered decoders add."""
    from mcbr_core.plugins import get_plugins

    suffixes = set(AUDIO_SUFFIXES)
    registry = get_plugins().registry("decoder")
    for name in registry.names():
        suffixes |= set(getattr(registry.get(name), "extensions", ()))
    return frozenset(suffixes)


def _changed(files: list[Path], known: dict[bytes, float]) -> list[tuple[bytes, Path, float]]:
    """``(key, path, mtime)`` of the files whose mtime is not the one ``known`` records."""
    from mcbr_core.store.mtime import same_mtime

    todo: list[tuple[bytes, Path, float]] = []
    for path in files:
        key = os.fsencode(path)
        try:
            mtime = path.stat().st_mtime
        except OSError:
            continue  # gone since the walk
        if not same_mtime(known.get(key), mtime):
            todo.append((key, path, mtime))
    return todo


def _analyse_into(
    cat: Catalogue,
    workers: AnalysisPool | RayAnalysisPool,
    todo: list[tuple[bytes, Path, float]],
    *,
    commit_every: int,
    progress: Callable[[int, int], None] | None,
    kinds: Mapping[str, Mapping[str, str]],
) -> tuple[int, list[tuple[str, str]]]:
    """Analyse ``todo`` on ``workers`` into ``cat``, committing every ``commit_every`` rows (or
    5 s); the rows written and the ``(path, error)`` of each failure. Of each analysis' scores
    only those tagging can use are kept (``tagging.taggable_scores``, by the card's ``kinds``)."""
    from mcbr_core.tagging import taggable_scores
    from mcbr_core.workers import AnalysisFailed

    mtimes = {key: mtime for key, _, mtime in todo}
    analysed, failed = 0, []
    buffer: list[tuple[bytes, float, object]] = []
    last = time.monotonic()
    try:
        with workers:
            for n, (key, result) in enumerate(workers.analyze((k, p) for k, p, _ in todo), 1):
                if isinstance(result, AnalysisFailed):
                    failed.append((os.fsdecode(key), str(result)))
                    log.warning("%s: %s", os.fsdecode(key), result)
                else:
                    buffer.append(
                        (key, mtimes[key], replace(result, scores=taggable_scores(result.scores, kinds)))
                    )
                if len(buffer) >= commit_every or (buffer and time.monotonic() - last > 5.0):
                    analysed += cat.put_many(buffer)
                    buffer, last = [], time.monotonic()
                if progress is not None:
                    progress(n, len(todo))
    finally:  # Ctrl-C or an error: what finished is kept, in whole rows
        analysed += cat.put_many(buffer)
    return analysed, failed
