"""lastgenre's genre options (``whitelist``, ``canonical``, ``prefer_specific``, ``aliases``,
``renames``) read into the core's :class:`~mcbr_core.genres.GenreRules`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import confuse

from mcbr_core.errors import McbrError
from mcbr_core.genres import GenreRules

#: Broad genres the default whitelist always allows, in the tree's spelling where it has one
#: (lastgenre's genres.txt says "folk music", "gospel music", "latin american").
FAMILIES = frozenset({
    "rock", "pop", "heavy metal", "punk rock", "alternative rock", "indie rock", "electronic", "house", "techno",
    "trance", "drum and bass", "dubstep", "ambient", "hip hop", "r&b", "soul", "funk", "jazz", "blues", "country",
    "folk", "reggae", "latin", "classical", "soundtrack", "world music", "new age", "easy listening", "gospel",
})  # fmt: skip


def _lastgenre_file(name: str) -> Path:
    """A data file shipped with beets' lastgenre plugin (found without importing the plugin)."""
    import importlib.util

    spec = importlib.util.find_spec("beetsplug.lastgenre")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    raise McbrError(f"beets' lastgenre data file {name} is missing from the beets installation")


def _read_yaml(path: Path, key: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise McbrError(f"mcbr.{key}: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None


def _whitelist(view: confuse.ConfigView) -> frozenset[str]:
    """lastgenre's ``whitelist``: yes (its genres.txt), no (any), a file, or (ours) a list."""
    value = view.get()
    if value is False:
        return frozenset()
    if isinstance(value, list):
        return frozenset(str(v).strip().lower() for v in value)
    path = _lastgenre_file("genres.txt") if value in (True, "", None) else Path(view.as_filename())
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise McbrError(f"mcbr.whitelist: cannot read {path}: {exc.strerror}") from None
    return frozenset(ln.strip().lower() for ln in lines if ln.strip() and not ln.startswith("#"))


def _genre_rules(config: confuse.ConfigView) -> tuple[GenreRules, dict[str, str]]:
    """lastgenre's genre options -> the core's rules, and the user's label renames."""
    from mcbr_core.genres import compile_aliases, flatten_tree

    renames = {str(k): str(v or "") for k, v in (config["renames"].get() or {}).items()}
    canonical = config["canonical"].get()
    if isinstance(canonical, dict):  # before 0.2: canonical was the label renames
        renames = {**{str(k): str(v or "") for k, v in canonical.items()}, **renames}
        canonical = True
    branches: tuple[tuple[str, ...], ...] = ()
    if canonical is not False or config["prefer_specific"].get(bool):  # prefer_specific needs a tree
        tree = (
            _lastgenre_file("genres-tree.yaml")
            if canonical in (True, False, "", None)
            else Path(config["canonical"].as_filename())
        )
        branches = flatten_tree(_read_yaml(tree, "canonical"))
    aliases_value = config["aliases"].get()
    if aliases_value is False:
        aliases = {}
    elif isinstance(aliases_value, dict):
        aliases = aliases_value
    elif aliases_value in (True, "", None):
        aliases = _read_yaml(_lastgenre_file("aliases.yaml"), "aliases") or {}
    else:
        raise McbrError(
            f"mcbr.aliases: expected yes, no or a mapping of names to patterns, got {aliases_value!r}"
        )
    try:
        compiled = compile_aliases({str(k): [str(p) for p in v] for k, v in aliases.items()})
    except (re.error, TypeError) as exc:
        raise McbrError(f"mcbr.aliases: {exc}") from None
    whitelist = _whitelist(config["whitelist"])
    if config["whitelist"].get() in (True, "", None):  # lastgenre's list spells some families otherwise
        whitelist |= {genre for branch in branches for genre in branch} | FAMILIES
    rules = GenreRules(
        branches=branches,
        canonical=canonical is not False,  # with canonical: no, the tree only ranks (prefer_specific)
        whitelist=whitelist,
        aliases=compiled,
        prefer_specific=config["prefer_specific"].get(bool),
    )
    return rules, renames
