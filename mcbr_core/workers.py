"""Work on files in worker processes: parallel, and isolated from the host.

:class:`IsolatedPool` runs one task on many files. Each worker process builds the
task once (its own decoders, its own torch and weights) and the host sends it one
file at a time and waits with a deadline. A worker that crashes (a decoder
segfault), hangs past ``timeout`` seconds, or grows past ``memory_mb`` of resident
memory is killed and replaced; only the file it was working on fails, with a
one-line reason. The same pool makes the work parallel: ``workers`` processes with
``threads`` torch threads each.

:class:`AnalysisPool` analyses files for the library (the task is an ``Analyzer``);
the training feature cache computes features with the same pool
(:meth:`mcbr_core.training.cache.FeatureCache.prepare`).

``workers=0`` runs the task in the calling process (no isolation; for debugging and
for hosts that cannot start processes).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Protocol

from mcbr_core.errors import McbrError
from mcbr_core.settings import AnalysisSettings, PoolSettings

log = logging.getLogger(__name__)

_POLL = 0.1  # seconds between liveness/memory checks while waiting
_DEPTH = 2  # jobs queued per worker, so it keeps working while the host writes tags


class AnalysisFailed(McbrError):
    """A file could not be analysed (the message says why)."""


class TaskSetup(Protocol):
    """Builds a pool's task in each worker process: picklable, called once per process.

    ``threads`` is the worker's share of the cores (``None``: the calling process,
    whose threads are left alone). The task it returns maps a path to a result,
    raising ``McbrError`` (or anything else) for a file that fails.
    """

    def __call__(self, threads: int | None) -> Callable[[str], Any]: ...


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


def _failure(exc: Exception) -> str:
    """One line for a file the task raised on."""
    if isinstance(exc, McbrError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory"
    return f"{type(exc).__name__}: {exc}"  # a bug or an unexpected library error: this file fails, the worker goes on


def _worker_main(conn: Connection, setup: TaskSetup, threads: int) -> None:
    """Worker loop: receive a path, send back ``("ok", result)`` or ``("error", message)``."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        task = setup(threads)
    except Exception as exc:  # report set-up errors (bad model file) once, then stop
        conn.send(("fatal", f"{type(exc).__name__}: {exc}" if not isinstance(exc, McbrError) else str(exc)))
        return
    # C decoders (mpg123, ffmpeg) print warnings on fd 2 for every odd file; the host
    # gets each failure as one clear line instead, so silence them here
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    conn.send(("ready", None))
    while True:
        try:
            path = conn.recv()
        except EOFError:
            return
        if path is None:
            return
        try:
            conn.send(("ok", task(path)))
        except Exception as exc:
            conn.send(("error", _failure(exc)))


class _Worker:
    def __init__(self, ctx: Any, setup: TaskSetup, threads: int) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, setup, threads), daemon=True)
        self.proc.start()
        child.close()
        self.ready = False
        self.jobs: deque[tuple[Hashable, str]] = deque()  # sent, in order; the head is being worked on
        self.started = 0.0  # when the head job started

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()


class IsolatedPool:
    """Run a task on many files in isolated worker processes.

    Parameters
    ----------
    setup
        Builds the task in each worker (see :class:`TaskSetup`).
    pool
        Worker count and limits.
    threads
        Torch threads per worker (0: the cores shared out evenly).
    what
        What the work is called in failure reasons (``"analysis"``: "analysis timed out ...").
    """

    def __init__(
        self, setup: TaskSetup, pool: PoolSettings, *, threads: int = 0, what: str = "analysis"
    ) -> None:
        self.setup = setup
        self.pool = pool
        self.threads = threads
        self.what = what
        self._ctx = mp.get_context("spawn")  # never fork a threaded host (beets' import pipeline)
        self._workers: list[_Worker] = []
        self._local: Callable[[str], Any] | None = None

    def __enter__(self) -> IsolatedPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _threads(self) -> int:
        """Torch threads per worker: as configured, or the cores shared out evenly."""
        if self.threads:
            return self.threads
        return max(1, (os.cpu_count() or 1) // max(self.pool.workers, 1))

    def _spawn(self) -> _Worker:
        return _Worker(self._ctx, self.setup, self._threads())

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

    def run(self, jobs: Iterable[tuple[Hashable, str | Path]]) -> Iterator[tuple[Hashable, Any]]:
        """Run ``(key, path)`` jobs; yield ``(key, result)`` or ``(key, AnalysisFailed)`` as they finish.

        Raises
        ------
        McbrError
            If the workers cannot start at all (e.g. the model file is bad).
        """
        if self.pool.workers == 0:
            yield from self._run_here(jobs)
            return
        todo = deque((key, str(path)) for key, path in jobs)
        if not todo:
            return
        while len(self._workers) < min(self.pool.workers, len(todo)):
            self._workers.append(self._spawn())
        while todo or any(w.jobs for w in self._workers):
            self._send(todo)
            yield from self._receive()
            yield from self._replace_failed(todo)

    def _send(self, todo: deque[tuple[Hashable, str]]) -> None:
        """Keep each ready worker's queue ``_DEPTH`` jobs deep."""
        now = time.monotonic()
        for w in self._workers:
            while w.ready and len(w.jobs) < _DEPTH and todo:
                if not w.jobs:
                    w.started = now
                w.jobs.append(todo.popleft())
                w.conn.send(w.jobs[-1][1])

    def _receive(self) -> Iterator[tuple[Hashable, Any]]:
        """Wait up to ``_POLL`` seconds; yield the results that came back."""
        busy = {w.conn: w for w in self._workers}
        for conn in wait(list(busy) + [w.proc.sentinel for w in self._workers], timeout=_POLL):
            w = busy.get(conn)  # type: ignore[arg-type]
            if w is None:
                continue  # a sentinel: handled by the liveness check
            try:
                kind, payload = w.conn.recv()
            except (EOFError, OSError):
                continue
            if kind == "ready":
                w.ready = True
            elif kind == "fatal":
                self.close()
                raise McbrError(f"{self.what} workers cannot start: {payload}")
            elif w.jobs:
                key, _ = w.jobs.popleft()
                w.started = time.monotonic()  # the next queued job starts now
                yield key, payload if kind == "ok" else AnalysisFailed(payload)

    def _fault(self, w: _Worker, now: float) -> str | None:
        """Why a worker must go (it died, or its file is over the memory or time limit); ``None``: it is fine."""
        if not w.proc.is_alive():
            code = w.proc.exitcode
            if code and code < 0:
                return f"the {self.what} worker crashed (signal {-code})"
            return f"the {self.what} worker exited ({code})"
        if w.jobs and self.pool.memory_mb and _rss_mb(w.proc.pid) > self.pool.memory_mb:
            return f"{self.what} exceeded the memory ceiling of {self.pool.memory_mb} MB"
        if w.jobs and now - w.started > self.pool.timeout:
            return f"{self.what} timed out after {self.pool.timeout:g} s"
        return None

    def _replace_failed(self, todo: deque[tuple[Hashable, str]]) -> Iterator[tuple[Hashable, Any]]:
        """Kill and replace a faulty worker; its file fails, the files queued behind it go back in line."""
        now = time.monotonic()
        for i, w in enumerate(self._workers):
            reason = self._fault(w, now)
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
                raise McbrError(f"{self.what} workers cannot start: {reason}")

    def _run_here(self, jobs: Iterable[tuple[Hashable, str | Path]]) -> Iterator[tuple[Hashable, Any]]:
        if self._local is None:
            self._local = self.setup(None)
        for key, path in jobs:
            try:
                yield key, self._local(str(path))
            except Exception as exc:  # no isolation here, but one bad file must not end the run
                yield key, AnalysisFailed(_failure(exc))


@dataclass(frozen=True)
class _AnalyzerSetup:
    """Builds an ``Analyzer`` in a worker; its task is ``Analyzer.analyze``."""

    settings: AnalysisSettings
    base_dir: Path | None

    def __call__(self, threads: int | None) -> Callable[[str], Any]:
        from mcbr_core.analysis import Analyzer

        settings = self.settings if threads is None else replace(self.settings, threads=threads)
        return Analyzer(settings, base_dir=self.base_dir).analyze


class AnalysisPool(IsolatedPool):
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

    def __init__(
        self, settings: AnalysisSettings, pool: PoolSettings, *, base_dir: Path | None = None
    ) -> None:
        super().__init__(_AnalyzerSetup(settings, base_dir), pool, threads=settings.threads, what="analysis")
        self.settings = settings
        self.base_dir = base_dir

    def analyze(self, jobs: Iterable[tuple[Hashable, str | Path]]) -> Iterator[tuple[Hashable, Any]]:
        """Analyse ``(key, path)`` jobs; yield ``(key, Analysis)`` or ``(key, AnalysisFailed)`` as they finish.

        Raises
        ------
        McbrError
            If the workers cannot start at all (e.g. the model file is bad).
        """
        return self.run(jobs)
