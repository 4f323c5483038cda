"""One KEY=VALUE reader and one type check for every option and config section."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mcbr_core.errors import ConfigError
from mcbr_core.options import parse_options, parse_value
from mcbr_core.settings import from_mapping


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("yes", True), ("No", False), ("true", True), ("off", False), ("null", None), ("~", None),
        ("3", 3), ("-2", -2), ("0.5", 0.5), ("1e-3", 0.001), ("[1, 2]", [1, 2]), ('{"a": 1}', {"a": 1}),
        ("abc", "abc"), ("", ""), ("[oops", "[oops"), ("1.2.3", "1.2.3"),
    ],
)  # fmt: skip
def test_values_read_as_yaml_scalars(text: str, value: object) -> None:
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_pairs_and_their_errors() -> None:
    assert parse_options(["a=1", " b = yes", "c=x=y"], what="-O") == {"a": 1, "b": True, "c": "x=y"}
    with pytest.raises(ConfigError, match=r"^-A: expected KEY=VALUE, got 'oops'$"):
        parse_options(["oops"], what="-A")


@dataclass(frozen=True)
class _Opts:
    count: int = 1
    weight: float = 0.5
    name: str = ""
    flag: bool = False
    limit: int | None = None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"count": "abc"}, r"^x.count: expected a whole number, got 'abc'$"),
        ({"count": True}, "x.count: expected a whole number, got True"),
        ({"weight": "heavy"}, "x.weight: expected a number"),
        ({"flag": "maybe"}, "x.flag: expected yes or no, got 'maybe'"),
        ({"name": 3}, "x.name: expected text"),
        ({"limit": "none"}, "x.limit: expected a whole number"),
        ({"cont": 3}, r"x: unknown key 'cont' \(did you mean 'count'\?\)"),
    ],
)
def test_from_mapping_names_the_key_and_what_it_expected(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_mapping(_Opts, data, where="x")


def test_from_mapping_accepts_the_right_types() -> None:
    assert from_mapping(_Opts, {"count": 2, "weight": 1, "limit": None}, where="x") == _Opts(
        2, 1, "", False, None
    )
