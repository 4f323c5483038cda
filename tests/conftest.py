"""Shared fixtures: generated audio."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audiogen import tone, write_audio


@pytest.fixture
def make_audio(tmp_path: Path):
    """Factory: ``make_audio("x.flac", seconds=3, freq=440)`` writes a generated file."""

    def make(name: str, *, seconds: float = 4.0, sr: int = 22050, freq: float = 440.0, seed: int = 0,
             channels: int = 1) -> Path:  # fmt: skip
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_audio(path, tone(seconds, sr=sr, freq=freq, seed=seed, channels=channels), sr)

    return make


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A local Ray cluster of two one-CPU nodes (tests/raycluster.py), shared by the Ray tests.

    Skipped where Ray is not installed. This test process is connected to it as the
    driver; the cluster's own processes (and only those) are killed at the end.
    ``toy_model`` is a toy model file for every Ray test: with one model (and the
    same settings) the workers keep their analysis process from test to test.
    """
    ray = pytest.importorskip("ray")
    from tests.raycluster import LocalCluster
    from tests.toymodel import make_toy_model

    folder = tmp_path_factory.mktemp("ray")
    cluster = LocalCluster(folder).start()
    cluster.toy_model = make_toy_model(folder / "toy.safetensors")
    try:
        cluster.add_node()
        ray.init(
            address=cluster.address, namespace="mcbr-tests", log_to_driver=False, logging_level="WARNING"
        )
        cluster.wait_for_cpus(2)
        yield cluster
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.stop()
