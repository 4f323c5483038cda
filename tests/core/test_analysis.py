"""Analysis windows, and the shipped default model end to end on generated audio."""

from __future__ import annotations

import numpy as np
import pytest

from mcbr_core.audio.segments import choose_windows


def test_short_tracks_are_analysed_whole() -> None:
    assert choose_windows(30.0, patch_seconds=3.0, max_patches=16, window_patches=4) == [(0.0, None)]
    assert choose_windows(0.0, patch_seconds=3.0, max_patches=16, window_patches=4) == [(0.0, None)]


def test_long_tracks_get_spread_windows_within_the_track() -> None:
    windows = choose_windows(240.0, patch_seconds=3.0, max_patches=16, window_patches=4)
    assert len(windows) == 4
    starts = [s for s, _ in windows]
    assert starts == sorted(starts) and starts[0] >= 0.05 * 240
    assert all(s + d <= 240.0 for s, d in windows)
    assert all(d == pytest.approx(12.05) for _, d in windows)
    assert len(choose_windows(3600.0, patch_seconds=3.0, max_patches=16, window_patches=16)) == 1


@pytest.mark.shipped
def test_default_model_analyses_a_long_file_in_windows(make_audio) -> None:
    from mcbr_core.analysis import Analyzer
    from mcbr_core.settings import AnalysisSettings

    analyzer = Analyzer(AnalysisSettings(device="cpu", max_patches=8, window_patches=2))
    result = analyzer.analyze(make_audio("long.mp3", seconds=90.0))
    assert result.model_id == "msd-musicnn-1"
    assert result.embedding.shape == (200,) and np.isfinite(result.embedding).all()
    assert len(result.scores["tags"]) == 50
    assert all(0.0 <= p <= 1.0 for p in result.scores["tags"].values())
    assert result.analysed == pytest.approx(8 * 187 * 256 / 16000, rel=1e-6)  # 8 patches, not 90 s
    assert result.duration == pytest.approx(90.0, abs=0.1)
    # a clip shorter than one patch still yields one (repeated) patch
    short = analyzer.analyze(make_audio("short.wav", seconds=0.5))
    assert np.isfinite(short.embedding).all()
