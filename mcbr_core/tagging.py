"""From tag probabilities to the genre and mood names written into files."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mcbr_core.settings import TagSettings

KINDS = ("genre", "mood")

#: Usual spellings of model labels; anything else is title-cased.
CANONICAL: dict[str, str] = {
    "rnb": "R&B",
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
    return CANONICAL.get(label.lower(), label.title())


@dataclass(frozen=True)
class Scored:
    """One label of one kind with its probability."""

    kind: str
    label: str
    score: float


def scored_labels(scores: Mapping[str, Mapping[str, float]], kinds: Mapping[str, Mapping[str, str]]) -> list[Scored]:
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
            kind = head if head in KINDS else kinds.get(head, {}).get(label, "other")
            out.append(Scored(kind, label, float(score)))
    return out


def slug(label: str) -> str:
    """Label as a beets field-name suffix: ``"Hip-Hop"`` -> ``"hip_hop"``, ``"R&B"`` -> ``"r_b"``."""
    return re.sub(r"[^0-9a-z]+", "_", label.lower()).strip("_") or "x"


def score_fields(scored: Sequence[Scored]) -> dict[str, float]:
    """Flexible attributes ``mcbr_<kind>_<slug>`` for genre and mood scores (rounded to 1e-4)."""
    return {f"mcbr_{s.kind}_{slug(s.label)}": round(s.score, 4) for s in scored if s.kind in KINDS}


def choose(scored: Sequence[Scored], kind: str, settings: TagSettings) -> list[str]:
    """Pick the names to write for one kind.

    Parameters
    ----------
    scored
        All labels with scores.
    kind
        ``"genre"`` or ``"mood"``.
    settings
        Thresholds, counts, whitelist and spelling.

    Returns
    -------
    list[str]
        Names, best first, de-duplicated after spelling (``electronic`` and
        ``electronica`` may both map to one name).
    """
    ks = getattr(settings, kind)
    user_names = {k.lower(): v for k, v in settings.canonical.items()}
    whitelist = {w.lower() for w in settings.whitelist} if settings.whitelist is not None else None
    names: list[str] = []
    for s in sorted((s for s in scored if s.kind == kind), key=lambda s: -s.score):
        if len(names) >= ks.count or s.score < ks.threshold:
            break
        name = user_names.get(s.label.lower())
        if name is None:
            name = canonical(s.label) if settings.title_case else CANONICAL.get(s.label.lower(), s.label)
        if not name:
            continue
        if kind == "genre" and whitelist is not None and name.lower() not in whitelist:
            continue
        if name.lower() not in {n.lower() for n in names}:
            names.append(name)
    return names


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
    return [e for e in existing if e and e.lower() not in own]


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
    existing = [e for e in existing if e]
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


def score_field_names(heads: Mapping[str, Sequence[str]], kinds: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Names of the score attributes a model produces (without running it)."""
    zero = {head: {label: 0.0 for label in labels} for head, labels in heads.items()}
    return sorted(score_fields(scored_labels(zero, kinds)))
