"""``mcbr train --ray ADDRESS``: the distributed epoch loop on the workers of a Ray cluster.

:func:`train_on_ray` starts ``workers`` Ray actors (``cpus_per_worker`` CPUs and
``gpus_per_worker`` GPUs each), gives them the ranks and the rendezvous that
``torchrun`` would (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT`` on the
node of worker 0), and each runs :func:`mcbr_core.training.distributed.run`: the
same code as a ``torchrun`` worker. Worker 0 writes the run folder, so the run
folder, the dataset and the feature cache must be where every worker finds them
at the same path (one machine, or shared folders); relative paths are taken from
this process's working folder.

This needs Ray core only (``beets-mcbr[ray]``), not Ray Train (which brings pandas
and pyarrow): the actors set the torch process group up themselves. The first
worker that fails stops the others, and its error is raised here.

Ray is imported only when this runs.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcbr_core.errors import ConfigError, McbrError
from mcbr_core.training.checks import check_trainable
from mcbr_core.training.config import CLIP_MODES, TrainConfig
from mcbr_core.training.runs import has_checkpoint

if TYPE_CHECKING:
    from mcbr_core.plugins import Plugins
    from mcbr_core.training.datasets.base import Dataset
    from mcbr_core.training.results import CVResult, RunResult

log = logging.getLogger(__name__)

__all__ = ["TrainWorker", "train_on_ray"]

_WAIT = 0.5  # seconds per ray.wait, so that a failed worker (or Ctrl-C) is seen promptly


class TrainWorker:
    """One training process (a Ray actor): its rendezvous address, then its part of the run."""

    def rendezvous(self) -> tuple[str, int]:
        """This node's address and a free port on it (worker 0's are the process group's)."""
        import ray

        with socket.socket() as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        return ray.util.get_node_ip_address(), port

    def train(self, env: dict[str, str], cwd: str, config: TrainConfig, dataset: Dataset, resume: bool,
              plugins: Plugins | None) -> RunResult | CVResult:  # fmt: skip
        """Run :func:`mcbr_core.training.distributed.run` as the worker ``env`` names."""
        from mcbr_core.training import distributed

        os.environ.update(env)
        if os.path.isdir(cwd):
            os.chdir(cwd)
        if env["RANK"] == "0":  # worker 0's progress, on the driver's console (Ray forwards it)
            logging.basicConfig(level=logging.INFO, format="mcbr: %(message)s")
        return distributed.run(config, dataset, resume=resume, plugins=plugins)


def _connect(address: str) -> tuple[Any, bool]:
    """Ray, connected to ``address`` (unless this process is connected already); whether this call connected."""
    try:
        import ray
    except ImportError:
        raise McbrError("training on a Ray cluster needs Ray: pip install 'beets-mcbr[ray]'") from None
    if ray.is_initialized():
        return ray, False
    try:
        ray.init(address=address, namespace="mcbr", logging_level=logging.WARNING)
    except Exception as exc:  # ConnectionError, ValueError...: one line, not a traceback
        raise McbrError(f"cannot connect to the Ray cluster at {address}: {exc}") from None
    return ray, True


def _check_resources(ray: Any, address: str, workers: int, cpus: float, gpus: float) -> None:
    """Refuse a run the cluster cannot hold at once (its workers would wait for each other for ever)."""
    cluster = ray.cluster_resources()
    have_cpus, have_gpus = float(cluster.get("CPU", 0)), float(cluster.get("GPU", 0))
    if workers * cpus > have_cpus or workers * gpus > have_gpus:
        raise ConfigError(f"the Ray cluster at {address} has {have_cpus:g} CPUs and {have_gpus:g} GPUs; {workers} "
                          f"workers of {cpus:g} CPUs and {gpus:g} GPUs need more")  # fmt: skip


def _absolute(config: TrainConfig, dataset: Dataset) -> TrainConfig:
    """The config with its run folder (the default one too) and feature cache as absolute paths."""
    from mcbr_core.training.runs import default_dir

    task = check_trainable(config if config.folds >= 3 else replace(config, folds=0), dataset)
    run_dir = Path(config.run_dir) if config.run_dir else default_dir(config, dataset, task)
    cache = str(Path(config.cache_dir).absolute()) if config.cache_dir else ""
    return replace(config, run_dir=str(run_dir.absolute()), cache_dir=cache)


def _cause(exc: BaseException) -> BaseException:
    """The exception a worker raised (a ``RayTaskError`` carries it as ``cause``)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def train_on_ray(config: TrainConfig, dataset: Dataset, *, address: str, workers: int = 2,
                 cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0, resume: bool = False,
                 plugins: Plugins | None = None) -> RunResult | CVResult:  # fmt: skip
    """Train (or cross-validate) on ``workers`` Ray actors with torch DDP; worker 0's result.

    Parameters
    ----------
    config, dataset, resume, plugins
        As for :func:`mcbr_core.training.loop.run`.
    address
        The cluster, as ``ray.init`` takes it (``HOST:PORT`` of the head, ``auto``).
        A process already connected to Ray uses its connection.
    workers
        Training processes (the world size); a resumed run may use another number.
    cpus_per_worker, gpus_per_worker
        Ray resources of each; with GPUs, give each worker one (NCCL) and
        ``config.device`` ``auto`` or ``cuda``.

    Raises
    ------
    ConfigError
        Bad numbers, a closed-form mode, or a cluster too small for the workers.
    McbrError
        What a worker raised (the first to fail; the others are stopped).
    """
    if workers < 1 or cpus_per_worker < 0 or gpus_per_worker < 0:
        raise ConfigError("train --ray: workers must be >= 1 and the CPUs and GPUs per worker >= 0")
    if config.mode in CLIP_MODES:
        raise ConfigError(f"train --ray: mode {config.mode} is fitted in closed form in one process; "
                          "run it without --ray")  # fmt: skip
    config = _absolute(config, dataset)
    if not resume and has_checkpoint(Path(config.run_dir)):
        raise ConfigError(
            f"{config.run_dir} already holds a run: resume it (--resume) or choose another run folder"
        )
    ray, connected = _connect(address)
    actors: list[Any] = []
    try:
        _check_resources(ray, address, workers, cpus_per_worker, gpus_per_worker)
        remote = ray.remote(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker)(TrainWorker)
        actors = [remote.remote() for _ in range(workers)]
        host, port = ray.get(actors[0].rendezvous.remote())
        log.info("training on %d Ray workers (process group at %s:%d)", workers, host, port)
        base = {"WORLD_SIZE": str(workers), "MASTER_ADDR": host, "MASTER_PORT": str(port)}
        # a worker with GPUs sees only its own (Ray sets CUDA_VISIBLE_DEVICES): its local rank is 0
        refs = [a.train.remote({**base, "RANK": str(rank), "LOCAL_RANK": "0"}, os.getcwd(), config, dataset,
                               resume, plugins) for rank, a in enumerate(actors)]  # fmt: skip
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=_WAIT)
            for ref in done:
                try:
                    ray.get(ref)
                except Exception as exc:  # the first failure: stop the others, raise what it raised
                    cause = _cause(exc)
                    if isinstance(cause, McbrError):
                        raise cause from None
                    lines = [ln for ln in str(cause).splitlines() if ln.strip()]
                    raise McbrError(f"a Ray training worker failed: {type(cause).__name__}: "
                                    f"{lines[-1] if lines else ''}") from None  # fmt: skip
        return ray.get(refs[0])
    finally:
        for actor in actors:
            ray.kill(actor)
        if connected:
            ray.shutdown()
