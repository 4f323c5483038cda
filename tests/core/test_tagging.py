"""Tag choice and merging: thresholds, counts, whitelist, spelling, never clobbering the user."""

from __future__ import annotations

import pytest

from mcbr_core.errors import ConfigError
from mcbr_core.settings import AnalysisSettings, KindSettings, TagSettings, from_mapping
from mcbr_core.tagging import (
    canonical,
    choose,
    decode_own,
    encode_own,
    merge,
    score_field_names,
    scored_labels,
    slug,
    user_values,
)

KINDS = {"tags": {"rock": "genre", "electronic": "genre", "electronica": "genre", "rnb": "genre",
                  "sad": "mood", "happy": "mood", "00s": "other"}}  # fmt: skip
SCORES = {"tags": {"rock": 0.6, "electronic": 0.5, "electronica": 0.45, "rnb": 0.3, "sad": 0.2, "happy": 0.05,
                   "00s": 0.9}}  # fmt: skip


def test_choose_by_threshold_and_count() -> None:
    scored = scored_labels(SCORES, KINDS)
    settings = TagSettings(genre=KindSettings(threshold=0.35, count=2), mood=KindSettings(threshold=0.1, count=2))
    assert choose(scored, "genre", settings) == ["Rock", "Electronic"]
    assert choose(scored, "mood", settings) == ["Sad"]
    assert choose(scored, "genre", TagSettings(genre=KindSettings(threshold=0.0, count=0))) == []


def test_spelling_whitelist_and_user_names() -> None:
    scored = scored_labels(SCORES, KINDS)
    settings = TagSettings(
        genre=KindSettings(threshold=0.2, count=5),
        canonical={"Electronica": "Electronic", "rock": ""},  # merge one, drop one
        whitelist=("electronic", "R&B"),
    )
    assert choose(scored, "genre", settings) == ["Electronic", "R&B"]
    assert canonical("Hip-Hop") == "Hip Hop" and canonical("indie rock") == "Indie Rock"


def test_heads_named_genre_and_mood_need_no_kind_map() -> None:
    scored = scored_labels({"genre": {"Jazz": 0.9}, "mood": {"Calm": 0.8}}, {})
    assert [(s.kind, s.label) for s in scored] == [("genre", "Jazz"), ("mood", "Calm")]


@pytest.mark.parametrize(
    ("existing", "ours", "force", "keep", "expected"),
    [
        ([], None, False, False, ["Rock"]),  # nothing there: write
        (["Polka"], None, False, False, ["Polka"]),  # the user's: keep
        (["Polka"], None, True, False, ["Rock"]),  # force: replace
        (["Polka"], None, True, True, ["Polka", "Rock"]),  # force + keep_existing: extend
        (["Jazz"], ["Jazz"], False, False, ["Rock"]),  # our own earlier value: refresh
        (["Jazz", "Polka"], ["Jazz"], False, False, ["Jazz", "Polka"]),  # the user added one: keep
        (["Polka", "Jazz"], ["Jazz"], True, True, ["Polka", "Rock"]),  # force + keep: our old value refreshed
        (["Polka", "Jazz"], ["Jazz"], True, False, ["Rock"]),
    ],
)
def test_merge(existing: list[str], ours: list[str] | None, force: bool, keep: bool, expected: list[str]) -> None:
    assert merge(existing, ["Rock"], ours=ours, force=force, keep_existing=keep) == expected


def test_score_fields_and_slugs() -> None:
    assert slug("Hip-Hop") == "hip_hop" and slug("R&B") == "r_b"
    names = score_field_names({"tags": list(KINDS["tags"])}, KINDS)
    assert "mcbr_genre_rock" in names and "mcbr_mood_sad" in names
    assert not [n for n in names if "00s" in n]  # "other" tags get no attribute


def test_settings_reject_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ConfigError, match="unknown key.*treshold"):
        from_mapping(KindSettings, {"treshold": 0.5}, where="mcbr.genre")
    with pytest.raises(ConfigError, match="within"):
        KindSettings(threshold=1.5)
    with pytest.raises(ConfigError, match="window_patches"):
        AnalysisSettings(max_patches=2, window_patches=4)


def test_user_values_are_what_the_plugin_did_not_write() -> None:
    assert user_values(["Polka", "Rock"], ["rock"]) == ["Polka"]
    assert user_values(["Polka"], None) == ["Polka"]
    assert user_values(["Rock"], ["Rock"]) == []
    assert decode_own(encode_own(["Rock", "Hip Hop"])) == ["Rock", "Hip Hop"]
    assert decode_own("") == [] and decode_own(None) is None
