"""Analysis windows, and the shipped default model end to end on generated audio."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mcbr_core.audio.segments import choose_windows
from mcbr_core.errors import ConfigError, DecodeError
from mcbr_core.settings import AnalysisSettings, from_mapping
from tests import badinput
from tests.toymodel import ToyPlugin, make_toy_model

COVERAGE_ERROR = r"only \d+% of the audio decodes \(\d+\.\d of 30\.0 s\); the rest is damaged"


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


def test_window_starts_do_not_follow_a_few_ms_of_header_length() -> None:
    # one track as WAV, as M4A (AAC priming: +23 ms) and as MP3 without a LAME tag (+39 ms)
    durations = (240.0, 240.023, 240.039)
    plans = [choose_windows(d, patch_seconds=2.992, max_patches=16, window_patches=4) for d in durations]
    assert plans[0] == plans[1] == plans[2]
    assert [s for s, _ in plans[0]] == [12.0, 80.0, 148.0, 216.0]  # whole seconds
    for duration in np.linspace(51.0, 4000.0, 200):
        for start, length in choose_windows(duration, patch_seconds=2.992, max_patches=16, window_patches=4):
            assert 0.0 <= start and start + length <= duration


@pytest.mark.shipped
def test_default_model_analyses_a_long_file_in_windows(make_audio) -> None:
    from mcbr_core.analysis import Analyzer
    from mcbr_core.settings import AnalysisSettings

    analyzer = Analyzer(AnalysisSettings(device="cpu", max_patches=8, window_patches=2))
    result = analyzer.analyze(make_audio("long.mp3", seconds=90.0))
    assert result.model_id == "mcbr-fusion-1"  # msd-musicnn and as-mn04 on one decode
    assert result.embedding.shape == (712,) and np.isfinite(result.embedding).all()
    assert len(result.scores["msd-musicnn"]) == 50 and len(result.scores["as-mn04"]) == 527
    assert all(0.0 <= p <= 1.0 for head in result.scores.values() for p in head.values())
    assert result.analysed == pytest.approx(8 * 95744 / 32000, rel=1e-6)  # 8 patches of 2.99 s, not 90 s
    assert result.duration == pytest.approx(90.0, abs=0.1)
    # a clip shorter than one patch still yields one (repeated) patch
    short = analyzer.analyze(make_audio("short.wav", seconds=0.5))
    assert np.isfinite(short.embedding).all()


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory):
    """An ``Analyzer`` factory on the toy model (1-s patches): ``toy(partial=True)``."""
    from mcbr_core.analysis import Analyzer
    from mcbr_core.plugins import Plugins

    plugins = Plugins((ToyPlugin(),), entry_points=False)
    model = make_toy_model(tmp_path_factory.mktemp("model") / "toy.safetensors")
    # 64 one-second patches: files up to 65 s are decoded whole
    base = AnalysisSettings(model=str(model), device="cpu", max_patches=64, window_patches=4)
    return lambda **changes: Analyzer(replace(base, **changes), plugins=plugins)


@pytest.mark.parametrize("build", [badinput.damaged_tail_mp3, badinput.overwritten_flac])
def test_a_file_that_decodes_in_part_fails_naming_its_coverage(toy, tmp_path: Path, build) -> None:
    path = build(tmp_path)
    with pytest.raises(DecodeError, match=COVERAGE_ERROR):
        toy().analyze(path)
    result = toy(partial=True).analyze(path)  # analysed on what decoded, and says how much that was
    assert 0.05 < result.coverage < 0.9
    assert result.duration == pytest.approx(30.0, abs=0.1)
    assert result.analysed < 0.2 * 30.0
    assert np.isfinite(result.embedding).all()
    assert toy(min_coverage=0.05).analyze(path).coverage == pytest.approx(result.coverage)


def test_windowed_analysis_counts_what_each_window_yields(toy, tmp_path: Path) -> None:
    settings = {"max_patches": 16, "window_patches": 4}  # a 30-s file: 4 windows of 4.05 s from 1.5 s on
    path = badinput.damaged_tail_mp3(tmp_path)  # the first window is half sound, the others lie in the damage
    with pytest.raises(
        DecodeError, match=r"only \d+% of the audio decodes \(\d\.\d of 16\.2 s in 4 windows\)"
    ):
        toy(**settings).analyze(path)
    assert toy(**settings, partial=True).analyze(path).coverage < 0.25
    with pytest.raises(DecodeError, match=r"^none of the audio decodes \(0\.0 of 16\.2 s in 4 windows\): "):
        toy(**settings, partial=True).analyze(badinput.overwritten_flac(tmp_path))  # nothing to analyse


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "opus", "mp3", "m4a"])
@pytest.mark.parametrize("windows", [False, True])
def test_healthy_files_decode_whole(toy, make_audio, fmt: str, windows: bool) -> None:
    analyzer = toy(max_patches=8, window_patches=2) if windows else toy()
    result = analyzer.analyze(make_audio(f"healthy.{fmt}", seconds=20.0, channels=2))
    assert result.coverage == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("build", [badinput.glitched_mp3, badinput.vbr_mp3_without_xing])
def test_odd_but_sound_mp3s_pass(toy, tmp_path: Path, build) -> None:
    result = toy().analyze(build(tmp_path))
    assert result.coverage > 0.97
    assert result.duration == pytest.approx(30.0, abs=0.1)


def test_coverage_settings_are_validated() -> None:
    assert AnalysisSettings().min_coverage == 0.9 and AnalysisSettings().partial is False
    settings = from_mapping(AnalysisSettings, {"min_coverage": 0.5, "partial": True}, where="mcbr")
    assert (settings.min_coverage, settings.partial) == (0.5, True)
    assert AnalysisSettings(min_coverage=1).min_coverage == 1
    for bad in (0, 0.0, -0.1, 1.01, "0.9", True):
        with pytest.raises(ConfigError, match="min_coverage"):
            AnalysisSettings(min_coverage=bad)
    with pytest.raises(ConfigError, match="partial"):
        AnalysisSettings(partial="yes")


MUSICNN_PATCH = 187 * 256 / 16000  # seconds


def _medley_in_every_format(folder: Path, seconds: float) -> dict[str, Path]:
    """One generated signal as WAV, FLAC, Ogg Vorbis, Opus, MP3 and M4A.

    Vorbis, Opus and MP3 are written at libsndfile's highest quality: at its default quality
    their codec noise alone moves a score by up to 0.018 (Opus) on this signal, which would
    hide what the analysis itself does with the formats.
    """
    import soundfile as sf
    import soxr

    from tests.audiogen import medley, write_audio

    y = medley(seconds, sr=22050)
    paths = {fmt: write_audio(folder / f"medley.{fmt}", y, 22050) for fmt in ("wav", "flac", "m4a")}
    y48 = soxr.resample(y, 22050, 48000).astype(np.float32)  # Opus knows no 22.05 kHz
    for fmt, audio, sr, kind in (
        ("ogg", y, 22050, {"format": "OGG", "subtype": "VORBIS"}),
        ("opus", y48, 48000, {"format": "OGG", "subtype": "OPUS"}),
        ("mp3", y, 22050, {"format": "MP3"}),
    ):
        paths[fmt] = folder / f"medley.{fmt}"
        sf.write(paths[fmt], audio, sr, compression_level=0.0, **kind)
    return paths


def test_the_window_plan_does_not_depend_on_the_format(toy, tmp_path: Path) -> None:
    from mcbr_core.audio.decode import probe

    analyzer = toy(max_patches=16, window_patches=4)
    plans = {}
    for fmt, path in _medley_in_every_format(tmp_path, 30.0).items():
        info, _ = probe(path, analyzer.decoders)
        assert info.duration == pytest.approx(30.0, abs=0.05), fmt  # M4A: +46 ms of AAC priming
        plans[fmt] = analyzer.windows(info)
    assert len(plans["wav"]) == 4
    assert all(plan == plans["wav"] for plan in plans.values()), plans


@pytest.mark.shipped
def test_the_same_audio_in_every_format_scores_alike(tmp_path: Path) -> None:
    from mcbr_core.analysis import Analyzer

    analyzer = Analyzer(
        AnalysisSettings(model="msd-musicnn", device="cpu", max_patches=8, window_patches=2)
    )  # 4 windows of 6 s
    results = {fmt: analyzer.analyze(path) for fmt, path in _medley_in_every_format(tmp_path, 30.0).items()}
    reference = results["wav"].scores["tags"]
    for fmt, result in results.items():
        assert result.analysed == results["wav"].analysed and result.coverage == pytest.approx(1.0, abs=1e-3)
        worst = max(abs(p - reference[tag]) for tag, p in result.scores["tags"].items())
        # measured: FLAC 1e-5; Vorbis 0.004, MP3 0.009, Opus 0.001, M4A 0.011 (its AAC priming, which
        # the file does not record, also shifts it by 46 ms): lossy-codec noise, with room for other
        # encoder versions. Copies whose windows sit a second apart differ by ~0.01-0.04; an MP3 without
        # a Xing header, which libsndfile decoded only up to its length estimate, by up to 0.17.
        assert worst < (1e-3 if fmt == "flac" else 0.025), (fmt, worst)
