"""The fusion backend: several models on one decode, each through its own front end, one embedding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcbr_core.backends.base import Inference
from mcbr_core.backends.fusion import fusion_card, make_fusion
from mcbr_core.errors import ConfigError, ModelError
from mcbr_core.hookspecs import hookimpl
from mcbr_core.models.checkpoint import read_card, save_model
from mcbr_core.plugins import Plugins, reset_plugins
from mcbr_core.settings import AnalysisSettings
from tests.audiogen import tone, write_audio
from tests.toymodel import ToyBackend, ToyPlugin, make_toy_model

SR2, HOP2 = 16000, 800  # the second part's rate and hop: 20 frames per second


class LoudExtractor:
    """RMS and peak per 50-ms frame at 16 kHz: ``(1, 2, T)``."""

    name = "loud-features"
    version = "1"
    sample_rate = SR2
    frames_per_second = SR2 / HOP2

    def __init__(self, options: dict[str, Any]) -> None:
        self.rates: list[int] = []

    def __call__(self, y: np.ndarray) -> np.ndarray:
        n = max(len(y) // HOP2, 1)
        frames = np.resize(y, n * HOP2).reshape(n, HOP2)  # (T, HOP2)
        rms = np.sqrt((frames**2).mean(axis=1))
        return np.stack([rms, np.abs(frames).max(axis=1)])[None].astype(np.float32)  # (1, 2, T)


class LoudBackend(ToyBackend):
    """Calls a patch "loud" above an RMS of 0.1; 2-s patches, longer than the fusion's 1-s patch."""

    def __init__(self, *, model: Path, card: dict[str, Any], device: str, options: dict[str, Any]) -> None:
        super().__init__(model=model, card=card, device=device, options=options)
        self.patch_frames = 40
        self.patch_hop = 40
        self.seen: list[tuple[int, ...]] = []

    def infer(self, patches: np.ndarray) -> Inference:
        LOUD_INPUTS.append(patches.shape)
        feats = patches[:, 0].mean(axis=-1)  # (B, 2)
        loud = 1.0 / (1.0 + np.exp(-(feats[:, 0] - 0.1) * 50.0))
        return Inference(heads={"tags": np.stack([loud, 1 - loud], 1).astype(np.float32)}, embedding=feats)


LOUD_INPUTS: list[tuple[int, ...]] = []


class LoudPlugin:
    @hookimpl
    def register_feature_extractors(self, register):
        register("loud-features", LoudExtractor)

    @hookimpl
    def register_model_backends(self, register):
        register("loud", LoudBackend)


def make_loud_model(path: Path, model_id: str = "loud-1") -> Path:
    return save_model(path, {"scale": np.ones(1, dtype=np.float32)}, {
        "id": model_id, "name": "loud", "backend": "loud", "architecture": {"family": "loud", "config": {}},
        "features": {"extractor": "loud-features", "version": "1", "config": {}},
        "heads": {"tags": ["loud", "quiet"]}, "tag_kinds": {"tags": {"loud": "mood", "quiet": "mood"}},
        "embedding": {"dim": 2, "layer": "features", "metric": "euclidean"},
    })  # fmt: skip


@pytest.fixture
def plugins():
    """The toy parts, registered process-wide (the fusion backend builds its parts from there)."""
    import mcbr_core.backends.fusion as fusion_plugin
    from mcbr_core.plugins import DEFAULT_PLUGINS

    extra = () if fusion_plugin.__name__ in DEFAULT_PLUGINS else (fusion_plugin,)
    plugins = Plugins((ToyPlugin(), LoudPlugin(), *extra), entry_points=False)
    reset_plugins(plugins)
    yield plugins
    reset_plugins(None)


@pytest.fixture
def fusion(tmp_path: Path, plugins: Plugins) -> Path:
    make_toy_model(tmp_path / "toy.safetensors")
    make_loud_model(tmp_path / "loud.safetensors")
    return make_fusion(tmp_path / "fusion.safetensors", ["toy.safetensors", "loud.safetensors"], name="fusion",
                       model_id="fusion-1")  # fmt: skip


def analyzer(model: Path, plugins: Plugins):
    from mcbr_core.analysis import Analyzer

    return Analyzer(AnalysisSettings(model=str(model), device="cpu", max_patches=16, window_patches=4),
                    plugins=plugins)  # fmt: skip


def test_the_card_names_its_parts_the_highest_rate_and_the_first_parts_patch(fusion: Path) -> None:
    card = read_card(fusion)
    assert card["backend"] == "fusion" and card["id"] == "fusion-1"
    assert card["architecture"]["config"]["parts"] == [
        {"model": "toy.safetensors", "name": "toy", "id": "toy-1"},
        {"model": "loud.safetensors", "name": "loud", "id": "loud-1"},
    ]
    # decoded at the highest rate (16 kHz); a patch is the toy's 1 s (20 frames of 400 samples at 8 kHz)
    assert card["features"] == {
        "extractor": "waveform",
        "version": "1",
        "config": {"sr": 16000, "patch_frames": 16000, "patch_hop": 16000, "version": "1"},
    }
    assert card["embedding"]["dim"] == 4
    assert [(p["part"], p["start"], p["stop"]) for p in card["embedding"]["parts"]] == [
        ("toy", 0, 2),
        ("loud", 2, 4),
    ]
    assert card["heads"] == {
        "toy/genre": ["Rock", "Jazz"],
        "toy/mood": ["Happy", "Sad"],
        "loud": ["loud", "quiet"],
    }
    assert card["tag_kinds"] == {"loud": {"loud": "mood", "quiet": "mood"}}


def test_a_fusion_analyses_each_patch_with_every_part(fusion: Path, plugins: Plugins, tmp_path: Path) -> None:
    path = write_audio(tmp_path / "tone.flac", 0.5 * tone(6.0, sr=44100, freq=3000.0), 44100)
    LOUD_INPUTS.clear()
    fused = analyzer(fusion, plugins).analyze(path)
    alone = analyzer(tmp_path / "toy.safetensors", plugins).analyze(path)
    assert fused.model_id == "fusion-1" and fused.embedding.shape == (4,)
    assert fused.analysed == pytest.approx(6.0)  # six 1-s patches, as the toy alone
    assert alone.analysed == pytest.approx(6.0)
    # the first part's half of the embedding is the toy model's own, up to the resampling path
    np.testing.assert_allclose(fused.embedding[:2], alone.embedding, rtol=0.02)
    assert fused.scores["toy/genre"]["Rock"] == pytest.approx(alone.scores["genre"]["Rock"], abs=0.02)
    # the second part heard each 1-s patch repeated to its 2-s patch: one patch each, in one batch
    assert LOUD_INPUTS == [(6, 1, 2, 40)]
    loud = analyzer(tmp_path / "loud.safetensors", plugins).analyze(path)  # 2-s patches of the file itself
    np.testing.assert_allclose(fused.embedding[2:], loud.embedding, rtol=0.02)
    assert fused.scores["loud"]["quiet"] == pytest.approx(loud.scores["tags"]["quiet"], abs=0.02)


def test_a_changed_part_is_refused(fusion: Path, plugins: Plugins, tmp_path: Path) -> None:
    make_loud_model(tmp_path / "loud.safetensors", model_id="loud-2")
    with pytest.raises(ModelError, match="part loud.safetensors is loud-2, the card was made with loud-1"):
        analyzer(fusion, plugins)


def test_a_fusion_needs_two_parts_that_exist(tmp_path: Path, plugins: Plugins) -> None:
    make_toy_model(tmp_path / "toy.safetensors")
    with pytest.raises(ModelError, match="at least two parts"):
        fusion_card(["toy.safetensors"], name="f", model_id="f-1", base=tmp_path)
    with pytest.raises(ModelError, match="part 'gone.safetensors' is neither a shipped model nor a file"):
        fusion_card(["toy.safetensors", "gone.safetensors"], name="f", model_id="f-1", base=tmp_path)


def test_the_waveform_extractor_checks_its_options(plugins: Plugins) -> None:
    factory = plugins.registry("feature extractor").get("waveform")
    wave = factory({"sr": 16000})
    assert wave(np.zeros(5, dtype=np.float32)).shape == (1, 1, 5) and wave.frames_per_second == 16000
    with pytest.raises(ConfigError, match=r"unknown feature options \['hop'\]"):
        factory({"hop": 3})
    with pytest.raises(ConfigError, match="sr must be an integer >= 1000"):
        factory({"sr": 10})


@pytest.mark.shipped
def test_the_shipped_fusion_and_its_heads(make_audio) -> None:
    from mcbr_core.analysis import Analyzer
    from mcbr_core.models.checkpoint import read_card
    from mcbr_core.models.clip_head import ClipHead, resolve_sources
    from mcbr_core.models.shipped import resolve_model

    result = Analyzer(AnalysisSettings(model="mcbr-fusion", device="cpu")).analyze(
        make_audio("t.mp3", seconds=8.0)
    )
    assert result.model_id == "mcbr-fusion-1" and result.embedding.shape == (712,)
    assert len(result.scores["msd-musicnn"]) == 50 and len(result.scores["as-mn04"]) == 527
    assert result.analysed == pytest.approx(
        2 * 2.992, abs=0.01
    )  # msd-musicnn's patches: two whole ones in 8 s
    sources = resolve_sources({"genre": "auto", "mood": "auto"}, read_card(resolve_model("mcbr-fusion")))
    assert {k: card["name"] for k, (_, card) in sources.items()} == {
        "genre": "mcbr-genres",
        "mood": "mcbr-moods",
    }
    for name in ("mcbr-genres", "mcbr-moods", "mcbr-arousal", "mcbr-valence"):
        head = ClipHead.load(resolve_model(name))
        assert head.base_id == "mcbr-fusion-1"
        probs = head.probabilities(result.embedding)
        assert np.isfinite(probs).all() and ((0 <= probs) & (probs <= 1)).all()
        card = read_card(resolve_model(name))
        assert "research" in card["licence"]["weights"] and card["training"]["fingerprint"]["n"] > 700
        if head.sigmoid:  # multi-label heads carry a threshold per label
            assert set(card["thresholds"]) == set(head.labels)
    assert set(ClipHead.load(resolve_model("mcbr-arousal")).labels) == {"high", "low"}
    assert set(ClipHead.load(resolve_model("mcbr-valence")).labels) == {"negative", "positive"}
