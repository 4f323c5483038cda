"""The mixes schema (mcbr_core.playlist.mixes): validation, names, what changed on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcbr_core.errors import ConfigError
from mcbr_core.playlist import m3u
from mcbr_core.playlist.mixes import compare, load_mixes, placeholders


def test_a_plain_mix_and_a_family() -> None:
    specs = load_mixes(
        [
            {"name": "Calm evenings", "query": "mood:Calm", "count": 30},
            {"name": "Radio ${artist}", "for_each": "artist", "query": "loved:1", "limit": 3},
        ]
    )
    calm, radio = specs
    assert (calm.mode, calm.count, calm.duration, calm.restrict) == ("radio", 30, None, None)
    assert calm.expand("ignored") == "Calm evenings"
    assert radio.expand("Phish") == "Radio Phish"
    assert load_mixes([]) == () and load_mixes(None) == ()


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({"name": "A", "cout": 3}, r"mcbr.mixes\[0\]: unknown key 'cout' \(did you mean 'count'\?\)"),
        ({"name": "A", "count": "many"}, r"mcbr.mixes\[0\].count: expected a whole number"),
        ({"name": "Radio", "for_each": "artist"}, r"must hold \$artist"),
        ({"name": "Radio $artist"}, r"\$artist is not for_each's field.*set for_each"),
        ({"name": "A", "order": "random"}, "order: must be one of smooth, rank, shuffle"),
        ({"name": "A", "extension": "pls"}, "extension: must be one of m3u, m3u8"),
        ({"name": "A", "options": 3}, "options: must be a mapping"),
        ({"query": "x"}, r"mcbr.mixes\[0\]: every mix needs a name"),
        ("Calm", r"mcbr.mixes\[0\]: must be a mapping"),
    ],
)
def test_invalid_mixes_name_the_entry_and_the_key(entry: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_mixes([entry])


def test_names_must_differ() -> None:
    with pytest.raises(ConfigError, match=r"mcbr.mixes\[1\]: the name 'calm' is taken by mcbr.mixes\[0\]"):
        load_mixes([{"name": "Calm"}, {"name": "calm"}])
    with pytest.raises(ConfigError, match="must be a list"):
        load_mixes({"name": "Calm"})


def test_placeholders() -> None:
    assert placeholders("Radio $artist (${genres}) $$5") == ["artist", "genres"]


def test_compare_says_new_changed_unchanged(tmp_path: Path) -> None:
    target = tmp_path / "mix.m3u"
    data = m3u.render([m3u.Entry(str(tmp_path / "a.flac"))], folder=tmp_path, relative=True)
    assert compare(target, data) == ("new", None)
    target.write_bytes(data)
    assert compare(target, data) == ("unchanged", None)
    more = m3u.render(
        [m3u.Entry(str(tmp_path / n)) for n in ("a.flac", "b.flac")], folder=tmp_path, relative=True
    )
    assert compare(target, more) == ("changed", 1)


def test_the_documented_example_is_valid() -> None:
    import re

    import yaml

    text = (Path(__file__).resolve().parents[2] / "docs" / "players.md").read_text("utf-8")
    section = text.split("\n## Mixes", 1)[1]
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.DOTALL).group(1))
    specs = load_mixes(example["mcbr"]["mixes"])
    assert [s.mode for s in specs] == ["cluster", "radio", "radio", "path", "signature", "cluster"]
    assert specs[2].expand("Phish") == "Radio Phish"
