"""The ``mcbr`` command: train, eval (its JSON contract), embed, models, datasets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mcbr_core.cli import main
from mcbr_core.models.checkpoint import read_card
from mcbr_core.plugins import Plugins, reset_plugins
from tests.core.training_library import TINY, TinyArchitectures, write_library
from tests.toymodel import ToyPlugin, make_toy_model

CONTRACT = ("accuracy", "macro_f1", "precision_at_1", "precision_at_3", "confusion", "knn_label_precision_at_10",
            "artist_precision_at_5")  # fmt: skip


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    """A generated library dataset, the toy extractor (process-wide), and the tiny CNN."""
    reset_plugins(Plugins((ToyPlugin(), TinyArchitectures()), entry_points=False))
    root = tmp_path_factory.mktemp("cli")
    yield write_library(root / "data"), root
    reset_plugins(None)


def invoke(*args: str) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def trained(setup: tuple[Path, Path]) -> Path:
    data, root = setup
    out = invoke("-q", "train", "--dataset", "library", data, "-O", "min_count=1", "--arch", TINY,
                 "--features", "toy-features", "--epochs", "2", "--batch-size", "4", "--patch-seconds", "0.5",
                 "--device", "cpu", "--out", root / "run", "--cache", root / "cache", "--seed", "1")  # fmt: skip
    assert "precision@1[%]" in out and "model:" in out
    return root / "run" / "model.safetensors"


def test_train_writes_a_run_folder_and_a_model(trained: Path) -> None:
    assert trained.is_file() and (trained.parent / "metrics.jsonl").is_file()
    config = json.loads((trained.parent / "config.json").read_text())["config"]
    assert config["dataset"] == {
        "kind": "library",
        "root": config["dataset"]["root"],
        "options": {"min_count": 1},
    }
    assert config["epochs"] == 2 and config["seed"] == 1 and config["features"] == "toy-features"


def test_eval_writes_the_contract_keys(setup: tuple[Path, Path], trained: Path) -> None:
    data, root = setup
    out = root / "eval" / "genre.json"
    text = invoke("eval", "--model", trained, "--dataset", "library", data, "-O", "min_count=1", "--task", "genre",
                  "--json", out)  # fmt: skip
    result = json.loads(out.read_text())
    assert set(CONTRACT) <= set(result) and "precision@3[%]" in text
    assert result["n"] == 24 and result["n_failed"] == 0 and result["task"] == "genre"
    assert result["labels"] == ["Jazz", "Metal", "Pop"] and np.asarray(result["confusion"]).shape == (3, 3)
    assert result["label_coverage"] == {"Jazz": ["Jazz"], "Metal": ["Metal"], "Pop": ["Pop"]}
    assert 0 <= result["knn_label_precision_at_10"] <= 1 and 0 <= result["artist_precision_at_5"] <= 1
    mood = json.loads(invoke("eval", "--model", trained, "--dataset", "library", data, "-O", "min_count=1",
                             "--task", "mood", "--json", "-"))  # fmt: skip
    assert (
        mood["accuracy"] is None and mood["knn_label_precision_at_10"] is not None
    )  # a genre model, a mood task


def test_embed_writes_npy_and_json(setup: tuple[Path, Path], trained: Path) -> None:
    data, root = setup
    out = root / "emb" / "vectors.npy"
    text = invoke("embed", data / "music", "--model", trained, "-o", out)
    vectors = np.load(out)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert vectors.shape == (24, 6) and vectors.dtype == np.float32 and "24 embeddings" in text
    assert meta["files"][0] == "Jazz-0-0.wav" and meta["dim"] == 6 and meta["model_id"].startswith("run-")
    assert not meta["failed"]


def eval_json(model: Path | str, data: Path, out: Path) -> tuple[dict, str]:
    """``mcbr eval`` on a generated library folder: its --json output and what it wrote to stderr."""
    result = CliRunner().invoke(main, ["eval", "--model", str(model), "--dataset", "library", str(data), "-O",
                                       "min_count=1", "--json", str(out)], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text()), result.stderr


def test_eval_warns_on_the_models_own_training_clips(setup: tuple[Path, Path], trained: Path,
                                                     tmp_path: Path) -> None:  # fmt: skip
    data, _ = setup
    card = read_card(trained)
    fitted = card["training"]["data"]["n_train"] + card["training"]["data"]["n_val"]
    assert card["training"]["fingerprint"]["n"] == fitted and 0 < fitted < 24
    warning = f"mcbr eval: {fitted} of 24 clips were in this model's training data; these figures overstate accuracy\n"
    result, err = eval_json(trained, data, tmp_path / "own.json")
    assert result["n_in_training"] == fitted and err == warning
    copy = shutil.copytree(data, tmp_path / "copy")  # the same clips under other paths
    result, err = eval_json(trained, copy, tmp_path / "copy.json")
    assert result["n_in_training"] == fitted and err == warning
    other = write_library(tmp_path / "other", seconds=1.6)  # other clips (longer tones)
    result, err = eval_json(trained, other, tmp_path / "other.json")
    assert result["n_in_training"] == 0 and "training data" not in err and result["n"] == 24
    toy = make_toy_model(tmp_path / "toy.safetensors")  # a card without a fingerprint: unknown
    result, err = eval_json(toy, data, tmp_path / "toy.json")
    assert result["n_in_training"] is None and "training data" not in err


def test_embed_of_a_clip_head_is_its_base_models_embedding(setup: tuple[Path, Path], tmp_path: Path) -> None:
    data, root = setup
    toy = make_toy_model(tmp_path / "toy.safetensors")
    invoke("-q", "train", "--dataset", "library", data, "-O", "min_count=1", "--mode", "head", "--base-model", toy,
           "--out", tmp_path / "head", "--cache", root / "cache", "--device", "cpu")  # fmt: skip
    head = tmp_path / "head" / "model.safetensors"
    text = invoke("embed", data / "music", "--model", head, "-o", tmp_path / "head.npy")
    invoke("embed", data / "music", "--model", toy, "-o", tmp_path / "toy.npy")
    meta = json.loads((tmp_path / "head.json").read_text())
    assert meta["model_id"] == "toy-1" and meta["head_id"] == read_card(head)["id"] and "toy-1" in text
    assert json.loads((tmp_path / "toy.json").read_text())["head_id"] is None
    assert np.array_equal(
        np.load(tmp_path / "head.npy"), np.load(tmp_path / "toy.npy")
    )  # (24, 2): the toy model's
    assert set(meta["top_scores"][0]) == {"genre"} and set(meta["top_scores"][0]["genre"]) == {
        "Jazz",
        "Metal",
        "Pop",
    }


@pytest.mark.shipped
def test_embed_of_a_shipped_head_is_labelled_with_msd_musicnn(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    data, _ = setup
    music = tmp_path / "music"
    music.mkdir()
    for name in ("Jazz-0-0.wav", "Metal-0-0.wav"):
        shutil.copy(data / "music" / name, music / name)
    invoke("embed", music, "--model", "mcbr-mood", "-o", tmp_path / "mood.npy", "--device", "cpu")
    invoke("embed", music, "--model", "msd-musicnn", "-o", tmp_path / "msd.npy", "--device", "cpu")
    meta = json.loads((tmp_path / "mood.json").read_text())
    assert (
        meta["model_id"] == "msd-musicnn-1"
        and meta["head_id"].startswith("mcbr-mood-1-")
        and meta["dim"] == 200
    )
    assert set(meta["top_scores"][0]["mood"]) == {"calm", "happy", "sad", "tense"}
    assert np.array_equal(np.load(tmp_path / "mood.npy"), np.load(tmp_path / "msd.npy"))


def test_models_lists_tasks_and_defaults() -> None:
    from mcbr_core.models.shipped import resolve_model

    rows = {r["name"]: r for r in json.loads(invoke("models", "--json"))}
    assert rows["msd-musicnn"]["tasks"] == ["genre", "mood"] and rows["msd-musicnn"]["reads"] is None
    for kind in ("genre", "mood"):
        (default,) = [name for name, r in rows.items() if kind in r["default_for"]]
        card = read_card(resolve_model(default))
        # a kind's default is a head on the default model (mcbr-fusion) that measured better than its tags
        assert kind in card["default_for"] and rows[default]["reads"] == "mcbr-fusion"
    assert rows["mcbr-genres"]["default_for"] == ["genre"] and rows["mcbr-moods"]["default_for"] == ["mood"]
    listing = invoke("models")
    assert "mcbr-genres-1-" in listing and "head on mcbr-fusion's clip embedding" in listing


def test_datasets_lists_and_summarises(setup: tuple[Path, Path]) -> None:
    data, _ = setup
    assert invoke("datasets").split() == [
        "fma",
        "gtzan",
        "webapi",
        "emotify",
        "4q",
        "mirex",
        "mcbr-tags",
        "library",
    ]
    text = invoke("datasets", "library", data, "-O", "min_count=1")
    assert "24 clips" in text and "genres: 24 clips, 4 labels, multi-label (genre)" in text


def test_errors_are_one_line(setup: tuple[Path, Path]) -> None:
    data, root = setup
    result = CliRunner().invoke(main, ["eval", "--model", "nope", "--dataset", "library", str(data)])
    assert result.exit_code == 1 and "neither a shipped model" in result.output
    result = CliRunner().invoke(main, ["train", "--dataset", "gtzan", str(root / "missing")])
    assert result.exit_code == 1 and "no genres/<genre>" in result.output


def eval_six(setup: tuple[Path, Path], model: str) -> dict:
    """``mcbr eval --model MODEL`` on 6 clips of the generated library; the --json output."""
    data, root = setup
    out = root / "eval" / f"{model}.json"
    invoke("eval", "--model", model, "--dataset", "library", data, "-O", "min_count=1", "--limit", "6",
           "--json", out, "--device", "cpu")  # fmt: skip
    result = json.loads(out.read_text())
    assert result["n"] == 6 and set(CONTRACT) <= set(result)
    return result


@pytest.mark.shipped
def test_eval_maps_a_models_tags_to_the_dataset_labels(setup: tuple[Path, Path]) -> None:
    result = eval_six(setup, "msd-musicnn")
    assert result["model"] == "msd-musicnn"
    assert result["label_coverage"] == {"Jazz": ["jazz"], "Metal": ["metal"], "Pop": ["pop"]}


@pytest.mark.shipped
def test_eval_default_model_is_the_plugins_default_source(setup: tuple[Path, Path]) -> None:
    result = eval_six(setup, "default")
    assert result["model"] == "mcbr-genres"
    assert result["label_coverage"] == {"Jazz": ["jazz"], "Pop": ["pop"]}  # the head's 22 broad genres
