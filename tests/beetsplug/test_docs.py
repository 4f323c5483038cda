"""docs/configuration.md shows exactly the plugin's defaults (``settings.DEFAULTS``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from beetsplug.mcbr.settings import DEFAULTS

CONFIGURATION = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

_YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def default_block(text: str) -> dict[str, Any]:
    """The ``mcbr:`` mapping of the YAML block under the "Default configuration" heading."""
    section = text.split("## Default configuration", 1)[1].split("\n## ", 1)[0]
    blocks = [yaml.safe_load(b) for b in _YAML_BLOCK.findall(section)]
    full = [b for b in blocks if isinstance(b, dict) and set(b) == {"mcbr"}]
    assert len(full) == 1, "expected one YAML block of the whole mcbr: section under 'Default configuration'"
    return full[0]["mcbr"]


def missing_entries(text: str) -> list[str]:
    """Keys of ``DEFAULTS`` without their own ``- **key**`` entry (sub-keys of index and similar included)."""
    missing = [k for k in DEFAULTS if not re.search(rf"^- \*\*{re.escape(k)}\*\*", text, re.MULTILINE)]
    for section in ("index", "similar"):
        missing += [
            f"{section}.{k}"
            for k in DEFAULTS[section]
            if not re.search(rf"^\s+- (\*\*\w+\*\*, )*\*\*{re.escape(k)}\*\*", text, re.MULTILINE)
        ]
    return missing


def _bullet_bodies(text: str, indent: int) -> dict[str, str]:
    """``key`` -> the first paragraph of each ``- **key**`` entry at ``indent`` (without sub-entries)."""
    lines = text.splitlines()
    head = re.compile(rf"^ {{{indent}}}- \*\*(\w+)\*\*")
    bodies: dict[str, str] = {}
    for n, line in enumerate(lines):
        m = head.match(line)
        if not m:
            continue
        body = [line]
        for nxt in lines[n + 1 :]:
            if not nxt.strip() or nxt.lstrip().startswith("- ") or len(nxt) - len(nxt.lstrip()) != indent + 2:
                break
            body.append(nxt)
        bodies.setdefault(m.group(1), " ".join(x.strip() for x in body))
    return bodies


def _leaves(mapping: dict[str, Any], name: str) -> list[Any]:
    """Every default value of a key called ``name``, at any depth."""
    out = []
    for k, v in mapping.items():
        if k == name and not isinstance(v, dict):
            out.append(v)
        if isinstance(v, dict):
            out += _leaves(v, name)
    return out


def wrong_stated_defaults(text: str) -> list[str]:
    """The ``Default: `VALUE``` of each entry, and each "default `key: value`" in the prose, that differ from DEFAULTS."""
    wrong = []
    stated: list[tuple[str, Any, str]] = []
    for key, body in _bullet_bodies(text, 0).items():
        if key in DEFAULTS:
            stated.append((key, DEFAULTS[key], body))
    for section in ("index", "similar"):
        for key, body in _bullet_bodies(text, 2).items():
            if key in DEFAULTS[section]:
                stated.append((f"{section}.{key}", DEFAULTS[section][key], body))
    for where, default, body in stated:
        m = re.search(r"Defaults?: ((?:`[^`]*`(?:,? (?:and )?)?)+)", body)
        if m is None:
            continue
        values = [yaml.safe_load(v) for v in re.findall(r"`([^`]*)`", m.group(1))]
        if isinstance(default, dict):
            for v in values:
                if not isinstance(v, dict) or any(default.get(k) != x for k, x in v.items()):
                    wrong.append(f"{where}: says Default {v!r}, DEFAULTS {default!r}")
        elif values != [default]:
            wrong.append(f"{where}: says Default {values!r}, DEFAULTS {default!r}")
    for m in re.finditer(r"\bdefaults?,?\s+`(\w+): ([^`]+)`", text, re.IGNORECASE):
        key, value = m.group(1), yaml.safe_load(m.group(2))
        leaves = _leaves(DEFAULTS, key)
        if leaves and value not in leaves:
            wrong.append(f"prose says the default {key}: {value!r}; DEFAULTS has {leaves!r}")
    return wrong


def _differences(doc: Any, code: Any, where: str = "mcbr") -> list[str]:
    if isinstance(code, dict) and isinstance(doc, dict):
        out = [f"{where}.{k}: missing from the docs" for k in code if k not in doc]
        out += [f"{where}.{k}: not in DEFAULTS" for k in doc if k not in code]
        for k in code.keys() & doc.keys():
            out += _differences(doc[k], code[k], f"{where}.{k}")
        return out
    if doc != code or type(doc) is not type(code):
        return [f"{where}: docs {doc!r}, DEFAULTS {code!r}"]
    return []


def test_configuration_doc_shows_exactly_the_defaults() -> None:
    text = CONFIGURATION.read_text(encoding="utf-8")
    doc = default_block(text)
    assert _differences(doc, DEFAULTS) == []
    assert doc == DEFAULTS


def test_configuration_doc_has_an_entry_per_key() -> None:
    assert missing_entries(CONFIGURATION.read_text(encoding="utf-8")) == []


def test_configuration_doc_states_the_defaults_the_code_has() -> None:
    assert wrong_stated_defaults(CONFIGURATION.read_text(encoding="utf-8")) == []
