"""Where a training run goes: the workers of a Ray cluster, or this process.

The one choice ``mcbr train`` and ``beet mcbr-train`` both make after building the
config and the dataset (docs/training.md, "Distributed training").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcbr_core.training.config import TrainConfig
    from mcbr_core.training.datasets.base import Dataset
    from mcbr_core.training.results import CVResult, RunResult


def train(config: TrainConfig, dataset: Dataset, *, resume: bool = False, ray_address: str | None = None,
          ray_workers: int = 2, cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0,
          env: Mapping[str, str] | None = None) -> RunResult | CVResult:  # fmt: skip
    """Train (or cross-validate) ``config`` on ``dataset``.

    Parameters
    ----------
    ray_address
        A Ray cluster (``HOST:PORT``, ``auto``): ``ray_workers`` DDP workers there, with
        ``cpus_per_worker`` and ``gpus_per_worker`` each
        (:func:`mcbr_core.training.ray_train.train_on_ray`). ``None`` or empty: here.
    env
        Here, the torch world this process belongs to (``torchrun``'s variables;
        ``None``: ``os.environ``, ``{}``: a process of its own), as
        :func:`mcbr_core.training.distributed.run` takes it.

    Returns
    -------
    RunResult or CVResult
        Worker 0's result; another worker's has an empty ``table``.
    """
    if ray_address:
        from mcbr_core.training.ray_train import train_on_ray

        return train_on_ray(config, dataset, address=ray_address, workers=ray_workers, resume=resume,
                            cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker)  # fmt: skip
    from mcbr_core.training import distributed

    return distributed.run(config, dataset, resume=resume, env=env)
