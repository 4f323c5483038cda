"""Analysis on a Ray cluster, behind the ``AnalysisPool`` interface.

``RayAnalysisPool.analyze(jobs)`` yields ``(key, Analysis | AnalysisFailed)`` like
``mcbr_core.workers.AnalysisPool``, so a host's progress display, ETA, summary and
writes do not change: the host (beets, or ``mcbr analyze``) alone writes tags, the
store and the index; the cluster only decodes and runs the model.

Files go to the cluster in batches of ``RaySettings.batch_size``, one Ray task each
(``num_cpus``, or a share of a GPU, per task). Inside a task the files run through
an ordinary one-worker ``AnalysisPool``: the same isolated process, timeout, memory
ceiling and bad-input rules as a local run. That process (and the model it loaded)
is kept between tasks in the Ray worker, so the model loads once per Ray worker.

Failures cost only their files:

- a file that fails (bad input, timeout, memory) comes back failed with its reason,
  from inside the task;
- a Ray worker that dies (a node lost, the OOM killer, ``kill -9``) fails its task;
  Ray runs it again once (``max_retries=1``), and a batch that fails again is split
  into one task per file, so that only the files that kill a worker twice fail.

Ray is imported on first use only: a run without ``--ray`` never imports it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from mcbr_core.errors import McbrError
from mcbr_core.settings import AnalysisSettings, PoolSettings, RaySettings
from mcbr_core.workers import AnalysisFailed

log = logging.getLogger(__name__)

_WAIT = 0.5  # seconds per ray.wait, so that Ctrl-C is seen promptly

#: In a Ray worker process: the local pool of the current settings, kept between tasks.
_LOCAL: dict[tuple, Any] = {}


def map_path(path: str, path_map: Mapping[str, str]) -> str:
    """The path a worker reads for a host path: the longest matching prefix replaced.

    A prefix matches whole folder names only (``/music`` maps ``/music/a.mp3``,
    not ``/musical/a.mp3``).

    Examples
    --------
    >>> map_path("/beets/music/a/b.flac", {"/beets/music": "/mnt/music"})
    '/mnt/music/a/b.flac'
    """
    best: tuple[str, str] | None = None
    for prefix, target in path_map.items():
        bare = prefix.rstrip("/")
        if (path == bare or path.startswith(bare + "/")) and (best is None or len(bare) > len(best[0])):
            best = (bare, target.rstrip("/"))
    if best is None:
        return path
    return best[1] + path[len(best[0]) :] or "/"


def analyze_batch(
    shared: tuple[AnalysisSettings, PoolSettings, str | None], batch: list[tuple[int, str]]
) -> tuple[str, Any]:
    """The Ray task: analyse ``(index, path)`` jobs in this worker's isolated local pool.

    ``shared`` is ``(settings, pool, base_dir)``, the same for every task of a run.

    Returns
    -------
    ("ok", [(index, Analysis | str)]) or ("fatal", message)
        A string result is the file's failure reason. ``fatal``: the analysis
        process cannot start here (a bad model file); no retry helps.
    """
    from mcbr_core.workers import AnalysisPool

    settings, pool, base_dir = key = shared
    local = _LOCAL.get(key)
    if local is None:
        for old in _LOCAL.values():
            old.close()
        _LOCAL.clear()
        local = _LOCAL[key] = AnalysisPool(settings, pool, base_dir=Path(base_dir) if base_dir else None)
    try:
        results = [(i, str(r) if isinstance(r, AnalysisFailed) else r) for i, r in local.analyze(batch)]
    except McbrError as exc:
        _LOCAL.clear()
        return "fatal", str(exc)
    return "ok", results


def _reason(exc: BaseException) -> str:
    """One line for a file whose task failed twice as a whole (its worker died, or was killed)."""
    name = type(exc).__name__
    if "OutOfMemory" in name:
        return "the Ray worker analysing it was killed by Ray's memory monitor (and again on the retry)"
    if "WorkerCrashed" in name or "NodeDied" in name or "ActorDied" in name:
        return "the Ray worker analysing it died (and again on the retry)"
    return f"its Ray task was lost (and again on the retry): {_cause(exc)}"


def _cause(exc: BaseException) -> str:
    """``Type: last line`` of what a task raised (a ``RayTaskError`` names the task's own exception)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[-1]}" if lines else type(exc).__name__


def _quiet_cluster_messages() -> None:
    """Send the cluster's messages to the driver (``A worker died...``) to the debug log.

    Ray prints them on the driver's stdout, in the middle of beets' output, even with
    ``log_to_driver=False``; the host already reports each failure as one line
    naming its file. (``print_to_stdstream`` is Ray's private printer: where a Ray
    version lacks it, the messages are printed as Ray prints them.)
    """
    try:
        from ray._private import worker as ray_worker
    except ImportError:  # pragma: no cover - another Ray layout
        return
    printer = getattr(ray_worker, "print_to_stdstream", None)
    if printer is None or getattr(printer, "mcbr", False):
        return

    def to_log(data: dict[str, Any], ignore_prefix: bool = False) -> None:
        for line in data.get("lines", ()):
            log.debug("ray (%s): %s", data.get("pid", "?"), line)

    to_log.mcbr = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = to_log


class RayAnalysisPool:
    """Analyse many files on a Ray cluster; the same interface as ``AnalysisPool``.

    Parameters
    ----------
    settings
        Analysis settings (model, windows...), as for a local run.
    pool
        The timeout and memory ceiling each file gets (``workers`` is not used: the
        cluster's resources decide how many files run at once).
    ray
        The cluster's address, batch size, resources per task and path mapping.
    base_dir
        Folder relative model paths start from (on the host).
    """

    def __init__(
        self,
        settings: AnalysisSettings,
        pool: PoolSettings,
        ray: RaySettings,
        *,
        base_dir: Path | None = None,
    ) -> None:
        if not ray.address:
            raise McbrError("a Ray pool needs the cluster's address (mcbr.ray.address or --ray)")
        self.settings = settings
        self.pool = pool
        self.ray_settings = ray
        self.base_dir = base_dir
        self._ray: Any = None
        self._connected = False  # this pool called ray.init (and so calls ray.shutdown)
        self._pending: dict[Any, list[tuple[int, str]]] = {}

    def __enter__(self) -> RayAnalysisPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self) -> Any:
        if self._ray is not None:
            return self._ray
        try:
            import ray
        except ImportError:
            raise McbrError("analysis on a Ray cluster needs Ray: pip install 'beets-mcbr[ray]'") from None
        if not ray.is_initialized():
            log.info("connecting to the Ray cluster at %s", self.ray_settings.address)
            kwargs: dict[str, Any] = {}
            if self.ray_settings.runtime_env:
                kwargs["runtime_env"] = dict(self.ray_settings.runtime_env)
            try:
                ray.init(
                    address=self.ray_settings.address,
                    namespace="mcbr",
                    log_to_driver=False,  # each failure comes back as one line with its file
                    logging_level=logging.WARNING,
                    **kwargs,
                )
            except Exception as exc:  # ConnectionError, ValueError...: one line, not a traceback
                raise McbrError(
                    f"cannot connect to the Ray cluster at {self.ray_settings.address}: {exc}"
                ) from None
            self._connected = True
            _quiet_cluster_messages()
        self._ray = ray
        return ray

    def _worker_settings(self) -> tuple[AnalysisSettings, PoolSettings, str | None]:
        """What a task receives: the model as a worker finds it, one isolated process per task."""
        from mcbr_core.models.shipped import resolve_model, shipped_models

        r = self.ray_settings
        model = self.settings.model
        if model not in shipped_models():  # a file: where the workers see it
            model = map_path(str(resolve_model(model, base_dir=self.base_dir).resolve()), r.path_map)
        threads = self.settings.threads or max(1, int(r.num_cpus))
        settings = replace(self.settings, model=model, threads=threads)
        return settings, replace(self.pool, workers=1), None  # the model path is absolute: no base folder

    def _resources(self, ray: Any) -> tuple[float, float, int]:
        """CPUs and GPUs per task, and how many tasks to keep in flight."""
        r = self.ray_settings
        cluster = ray.cluster_resources()
        cpus, gpus = float(cluster.get("CPU", 0)), float(cluster.get("GPU", 0))
        num_gpus = r.num_gpus
        if num_gpus == "auto":  # every task gets an equal share of the GPUs: decoding keeps all CPUs busy
            num_gpus = min(1.0, int(gpus / max(cpus / r.num_cpus, 1) * 1e4) / 1e4) if gpus and cpus else 0.0
        slots = cpus / r.num_cpus if r.num_cpus else float("inf")
        if num_gpus:
            slots = min(slots, gpus / float(num_gpus))
        if slots < 1:  # no node could ever run a task: it would wait for ever
            raise McbrError(
                f"the Ray cluster at {r.address} has {cpus:g} CPUs and {gpus:g} GPUs, less than one task needs "
                f"(num_cpus {r.num_cpus:g}, num_gpus {float(num_gpus):g})"
            )
        in_flight = r.max_in_flight or max(2, int(2 * slots))
        return r.num_cpus, float(num_gpus), in_flight

    def close(self) -> None:
        """Cancel tasks still running, and disconnect if this pool connected."""
        ray = self._ray
        if ray is None:
            return
        self._cancel()
        if self._connected and ray.is_initialized():
            ray.shutdown()
        self._ray = None
        self._connected = False

    def _cancel(self) -> None:
        for ref in list(self._pending):
            try:
                self._ray.cancel(ref, force=True)
            except Exception as exc:  # a finished or lost task: nothing to cancel
                log.debug("cannot cancel a Ray task: %s", exc)
        self._pending.clear()

    def analyze(self, jobs: Iterable[tuple[Hashable, str | Path]]) -> Iterator[tuple[Hashable, Any]]:
        """Analyse ``(key, path)`` jobs; yield ``(key, Analysis)`` or ``(key, AnalysisFailed)`` as they finish.

        Stopping early (Ctrl-C, or closing the iterator) cancels the tasks still on
        the cluster; what was yielded is all the host has to write.

        Raises
        ------
        McbrError
            If the cluster cannot be reached, or the analysis cannot start on it.
        """
        todo = [(key, str(path)) for key, path in jobs]
        if not todo:
            return
        ray = self._connect()
        settings, pool, base_dir = self._worker_settings()
        num_cpus, num_gpus, in_flight = self._resources(ray)
        options: dict[str, Any] = {"num_cpus": num_cpus, "max_retries": 1, "retry_exceptions": False}
        if num_gpus:
            options["num_gpus"] = num_gpus
        task = ray.remote(analyze_batch).options(**options)
        shared = ray.put((settings, pool, base_dir))  # once, not with every task
        path_map = self.ray_settings.path_map
        size = self.ray_settings.batch_size
        indexed = [(i, map_path(path, path_map)) for i, (_, path) in enumerate(todo)]
        queue = deque(indexed[i : i + size] for i in range(0, len(indexed), size))
        log.info("analysing %d files on the Ray cluster (%d per task, %s)", len(todo), size,
                 f"{num_gpus:g} GPU per task" if num_gpus else f"{num_cpus:g} CPU per task")  # fmt: skip
        try:
            while queue or self._pending:
                while queue and len(self._pending) < in_flight:
                    batch = queue.popleft()
                    self._pending[task.remote(shared, batch)] = batch
                done, _ = ray.wait(list(self._pending), num_returns=1, timeout=_WAIT)
                for ref in done:
                    batch = self._pending.pop(ref)
                    try:
                        kind, payload = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # it raised: the workers' setup, not a file
                        raise McbrError(
                            f"analysis cannot run on the Ray cluster: {_cause(exc)} (are beets-mcbr and the "
                            "extra_plugins modules installed on the workers? see mcbr.ray.runtime_env)"
                        ) from None
                    except Exception as exc:  # its worker died twice: split the batch, or fail the file
                        if len(batch) > 1:
                            log.warning("a Ray task of %d files failed twice (%s); trying them one by one",
                                        len(batch), type(exc).__name__)  # fmt: skip
                            queue.extendleft([job] for job in reversed(batch))
                            continue
                        yield todo[batch[0][0]][0], AnalysisFailed(_reason(exc))
                        continue
                    if kind == "fatal":
                        raise McbrError(f"analysis cannot start on the Ray cluster: {payload}")
                    for i, result in payload:
                        key, path = todo[i]
                        if isinstance(result, str):
                            yield key, AnalysisFailed(result)
                        else:
                            yield key, replace(result, path=path)  # the host's path, not the worker's
        finally:
            self._cancel()
