"""Distributed data-parallel training: the one epoch loop on several processes.

``torchrun --nproc-per-node N -m mcbr_core.cli train ...`` starts N copies of the
ordinary ``mcbr train``; each finds its rank in the environment torchrun sets
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) and
:func:`run` joins them into one torch process group (gloo on the CPU, NCCL on
CUDA, one GPU per process). ``mcbr train --ray ADDRESS`` starts the same processes
as Ray actors (:mod:`mcbr_core.training.ray_train`).

Every process runs the same code with the same seeds, so each builds the same
split, normalisation and initial weights. What changes under ``N > 1`` workers:

- the network trains wrapped in ``DistributedDataParallel`` (gradients averaged);
- each epoch's batches are drawn in the single-process order (the same seeded
  generator), and each worker takes a contiguous share of every batch
  (:class:`ShardedBatches`); each worker's loss is weighted by its share
  (:func:`loss_weight`), so the averaged gradient is the single-process gradient of
  the whole batch: ``batch_size`` stays the *global* batch;
- worker 0 ("main") alone re-estimates the BatchNorm statistics, scores the
  validation part, writes ``metrics.jsonl``, checkpoints, model cards and the
  report, and evaluates the best epoch; the others learn its early-stopping
  verdict (:func:`share`) and run in a scratch run folder that is removed at the end;
- the epoch's training loss is averaged over all workers (:func:`all_sum`).

A checkpoint holds the plain network's weights and the optimizer's state, never a
wrapper's, so a run resumes on any number of workers (or on one): worker 0 reads
it and hands it to the others.

Not identical to one process: dropout draws per worker, and a BatchNorm layer in
training mode normalises over the worker's share of the batch (as plain DDP does;
the statistics the model keeps are re-estimated on whole batches after each epoch).

torch is imported only when a process group is started.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from mcbr_core.errors import ConfigError
from mcbr_core.training.config import CLIP_MODES, TrainConfig

if TYPE_CHECKING:
    from torch import nn

    from mcbr_core.plugins import Plugins
    from mcbr_core.training.datasets.base import Dataset
    from mcbr_core.training.results import CVResult, RunResult

log = logging.getLogger(__name__)

__all__ = ["TIMEOUT", "ShardedBatches", "World", "all_sum", "bounds", "check_batch", "from_env", "loss_weight",
           "main_first", "process_group", "run", "share", "world", "wrap"]  # fmt: skip

#: How long a worker waits for the others (worker 0 scores the validation part meanwhile).
TIMEOUT = timedelta(minutes=60)

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes.

    Attributes
    ----------
    rank
        0 .. ``size - 1``; rank 0 ("main") writes the run folder.
    size
        The number of processes (1: an ordinary run).
    local_rank
        Rank among the processes of this machine: the GPU it takes.
    device
        Where collectives run: ``"cpu"`` (gloo) or ``"cuda"`` (NCCL).
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def main(self) -> bool:
        """Whether this process writes the run folder."""
        return self.rank == 0


_current = World()


def world() -> World:
    """The process group this process trains in (size 1 outside :func:`process_group`)."""
    return _current


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "")
    try:
        return int(value) if value.strip() else default
    except ValueError:
        raise ConfigError(f"distributed training: {name} must be an integer, got {value!r}") from None


def from_env(env: Mapping[str, str] | None = None) -> World:
    """The rank and world size that ``torchrun`` (or the Ray launcher) put in the environment.

    Raises
    ------
    ConfigError
        A rank outside ``0 .. WORLD_SIZE - 1``, or ``MASTER_ADDR``/``MASTER_PORT`` missing.
    """
    env = os.environ if env is None else env
    size = _int(env, "WORLD_SIZE", 1)
    rank = _int(env, "RANK", 0)
    if size < 1 or not 0 <= rank < size:
        raise ConfigError(f"distributed training: RANK {rank} is not in 0..{size - 1} (WORLD_SIZE {size})")
    if size > 1 and not (env.get("MASTER_ADDR") and env.get("MASTER_PORT")):
        raise ConfigError(
            "distributed training: WORLD_SIZE > 1 needs MASTER_ADDR and MASTER_PORT (torchrun sets them)"
        )
    return World(rank=rank, size=size, local_rank=_int(env, "LOCAL_RANK", 0))


@contextmanager
def process_group(device: str, env: Mapping[str, str] | None = None) -> Iterator[World]:
    """Join the torch process group of ``env``'s world for the block (nothing to do for one process).

    Parameters
    ----------
    device
        The run's device (:func:`mcbr_core.backends.device.pick_device`): ``cuda``
        trains with NCCL on the GPU ``LOCAL_RANK``, anything else with gloo.
    env
        Where ``RANK``, ``WORLD_SIZE``... are read (default: ``os.environ``).
    """
    global _current
    env = os.environ if env is None else env
    w = from_env(env)
    if w.size == 1:
        yield w
        return
    import torch
    import torch.distributed as dist

    cuda = device.startswith("cuda")
    if cuda:
        if ":" in device:
            raise ConfigError(f"distributed training: device {device!r} names one GPU; give cuda "
                              "(each worker takes the GPU of its LOCAL_RANK)")  # fmt: skip
        torch.cuda.set_device(w.local_rank % torch.cuda.device_count())
    if dist.is_initialized():
        raise ConfigError("distributed training: a torch process group is already running in this process")
    host = env["MASTER_ADDR"]
    host = f"[{host}]" if ":" in host else host  # an IPv6 address
    dist.init_process_group("nccl" if cuda else "gloo", init_method=f"tcp://{host}:{env['MASTER_PORT']}",
                            rank=w.rank, world_size=w.size, timeout=TIMEOUT)  # fmt: skip
    _current = replace(w, device="cuda" if cuda else "cpu")
    log.info("distributed training: worker %d of %d (%s)", w.rank, w.size, "nccl" if cuda else "gloo")
    try:
        yield _current
    finally:
        _current = World()
        dist.destroy_process_group()


def share(make: Callable[[], T]) -> T:
    """``make()`` on worker 0, its (picklable) value on every worker; ``make()`` outside a process group."""
    w = world()
    if w.size == 1:
        return make()
    import torch.distributed as dist

    box = [make() if w.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[return-value]


def all_sum(values: Iterable[float]) -> list[float]:
    """The sums over all workers of each of ``values`` (float64)."""
    values = [float(v) for v in values]
    w = world()
    if w.size == 1:
        return values
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=w.device)
    dist.all_reduce(t)
    return [float(v) for v in t.cpu()]


def agree(value: Any, what: str) -> None:
    """Check that every worker holds the same (picklable) ``value``.

    Raises
    ------
    ConfigError
        A worker sees something else: ``what`` names it.
    """
    w = world()
    if w.size == 1:
        return
    import torch.distributed as dist

    values: list[Any] = [None] * w.size
    dist.all_gather_object(values, value)
    if any(v != values[0] for v in values):
        raise ConfigError(f"distributed training: the workers see different {what} (are the dataset and the "
                          "feature cache the same folders on every machine?)")  # fmt: skip


@contextmanager
def main_first() -> Iterator[None]:
    """Worker 0 runs the block first (it fills the feature cache); the others run it after it."""
    w = world()
    if w.size > 1 and not w.main:
        _barrier()
    yield
    if w.size > 1 and w.main:
        _barrier()


def _barrier() -> None:
    import torch.distributed as dist

    dist.barrier()


def wrap(net: nn.Module) -> nn.Module:
    """``DistributedDataParallel(net)`` in a process group of several workers, else ``net`` itself.

    The wrapper shares ``net``'s parameters; checkpoints and evaluation use ``net``.
    """
    w = world()
    if w.size == 1:
        return net
    import torch
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.cuda.current_device()] if w.device == "cuda" else None
    return DistributedDataParallel(net, device_ids=ids)


def bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """The contiguous share ``[lo, hi)`` of ``n`` items that worker ``rank`` of ``size`` takes (sizes differ by <= 1).

    Examples
    --------
    >>> [bounds(5, r, 2) for r in range(2)]
    [(0, 2), (2, 5)]
    """
    return rank * n // size, (rank + 1) * n // size


def check_batch(batch: int) -> None:
    """Refuse a global batch that leaves a worker without clips (``batch``: ``min(batch_size, clips)``)."""
    size = world().size
    if batch < size:
        raise ConfigError(f"distributed training: a batch of {batch} clips cannot be shared by {size} workers; "
                          f"set batch_size >= {size} (or use fewer workers)")  # fmt: skip


def loss_weight(share_size: int, batch: int) -> float:
    """The factor on a worker's mean loss that makes DDP's average the whole batch's mean.

    DDP averages the workers' gradients; worker ``r`` holds ``n_r`` of the batch's
    ``B`` clips, so ``sum_r (n_r W / B) mean_r / W`` is the mean over all ``B``.
    """
    return share_size * world().size / batch


class ShardedBatches:
    """This worker's share of each batch of ``batches`` (all of it outside a process group).

    Parameters
    ----------
    batches
        A batch sampler (lists of indices), drawn in the same order on every worker.
    """

    def __init__(self, batches: Any) -> None:
        self.batches = batches
        w = world()
        self.rank, self.size = w.rank, w.size

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            lo, hi = bounds(len(batch), self.rank, self.size)
            yield list(batch)[lo:hi]

    def __len__(self) -> int:
        return len(self.batches)


def run(config: TrainConfig, dataset: Dataset, *, resume: bool = False, plugins: Plugins | None = None,
        env: Mapping[str, str] | None = None) -> RunResult | CVResult:  # fmt: skip
    """:func:`mcbr_core.training.loop.run` as one worker of the world in ``env`` (a plain run for one process).

    Worker 0 runs in ``config.run_dir``; the others in a scratch folder removed at the
    end, and their result has an empty ``table``.
    """
    from mcbr_core.backends.device import pick_device
    from mcbr_core.training.loop import run as run_loop

    w = from_env(env)
    if w.size == 1:
        return run_loop(config, dataset, resume=resume, plugins=plugins)
    if config.mode in CLIP_MODES:
        raise ConfigError(f"distributed training: mode {config.mode} is fitted in closed form in one process; "
                          "run it without torchrun or --ray")  # fmt: skip
    with process_group(pick_device(config.device), env) as w:
        if w.main:
            return run_loop(config, dataset, resume=resume, plugins=plugins)
        with tempfile.TemporaryDirectory(prefix=f"mcbr-rank{w.rank}-") as scratch:
            return run_loop(replace(config, run_dir=os.path.join(scratch, "run")), dataset, resume=resume,
                            plugins=plugins)  # fmt: skip
