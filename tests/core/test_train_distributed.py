"""Distributed training: two gloo DDP workers on the CPU train like one process, resume on any number of workers.

The workers are real processes (``torch.multiprocessing.spawn``, with the environment
``torchrun`` would give them) running the real loop on the toy library of
tests/core/training_library.py (the ``library`` fixture of tests/core/conftest.py); the
Ray test starts them as actors of the local Ray cluster (``ray_cluster``) and skips where
Ray is not installed. The network has no BatchNorm: in training mode a BatchNorm layer
normalises over each worker's share of the batch, which one process cannot match.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from mcbr_core.cli import main as mcbr
from mcbr_core.errors import ConfigError
from mcbr_core.hookspecs import hookimpl
from mcbr_core.models.checkpoint import load_model
from mcbr_core.plugins import Plugins, reset_plugins
from mcbr_core.training import distributed
from mcbr_core.training.loop import TrainConfig, train
from tests.toymodel import ToyPlugin

FLAT = "tiny-flat"
EPOCHS = 2  # of two training steps each (12 training clips, batches of 6)
RTOL = 1e-5


class TinyFlat(nn.Module):
    """A convolution over all feature rows, mean over time, a linear head: no BatchNorm, no dropout."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(config["in_channels"], 6, kernel_size=(config["n_bins"], 3), padding=(0, 1))
        self.out = nn.Linear(6, config["n_classes"])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(x))


class FlatArchitecture:
    @hookimpl
    def register_architectures(self, register):
        register(FLAT, TinyFlat)


def flat_plugins() -> Plugins:
    return Plugins((ToyPlugin(), FlatArchitecture()), entry_points=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, size: int, port: int, config: TrainConfig, dataset: Any, resume: bool) -> None:
    """One spawned training process, with the environment torchrun gives its workers."""
    torch.set_num_threads(1)
    env = {"RANK": str(rank), "WORLD_SIZE": str(size), "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(port)}  # fmt: skip
    plugins = flat_plugins()
    reset_plugins(plugins)
    result = distributed.run(config, dataset, resume=resume, plugins=plugins, env=env)
    assert bool(result.table) == (rank == 0)  # only worker 0 reports


def run_workers(size: int, config: TrainConfig, dataset: Any, *, resume: bool = False) -> None:
    torch.multiprocessing.spawn(_worker, args=(size, free_port(), config, dataset, resume), nprocs=size)


def epochs_of(run: Path) -> list[dict[str, Any]]:
    lines = map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
    return [r for r in lines if r["phase"] == "epoch"]


def assert_same_training(a: Path, b: Path) -> None:
    """Same per-epoch training and validation losses, and the same last weights, within tolerance."""
    ea, eb = epochs_of(a), epochs_of(b)
    assert [r["epoch"] for r in ea] == [r["epoch"] for r in eb]
    for ra, rb in zip(ea, eb, strict=True):
        assert rb["train_loss"] == pytest.approx(ra["train_loss"], rel=RTOL)
        assert rb["val_loss"] == pytest.approx(ra["val_loss"], rel=RTOL)
    wa, _ = load_model(a / "checkpoints" / "fold0" / "last.safetensors")
    wb, _ = load_model(b / "checkpoints" / "fold0" / "last.safetensors")
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_allclose(wb[k].numpy(), wa[k].numpy(), rtol=RTOL, atol=1e-6)


@pytest.fixture(scope="module")
def plugins():
    plugins = flat_plugins()
    reset_plugins(plugins)
    yield plugins
    reset_plugins(None)


def flat_config(run: Path, cache: Path, **changes: Any) -> TrainConfig:
    base = TrainConfig(architecture=FLAT, features="toy-features", epochs=EPOCHS, batch_size=6, lr=0.02, patience=0,
                       patch_seconds=0.5, val_fraction=0.25, test_fraction=0.25, seed=3, device="cpu",
                       run_dir=str(run), cache_dir=str(cache))  # fmt: skip
    return replace(base, **changes)


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory, plugins: Plugins, library: Any) -> Path:
    """The reference: one process, ``EPOCHS`` epochs."""
    folder = tmp_path_factory.mktemp("single")
    train(flat_config(folder / "run", folder / "cache"), library, plugins=plugins)
    return folder / "run"


# -- without a process group -----------------------------------------------------------------


def test_world_comes_from_the_environment() -> None:
    assert distributed.from_env({}) == distributed.World()
    env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "h", "MASTER_PORT": "1"}
    w = distributed.from_env(env)
    assert (w.rank, w.size, w.local_rank, w.main) == (1, 2, 1, False)
    with pytest.raises(ConfigError, match="RANK 2 is not in 0..1"):
        distributed.from_env({**env, "RANK": "2"})
    with pytest.raises(ConfigError, match="needs MASTER_ADDR and MASTER_PORT"):
        distributed.from_env({"RANK": "0", "WORLD_SIZE": "2"})
    with pytest.raises(ConfigError, match="WORLD_SIZE must be an integer"):
        distributed.from_env({"WORLD_SIZE": "two"})


def test_each_worker_takes_a_contiguous_share_of_every_batch() -> None:
    batches = [[5, 1, 7, 3, 0], [2, 9, 4, 8, 6]]
    shares = []
    for rank in range(2):
        sampler = distributed.ShardedBatches(batches)
        sampler.rank, sampler.size = rank, 2
        shares.append(list(sampler))
    assert shares == [[[5, 1], [2, 9]], [[7, 3, 0], [4, 8, 6]]]


def test_closed_form_modes_do_not_run_distributed(library: Any, tmp_path: Path) -> None:
    env = {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}
    with pytest.raises(ConfigError, match="mode stats is fitted in closed form"):
        distributed.run(TrainConfig(mode="stats", run_dir=str(tmp_path / "r")), library, env=env)


def test_launchers_import_neither_torch_nor_ray() -> None:
    code = "import sys, mcbr_core.training.distributed, mcbr_core.training.ray_train; print('torch' in sys.modules, 'ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_train_ray_options_are_checked_before_connecting(library: Any, tmp_path: Path) -> None:
    args = ["train", "--dataset", "library", str(library.root), "-O", "min_count=1", "--arch", FLAT, "--features",
            "toy-features", "--out", str(tmp_path / "run"), "--ray", "127.0.0.1:1", "--ray-workers", "0"]  # fmt: skip
    out = CliRunner().invoke(mcbr, args)
    assert out.exit_code == 1 and "train --ray: workers must be >= 1" in out.output


# -- two gloo workers ------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_two_workers_train_like_one_process(tmp_path: Path, library: Any, single: Path) -> None:
    run = tmp_path / "run"
    run_workers(2, flat_config(run, tmp_path / "cache"), library)  # an empty cache: worker 0 fills it first
    assert_same_training(single, run)
    assert [r.get("workers") for r in epochs_of(run)] == [2] * EPOCHS
    assert (run / "model.safetensors").exists() and (run / "report.txt").exists()
    evals = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines() if '"eval"' in ln]
    assert len(evals) == 1  # worker 0 alone evaluated and wrote


@pytest.mark.timeout(180)
def test_a_run_resumes_on_another_number_of_workers(tmp_path: Path, plugins: Plugins, library: Any,
                                                    single: Path) -> None:  # fmt: skip
    run = tmp_path / "run"
    # the first epoch in one process, the second on two workers
    train(flat_config(run, single.parent / "cache", epochs=1), library, plugins=plugins)
    run_workers(2, flat_config(run, single.parent / "cache"), library, resume=True)
    assert [r.get("workers") for r in epochs_of(run)] == [None, 2]
    assert_same_training(single, run)
    with pytest.raises(ConfigError, match="a batch of 6 clips cannot be shared by 7 workers"):
        with pytest.MonkeyPatch.context() as m:
            m.setattr(distributed, "_current", distributed.World(rank=0, size=7))
            distributed.check_batch(6)


# -- on a Ray cluster ------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_ray_workers_train_like_one_process(ray_cluster, tmp_path: Path, plugins: Plugins, library: Any,
                                            single: Path) -> None:  # fmt: skip
    from mcbr_core.training.ray_train import train_on_ray

    run = tmp_path / "run"
    config = flat_config(run, single.parent / "cache")
    with pytest.raises(ConfigError, match="has 2 CPUs and 0 GPUs; 3 workers"):
        train_on_ray(config, library, address=ray_cluster.address, workers=3, plugins=plugins)
    result = train_on_ray(config, library, address=ray_cluster.address, workers=2, plugins=plugins)
    assert result.model_path == run / "model.safetensors" and "fold" in result.table
    assert_same_training(single, run)
    assert [r.get("workers") for r in epochs_of(run)] == [2] * EPOCHS
