"""Genre names as beets' lastgenre resolves them: aliases, the genre tree, a whitelist, a count.

The model's genre labels are treated like lastgenre treats Last.fm tags, so a
beets user's ``canonical``, ``whitelist``, ``prefer_specific``, ``aliases`` and
``count`` habits carry over unchanged:

1. variant spellings are normalised by alias patterns (``hip-hop`` -> ``hip hop``);
2. with a tree (``canonical``), each label brings its ancestors (its parents that
   pass the whitelist; without a whitelist, only its oldest ancestor), until
   ``count`` names are found (unless ``prefer_specific``);
3. duplicates go, ``prefer_specific`` sorts the most specific first;
4. the whitelist filters; at most ``count`` names are kept.

The tree and the lists ship inside beets (``beetsplug/lastgenre``); the plugin
reads them and hands them over as plain data, so this module needs no beets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def flatten_tree(tree: Any) -> tuple[tuple[str, ...], ...]:
    """Root-to-leaf paths of a nested list/mapping genre tree (lastgenre's ``genres-tree.yaml``).

    Returns
    -------
    tuple[tuple[str, ...], ...]
        One lower-case path per leaf, e.g. ``("rock", "heavy metal", "death metal")``.
    """
    branches: list[tuple[str, ...]] = []

    def walk(elem: Any, path: tuple[str, ...]) -> None:
        if isinstance(elem, Mapping):
            for key, sub in elem.items():
                walk(sub, (*path, str(key).lower()))
        elif isinstance(elem, list):
            for sub in elem:
                walk(sub, path)
        elif elem is None:  # a key without children
            branches.append(path)
        else:
            branches.append((*path, str(elem).lower()))

    walk(tree, ())
    return tuple(b for b in branches if b)


def compile_aliases(aliases: Mapping[str, Sequence[str]]) -> tuple[tuple[re.Pattern[str], str], ...]:
    """lastgenre's alias table: canonical name (a ``re`` template) -> full-match patterns.

    Raises
    ------
    re.error
        For a pattern that is not a regular expression.
    """
    return tuple(
        (re.compile(pattern, re.IGNORECASE), str(name).lower())
        for name, patterns in aliases.items()
        for pattern in patterns
    )


@dataclass(frozen=True)
class GenreRules:
    """How genre labels become the names written (lastgenre's options).

    Attributes
    ----------
    branches
        The genre tree's root-to-leaf paths (lower case); empty: no tree.
    canonical
        Labels bring their parents from the tree (lastgenre's ``canonical``);
        without it the tree only ranks (``prefer_specific``).
    whitelist
        Allowed genres (lower case); empty: all.
    aliases
        ``(pattern, template)`` pairs that normalise spellings, first full match wins.
    prefer_specific
        Sort the most specific genres (deepest in the tree) first.
    """

    branches: tuple[tuple[str, ...], ...] = ()
    canonical: bool = True
    whitelist: frozenset[str] = frozenset()
    aliases: tuple[tuple[re.Pattern[str], str], ...] = ()
    prefer_specific: bool = False

    def normalise(self, label: str) -> str:
        """A label's canonical spelling (lower case) through the aliases."""
        text = " ".join(label.lower().split())
        for pattern, template in self.aliases:
            match = pattern.fullmatch(text)
            if match:
                return match.expand(template)
        return text

    def parents(self, genre: str) -> list[str]:
        """``genre`` and its ancestors in the tree, closest first (just ``genre`` if not in it)."""
        for branch in self.branches:
            if genre in branch:
                return list(reversed(branch[: branch.index(genre) + 1]))
        return [genre]

    def depth(self, genre: str) -> int | None:
        """Depth of ``genre`` in the tree (0 for a family), ``None`` if not in it."""
        for branch in self.branches:
            if genre in branch:
                return branch.index(genre)
        return None

    def tree_name(self, label: str) -> str | None:
        """A tagger label's name in the tree (``"House music"`` -> ``"house"``), ``None`` if not in it."""
        genre = self.normalise(label)
        if self.depth(genre) is None and genre.endswith(" music"):
            genre = genre.removesuffix(" music")
        return genre if self.depth(genre) is not None else None

    def family(self, genre: str) -> str:
        """The tree's root above ``genre`` (itself if not in the tree)."""
        return self.parents(genre)[-1]

    def allowed(self, genre: str) -> bool:
        """Whether the whitelist lets ``genre`` through."""
        return not self.whitelist or genre in self.whitelist

    def resolve(self, labels: Iterable[str], count: int) -> list[str]:
        """lastgenre's resolution of tags, best first, to at most ``count`` genres (lower case).

        Parameters
        ----------
        labels
            Genre labels, best first (already past the score threshold).
        count
            At most this many genres.
        """
        tags = [self.normalise(label) for label in labels]
        tags = [t for t in tags if t]
        if self.branches and self.canonical:
            found: list[str] = []
            for tag in tags:
                if self.whitelist:
                    found += [p for p in self.parents(tag) if self.allowed(p)]
                else:
                    found.append(self.parents(tag)[-1])
                if not self.prefer_specific and len(dict.fromkeys(found)) >= count:
                    break
            tags = found
        tags = list(dict.fromkeys(tags))
        if self.prefer_specific and self.branches:
            ranked = [(self.depth(t), t) for t in tags]
            tags = [t for d, t in sorted((r for r in ranked if r[0] is not None), key=lambda r: -r[0])]
        return [t for t in tags if self.allowed(t)][:count]
