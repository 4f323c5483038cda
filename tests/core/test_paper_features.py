"""The paper feature extractors: shapes, validation, shared transforms, statistics, audio words.

Feature-heavy tests live in this one module with module-scoped fixtures: librosa's
numba warm-up costs seconds.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from mcbr_core.errors import ConfigError
from mcbr_core.features import spectral
from mcbr_core.features.base import FeatureExtractor
from mcbr_core.features.normalise import config_options
from mcbr_core.plugins import Plugins
from tests.audiogen import tone

SR = 22050

#: name -> (rows, hop) of the default config
EXPECTED = {
    "xing-hyperimage": (188, 512),
    "tower-mel": (128, 512),
    "whitell-stft": (2049, 1024),
    "whitell-stft-half": (1024, 1024),
    "whitell-mel": (256, 1024),
    "whitell-cqt": (168, 1024),
    "whitell-mfcc": (12, 1024),
    "whitell-chroma": (12, 1024),
}


@pytest.fixture(scope="module")
def registry():
    return Plugins(entry_points=False).registry("feature extractor")


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return tone(4.0, sr=SR, freq=220.0)[:, 0]


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    return [
        tone(3.0, sr=SR, freq=f, seed=i)[:, 0]
        for i, f in enumerate((110.0, 196.0, 330.0, 440.0, 587.0, 880.0))
    ]


@pytest.fixture(scope="module")
def outputs(registry, clip) -> dict[str, np.ndarray]:
    return {name: registry.get(name)({})(clip) for name in EXPECTED}


def test_every_paper_extractor_is_registered(registry) -> None:
    assert set(EXPECTED) | {"musicnn-mel", "zhang-audiowords"} <= set(registry.names())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shapes_and_attributes(registry, clip, outputs, name: str) -> None:
    rows, hop = EXPECTED[name]
    extractor = registry.get(name)({})
    assert isinstance(extractor, FeatureExtractor)
    assert extractor.name == name
    assert extractor.version == "1"
    assert extractor.sample_rate == SR
    assert extractor.frames_per_second == pytest.approx(SR / hop)
    x = outputs[name]
    assert x.shape == (1, rows, 1 + clip.size // hop)
    assert x.dtype == np.float32 and x.flags.writeable and x.flags.c_contiguous
    assert np.isfinite(x).all()
    # The config travels as JSON (a model card, a cache key) and comes back equal.
    assert (
        registry.get(name)(json.loads(json.dumps(config_options(extractor.config)))).config
        == extractor.config
    )


def test_hyperimage_blocks_are_normalised_and_in_order(registry, outputs) -> None:
    extractor = registry.get("xing-hyperimage")({})
    x = outputs["xing-hyperimage"][0]
    start = 0
    for name, rows in extractor.config.block_rows().items():
        block = x[start : start + rows]
        assert abs(block.mean()) < 1e-4 and block.std() == pytest.approx(1.0, abs=1e-3), name
        start += rows
    assert start == x.shape[0] == 12 + 15 + 128 + 20 + 7 + 6


def test_derived_features_equal_librosa_from_the_signal(clip) -> None:
    import librosa

    s = spectral.Spectra(clip, sr=SR, n_fft=2048, hop_length=512)
    np.testing.assert_allclose(s.chroma(), librosa.feature.chroma_stft(y=clip, sr=SR, tuning=0.0), atol=1e-5)
    np.testing.assert_allclose(s.mfcc(n_mfcc=20, n_mels=128), librosa.feature.mfcc(y=clip, sr=SR), atol=1e-3)
    np.testing.assert_allclose(s.contrast(), librosa.feature.spectral_contrast(y=clip, sr=SR), atol=1e-3)
    np.testing.assert_allclose(s.tempogram(), librosa.feature.tempogram(y=clip, sr=SR), atol=1e-5)
    np.testing.assert_allclose(
        s.chroma(source="cqt"),
        librosa.feature.chroma_cqt(y=clip, sr=SR, bins_per_octave=12, tuning=0.0),
        atol=1e-5,
    )


def test_stft_and_cqt_are_computed_once_per_clip(monkeypatch, registry, clip) -> None:
    import librosa.core.spectrum

    calls = {"stft": 0, "cqt": 0}
    real_stft, real_cqt = spectral.stft_power, spectral.cqt_magnitude

    def stft_spy(*args, **kwargs):
        calls["stft"] += 1
        return real_stft(*args, **kwargs)

    def cqt_spy(*args, **kwargs):
        calls["cqt"] += 1
        return real_cqt(*args, **kwargs)

    def no_stft(*args, **kwargs):
        raise AssertionError("a librosa feature recomputed the STFT instead of using the shared one")

    monkeypatch.setattr(spectral, "stft_power", stft_spy)
    monkeypatch.setattr(spectral, "cqt_magnitude", cqt_spy)
    monkeypatch.setattr(librosa.core.spectrum, "stft", no_stft)  # what librosa.feature.* would call

    registry.get("xing-hyperimage")({})(
        clip
    )  # chroma, mel, MFCC, contrast from the STFT; tonnetz from the CQT
    assert calls == {"stft": 1, "cqt": 1}

    calls.update(stft=0, cqt=0)
    whitell = [registry.get(name)({}) for name in EXPECTED if name.startswith("whitell-")]
    shared = whitell[0].spectra(clip)
    maps = {w.name: w.extract(shared) for w in whitell}
    assert calls == {"stft": 1, "cqt": 1}
    assert {m.shape[2] for m in maps.values()} == {1 + clip.size // 1024}


def test_spectra_reject_mismatched_settings(registry, clip) -> None:
    shared = spectral.Spectra(clip, sr=SR, n_fft=2048, hop_length=512)
    with pytest.raises(ValueError, match="expected sr=22050, n_fft=4096, hop=1024"):
        registry.get("whitell-mel")({}).extract(shared)


def test_stacking_checks_frame_counts() -> None:
    with pytest.raises(ValueError, match="different frame counts"):
        spectral.stack_rows([("a", np.zeros((2, 10))), ("b", np.zeros((3, 11)))])
    assert spectral.stack_rows([("a", np.zeros((2, 10))), ("b", np.ones((3, 10)))]).shape == (5, 10)


def test_cyclic_tempogram_finds_the_pulse(clip) -> None:
    # The generated tone pulses at 2 Hz = 120 BPM = 30 BPM * 2**2: tempo class 0.
    cyc = spectral.Spectra(clip, sr=SR, n_fft=2048, hop_length=512).cyclic_tempogram(n_bins=15)
    assert cyc.shape == (15, 1 + clip.size // 512)
    winners = np.bincount(cyc.argmax(axis=0), minlength=15)
    assert winners[0] + winners[14] > 0.8 * cyc.shape[1]  # class 0 (or its cyclic neighbour)


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("tower-mel", {"n_mel": 64}, "unknown feature options"),
        ("tower-mel", {"n_mels": 0}, "n_mels must be a positive integer"),
        ("tower-mel", {"n_fft": 2047}, "n_fft must be even"),
        ("tower-mel", {"mean": [0.0] * 128}, "set both mean and std"),
        ("tower-mel", {"mean": [0.0] * 3, "std": [1.0] * 3}, "statistics have 3 rows"),
        ("tower-mel", {"mean": [0.0] * 128, "std": [0.0] * 128}, "positive std"),
        ("xing-hyperimage", {"blocks": ["chroma", "loudness"]}, "blocks must be distinct names"),
        ("xing-hyperimage", {"tempo_min_bpm": 5.0}, "tempo range needs lags"),
        ("xing-hyperimage", {"chroma_source": "wavelet"}, "chroma_source must be"),
        ("whitell-mel", {"kind": "cqt"}, "contradicts the extractor"),
        ("whitell-cqt", {"cqt_octaves": 9}, "above the Nyquist"),
        ("whitell-mfcc", {"mfcc_first": 13}, "mfcc_first < mfcc_last"),
        ("zhang-audiowords", {"n_components": 1000}, "exceeds the segment size"),
        ("zhang-audiowords", {"state": [1, 2]}, "must be a dict of arrays"),
    ],
)
def test_parameters_are_validated(registry, name: str, options: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        registry.get(name)(options)


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (np.zeros((2, 100), dtype=np.float32), "mono signal"),
        (np.zeros(0, dtype=np.float32), "empty signal"),
        (np.array([0.0, np.nan] * 100, dtype=np.float32), "NaN"),
    ],
)
def test_signals_are_validated_before_any_compute(registry, y: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        registry.get("tower-mel")({})(y)


def test_normalisation_statistics_fit_and_apply(registry, clips) -> None:
    from mcbr_core.features.normalise import fit_normalisation

    raw = registry.get("tower-mel")({})
    maps = [raw(y) for y in clips]
    mean, std = fit_normalisation(maps)
    assert len(mean) == len(std) == 128

    # As a model card would carry them: plain lists.
    normed = registry.get("tower-mel")({"mean": list(mean), "std": list(std)})
    assert normed.config == replace(raw.config, mean=mean, std=std)
    assert normed.version.startswith("1+") and normed.version != raw.version
    pooled = np.concatenate([normed(y)[0] for y in clips], axis=1)  # (128, sum T)
    np.testing.assert_allclose(pooled.mean(axis=1), 0.0, atol=1e-3)
    np.testing.assert_allclose(pooled.std(axis=1), np.where(np.array(std) > 1e-5, 1.0, 0.0), atol=1e-3)
    # Other statistics, another version.
    other = registry.get("tower-mel")({"mean": list(mean), "std": [2 * s for s in std]})
    assert other.version != normed.version


def test_normalisation_rejects_inconsistent_maps() -> None:
    from mcbr_core.features.normalise import fit_normalisation

    with pytest.raises(ValueError, match="disagree"):
        fit_normalisation([np.zeros((1, 4, 5)), np.zeros((1, 3, 5))])
    with pytest.raises(ValueError, match="without any frames"):
        fit_normalisation([])


@pytest.fixture(scope="module")
def words_fit(registry, clips):
    from mcbr_core.features.audiowords import fit_audio_words

    options = {"n_frames_per_segment": 4, "n_components": 8, "n_words": 16}
    frames = registry.get("zhang-audiowords")(options)
    maps = [frames.frames(y) for y in clips]
    state = fit_audio_words(maps, n_frames_per_segment=4, n_components=8, n_words=16, seed=3)
    return options, maps, state


def test_audio_words_fit_is_deterministic_under_a_seed(words_fit) -> None:
    from mcbr_core.features.audiowords import fit_audio_words

    _, maps, state = words_fit
    again = fit_audio_words(maps, n_frames_per_segment=4, n_components=8, n_words=16, seed=3)
    for key, value in state.state_tensors().items():
        np.testing.assert_array_equal(value, again.state_tensors()[key])
    assert state.centroids.shape == (16, 8)
    assert state.pca_components.shape == (8, 40 * 4)
    # Whitened training segments have unit variance along every kept axis.
    from mcbr_core.features.audiowords import segments

    z = state.whiten(np.concatenate([segments(m, n_frames_per_segment=4, hop=4) for m in maps]))
    np.testing.assert_allclose(z.std(axis=0, ddof=1), 1.0, rtol=1e-3)


def test_audio_words_map_clips_to_nearest_centroids(registry, clips, words_fit) -> None:
    from mcbr_core.features.audiowords import segments

    options, maps, state = words_fit
    extractor = registry.get("zhang-audiowords")({**options, "state": state.state_tensors()})
    ids = extractor(clips[0])
    n_segments = (maps[0].shape[2] - 4) // 4 + 1
    assert ids.shape == (1, 1, n_segments) and ids.dtype == np.float32
    assert np.array_equal(ids, np.round(ids)) and ids.min() >= 0 and ids.max() < 16
    np.testing.assert_array_equal(ids, extractor(clips[0]))  # deterministic
    rebuilt = registry.get("zhang-audiowords")({**options, "state": extractor.state_tensors()})
    np.testing.assert_array_equal(ids, rebuilt(clips[0]))
    assert rebuilt.version == extractor.version and extractor.version.startswith("1+")
    assert extractor.frames_per_second == pytest.approx(SR / 512 / 4)
    # Brute force: the nearest centroid in the whitened space.
    z = state.whiten(segments(maps[0], n_frames_per_segment=4, hop=4))
    brute = ((z[:, None, :] - state.centroids[None]) ** 2).sum(axis=2).argmin(axis=1)
    np.testing.assert_array_equal(ids[0, 0].astype(int), brute)


def test_audio_words_need_a_matching_codebook(registry, clips, words_fit) -> None:
    options, _, state = words_fit
    with pytest.raises(ConfigError, match="no codebook"):
        registry.get("zhang-audiowords")(options)(clips[0])
    with pytest.raises(ConfigError, match="16 words of 8 dimensions, the config 32"):
        registry.get("zhang-audiowords")({**options, "n_words": 32, "state": state.state_tensors()})
    with pytest.raises(ConfigError, match="lacks pca_components"):
        registry.get("zhang-audiowords")({**options, "state": {"pca_mean": state.pca_mean}})
