"""Every awkward or broken file gets analysed or a clear error; none crashes the run."""

from __future__ import annotations

import resource
from pathlib import Path

import numpy as np
import pytest

from mcbr_core.settings import AnalysisSettings, PoolSettings
from mcbr_core.workers import AnalysisFailed, AnalysisPool
from tests.badinput import CASES, build_corpus
from tests.toymodel import make_toy_model


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list:
    return build_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def results(corpus: list, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from mcbr_core.plugins import Plugins, reset_plugins
    from tests.toymodel import ToyPlugin

    reset_plugins(Plugins((ToyPlugin(),), entry_points=False))
    model = make_toy_model(tmp_path_factory.mktemp("model") / "toy.safetensors")
    settings = AnalysisSettings(model=str(model), device="cpu", max_patches=8, window_patches=2)
    try:
        with AnalysisPool(settings, PoolSettings(workers=0)) as pool:
            return dict(pool.analyze((case.name, path) for case, path in corpus))
    finally:
        reset_plugins(None)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_outcome(case, results: dict) -> None:
    result = results[case.name]
    outcome = "failed" if isinstance(result, AnalysisFailed) else "ok"
    assert outcome in case.expect, f"{case.name}: {result}"
    if outcome == "failed":
        message = str(result)
        assert message and "\n" not in message and len(message) < 500
    else:
        assert np.isfinite(result.embedding).all()
        assert all(np.isfinite(list(scores.values())).all() for scores in result.scores.values())


def test_specific_reasons(results: dict) -> None:
    assert "empty" in str(results["zero-byte file"])
    assert "no audio stream" in str(results["container with no audio stream"])
    # a file that decodes only in part fails with its coverage, rather than being analysed as fine
    damaged = (
        "MP3 with its last 90% random bytes",
        "FLAC with 90% of it overwritten",
        "truncated MP3 (a third of it)",
    )
    for name in damaged:
        assert "of the audio decodes (" in str(results[name]), name
    assert results["MP3 with a glitch in the middle"].coverage > 0.95


def test_an_hour_of_silence_is_read_in_windows(results: dict) -> None:
    hour = results["one hour of silence"]
    assert hour.duration == pytest.approx(3600, abs=1)
    assert hour.analysed < 30  # 8 patches of 1 s, not an hour of audio
    # peak memory of this whole test process stays far below an hour of decoded audio at 8 kHz x many copies
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 < 1500


def test_long_and_unicode_paths_exist(corpus: list) -> None:
    paths = {case.name: path for case, path in corpus}
    assert len(str(paths["very long path"])) > 1000
    assert Path(paths["unicode path"]).exists()
