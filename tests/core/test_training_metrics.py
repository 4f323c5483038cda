"""Training metrics and the feature cache (computed once, memory-mapped, failures remembered,
a crashing feature worker costing one clip), on the tiny library of tests/core/training_library.py."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcbr_core.errors import DecodeError
from mcbr_core.plugins import Plugins
from mcbr_core.training import metrics as M
from mcbr_core.training.cache import ExtractorSource, FeatureCache
from mcbr_core.training.datasets.base import Clip
from mcbr_core.training.datasets.builtin import load_dataset
from mcbr_core.training.loop import train
from tests.audiogen import write_audio
from tests.core.training_library import (
    Crashy,
    TinyArchitectures,
    tiny_config,
    write_library,
)
from tests.toymodel import ToyPlugin

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
