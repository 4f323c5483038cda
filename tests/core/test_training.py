"""The training loop, metrics, feature cache and the trained backend, on a tiny model and tiny data.

The data is a ``library`` dataset of generated tones (three genres at three pitches,
four artists each); the features are the toy extractor's (spectral centroid and RMS,
``(1, 2, T)`` at 20 frames per second) and the network is a one-convolution CNN, so a
whole training run takes well under a second.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from mcbr_core.analysis import Analyzer
from mcbr_core.errors import ConfigError, DecodeError
from mcbr_core.hookspecs import hookimpl
from mcbr_core.models.checkpoint import load_model, read_card
from mcbr_core.plugins import Plugins, reset_plugins
from mcbr_core.settings import AnalysisSettings
from mcbr_core.training import loop, runs
from mcbr_core.training import metrics as M
from mcbr_core.training.cache import ExtractorSource, FeatureCache
from mcbr_core.training.datasets.base import Clip, TrainingDataError
from mcbr_core.training.datasets.builtin import load_dataset
from mcbr_core.training.fingerprint import clip_hash
from mcbr_core.training.loop import TrainConfig, cross_validate, train
from tests.audiogen import tone, write_audio
from tests.toymodel import ToyExtractor, ToyPlugin, make_toy_model

GENRES = {"Jazz": 300.0, "Pop": 1000.0, "Metal": 2500.0}
TINY = "tiny-cnn"


class TinyCNN(nn.Module):
    """One convolution over all feature rows, batch norm, mean over time, a linear head."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(config["in_channels"], 6, kernel_size=(config["n_bins"], 3), padding=(0, 1))
        self.bn = nn.BatchNorm2d(6)
        self.out = nn.Linear(6, config["n_classes"])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.conv(x)))  # (B, 6, 1, T)
        return h.mean(dim=(2, 3))  # (B, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(x))


class TinyStack(nn.Module):
    """Two frozen TinyCNNs trained first by the loop (like Whitell's TimeFreq), and a linear head on their logits."""

    trained_branches: ClassVar[dict[str, str]] = {"left": TINY, "right": TINY}

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.left, self.right = TinyCNN(config), TinyCNN(config)
        for p in [*self.left.parameters(), *self.right.parameters()]:
            p.requires_grad_(False)
        self.out = nn.Linear(2 * config["n_classes"], config["n_classes"])

    def train(self, mode: bool = True) -> TinyStack:
        super().train(mode)
        self.left.eval()
        self.right.eval()
        return self

    def load_branches(self, left: dict, right: dict) -> None:
        self.left.load_state_dict(left)
        self.right.load_state_dict(right)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.left(x), self.right(x)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(x))


class CrashOnSilence(ToyExtractor):
    """The toy features, but the process dies (``os.abort``) on a silent clip, as a native decoder's crash would."""

    def __call__(self, y: np.ndarray) -> np.ndarray:
        if not np.any(y):
            os.abort()
        return super().__call__(y)


class Crashy:
    @hookimpl
    def register_feature_extractors(self, register):
        register("crashy-features", CrashOnSilence)


class TinyArchitectures:
    """The tiny networks, registered through the ``register_architectures`` hook like a third party's."""

    @hookimpl
    def register_architectures(self, register):
        register(TINY, TinyCNN)
        register("tiny-stack", TinyStack)


def write_library(folder: Path, *, seconds: float = 1.5) -> Path:
    """A library CSV: 3 genres x 4 artists x 2 tracks of tones; moods; a second genre on some tracks."""
    rows = []
    for g, (genre, freq) in enumerate(GENRES.items()):
        for a in range(4):
            for t in range(2):
                name = f"music/{genre}-{a}-{t}.wav"
                path = folder / name
                path.parent.mkdir(parents=True, exist_ok=True)
                write_audio(path, tone(seconds, sr=8000, freq=freq * (1 + 0.05 * a), seed=10 * a + t), 8000)
                extra = "|Live" if t == 0 else ""
                rows.append([name, f"{genre} artist {a}", f"{genre}{extra}", "Happy" if g != 1 else "Sad"])
    with (folder / "library.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "artist", "genres", "mood"])
        w.writerows(rows)
    return folder


@pytest.fixture(scope="module")
def toy_plugins():
    plugins = Plugins((ToyPlugin(), TinyArchitectures()), entry_points=False)
    reset_plugins(plugins)
    yield plugins
    reset_plugins(None)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory):
    return load_dataset("library", write_library(tmp_path_factory.mktemp("lib")), min_count=1)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def tiny_config(tmp: Path, cache: Path, **changes: Any) -> TrainConfig:
    base = TrainConfig(architecture=TINY, features="toy-features", epochs=2, batch_size=4, lr=0.02, patience=0,
                       patch_seconds=0.5, val_fraction=0.25, test_fraction=0.25, seed=3, device="cpu",
                       run_dir=str(tmp / "run"), cache_dir=str(cache))  # fmt: skip
    return replace(base, **changes)


# -- metrics -------------------------------------------------------------------------------


def test_single_label_metrics_on_a_hand_made_example() -> None:
    y = np.array([0, 0, 1, 2])
    scores = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.2, 0.5, 0.3], [0.5, 0.1, 0.4]])
    out = M.evaluate(y, scores, labels=["a", "b", "c"], multilabel=False)
    assert out["accuracy"] == 0.5 and out["precision_at_1"] == 0.5
    assert (
        out["precision_at_3"] == 1.0 and M.precision_at_k(y, scores, 2) == 0.75
    )  # clip 1: true a, top-2 {b, c}
    assert out["confusion"] == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    # per label F1: a = 2*1/(2+1+1) = 0.5, b = 2/(2+1+0) = 2/3, c = 0
    assert out["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0) / 3) and out["micro_f1"] == 0.5
    assert out["hamming_loss"] == 0.5 and out["n"] == 4
    assert out["knn_label_precision_at_10"] is None and out["artist_precision_at_5"] is None


def test_multilabel_metrics_on_a_hand_made_example() -> None:
    y = np.array([[1, 0, 1], [0, 1, 0]])
    scores = np.array([[0.9, 0.2, 0.6], [0.6, 0.4, 0.1]])
    out = M.evaluate(y, scores, labels=["a", "b", "c"], multilabel=True)
    assert out["accuracy"] == 0.5  # subset accuracy
    assert out["hamming_loss"] == pytest.approx(2 / 6)
    assert out["precision_at_1"] == 0.5 and out["label_precision_at_3"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    # tp: a 1, c 1; fp: a 1; fn: b 1 -> micro 2*2/(4+1+1); macro over a, b, c = (2/3 + 0 + 1) / 3
    assert out["micro_f1"] == pytest.approx(4 / 6) and out["macro_f1"] == pytest.approx((2 / 3 + 1) / 3)
    assert out["confusion"][0] == [[0, 1], [0, 1]]


def test_knn_and_same_artist_precision_exclude_the_query() -> None:
    emb = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [0.1, 0.99], [-1.0, 0.0]])
    assert M.nearest_neighbours(emb, 1)[:, 0].tolist() == [1, 0, 3, 2, 2]
    labels = np.array([0, 0, 1, 1, 0])
    # k = 2 neighbours: 0 -> {1, 3}: 1/2; 1 -> {0, 3}: 1/2; 2 -> {3, 1}: 1/2; 3 -> {2, 1}: 1/2; 4 -> {2, 3}: 0
    assert M.knn_label_precision(emb, labels, 2) == pytest.approx(0.4)
    artists = ["x", "x", "y", None, None]  # only x's two clips are queries
    assert M.same_artist_precision(emb, artists, 1) == 1.0
    assert M.same_artist_precision(emb, ["x", "y", "z", None, None], 1) is None


def test_fold_table_has_a_row_per_fold_and_mean_and_std() -> None:
    rows = [{"fold": 0, "loss": 2.32, "precision_at_1": 0.569, "precision_at_3": 0.825},
            {"fold": 1, "loss": 2.33, "precision_at_1": 0.587, "precision_at_3": 0.831}]  # fmt: skip
    table = M.format_fold_table(rows, architecture="IC(5,15,64)LPC(1,5,64)LPF(384)F(192)O").splitlines()
    assert "precision@1[%]" in table[0] and "precision@3[%]" in table[0] and "F1-macro" not in table[0]
    assert table[1].split()[-2:] == ["56.9", "82.5"] and table[3].split()[-1] == "82.8"
    assert table[4].startswith("std")


# -- feature cache ---------------------------------------------------------------------------


class CountingSource(ExtractorSource):
    calls = 0

    def compute(self, path: Path) -> np.ndarray:
        CountingSource.calls += 1
        return super().compute(path)


def test_feature_cache_computes_once_then_memory_maps(
    tmp_path: Path, toy_plugins: Plugins, library: Any
) -> None:
    clips = library.clips[:3]
    source = CountingSource("toy-features", {}, plugins=toy_plugins)
    cache = FeatureCache(source, root=tmp_path, namespace="lib")
    ok, failed = cache.prepare(clips)
    assert len(ok) == 3 and not failed and CountingSource.calls == 3
    again = FeatureCache(
        CountingSource("toy-features", {}, plugins=toy_plugins), root=tmp_path, namespace="lib"
    )
    x = again.load(clips[0])
    assert isinstance(x, np.memmap) and x.shape[:2] == (1, 2) and CountingSource.calls == 3
    assert (
        not list(cache.dir.glob(".*.tmp"))
        and json.loads((cache.folder / "key.json").read_text())["name"] == "toy-features"
    )
    other = FeatureCache(
        ExtractorSource("toy-features", {}, plugins=toy_plugins, max_seconds=0.5), root=tmp_path
    )
    assert other.folder != cache.folder  # another excerpt length is another key
    link = tmp_path / "linked"
    link.symlink_to(clips[0].path.parent)
    for alias in (
        link / clips[0].path.name,
        Path(os.path.relpath(clips[0].path)),
    ):  # the same file, other paths
        assert again.path(replace(clips[0], path=alias)) == again.path(clips[0])


def test_feature_cache_remembers_failures(tmp_path: Path, toy_plugins: Plugins) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....not audio")
    cache = FeatureCache(ExtractorSource("toy-features", {}, plugins=toy_plugins), root=tmp_path)
    clip = Clip(id="bad", path=bad)
    ok, failed = cache.prepare([clip])
    assert not ok and failed[0][0] == "bad" and cache.path(clip).with_suffix(".failed").exists()
    with pytest.raises(DecodeError):
        cache.load(clip)


def test_a_decoder_that_crashes_its_process_costs_one_clip(tmp_path: Path) -> None:
    import tests.faulty

    clips = [Clip(id=name, path=tmp_path / f"{name}.bad") for name in ("low-1", "crash", "high-2")]
    for clip in clips:
        clip.path.write_bytes(b"x")
    source = ExtractorSource("toy-features", {}, plugins=Plugins((tests.faulty,), entry_points=False),
                             decoders=("faulty",))  # fmt: skip
    ok, failed = FeatureCache(source, root=tmp_path / "cache").prepare(clips, workers=1)
    assert [c.id for c in ok] == ["low-1", "high-2"]
    assert failed == [("crash", "the feature worker crashed (signal 6)")]


@pytest.mark.slow  # spawns a feature worker and a DataLoader worker: about 10 s
def test_a_run_goes_on_when_a_clip_crashes_its_feature_worker(tmp_path: Path, cache_dir: Path) -> None:
    folder = write_library(tmp_path / "lib")
    write_audio(folder / "music" / "silent.wav", np.zeros(12000, dtype=np.float32), 8000)
    with (folder / "library.csv").open("a", newline="") as fh:
        csv.writer(fh).writerow(["music/silent.wav", "Jazz artist 0", "Jazz", "Happy"])
    data = load_dataset("library", folder, min_count=1)
    plugins = Plugins((ToyPlugin(), TinyArchitectures(), Crashy()), entry_points=False)
    config = tiny_config(tmp_path, cache_dir, features="crashy-features", num_workers=1, epochs=1)
    result = train(config, data, plugins=plugins)
    silent = next(c.id for c in data.clips if c.path.name == "silent.wav")
    assert result.model_path.is_file() and result.skipped == [
        (silent, "the feature worker crashed (signal 6)")
    ]
    assert json.loads((tmp_path / "run" / "skipped.json").read_text()) == [
        [silent, "the feature worker crashed (signal 6)"]
    ]


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
