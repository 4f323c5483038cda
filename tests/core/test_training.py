"""The training loop, metrics, feature cache and the trained backend, on a tiny model and tiny data.

The data is a ``library`` dataset of generated tones (three genres at three pitches,
four artists each); the features are the toy extractor's (spectral centroid and RMS,
``(1, 2, T)`` at 20 frames per second) and the network is a one-convolution CNN, so a
whole training run takes well under a second.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from mcbr_core.analysis import Analyzer
from mcbr_core.errors import ConfigError
from mcbr_core.models.checkpoint import load_model, read_card
from mcbr_core.plugins import Plugins
from mcbr_core.settings import AnalysisSettings
from mcbr_core.training import loop, runs
from mcbr_core.training.datasets.base import TrainingDataError
from mcbr_core.training.datasets.builtin import load_dataset
from mcbr_core.training.fingerprint import clip_hash
from mcbr_core.training.loop import TrainConfig, cross_validate, train
from tests.core.training_library import (
    TINY,
    TinyCNN,
    tiny_config,
)
from tests.toymodel import make_toy_model

# -- the loop -----------------------------------------------------------------------------------


def test_train_writes_config_checkpoints_and_metrics(tmp_path: Path, toy_plugins: Plugins, library: Any,
                                                    cache_dir: Path) -> None:  # fmt: skip
    result = train(tiny_config(tmp_path, cache_dir), library, plugins=toy_plugins)
    run = tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["architecture"] == TINY and config["dataset"]["task"] == "genre"
    lines = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["phase"], r.get("epoch")) for r in lines] == [
        ("epoch", 0),
        ("epoch", 1),
        ("eval", lines[2]["epoch"]),
    ]
    assert {"train_loss", "val_loss", "val_macro_f1", "val_accuracy"} <= set(lines[0])
    for name in ("last.safetensors", "best.safetensors", "last.state.pt", "best.json"):
        assert (run / "checkpoints" / "fold0" / name).exists()
    card = read_card(result.model_path)
    assert card["backend"] == "trained" and card["architecture"]["family"] == TINY
    assert card["architecture"]["config"] == {"n_classes": 3, "in_channels": 1, "n_bins": 2, "n_frames": 10}
    assert card["heads"] == {"genre": ["Jazz", "Metal", "Pop"]} and card["activation"] == {"genre": "softmax"}
    assert card["features"]["extractor"] == "toy-features" and card["features"]["patch_frames"] == 10
    assert (
        card["features"]["normalisation"]["where"] == "model"
        and len(card["features"]["normalisation"]["std"]) == 2
    )
    assert card["embedding"] == {
        "dim": 6,
        "layer": "embed() (penultimate), mean over patches",
        "metric": "angular",
    }
    assert card["training"]["seed"] == 3 and card["training"]["data"]["dataset"] == "library"
    assert set(card["metrics"]["test"]) >= {"accuracy", "macro_f1", "precision_at_1", "confusion"}
    assert card["licence"].startswith("private library") and card["versions"]["torch"] == torch.__version__
    assert result.metrics["n"] == card["training"]["data"]["n_test"] and "fold" in result.table
    parts = json.loads((run / "split.json").read_text())["parts"]
    artists = {c.id: c.artist for c in library.clips}
    for part in ("val", "test"):
        held = {artists[i] for i, p in parts.items() if p == part}
        assert held and not held & {artists[i] for i, p in parts.items() if p == "train"}
    assert (
        "official" not in (run / "report.txt").read_text() and "holdout" in (run / "report.txt").read_text()
    )


def test_resume_continues_to_the_same_weights(tmp_path: Path, toy_plugins: Plugins, library: Any,
                                             cache_dir: Path) -> None:  # fmt: skip
    straight = train(tiny_config(tmp_path / "a", cache_dir, epochs=3), library, plugins=toy_plugins)
    config = tiny_config(tmp_path / "b", cache_dir, epochs=1)
    train(config, library, plugins=toy_plugins)
    with pytest.raises(ConfigError, match="already holds a run"):
        train(config, library, plugins=toy_plugins)
    with pytest.raises(ConfigError, match="cannot resume with other lr"):
        train(replace(config, lr=0.5), library, plugins=toy_plugins, resume=True)
    resumed = train(replace(config, epochs=3), library, plugins=toy_plugins, resume=True)
    a, _ = load_model(straight.result.model_path.parent / "last.safetensors")
    b, _ = load_model(resumed.result.model_path.parent / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    epochs = [r["epoch"] for r in map(json.loads, (tmp_path / "b" / "run" / "metrics.jsonl").read_text().splitlines())
              if r["phase"] == "epoch"]  # fmt: skip
    assert epochs == [0, 1, 2] and resumed.result.epochs_run == 3


def test_early_stopping_triggers(tmp_path: Path, toy_plugins: Plugins, library: Any, cache_dir: Path) -> None:
    # a learning rate this small cannot move the validation macro-F1: it never improves after epoch 1
    result = train(
        tiny_config(tmp_path, cache_dir, epochs=20, lr=1e-12, patience=2), library, plugins=toy_plugins
    )
    assert result.result.stopped_early and result.result.epochs_run == 3 and result.result.best_epoch == 0
    state = torch.load(tmp_path / "run" / "checkpoints" / "fold0" / "last.state.pt", weights_only=True)
    assert state["stopped"] and state["bad_epochs"] == 2 and state["epoch"] == 2


def test_cross_validation_folds_are_artist_disjoint(tmp_path: Path, toy_plugins: Plugins, library: Any,
                                                   cache_dir: Path) -> None:  # fmt: skip
    result = cross_validate(tiny_config(tmp_path, cache_dir, epochs=1, folds=4), library, plugins=toy_plugins)
    assert [f.fold for f in result.folds] == [0, 1, 2, 3] and "macro_f1" in result.mean
    folds = json.loads((tmp_path / "run" / "folds.json").read_text())["folds"]
    artists = {c.id: c.artist for c in library.clips}
    fold_of_artist: dict[str, set[int]] = {}
    for cid, fold in folds.items():
        fold_of_artist.setdefault(artists[cid], set()).add(fold)
    assert all(len(f) == 1 for f in fold_of_artist.values()) and len(folds) == 24
    for f in range(4):  # every fold holds each genre (3 genres x 4 artists over 4 folds)
        assert len({library.clips[[c.id for c in library.clips].index(i)].labels["genre"] for i, g in folds.items()
                    if g == f}) == 3  # fmt: skip
    lines = result.table.splitlines()
    assert len(lines) == 1 + 4 + 2 and lines[-2].startswith("mean")
    assert json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])["phase"] == "summary"


def test_checkpoint_round_trip_under_weights_only(tmp_path: Path, toy_plugins: Plugins, library: Any,
                                                 cache_dir: Path) -> None:  # fmt: skip
    result = train(tiny_config(tmp_path, cache_dir), library, plugins=toy_plugins)
    tensors, card = load_model(result.model_path)
    net = TinyCNN(card["architecture"]["config"]).eval()
    net.load_state_dict(tensors)
    path = tmp_path / "state.pt"
    torch.save({"state_dict": net.state_dict(), "card": json.dumps(card), "epoch": 1}, path)
    loaded = torch.load(path, weights_only=True)
    again = TinyCNN(json.loads(loaded["card"])["architecture"]["config"]).eval()
    again.load_state_dict(loaded["state_dict"])
    x = torch.randn(5, 1, 2, 10, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.equal(net(x), again(x)) and torch.equal(net.embed(x), again.embed(x))
    state = torch.load(
        result.result.model_path.parent / "last.state.pt", weights_only=True
    )  # optimizer state too
    assert set(state) >= {"optimizer", "epoch", "best_score"} and isinstance(
        state["optimizer"]["state"], dict
    )


def test_trained_backend_runs_the_saved_model_like_the_loop(tmp_path: Path, toy_plugins: Plugins, library: Any,
                                                           cache_dir: Path) -> None:  # fmt: skip
    result = train(tiny_config(tmp_path, cache_dir), library, plugins=toy_plugins)
    analyzer = Analyzer(AnalysisSettings(model=str(result.model_path), device="cpu"), toy_plugins)
    clip = library.clips[0]
    analysis = analyzer.analyze(clip.path)
    assert set(analysis.scores) == {"genre"} and set(analysis.scores["genre"]) == {"Jazz", "Metal", "Pop"}
    assert sum(analysis.scores["genre"].values()) == pytest.approx(1.0, abs=1e-5)
    assert analysis.embedding.shape == (6,) and analysis.model_id == read_card(result.model_path)["id"]
    # the same numbers by hand: features -> normalisation -> patches -> network -> mean of softmax
    tensors, card = load_model(result.model_path)
    net = TinyCNN(card["architecture"]["config"]).eval()
    net.load_state_dict(tensors)
    patches, _, _ = analyzer.features(clip.path)
    norm = card["features"]["normalisation"]
    x = (patches - np.reshape(norm["mean"], (1, 1, 2, 1))) / np.reshape(norm["std"], (1, 1, 2, 1))
    with torch.inference_mode():
        probs = net(torch.from_numpy(x.astype(np.float32))).softmax(-1).mean(0).numpy()
    assert np.allclose([analysis.scores["genre"][k] for k in card["heads"]["genre"]], probs, atol=1e-6)


def test_multilabel_task_uses_sigmoid_outputs(tmp_path: Path, toy_plugins: Plugins, library: Any,
                                             cache_dir: Path) -> None:  # fmt: skip
    result = train(tiny_config(tmp_path, cache_dir, task="genres"), library, plugins=toy_plugins)
    card = read_card(result.model_path)
    assert (
        card["heads"] == {"genres": ["Jazz", "Live", "Metal", "Pop"]}
        and card["activation"]["genres"] == "sigmoid"
    )
    assert card["tag_kinds"]["genres"]["Live"] == "genre" and "label_precision_at_3" in result.metrics
    assert np.asarray(result.metrics["confusion"]).shape == (4, 2, 2)
    scores = Analyzer(AnalysisSettings(model=str(result.model_path)), toy_plugins).analyze(
        library.clips[0].path
    )
    assert all(0 < v < 1 for v in scores.scores["genres"].values())


def test_probe_on_a_pretrained_embedding(
    tmp_path: Path, toy_plugins: Plugins, library: Any, cache_dir: Path
) -> None:
    base = make_toy_model(tmp_path / "toy.safetensors")
    config = tiny_config(
        tmp_path, cache_dir, mode="probe", base_model=str(base), arch_options={"hidden": 4}, epochs=3
    )
    result = train(config, library, plugins=toy_plugins)
    card = read_card(result.model_path)
    assert (
        card["architecture"]["family"] == "dense-head" and card["architecture"]["config"]["in_features"] == 2
    )
    assert (
        card["features"]["embedding_of"]["id"] == "toy-1" and card["features"]["extractor"] == "toy-features"
    )
    analysis = Analyzer(AnalysisSettings(model=str(result.model_path)), toy_plugins).analyze(
        library.clips[0].path
    )
    assert analysis.embedding.shape == (4,) and set(analysis.scores["genre"]) == {"Jazz", "Metal", "Pop"}


def test_statistics_baseline_is_a_logistic_regression_model_file(tmp_path: Path, toy_plugins: Plugins,
                                                                library: Any, cache_dir: Path) -> None:  # fmt: skip
    result = train(tiny_config(tmp_path, cache_dir, mode="stats"), library, plugins=toy_plugins)
    assert result.metrics["accuracy"] == 1.0  # three pitches are linearly separable by their MFCC means
    card = read_card(result.model_path)
    assert card["features"]["extractor"] == "mcbr-stats" and card["features"]["patch_frames"] is None
    assert card["architecture"]["config"] == {"in_features": 78, "n_classes": 3, "hidden": 0, "dropout": 0.0}
    assert "scikit-learn" in card["versions"]
    analysis = Analyzer(AnalysisSettings(model=str(result.model_path)), toy_plugins).analyze(
        library.clips[-1].path
    )
    assert (
        max(analysis.scores["genre"], key=analysis.scores["genre"].get)
        == library.clips[-1].labels["genre"][0]
    )


def test_train_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="mode must be one of"):
        TrainConfig(mode="svm")
    with pytest.raises(ConfigError, match="folds must be 0"):
        TrainConfig(folds=1)
    with pytest.raises(ConfigError, match="or >= 3 .one fold tests, the next validates"):
        TrainConfig(folds=2)  # nothing would be left to train on
    with pytest.raises(ConfigError, match="unknown key"):
        TrainConfig.from_dict({"epoch": 3})
    assert TrainConfig.from_dict(TrainConfig(epochs=3).to_dict()) == TrainConfig(epochs=3)


def test_precise_batchnorm_replaces_slow_running_statistics() -> None:
    from mcbr_core.training.loop import precise_batchnorm

    net = nn.Sequential(nn.BatchNorm2d(2, momentum=0.01), nn.Conv2d(2, 1, 1)).eval()
    gen = torch.Generator().manual_seed(0)
    batches = [5.0 + 3.0 * torch.randn(8, 2, 4, 6, generator=gen) for _ in range(5)]
    assert precise_batchnorm(net, batches) == 1
    bn = net[0]
    data = torch.cat(batches)  # (40, 2, 4, 6)
    assert torch.allclose(bn.running_mean, data.mean(dim=(0, 2, 3)), atol=1e-5)
    assert bn.running_var.min() > 7.0 and bn.momentum == 0.01 and not net.training  # restored
    assert precise_batchnorm(nn.Linear(2, 2), batches) == 0


def test_stacked_network_trains_its_branches_first_on_the_same_fold(tmp_path: Path, toy_plugins: Plugins,
                                                                   library: Any, cache_dir: Path) -> None:  # fmt: skip
    config = tiny_config(tmp_path, cache_dir, architecture="tiny-stack")
    result = train(config, library, plugins=toy_plugins)
    run = tmp_path / "run"
    logs = {name: (run / "branches" / name / "metrics.jsonl").read_text() for name in ("left", "right")}
    train(replace(config, epochs=3), library, plugins=toy_plugins, resume=True)  # one more epoch of the head
    assert logs == {
        name: (run / "branches" / name / "metrics.jsonl").read_text() for name in logs
    }  # branches as they were
    stacked, stacked_card = load_model(result.result.model_path)
    for name in ("left", "right"):
        branch, card = load_model(run / "branches" / name / "checkpoints" / "fold0" / "best.safetensors")
        assert card["architecture"]["family"] == TINY and card["name"] == f"run-{name}"
        assert (
            card["training"]["data"] == stacked_card["training"]["data"]
        )  # the same parts of the same split
        # the stacked model holds the trained branch unchanged: frozen, and precise BN leaves it alone
        assert all(torch.equal(stacked[f"{name}.{k}"], v) for k, v in branch.items())
        assert not torch.equal(branch["conv.weight"], TinyCNN(
            {"in_channels": 1, "n_bins": 2, "n_classes": 3}).conv.weight)  # fmt: skip


# -- too little data, failed runs, fingerprints ------------------------------------------------------


def rows_dataset(folder: Path, spec: list[tuple[str, str, int]], **options: Any) -> Any:
    """A library dataset of (genre, artist, items) rows; the files are empty (nothing here decodes them)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for genre, artist, n in spec:
        for i in range(n):
            path = folder / f"{genre}-{artist}-{i}.wav"
            path.touch()
            rows.append({"path": str(path), "artist": artist, "genres": genre})
    return load_dataset("library", folder, rows=rows, **options)


def test_too_little_data_is_one_line_before_anything_is_written(tmp_path: Path, toy_plugins: Plugins) -> None:
    config = tiny_config(tmp_path, tmp_path / "cache")
    one = rows_dataset(tmp_path / "a", [("Rock", "A", 4), ("Rock", "B", 4), ("Jazz", "C", 2)], min_count=3)
    with pytest.raises(TrainingDataError) as exc:
        train(config, one, plugins=toy_plugins)
    assert str(exc.value) == ("the library has 1 genre label with at least 3 items (Rock: 8 items) among 10 "
                              "labelled items; training needs at least 2 labels")  # fmt: skip
    none = rows_dataset(tmp_path / "b", [("Rock", "A", 2), ("Jazz", "C", 1)], min_count=3)
    with pytest.raises(TrainingDataError, match=r"has no genre label with at least 3 items \(most: Rock: 2 items, "
                                                r"Jazz: 1 item\) among 3 labelled items"):  # fmt: skip
        train(config, none, plugins=toy_plugins)
    two_artists = rows_dataset(tmp_path / "c", [("Rock", "A", 3), ("Jazz", "B", 3)])
    with pytest.raises(TrainingDataError) as exc:
        train(config, two_artists, plugins=toy_plugins)
    assert str(exc.value) == (
        "an artist-disjoint train/validation/test split keeps each artist in one part and needs at least 3 artists "
        "(an item without one counts as its own); the library's 6 items with genre labels have 2 (Jazz: 1 artist, "
        "Rock: 1 artist)"
    )
    with pytest.raises(TrainingDataError, match="5-fold cross-validation .* needs at least 5 artists"):
        cross_validate(replace(config, folds=5), rows_dataset(tmp_path / "d", [("Rock", "A", 3), ("Rock", "B", 3),
                       ("Jazz", "C", 3), ("Jazz", "D", 3)]), plugins=toy_plugins)  # fmt: skip
    # 3 folds: each training part is one fold, and one of them holds no Jazz
    lone = rows_dataset(
        tmp_path / "e", [("Rock", a, 2) for a in "ABCDEF"] + [("Jazz", "G", 2), ("Jazz", "H", 2)]
    )
    with pytest.raises(
        TrainingDataError,
        match=r"3-fold cross-validation leaves fold \d's training part with only "
        r"Rock: each label needs items of more artists \(Jazz: 2 artists",
    ):
        cross_validate(replace(config, folds=3), lone, plugins=toy_plugins)
    assert (
        not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()
    )  # no run folder, nothing decoded


def test_a_run_that_fails_before_its_first_checkpoint_leaves_nothing(tmp_path: Path, toy_plugins: Plugins,
                                                                    library: Any, cache_dir: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    config = tiny_config(tmp_path / "runs", cache_dir)

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(loop, "_run_fold", fail)
    with pytest.raises(RuntimeError):
        train(config, library, plugins=toy_plugins)
    assert not (tmp_path / "runs").exists()  # the folders it created are gone
    (tmp_path / "runs" / "run").mkdir(parents=True)
    with pytest.raises(RuntimeError):
        train(config, library, plugins=toy_plugins)
    assert (tmp_path / "runs" / "run").is_dir() and not list(
        (tmp_path / "runs" / "run").iterdir()
    )  # its files only
    monkeypatch.undo()
    with pytest.raises(RuntimeError), monkeypatch.context() as m:  # a run killed after writing config.json
        m.setattr(loop, "_run_fold", fail)
        m.setattr(runs, "discard", lambda *a: None)
        train(config, library, plugins=toy_plugins)
    assert (tmp_path / "runs" / "run" / "config.json").is_file()
    result = train(
        replace(config, seed=4), library, plugins=toy_plugins
    )  # no checkpoint there: not a run to resume
    assert result.model_path.is_file()
    with pytest.raises(ConfigError, match="already holds a run"):
        train(config, library, plugins=toy_plugins)


def test_model_cards_fingerprint_the_training_and_validation_clips(tmp_path: Path, toy_plugins: Plugins,
                                                                  library: Any, cache_dir: Path) -> None:  # fmt: skip
    result = train(tiny_config(tmp_path, cache_dir), library, plugins=toy_plugins)
    parts = json.loads((tmp_path / "run" / "split.json").read_text())["parts"]
    path = {c.id: c.path for c in library.clips}
    fitted = sorted(clip_hash(path[cid]) for cid, part in parts.items() if part in ("train", "val"))
    fp = read_card(result.model_path)["training"]["fingerprint"]
    assert (
        fp["clips"] == fitted
        and fp["n"] == len(fitted) < len(library.clips)
        and fp["method"].startswith("sha1")
    )
    best = read_card(result.result.model_path)["training"]["fingerprint"]
    assert best == fp  # every checkpoint carries it
