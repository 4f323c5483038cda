"""From tag probabilities to the genre and mood names written into files."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mcbr_core.genres import GenreRules
from mcbr_core.settings import TagSettings

KINDS = ("genre", "mood")

#: Usual spellings of model labels; anything else is title-cased.
CANONICAL: dict[str, str] = {
    "rnb": "R&B",
    "r&b": "R&B",
    "hip-hop": "Hip Hop",
    "hip hop": "Hip Hop",
    "house": "House",
    "electro": "Electro",
    "new age": "New Age",
    "progressive rock": "Progressive Rock",
    "mellow": "Mellow",
}


def canonical(label: str) -> str:
    """The name written to files for a model label (``"rnb"`` -> ``"R&B"``)."""
    return spell(label)


def kind_of(head: str, label: str, kinds: Mapping[str, Mapping[str, str]]) -> str:
    """A model output's kind: a head named ``genre`` or ``mood`` is of that kind throughout;
    other heads' labels are as the card's ``tag_kinds`` says, ``other`` when it says nothing."""
    return head if head in KINDS else kinds.get(head, {}).get(label, "other")


@dataclass(frozen=True)
class Scored:
    """One label of one kind with its probability."""

    kind: str
    label: str
    score: float


def scored_labels(
    scores: Mapping[str, Mapping[str, float]], kinds: Mapping[str, Mapping[str, str]]
) -> list[Scored]:
    """Flatten per-head scores into kind-tagged labels.

    A head named ``genre`` or ``mood`` is of that kind throughout; other heads
    use the model's ``tag_kinds`` map, and unmapped labels count as ``other``.

    Parameters
    ----------
    scores
        Head -> label -> probability (clip level).
    kinds
        Head -> label -> kind, from the model card.
    """
    out = []
    for head, labels in scores.items():
        for label, score in labels.items():
            out.append(Scored(kind_of(head, label, kinds), label, float(score)))
    return out


def taggable_scores(
    scores: Mapping[str, Mapping[str, float]], kinds: Mapping[str, Mapping[str, str]]
) -> dict[str, dict[str, float]]:
    """The scores tagging can use (genre and mood labels; see ``scored_labels``), rounded to 1e-4.

    What a catalogue keeps of an analysis: mcbr-fusion's 577 tags are 20 kB of JSON
    a track, its genre and mood tags 2 kB. Tags of kind ``other`` are never written.
    """
    out: dict[str, dict[str, float]] = {}
    for head, labels in scores.items():
        kept = {
            label: round(float(p), 4) for label, p in labels.items() if kind_of(head, label, kinds) in KINDS
        }
        if kept:
            out[head] = kept
    return out


def slug(label: str) -> str:
    """Label as a beets field-name suffix: ``"Hip-Hop"`` -> ``"hip_hop"``, ``"R&B"`` -> ``"r_b"``."""
    return re.sub(r"[^0-9a-z]+", "_", label.lower()).strip("_") or "x"


def score_fields(scored: Sequence[Scored]) -> dict[str, float]:
    """Flexible attributes ``mcbr_<kind>_<slug>`` for genre and mood scores (rounded to 1e-4)."""
    return {f"mcbr_{s.kind}_{slug(s.label)}": round(s.score, 4) for s in scored if s.kind in KINDS}


_SMALL_WORDS = frozenset({"and", "of", "the", "n", "in", "a"})


def spell(name: str, *, title_case: bool = True) -> str:
    """The spelling written to files: usual spellings, else title case (small words kept lower)."""
    known = CANONICAL.get(name.lower())
    if known is not None or not title_case:
        return known or name
    words = name.split(" ")
    return " ".join(
        w if (i and w.lower() in _SMALL_WORDS) else "-".join(p[:1].upper() + p[1:] for p in w.split("-"))
        for i, w in enumerate(words)
    )


def choose(
    scored: Sequence[Scored],
    kind: str,
    settings: TagSettings,
    *,
    thresholds: Mapping[str, float] | None = None,
    specific: Sequence[Scored] = (),
    tree_names: Mapping[str, str] | None = None,
) -> list[str]:
    """Pick the names to write for one kind.

    The best label is always written (unless below the kind's ``floor``); the
    others need their threshold (the kind's ``threshold``, or with ``auto`` the
    label's own from ``thresholds``). Genres then go through lastgenre's rules
    (aliases, tree, whitelist, ``prefer_specific``, ``count``; see
    ``mcbr_core.genres``); should those leave nothing, the best label's family
    in the tree is written if the whitelist allows it. Sub-genres from
    ``specific`` follow the family they belong to (precede it with
    ``prefer_specific``).

    Parameters
    ----------
    scored
        All labels with scores.
    kind
        ``"genre"`` or ``"mood"``.
    settings
        Thresholds, counts, genre rules and spelling.
    thresholds
        Label -> threshold, from the clip head's card (used with ``threshold: auto``).
    specific
        Genre labels of a pretrained tagger (any tree depth): those at or above the
        kind's ``specific`` score that sit below a chosen family in the tree join it.
    tree_names
        Label -> its name in the tree where the two differ (a head card's
        ``genre_tree``: ``latin`` -> ``caribbean and latin american``), so that
        ``salsa`` joins ``latin``.

    Returns
    -------
    list[str]
        Names, best first, de-duplicated after spelling.
    """
    ks = getattr(settings, kind)
    if ks.count == 0:
        return []
    renames = {k.lower(): v for k, v in settings.renames.items()}
    ranked = sorted((s for s in scored if s.kind == kind), key=lambda s: -s.score)
    labels = []
    for i, s in enumerate(ranked):
        if s.score < ks.threshold_of(s.label, thresholds) and not (i == 0 and s.score >= ks.floor):
            continue
        label = renames.get(s.label.lower(), s.label)
        if label:
            labels.append(label)
    if kind == "genre":
        rules = settings.genres
        names = rules.resolve(labels, ks.count)
        if not names and labels:
            family = rules.family(rules.normalise(labels[0]))
            names = [family] if rules.allowed(family) else []
        if ks.specific is not None and specific:
            names = _with_subgenres(names, specific, ks.specific, rules, renames, tree_names or {})
    else:
        names = labels
    out: list[str] = []
    for name in names:
        written = spell(name, title_case=settings.title_case)
        if written.lower() not in {n.lower() for n in out}:
            out.append(written)
    return out[: ks.count]


def _with_subgenres(
    names: list[str],
    specific: Sequence[Scored],
    at: float,
    rules: GenreRules,
    renames: Mapping[str, str],
    tree_names: Mapping[str, str],
) -> list[str]:
    """``names`` (best first) with the confident genres below each in the tree placed beside it."""
    found: list[str] = []
    for s in sorted(specific, key=lambda s: -s.score):
        if s.score < at:
            break
        genre = rules.tree_name(renames.get(s.label.lower(), s.label) or "")
        if genre and rules.depth(genre) and rules.allowed(genre) and genre not in found:
            found.append(genre)
    out: list[str] = []
    for name in names:
        node = tree_names.get(name, name)  # the written name's node in the tree
        below = [g for g in found if node in rules.parents(g)[1:] and g not in names and g not in out]
        out += [*below, name] if rules.prefer_specific else [name, *below]
    return out


#: Separates the values in a record of what the plugin wrote (cannot clash with genre names).
OWN_SEP = "\u241f"


def decode_own(record: str | None) -> list[str] | None:
    """The values a record of the plugin's own writes holds (``None``: it never wrote the field)."""
    if record is None:
        return None
    return [v for v in record.split(OWN_SEP) if v]


def encode_own(values: Sequence[str]) -> str:
    """A record of the plugin's own values (see ``decode_own``)."""
    return OWN_SEP.join(values)


#: How formats without multi-valued tags join several values (ID3v2.3 TCON: "Classical/Electronic").
JOINERS = ("/", ";", ",")


def unjoin(existing: Sequence[str], ours: Sequence[str] | None) -> list[str]:
    """Values with the plugin's own joined values split again.

    A file that holds one value per tag (ID3v2.3) stores several genres joined,
    and reads back ``"Classical/Electronic"``: when every part is one of the
    plugin's own values, the joined value is those parts, not a user's value.
    """
    own = {o.lower() for o in ours or ()}
    out: list[str] = []
    for value in existing:
        for joiner in JOINERS:
            parts = [p.strip() for p in value.split(joiner)]
            if len(parts) > 1 and all(p and p.lower() in own for p in parts):
                out += parts
                break
        else:
            out.append(value)
    return out


def user_values(existing: Sequence[str], ours: Sequence[str] | None) -> list[str]:
    """The values of a field that the user set: everything the plugin did not write itself.

    This is the one ownership rule: tagging never clobbers these without ``force``,
    and training learns only from these.

    Parameters
    ----------
    existing
        What the field holds now.
    ours
        What the plugin wrote into it (``None`` if it never did).
    """
    own = {o.lower() for o in ours or ()}
    return [e for e in unjoin(existing, ours) if e and e.lower() not in own]


def merge(
    existing: Sequence[str],
    predicted: Sequence[str],
    *,
    ours: Sequence[str] | None,
    force: bool,
    keep_existing: bool,
) -> list[str]:
    """Decide the values of a genre or mood field, never clobbering a user's own.

    Parameters
    ----------
    existing
        What the item has now.
    predicted
        What the model proposes.
    ours
        What this plugin wrote last time (``None`` if never). Those values are the
        plugin's own and are refreshed freely; the others are the user's
        (``user_values``).
    force
        Replace (or extend) values the user set.
    keep_existing
        With ``force``: keep the user's values and add the predicted ones after them.

    Returns
    -------
    list[str]
        The new values (may equal ``existing``).
    """
    existing = [e for e in unjoin(existing, ours) if e]
    users = user_values(existing, ours)
    if not users:
        return list(predicted)
    if not force:
        return list(existing)
    if keep_existing:
        seen = {u.lower() for u in users}
        return users + [p for p in predicted if p.lower() not in seen]
    return list(predicted)


def split_list(value: str, separator: str) -> list[str]:
    """Split a single-string tag (e.g. MOOD ``"Happy; Calm"``) on ``separator``, trimming blanks.

    A separator of only spaces splits on whitespace runs.
    """
    sep = separator.strip()
    parts = value.split(sep) if sep else value.split()
    return [p.strip() for p in parts if p.strip()]


def score_field_names(
    heads: Mapping[str, Sequence[str]], kinds: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """Names of the score attributes a model produces (without running it)."""
    zero = {head: {label: 0.0 for label in labels} for head, labels in heads.items()}
    return sorted(score_fields(scored_labels(zero, kinds)))
