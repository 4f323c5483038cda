"""The worker pool: a crash, a hang or a runaway allocation costs only that file."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcbr_core.settings import AnalysisSettings, PoolSettings
from mcbr_core.workers import AnalysisFailed, AnalysisPool
from tests.toymodel import make_toy_model


@pytest.fixture
def settings(tmp_path: Path) -> AnalysisSettings:
    model = make_toy_model(tmp_path / "toy.safetensors")
    return AnalysisSettings(
        model=str(model), decoders=("faulty",), extra_plugins=("tests.faulty",), device="cpu"
    )


def touch(folder: Path, *names: str) -> list[tuple[str, Path]]:
    jobs = []
    for name in names:
        path = folder / f"{name}.bad"
        path.write_bytes(b"x")
        jobs.append((name, path))
    return jobs


@pytest.mark.slow
def test_faults_cost_only_their_file(tmp_path: Path, settings: AnalysisSettings) -> None:
    jobs = touch(tmp_path, "high-1", "crash", "hang", "low-2", "high-3")
    with AnalysisPool(settings, PoolSettings(workers=2, timeout=5.0, memory_mb=0)) as pool:
        results = dict(pool.analyze(jobs))
    assert set(results) == {name for name, _ in jobs}
    for name in ("high-1", "low-2", "high-3"):
        assert not isinstance(results[name], Exception), results[name]
        assert results[name].model_id == "toy-1"
    assert isinstance(results["crash"], AnalysisFailed) and "crashed" in str(results["crash"])
    assert isinstance(results["hang"], AnalysisFailed) and "timed out" in str(results["hang"])
    assert results["high-1"].scores["genre"]["Rock"] > 0.9 > results["low-2"].scores["genre"]["Rock"]


@pytest.mark.slow
def test_runaway_allocation_hits_the_memory_ceiling(tmp_path: Path, settings: AnalysisSettings) -> None:
    jobs = touch(tmp_path, "hog", "high-1")
    # a generous timeout, so that only the memory ceiling can stop the hog, however loaded the machine
    with AnalysisPool(settings, PoolSettings(workers=1, timeout=300.0, memory_mb=1000)) as pool:
        results = dict(pool.analyze(jobs))
    assert isinstance(results["hog"], AnalysisFailed) and "memory ceiling of 1000 MB" in str(results["hog"])
    assert not isinstance(results["high-1"], Exception)


def test_in_process_mode_reports_failures_too(tmp_path: Path, settings: AnalysisSettings) -> None:
    jobs = touch(tmp_path, "high-1")
    jobs.append(("missing", tmp_path / "missing.bad"))
    with AnalysisPool(settings, PoolSettings(workers=0)) as pool:
        results = dict(pool.analyze(jobs))
    assert results["high-1"].embedding.shape == (2,)
    assert isinstance(results["missing"], AnalysisFailed) and "not found" in str(results["missing"])


def test_a_bad_model_stops_the_pool_with_a_clear_error(tmp_path: Path) -> None:
    from mcbr_core.errors import McbrError

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    settings = AnalysisSettings(model=str(bad), device="cpu")
    with (
        AnalysisPool(settings, PoolSettings(workers=1)) as pool,
        pytest.raises(McbrError, match="not an mcbr model"),
    ):
        dict(pool.analyze(touch(tmp_path, "a")))
