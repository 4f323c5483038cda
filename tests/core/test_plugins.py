"""Hooks: built-ins register like third parties; duplicates fail; third-party parts work through config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcbr_core.analysis import Analyzer
from mcbr_core.backends.base import Inference
from mcbr_core.errors import PluginError
from mcbr_core.hookspecs import hookimpl
from mcbr_core.models.checkpoint import save_model
from mcbr_core.plugins import Plugins
from mcbr_core.settings import AnalysisSettings


def test_builtins_are_registered_through_the_hooks() -> None:
    plugins = Plugins(entry_points=False)
    assert plugins.registry("decoder").names() == ["soundfile", "pyav"]
    assert "musicnn-mel" in plugins.registry("feature extractor").names()
    assert "musicnn" in plugins.registry("model backend").names()
    assert set(plugins.registry("index backend").names()) == {"annoy", "exact"}


def test_duplicate_names_are_an_error() -> None:
    class Dup:
        @hookimpl
        def register_decoders(self, register):
            register("soundfile", object)

    with pytest.raises(PluginError, match="registered twice"):
        Plugins((Dup(),), entry_points=False)


def test_architectures_register_through_the_hook() -> None:
    class Dup:
        @hookimpl
        def register_architectures(self, register):
            register("xing", object)

    assert "xing" in Plugins(entry_points=False).registry("architecture").names()
    with pytest.raises(PluginError, match="architecture 'xing' is registered twice"):
        Plugins((Dup(),), entry_points=False)


def test_a_manager_pickles_as_its_recipe_for_worker_processes() -> None:
    import pickle

    import tests.faulty
    from tests.core.training_library import TINY, TinyArchitectures

    again = pickle.loads(pickle.dumps(Plugins((tests.faulty, TinyArchitectures()), entry_points=False)))
    assert "faulty" in again.registry("decoder").names() and TINY in again.registry("architecture").names()


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(PluginError, match="registered: annoy, exact"):
        Plugins(entry_points=False).registry("index backend").get("faiss")


class RmsExtractor:
    """Third-party extractor: frame RMS and zero-crossing rate, (1, 2, T)."""

    name = "rms"
    version = "7"
    sample_rate = 8000
    frames_per_second = 8000 / 400

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def __call__(self, y: np.ndarray) -> np.ndarray:
        n = len(y) // 400
        frames = y[: n * 400].reshape(n, 400)  # (T, 400)
        rms = np.sqrt((frames**2).mean(axis=1))
        zcr = (np.diff(np.sign(frames), axis=1) != 0).mean(axis=1)
        return np.stack([rms, zcr])[None].astype(np.float32)  # (1, 2, T)


class MeanBackend:
    """Third-party backend: the embedding is the mean feature; one 'genre' head."""

    def __init__(self, *, model: Path, card: dict[str, Any], device: str, options: dict[str, Any]) -> None:
        self.model_id = card["id"]
        self.heads = card["heads"]
        self.tag_kinds = {}
        self.embedding_dim = 2
        self.metric = "euclidean"
        self.extractor = card["features"]["extractor"]
        self.extractor_options = card["features"]["config"]
        self.feature_version = card["features"]["version"]
        self.patch_frames = None
        self.patch_hop = None

    def infer(self, patches: np.ndarray) -> Inference:
        emb = patches.mean(axis=-1)[:, 0, :]  # (B, 2)
        loud = (emb[:, :1] > 0.1).astype(np.float32)
        return Inference(heads={"genre": np.concatenate([loud, 1 - loud], axis=1)}, embedding=emb)


class ThirdParty:
    @hookimpl
    def register_feature_extractors(self, register):
        register("rms", RmsExtractor)

    @hookimpl
    def register_model_backends(self, register):
        register("mean", MeanBackend)


def test_third_party_extractor_and_backend_through_config(tmp_path: Path, make_audio) -> None:
    model = save_model(
        tmp_path / "toy.safetensors",
        {"unused": np.zeros(1, dtype=np.float32)},
        {
            "id": "toy-1",
            "name": "toy",
            "backend": "mean",
            "architecture": {"family": "none", "config": {}},
            "features": {"extractor": "rms", "version": "7", "config": {}},
            "heads": {"genre": ["Loud", "Quiet"]},
            "embedding": {"dim": 2, "layer": "mean", "metric": "euclidean"},
        },
    )
    settings = AnalysisSettings(model=str(model))
    analyzer = Analyzer(settings, Plugins((ThirdParty(),), entry_points=False))
    assert type(analyzer.extractor).__name__ == "RmsExtractor"
    result = analyzer.analyze(make_audio("a.flac", seconds=2.0))
    assert result.model_id == "toy-1"
    assert result.embedding.shape == (2,)
    assert set(result.scores["genre"]) == {"Loud", "Quiet"}
    # the backend can be forced by name in config as well
    forced = Analyzer(AnalysisSettings(model=str(model), backend="mean", extractor="rms"),
                      Plugins((ThirdParty(),), entry_points=False))  # fmt: skip
    assert forced.backend.model_id == "toy-1"


def test_feature_version_mismatch_is_refused(tmp_path: Path) -> None:
    from mcbr_core.errors import ModelError

    model = save_model(
        tmp_path / "toy.safetensors",
        {"unused": np.zeros(1, dtype=np.float32)},
        {
            "id": "toy-1", "name": "toy", "backend": "mean",
            "architecture": {"family": "none", "config": {}},
            "features": {"extractor": "rms", "version": "6", "config": {}},
            "heads": {"genre": ["Loud", "Quiet"]},
            "embedding": {"dim": 2, "layer": "mean", "metric": "euclidean"},
        },
    )  # fmt: skip
    with pytest.raises(ModelError, match="v6"):
        Analyzer(AnalysisSettings(model=str(model)), Plugins((ThirdParty(),), entry_points=False))
