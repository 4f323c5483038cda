"""Analysis in worker processes: parallel, and isolated from the host.

Each worker process owns one ``Analyzer`` (its own torch, its own weights). The
host sends it one file at a time and waits with a deadline. A worker that
crashes (a decoder segfault), hangs past ``timeout`` seconds, or grows past
``memory_mb`` of resident memory is killed and replaced; only the file it was
working on fails, with a one-line reason. The same pool makes analysis parallel:
``workers`` processes with ``threads`` torch threads each.

``workers=0`` analyses in the calling process (no isolation; for debugging and
for hosts that cannot start processes).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from collections import deque
from collections.abc import Hashable, Iterable, Iterator
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from mcbr_core.errors import McbrError
from mcbr_core.settings import AnalysisSettings, PoolSettings

log = logging.getLogger(__name__)

_POLL = 0.1  # seconds between liveness/memory checks while waiting
_DEPTH = 2  # jobs queued per worker, so it keeps working while the host writes tags


class AnalysisFailed(McbrError):
    """A file could not be analysed (the message says why)."""


def auto_workers(value: int | str) -> int:
    """``"auto"`` -> one worker per core (at most 8); integers pass through."""
    if value == "auto":
        return max(1, min(os.cpu_count() or 1, 8))
    return int(value)


def _rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (Linux /proc; 0 where unavailable)."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def _worker_main(conn: Connection, settings: AnalysisSettings, base_dir: str | None, threads: int) -> None:
    """Worker loop: receive a path, send back ``("ok", Analysis)`` or ``("error", message)``."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        from dataclasses import replace

        from mcbr_core.analysis import Analyzer

        analyzer = Analyzer(replace(settings, threads=threads), base_dir=Path(base_dir) if base_dir else None)
    except Exception as exc:  # report set-up errors (bad model file) once, then stop
        conn.send(("fatal", f"{type(exc).__name__}: {exc}" if not isinstance(exc, McbrError) else str(exc)))
        return
    # C decoders (mpg123, ffmpeg) print warnings on fd 2 for every odd file; the host
    # gets each failure as one clear line instead, so silence them here
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    conn.send(("ready", analyzer.model_id))
    while True:
        try:
            path = conn.recv()
        except EOFError:
            return
        if path is None:
            return
        try:
            conn.send(("ok", analyzer.analyze(path)))
        except McbrError as exc:
            conn.send(("error", str(exc)))
        except MemoryError:
            conn.send(("error", "out of memory"))
        except Exception as exc:  # a bug or an unexpected library error: this file fails, the worker goes on
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class _Worker:
    def __init__(self, ctx: Any, settings: AnalysisSettings, base_dir: Path | None, threads: int) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_worker_main, args=(child, settings, str(base_dir) if base_dir else None, threads), daemon=True
        )
        self.proc.start()
        child.close()
        self.ready = False
        self.jobs: deque[tuple[Hashable, str]] = deque()  # sent, in order; the head is being analysed
        self.started = 0.0  # when the head job started

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()


class AnalysisPool:
    """Analyse many files in isolated worker processes.

    Parameters
    ----------
    settings
        Analysis settings (model, windows...).
    pool
        Worker count and limits.
    base_dir
        Folder relative model paths start from.
    """

    def __init__(self, settings: AnalysisSettings, pool: PoolSettings, *, base_dir: Path | None = None) -> None:
        self.settings = settings
        self.pool = pool
        self.base_dir = base_dir
        self._ctx = mp.get_context("spawn")  # never fork a threaded host (beets' import pipeline)
        self._workers: list[_Worker] = []
        self._local = None

    def __enter__(self) -> AnalysisPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _threads(self) -> int:
        """Torch threads per worker: as configured, or the cores shared out evenly."""
        if self.settings.threads:
            return self.settings.threads
        return max(1, (os.cpu_count() or 1) // max(self.pool.workers, 1))

    def _spawn(self) -> _Worker:
        return _Worker(self._ctx, self.settings, self.base_dir, self._threads())

    def close(self) -> None:
        """Stop every worker."""
        for w in self._workers:
            try:
                if w.proc.is_alive():
                    w.conn.send(None)
            except (OSError, ValueError):
                pass
            w.proc.join(timeout=2)
            w.kill()
        self._workers = []

    def analyze(self, jobs: Iterable[tuple[Hashable, str | Path]]) -> Iterator[tuple[Hashable, Any]]:
        """Analyse ``(key, path)`` jobs; yield ``(key, Analysis)`` or ``(key, AnalysisFailed)`` as they finish.

        Raises
        ------
        McbrError
            If the workers cannot start at all (e.g. the model file is bad).
        """
        if self.pool.workers == 0:
            yield from self._analyze_here(jobs)
            return
        todo = deque((key, str(path)) for key, path in jobs)
        if not todo:
            return
        while len(self._workers) < min(self.pool.workers, len(todo)):
            self._workers.append(self._spawn())
        while todo or any(w.jobs for w in self._workers):
            now = time.monotonic()
            for w in self._workers:
                while w.ready and len(w.jobs) < _DEPTH and todo:
                    if not w.jobs:
                        w.started = now
                    w.jobs.append(todo.popleft())
                    w.conn.send(w.jobs[-1][1])
            busy = {w.conn: w for w in self._workers}
            for conn in wait(list(busy) + [w.proc.sentinel for w in self._workers], timeout=_POLL):
                w = busy.get(conn)  # type: ignore[arg-type]
                if w is None:
                    continue  # a sentinel: handled by the liveness check below
                try:
                    kind, payload = w.conn.recv()
                except (EOFError, OSError):
                    continue
                if kind == "ready":
                    w.ready = True
                elif kind == "fatal":
                    self.close()
                    raise McbrError(f"analysis workers cannot start: {payload}")
                elif w.jobs:
                    key, _ = w.jobs.popleft()
                    w.started = time.monotonic()  # the next queued job starts now
                    yield key, payload if kind == "ok" else AnalysisFailed(payload)
            now = time.monotonic()
            for i, w in enumerate(self._workers):
                reason = None
                if not w.proc.is_alive():
                    code = w.proc.exitcode
                    reason = f"the analysis worker crashed (signal {-code})" if code and code < 0 else (
                        f"the analysis worker exited ({code})"
                    )
                elif w.jobs and self.pool.memory_mb and _rss_mb(w.proc.pid) > self.pool.memory_mb:
                    reason = f"analysis exceeded the memory ceiling of {self.pool.memory_mb} MB"
                elif w.jobs and now - w.started > self.pool.timeout:
                    reason = f"analysis timed out after {self.pool.timeout:g} s"
                if reason is None:
                    continue
                jobs = list(w.jobs)
                w.kill()
                self._workers[i] = self._spawn()
                if jobs:
                    todo.extendleft(reversed(jobs[1:]))  # queued behind the culprit: try them again
                    yield jobs[0][0], AnalysisFailed(reason)
                elif not w.ready:
                    self.close()
                    raise McbrError(f"analysis workers cannot start: {reason}")

    def _analyze_here(self, jobs: Iterable[tuple[Hashable, str | Path]]) -> Iterator[tuple[Hashable, Any]]:
        if self._local is None:
            from mcbr_core.analysis import Analyzer

            self._local = Analyzer(self.settings, base_dir=self.base_dir)
        for key, path in jobs:
            try:
                yield key, self._local.analyze(path)
            except McbrError as exc:
                yield key, AnalysisFailed(str(exc))
            except Exception as exc:  # no isolation here, but one bad file must not end the run
                yield key, AnalysisFailed(f"{type(exc).__name__}: {exc}")
