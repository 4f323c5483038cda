"""Tag choice and merging: thresholds, counts, whitelist, spelling, never clobbering the user."""

from __future__ import annotations

import pytest

from mcbr_core.errors import ConfigError
from mcbr_core.genres import GenreRules, compile_aliases, flatten_tree
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
    settings = TagSettings(
        genre=KindSettings(threshold=0.35, count=2), mood=KindSettings(threshold=0.1, count=2)
    )
    assert choose(scored, "genre", settings) == ["Rock", "Electronic"]
    assert choose(scored, "mood", settings) == ["Sad"]
    assert choose(scored, "genre", TagSettings(genre=KindSettings(threshold=0.0, count=0))) == []


def test_spelling_whitelist_and_user_names() -> None:
    scored = scored_labels(SCORES, KINDS)
    settings = TagSettings(
        genre=KindSettings(threshold=0.2, count=5),
        renames={"Electronica": "Electronic", "rock": ""},  # merge one, drop one
        genres=GenreRules(
            whitelist=frozenset({"electronic", "r&b"}),
            aliases=compile_aliases({"r&b": [r"r(hythm)?[ &n/]*b(lues)?"]}),
        ),
    )
    assert choose(scored, "genre", settings) == ["Electronic", "R&B"]
    assert canonical("Hip-Hop") == "Hip Hop" and canonical("indie rock") == "Indie Rock"
    assert canonical("drum and bass") == "Drum and Bass"


TREE = flatten_tree([{"rock": [{"heavy metal": ["death metal", "doom metal"]}, "punk rock"]}, {"electronic": [
    {"drum and bass": ["jungle"]}, "house"]}, "jazz"])  # fmt: skip


@pytest.mark.parametrize(
    ("labels", "rules", "count", "expected"),
    [
        (["death metal"], GenreRules(branches=TREE), 2, ["rock"]),  # no whitelist: the oldest ancestor only
        (["death metal"], GenreRules(branches=TREE, whitelist=frozenset({"rock", "heavy metal"})), 2,
         ["heavy metal", "rock"]),  # parents that pass the whitelist; death metal does not
        (["jazz", "death metal"], GenreRules(branches=TREE, whitelist=frozenset({"jazz", "rock", "death metal"})),
         1, ["jazz"]),
        (["rock", "death metal"], GenreRules(branches=TREE, prefer_specific=True), 3, ["rock"]),  # roots only
        (["rock", "jungle"], GenreRules(branches=TREE, canonical=False, prefer_specific=True), 3, ["jungle", "rock"]),
        (["Hip-Hop"], GenreRules(aliases=compile_aliases({r"\1 \2": [r"(hip)[ -]*(hop)"]})), 1, ["hip hop"]),
    ],
)  # fmt: skip
def test_genre_rules_follow_lastgenre(
    labels: list[str], rules: GenreRules, count: int, expected: list[str]
) -> None:
    assert rules.resolve(labels, count) == expected


def test_the_best_label_is_always_written_unless_below_the_floor() -> None:
    scored = scored_labels({"genre": {"Jazz": 0.2, "Rock": 0.1}, "mood": {"Calm": 0.05}}, {})
    settings = TagSettings(
        genre=KindSettings(threshold=0.5, count=2), mood=KindSettings(threshold=0.5, count=2)
    )
    assert choose(scored, "genre", settings) == ["Jazz"] and choose(scored, "mood", settings) == ["Calm"]
    floored = TagSettings(mood=KindSettings(threshold=0.5, count=2, floor=0.1))
    assert choose(scored, "mood", floored) == []


def test_a_whitelist_that_drops_every_label_falls_back_to_the_family() -> None:
    scored = scored_labels({"genre": {"death metal": 0.9}}, {})
    rules = GenreRules(branches=TREE, whitelist=frozenset({"rock", "jazz"}), canonical=False)
    assert choose(scored, "genre", TagSettings(genres=rules)) == ["Rock"]


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
def test_merge(
    existing: list[str], ours: list[str] | None, force: bool, keep: bool, expected: list[str]
) -> None:
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


def test_threshold_auto_uses_each_labels_own_threshold() -> None:
    scored = scored_labels({"genres": {"rock": 0.6, "pop": 0.25, "jazz": 0.2}}, {"genres": dict.fromkeys(
        ("rock", "pop", "jazz"), "genre")})  # fmt: skip
    own = {"rock": 0.5, "pop": 0.2, "jazz": 0.5}  # pop passes its own 0.2; jazz misses its 0.5
    auto = TagSettings(genre=KindSettings(threshold="auto", count=3))
    assert choose(scored, "genre", auto, thresholds=own) == ["Rock", "Pop"]
    # without a card's thresholds, auto falls back to 0.3; a number overrides every label's own
    assert choose(scored, "genre", auto) == ["Rock"]
    assert choose(scored, "genre", TagSettings(genre=KindSettings(threshold=0.1, count=3)), thresholds=own) == [
        "Rock", "Pop", "Jazz"]  # fmt: skip
    assert (
        KindSettings().threshold_of("x", None) == 0.3
        and KindSettings(threshold=0.7).threshold_of("x", own) == 0.7
    )
    with pytest.raises(ConfigError, match="auto or a number"):
        KindSettings(threshold="high")
    with pytest.raises(ConfigError, match="specific"):
        KindSettings(specific=1.5)
    with pytest.raises(ConfigError, match="mcbr.mood.specific: sub-genres are for genres only"):
        TagSettings(mood=KindSettings(specific=0.5))


def test_subgenres_join_their_written_family() -> None:
    from mcbr_core.tagging import Scored

    heads = [Scored("genre", "rock", 0.8), Scored("genre", "electronic", 0.4), Scored("genre", "jazz", 0.1)]
    # a tagger's own labels, spelled as taggers spell them: normalised onto the tree ("House music" -> house)
    specific = [Scored("genre", "Heavy metal", 0.7), Scored("genre", "House music", 0.5),
                Scored("genre", "Punk rock", 0.2), Scored("genre", "Drum and bass", 0.9)]  # fmt: skip
    rules = GenreRules(branches=TREE, whitelist=frozenset())
    settings = TagSettings(genre=KindSettings(threshold=0.3, count=4, specific=0.4), genres=rules)
    # sub-genres follow their family, best first; punk rock is below `specific`; drum and bass's family
    # (electronic) is written, jazz is not, so nothing joins jazz
    assert choose(heads, "genre", settings, specific=specific) == [
        "Rock",
        "Heavy Metal",
        "Electronic",
        "Drum and Bass",
    ]
    assert choose(heads, "genre", settings) == ["Rock", "Electronic"]  # no tagger labels: families only
    off = TagSettings(genre=KindSettings(threshold=0.3, count=4, specific=None), genres=rules)
    assert choose(heads, "genre", off, specific=specific) == ["Rock", "Electronic"]
    first = TagSettings(genre=KindSettings(threshold=0.3, count=2, specific=0.4),
                        genres=GenreRules(branches=TREE, prefer_specific=True))  # fmt: skip
    assert choose(heads, "genre", first, specific=specific) == ["Heavy Metal", "Rock"]
    only_rock = [Scored("genre", "rock", 0.8)]
    assert choose(only_rock, "genre", settings, specific=specific) == ["Rock", "Heavy Metal"]


def test_subgenres_join_a_label_named_otherwise_in_the_tree_and_only_below_it() -> None:
    from mcbr_core.tagging import Scored

    tree = flatten_tree([{"caribbean and latin american": ["salsa", "reggaeton"]},
                         {"easy listening": ["lounge", {"new-age music": ["ambient new age"]}]}])  # fmt: skip
    rules = GenreRules(branches=tree)
    settings = TagSettings(genre=KindSettings(threshold=0.3, count=4, specific=0.4), genres=rules)
    heads = [Scored("genre", "latin", 0.8), Scored("genre", "new age", 0.5)]
    specific = [Scored("genre", "Salsa music", 0.7), Scored("genre", "New-age music", 0.9),
                Scored("genre", "Lounge", 0.9)]  # fmt: skip
    named = {"latin": "caribbean and latin american", "new age": "new-age music"}  # a head card's genre_tree
    # salsa sits below latin's node; lounge is new-age music's sibling, and new-age music is New Age itself
    assert choose(heads, "genre", settings, specific=specific, tree_names=named) == [
        "Latin",
        "Salsa",
        "New Age",
    ]
    assert choose(heads, "genre", settings, specific=specific) == [
        "Latin",
        "New Age",
    ]  # names not in the tree
