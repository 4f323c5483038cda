"""The shipped default: mcbr-fusion's heads through the engine (cards and numpy heads only; no audio)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mcbr_core.engine import Engine
from mcbr_core.genres import GenreRules, flatten_tree
from mcbr_core.settings import AnalysisSettings, IndexSettings, KindSettings, TagSettings

TREE = flatten_tree(
    [{"rock": [{"heavy metal": ["death metal"]}, "punk rock"]}, {"electronic": ["house"]}, "jazz"]
)


def engine(tmp_path: Path, **kinds: KindSettings) -> Engine:
    tags = TagSettings(genres=GenreRules(branches=TREE), **kinds)
    return Engine(analysis=AnalysisSettings(), tags=tags, index=IndexSettings(backend="exact"),
                  store_path=tmp_path / "s.db", index_dir=tmp_path)  # fmt: skip


def test_default_model_takes_the_fusion_heads_and_scales(tmp_path: Path) -> None:
    e = engine(tmp_path)
    assert e.model_id == "mcbr-fusion-1"
    assert {k: card["name"] for k, (_, card) in e.sources.items()} == {
        "genre": "mcbr-genres",
        "mood": "mcbr-moods",
    }
    assert {k: label for k, (_, label, _) in e.scales.items()} == {
        "mcbr_arousal": "high",
        "mcbr_valence": "positive",
    }
    for kind, (_, card) in e.sources.items():  # threshold: auto takes each label's own, from the head's card
        assert e.thresholds[kind] == card["thresholds"] and set(card["thresholds"]) == set(
            *card["heads"].values()
        )
    assert 0.0 < e.thresholds["genre"]["jazz"] < 1.0
    names = e.score_field_names()
    assert {
        "mcbr_arousal",
        "mcbr_valence",
        "mcbr_genre_jazz",
        "mcbr_mood_calm",
        "mcbr_genre_heavy_metal",
    } <= set(names)
    assert not {"mcbr_genre_rock_music", "mcbr_genre_house_music", "mcbr_genre_metal"} & set(
        names
    )  # no raw tags
    assert e.heads_id.split(",")[1].startswith("mcbr_arousal=mcbr-arousal-1-")


def test_retag_from_an_embedding_keeps_the_audio_sub_genre_scores(tmp_path: Path) -> None:
    e = engine(tmp_path)
    emb = np.random.default_rng(0).normal(size=712).astype(np.float32)
    tags = e.tags_of_embedding(emb, {"mcbr_genre_heavy_metal": 0.9, "mcbr_genre_rock": 0.1})
    assert tags.scores["mcbr_genre_heavy_metal"] == 0.9  # kept from the analysis of the audio
    assert tags.scores["mcbr_genre_rock"] != 0.1  # a head's label is scored again from the embedding
    assert 0.0 <= tags.scores["mcbr_arousal"] <= 1.0 and 0.0 <= tags.scores["mcbr_valence"] <= 1.0
    assert tags.genres and tags.moods  # the best label of each kind is always written
    if "Rock" in tags.genres:
        assert tags.genres[tags.genres.index("Rock") + 1] == "Heavy Metal"


def test_album_consensus_brings_the_shared_sub_genre(tmp_path: Path) -> None:
    e = engine(tmp_path, genre=KindSettings(threshold=0.5, count=3, specific=0.4))
    tracks = [{"mcbr_genre_rock": 0.9, "mcbr_genre_jazz": 0.2, "mcbr_genre_heavy_metal": 0.6, "mcbr_mood_dark": 0.8},
              {"mcbr_genre_rock": 0.7, "mcbr_genre_jazz": 0.4, "mcbr_genre_heavy_metal": 0.4, "mcbr_mood_dark": 0.6,
               "mcbr_arousal": 0.9}]  # fmt: skip
    tags = e.tags_of_scores(tracks)
    assert tags.genres == ["Rock", "Heavy Metal"]  # means: rock 0.8, heavy metal 0.5, jazz 0.3 (< 0.5)
    assert tags.moods == ["Dark"]
    no_sub = engine(tmp_path, genre=KindSettings(threshold=0.5, count=3, specific=None)).tags_of_scores(
        tracks
    )
    assert no_sub.genres == ["Rock"]
