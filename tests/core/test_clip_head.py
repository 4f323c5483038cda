"""Clip heads: ``mcbr train --mode head``, the numpy head, and the engine's per-kind sources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcbr_core.analysis import Analyzer
from mcbr_core.engine import Engine
from mcbr_core.errors import ConfigError, ModelError
from mcbr_core.models.checkpoint import load_model, read_card, save_model
from mcbr_core.models.clip_head import ClipHead, config_hint, is_clip_head, resolve_sources
from mcbr_core.plugins import Plugins
from mcbr_core.settings import AnalysisSettings, IndexSettings, KindSettings, TagSettings
from mcbr_core.training.loop import TrainConfig, train
from tests.core.training_library import tiny_config
from tests.toymodel import make_toy_model


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory, toy_plugins: Plugins, library: Any,
         cache_dir: Path) -> tuple[Path, Path, Any]:  # fmt: skip
    tmp = tmp_path_factory.mktemp("head")
    base = make_toy_model(tmp / "toy.safetensors")
    config = tiny_config(tmp, cache_dir, mode="head", base_model=str(base), arch_options={"C": [0.01, 1.0]})
    return base, train(config, library, plugins=toy_plugins).model_path, library


def engine(tmp: Path, plugins: Plugins, model: Path, **sources: str) -> Engine:
    tags = TagSettings(**{k: KindSettings(threshold=0.0, count=3, source=v) for k, v in sources.items()})
    return Engine(analysis=AnalysisSettings(model=str(model), device="cpu"), tags=tags, index=IndexSettings(),
                  store_path=tmp / "mcbr.db", index_dir=tmp, plugins=plugins)  # fmt: skip


def test_head_mode_fits_logistic_regression_on_the_clip_embedding(head: tuple[Path, Path, Any]) -> None:
    _, model, _ = head
    card = read_card(model)
    assert is_clip_head(card) and card["features"]["pool"] == "clip"
    assert card["features"]["embedding_of"] == {"model": str(model.parent.parent / "toy.safetensors"), "id": "toy-1",
                                                "layer": "penultimate, clip mean"}  # fmt: skip
    assert card["architecture"]["config"] == {"in_features": 2, "n_classes": 3, "hidden": 0, "dropout": 0.0}
    fit = card["training"]["fit"]
    assert fit["C"] in (0.01, 1.0) and fit["C_grid"] == [0.01, 1.0] and fit["fitted_on"] == "train+val"


def test_backend_and_numpy_head_give_the_same_clip_probabilities(head: tuple[Path, Path, Any],
                                                                 toy_plugins: Plugins) -> None:  # fmt: skip
    base, model, lib = head
    clip = lib.clips[5].path
    as_model = Analyzer(AnalysisSettings(model=str(model), device="cpu"), toy_plugins)
    patches, _, _ = as_model.features(clip)
    two = np.concatenate([patches, patches[::-1] * 0.5])  # (2B, C, F, T): patches with different embeddings
    rows = as_model.backend.infer(two).heads["genre"]  # (2B, 3)
    assert rows.shape == (len(two), 3) and np.allclose(
        rows, rows[0]
    )  # one clip-level prediction for every patch
    embedding = Analyzer(AnalysisSettings(model=str(base), device="cpu"), toy_plugins).analyze(clip).embedding
    numpy_head = ClipHead.load(model)
    assert numpy_head.base_id == "toy-1" and numpy_head.labels == ["Jazz", "Metal", "Pop"]
    served = as_model.analyze(clip).scores["genre"]
    assert np.allclose(numpy_head.probabilities(embedding), [served[k] for k in numpy_head.labels], atol=1e-5)
    with pytest.raises(ModelError, match="reads 2-d embeddings, got 3-d"):
        numpy_head.scores(np.zeros(3))


def test_engine_takes_a_kinds_tags_from_its_head(tmp_path: Path, head: tuple[Path, Path, Any],
                                                 toy_plugins: Plugins) -> None:  # fmt: skip
    base, model, lib = head
    analysis = Analyzer(AnalysisSettings(model=str(base), device="cpu"), toy_plugins).analyze(
        lib.clips[0].path
    )
    eng = engine(tmp_path, toy_plugins, base, genre=str(model), mood="model")
    tags = eng.tags(analysis)
    assert (
        set(tags.genres) <= {"Jazz", "Metal", "Pop"} and tags.genres
    )  # the head's labels, not the toy's Rock
    assert set(tags.moods) <= {"Happy", "Sad"} and tags.moods  # the model's own mood tags
    expected = ClipHead.load(model).scores(analysis.embedding)
    assert tags.scores["mcbr_genre_jazz"] == pytest.approx(expected["Jazz"], abs=1e-4)
    assert "mcbr_genre_rock" not in tags.scores and "mcbr_mood_happy" in tags.scores
    assert eng.score_field_names() == ["mcbr_genre_jazz", "mcbr_genre_metal", "mcbr_genre_pop", "mcbr_mood_happy",
                                       "mcbr_mood_sad"]  # fmt: skip
    assert eng.heads_id == f"genre={read_card(model)['id']}"
    own = engine(tmp_path, toy_plugins, base, genre="model", mood="auto")
    assert own.heads_id == "" and set(own.tags(analysis).genres) <= {"Rock", "Jazz"}


def test_a_head_must_read_the_configured_models_embedding(
    tmp_path: Path, head: tuple[Path, Path, Any]
) -> None:
    base, model, _ = head
    tensors, card = load_model(base)
    other = save_model(tmp_path / "other.safetensors", tensors, {**{k: v for k, v in card.items() if k != "format"},
                                                                  "id": "other-1"})  # fmt: skip
    with pytest.raises(ModelError, match="reads the embedding of toy-1, but the configured model is other-1"):
        resolve_sources({"mood": str(model)}, read_card(other))
    with pytest.raises(ModelError, match="not a clip head"):
        resolve_sources({"genre": str(base)}, read_card(base))
    assert (
        resolve_sources({"genre": "auto", "mood": "auto"}, read_card(base)) == {}
    )  # no shipped head reads toy-1


@pytest.mark.shipped
def test_auto_picks_the_shipped_heads_that_measured_better() -> None:
    from mcbr_core.models.shipped import resolve_model

    card = read_card(resolve_model("msd-musicnn"))
    chosen = resolve_sources({"genre": "auto", "mood": "auto"}, card)
    for kind, (_path, head_card) in chosen.items():
        assert (
            kind in head_card["default_for"]
            and head_card["features"]["embedding_of"]["id"] == "msd-musicnn-1"
        )
        m = head_card["metrics"]
        metric = m["selection_metric"]
        assert (
            m["head_cv"]["mean"][metric] > m["pretrained_tags"][metric]
        )  # the measurement behind the default
        assert m["head_cv"]["mean"][metric] > m["stats_baseline_cv"]["mean"][metric]
    assert chosen["genre"][0].stem == "mcbr-genre"


def test_train_commands_suggest_a_source_for_a_head_and_model_otherwise(head: tuple[Path, Path, Any]) -> None:
    base, model, _ = head
    assert config_hint(model) == f"mcbr: {{genre: {{source: {model.resolve()}}}}}"
    assert config_hint(base) == f"mcbr: {{model: {base.resolve()}}}"


def test_head_c_must_be_positive_numbers() -> None:
    for bad in ([0.1, float("nan")], [True], "x", [-1.0], []):
        with pytest.raises(ConfigError, match="arch option C"):
            TrainConfig(mode="head", arch_options={"C": bad})
    assert TrainConfig(mode="head", arch_options={"C": "0.5"}).arch_options == {"C": "0.5"}
