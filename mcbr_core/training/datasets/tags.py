"""All our labelled music as one dataset for the shipped tag heads (``mcbr-tags``).

4Q, Emotify, the MIREX-like set and GTZAN label different things with different
words. This module maps them onto the vocabularies the plugin writes, and
:func:`load_tags` joins them into one :class:`~mcbr_core.training.datasets.base.Dataset`
(clip ids ``<dataset>:<id>``; artists written "Last, First" are turned round so that
one artist groups across datasets, and artist-disjoint folds stay disjoint).

Layout: ``ROOT/4q``, ``ROOT/emotify``, ``ROOT/mirex``, ``ROOT/gtzan`` in their own
layouts (a missing one is skipped).

Tasks:

``genres``
    multi-label over :data:`GENRES` (beets' lastgenre tree names, see
    :data:`ALLMUSIC_GENRES`): 4Q's AllMusic genres, Emotify's genre, GTZAN's genre.
    AllMusic files pop and rock under one family, Pop/Rock; a 4Q clip of it is
    labelled ``pop``, ``rock`` or both by ``poprock`` (clip id -> labels; e.g. from
    the taggers' pop and rock scores, see ``bench/tag_sources.py``), else both.
``moods``
    multi-label over :data:`MOODS`: 4Q's AllMusic moods and the MIREX-like set's mood
    word, mapped by :data:`MOOD_WORDS`, and Emotify's GEMS emotions (those at least 30 %
    of a clip's listeners ticked), mapped by :data:`GEMS_MOODS` (``emotify_moods``).
``arousal``, ``valence``
    from 4Q's quadrants, single-label: arousal ``high`` (Q1, Q2) or ``low`` (Q3, Q4);
    valence ``positive`` (Q1, Q4) or ``negative`` (Q2, Q3). A head's probability of
    ``high`` / ``positive`` is ``mcbr_arousal`` / ``mcbr_valence`` in [0, 1].
``quadrant``
    4Q's quadrant ``Q1``..``Q4``, single-label.
``cluster``
    the MIREX cluster ``C1``..``C5``, single-label.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from mcbr_core.training.datasets.base import Clip, Dataset, DatasetError, TaskSpec, finalize

#: AllMusic's 21 genre families -> genre labels (names of beets' lastgenre tree where it has one).
ALLMUSIC_GENRES: dict[str, tuple[str, ...]] = {
    "Pop/Rock": ("pop", "rock"),  # split per clip, see ``poprock``
    "Jazz": ("jazz",),
    "Electronic": ("electronic",),
    "International": ("world music",),
    "R&B": ("r&b",),
    "Vocal": ("vocal",),
    "Blues": ("blues",),
    "Country": ("country",),
    "Rap": ("hip hop",),
    "Latin": ("latin",),
    "Folk": ("folk",),
    "Reggae": ("reggae",),
    "Stage & Screen": ("soundtrack",),
    "Easy Listening": ("easy listening",),
    "Avant-Garde": ("avant-garde",),
    "New Age": ("new age",),
    "Holiday": ("christmas music",),
    "Religious": ("gospel",),
    "Comedy/Spoken": ("comedy",),
    "Children's": ("kids music",),
    "Classical": ("classical",),
}
#: Each genre label's place in beets' lastgenre data: (tree node, whitelist name); ``None`` where it has none.
GENRE_TREE: dict[str, tuple[str | None, str | None]] = {
    "pop": ("pop", "pop"), "rock": ("rock", "rock"), "jazz": ("jazz", "jazz"),
    "electronic": ("electronic", "electronic"), "world music": ("world music", "world music"),
    "r&b": ("r&b", "r&b"), "vocal": (None, "vocal"), "blues": ("blues", "blues"),
    "country": ("country", "country"), "hip hop": ("hip hop", "hip hop"),
    "latin": ("caribbean and latin american", "latin american"), "folk": ("folk", "folk music"),
    "reggae": ("reggae", "reggae"), "soundtrack": ("soundtrack", "film score"),
    "easy listening": ("easy listening", "easy listening"), "avant-garde": ("avant-garde", "avant-garde"),
    "new age": ("new-age music", "new age music"), "christmas music": (None, "christmas music"),
    "gospel": (None, "gospel music"), "comedy": ("comedy", "comedy"), "kids music": ("kids music", "children's music"),
    "classical": ("classical", "classical"),
}  # fmt: skip
GENRES: tuple[str, ...] = tuple(sorted({g for gs in ALLMUSIC_GENRES.values() for g in gs}))
#: Emotify's and GTZAN's genre names -> genre labels.
OTHER_GENRES: dict[str, str] = {"classical": "classical", "electronic": "electronic", "pop": "pop", "rock": "rock",
                                "country": "country"}  # fmt: skip

#: The mood vocabulary the plugin writes (AllMusic-style words users know).
MOODS: tuple[str, ...] = (
    "aggressive", "calm", "cheerful", "dark", "energetic", "happy", "melancholic", "party", "romantic", "sad",
    "tense", "uplifting",
)  # fmt: skip
#: AllMusic mood words (4Q's and the MIREX-like set's) -> mood labels. Unlisted words carry no mood label.
MOOD_WORDS: dict[str, tuple[str, ...]] = {
    # aggressive
    "Aggressive": ("aggressive",), "Angry": ("aggressive",), "Hostile": ("aggressive",), "Harsh": ("aggressive",),
    "Fierce": ("aggressive",), "Belligerent": ("aggressive",), "Confrontational": ("aggressive",),
    "Outraged": ("aggressive",), "Thuggish": ("aggressive",), "Brash": ("aggressive",),
    "Visceral": ("aggressive",), "Fiery": ("aggressive", "energetic"), "Rebellious": ("aggressive",),
    "Uncompromising": ("aggressive",),
    # energetic
    "Energetic": ("energetic",), "Exciting": ("energetic",), "Lively": ("energetic",),
    "Rousing": ("energetic", "uplifting"), "Exuberant": ("energetic", "party"), "Explosive": ("energetic",),
    "Intense": ("energetic",), "Pulsing": ("energetic",), "Manic": ("energetic", "tense"),
    "Rambunctious": ("energetic",), "Thrilling": ("energetic",), "Powerful": ("energetic",),
    "Gutsy": ("energetic",), "Reckless": ("energetic",), "Freewheeling": ("energetic",),
    "Boisterous": ("energetic", "party"), "Rowdy": ("energetic", "party"), "Raucous": ("energetic", "party"),
    # happy
    "Happy": ("happy",), "Joyous": ("happy",), "Gleeful": ("happy",), "Euphoric": ("happy",),
    "Positive": ("happy",), "Optimistic": ("happy", "uplifting"), "Bright": ("happy",), "Carefree": ("happy",),
    "Summery": ("happy",), "Springlike": ("happy",), "Effervescent": ("happy",), "Giddy": ("happy",),
    "Sparkling": ("happy",),
    # cheerful
    "Cheerful": ("cheerful", "happy"), "Fun": ("cheerful", "party"), "Playful": ("cheerful",),
    "Humorous": ("cheerful",), "Silly": ("cheerful",), "Whimsical": ("cheerful",), "Light": ("cheerful",),
    "Amiable/Good-Natured": ("cheerful",), "Amiable-good natured": ("cheerful",), "Agreeable": ("cheerful",),
    "Sweet": ("cheerful",), "Innocent": ("cheerful",), "Campy": ("cheerful",), "Quirky": ("cheerful",),
    "Witty": ("cheerful",), "Rollicking": ("cheerful", "party"), "Naive": ("cheerful",), "Sugary": ("cheerful",),
    # romantic
    "Romantic": ("romantic",), "Sensual": ("romantic",), "Sexy": ("romantic",), "Sexual": ("romantic",),
    "Erotic": ("romantic",), "Intimate": ("romantic",), "Passionate": ("romantic",), "Tender": ("romantic",),
    "Sentimental": ("romantic",), "Warm": ("romantic",),
    # calm
    "Calm/Peaceful": ("calm",), "Soothing": ("calm",), "Relaxed": ("calm",), "Gentle": ("calm",),
    "Soft/Quiet": ("calm",), "Laid-Back/Mellow": ("calm",), "Lazy": ("calm",), "Delicate": ("calm",),
    "Dreamy": ("calm",), "Ethereal": ("calm",), "Meditative": ("calm",), "Pastoral": ("calm",),
    "Smooth": ("calm",), "Flowing": ("calm",), "Pure": ("calm",),
    # melancholic
    "Melancholy": ("melancholic",), "Wistful": ("melancholic",), "Bittersweet": ("melancholic",),
    "Nostalgic": ("melancholic",), "Poignant": ("melancholic",), "Autumnal": ("melancholic",),
    "Reflective": ("melancholic",), "Yearning": ("melancholic",), "Lonely": ("melancholic", "sad"),
    "Plaintive": ("melancholic", "sad"), "Regretful": ("melancholic",), "Wintry": ("melancholic",),
    # sad
    "Sad": ("sad",), "Gloomy": ("sad",), "Bleak": ("sad", "dark"), "Somber": ("sad",),
    "Anguished/Distraught": ("sad",), "Weary": ("sad",), "Tragic": ("sad",),
    # dark
    "Ominous": ("dark",), "Menacing": ("dark",), "Eerie": ("dark",), "Malevolent": ("dark",),
    "Brooding": ("dark", "melancholic"), "Nocturnal": ("dark",), "Spooky": ("dark",), "Nihilistic": ("dark",),
    "Cold": ("dark",), "Threatening": ("dark",),
    # tense
    "Tense/Anxious": ("tense",), "Tense - Anxious": ("tense",), "Nervous/Jittery": ("tense",),
    "Paranoid": ("tense",), "Unsettling": ("tense",), "Angst-Ridden": ("tense",), "Urgent": ("tense",),
    "Volatile": ("tense", "aggressive"), "Suffocating": ("tense",),
    # uplifting
    "Uplifting": ("uplifting",), "Triumphant": ("uplifting",), "Confident": ("uplifting",),
    "Spiritual": ("uplifting",), "Reverent": ("uplifting",), "Epic": ("uplifting",), "Majestic": ("uplifting",),
    "Stately": ("uplifting",), "Earnest": ("uplifting",), "Cathartic": ("uplifting",),
    # party
    "Celebratory": ("party",), "Party/Celebratory": ("party",), "Hedonistic": ("party",), "Swinging": ("party",),
}  # fmt: skip

#: Emotify's GEMS emotions -> mood labels (amazement and solemnity name none of ours).
GEMS_MOODS: dict[str, tuple[str, ...]] = {
    "tenderness": ("romantic",), "nostalgia": ("melancholic",), "calmness": ("calm",), "power": ("energetic",),
    "joyful activation": ("happy",), "tension": ("tense",), "sadness": ("sad",),
}  # fmt: skip

LICENCE = (
    "4Q (research only, Panda et al. 2018); Emotify (Magnatune CC BY-NC-SA, annotations for research); "
    "MIREX-like mood set (research only, Panda et al. 2013); GTZAN (research only, Tzanetakis & Cook 2002)"
)
PARTS: dict[str, dict[str, object]] = {"4q": {}, "emotify": {}, "mirex": {}, "gtzan": {"filtered": False}}
_LAST_FIRST = re.compile(r"^\s*([^,]+),\s*([^,]+?)\s*$")


def artist_name(artist: str | None) -> str | None:
    """``"Brown, Ruth"`` -> ``"Ruth Brown"``; other spellings unchanged."""
    if not artist:
        return None
    m = _LAST_FIRST.match(artist)
    return f"{m.group(2)} {m.group(1)}" if m else artist


def genre_labels(allmusic: tuple[str, ...], poprock: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """AllMusic genre families -> genre labels (``poprock``: what Pop/Rock becomes, default both)."""
    out: dict[str, None] = {}
    for family in allmusic:
        labels = ALLMUSIC_GENRES.get(family, ())
        if family == "Pop/Rock" and poprock is not None:
            labels = poprock
        out.update(dict.fromkeys(labels))
    return tuple(out)


def mood_labels(words: tuple[str, ...], table: Mapping[str, tuple[str, ...]] = MOOD_WORDS) -> tuple[str, ...]:
    """Mood words (AllMusic's, or with ``table=GEMS_MOODS`` Emotify's emotions) -> mood labels (unknown: none)."""
    out: dict[str, None] = {}
    for w in words:
        out.update(dict.fromkeys(table.get(w, ())))
    return tuple(out)


def affect(quadrant: str) -> dict[str, tuple[str, ...]]:
    """A quadrant's arousal and valence labels (Russell's circumplex, as 4Q defines its quadrants)."""
    return {"arousal": ("high" if quadrant in ("Q1", "Q2") else "low",),
            "valence": ("positive" if quadrant in ("Q1", "Q4") else "negative",)}  # fmt: skip


def combine(parts: Mapping[str, Dataset], *, poprock: Mapping[str, tuple[str, ...]] | None = None,
            root: Path | None = None, emotify_moods: bool = True) -> Dataset:  # fmt: skip
    """Join loaded datasets (``{"4q": ds, "emotify": ds, "mirex": ds, "gtzan": ds}``; any subset).

    Parameters
    ----------
    parts
        Loaded datasets by kind.
    poprock
        4Q clip id (without prefix) -> the labels its Pop/Rock family becomes.
    root
        Recorded as the dataset's root.
    emotify_moods
        Give Emotify's clips ``moods`` from their GEMS emotions (:data:`GEMS_MOODS`).

    Raises
    ------
    DatasetError
        If ``parts`` holds an unknown kind or nothing.
    """
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise DatasetError(f"mcbr-tags: unknown parts {sorted(unknown)} (known: {', '.join(PARTS)})")
    poprock = poprock or {}
    clips: list[Clip] = []
    skipped: list[tuple[str, str]] = []
    for kind, ds in parts.items():
        skipped += [(f"{kind}:{cid}", why) for cid, why in ds.skipped]
        for c in ds.clips:
            labels: dict[str, tuple[str, ...]] = {}
            if kind == "4q":
                labels["genres"] = genre_labels(c.labels.get("genres", ()), poprock.get(c.id))
                labels["moods"] = mood_labels(c.labels.get("moods", ()))
                labels.update(affect(c.labels["quadrant"][0]))
                labels["quadrant"] = c.labels["quadrant"]
            elif kind in ("emotify", "gtzan"):
                labels["genres"] = tuple(
                    OTHER_GENRES[g] for g in c.labels.get("genre", ()) if g in OTHER_GENRES
                )
                if kind == "emotify" and emotify_moods:
                    labels["moods"] = mood_labels(c.labels.get("moods", ()), GEMS_MOODS)
            elif kind == "mirex":
                labels["moods"] = mood_labels(c.labels.get("mood", ()))
                labels["cluster"] = c.labels["cluster"]
            labels = {k: v for k, v in labels.items() if v}
            extra = {**c.extra, "dataset": kind, "source_labels": dict(c.labels)}
            clips.append(replace(c, id=f"{kind}:{c.id}", artist=artist_name(c.artist), labels=labels, extra=extra,
                                 fold=None, split=None))  # fmt: skip
    if not clips:
        raise DatasetError("mcbr-tags: no clips")
    ds = finalize(
        "mcbr-tags",
        Path(root) if root is not None else Path("."),
        clips,
        {
            "genres": TaskSpec(True, "genre"),
            "moods": TaskSpec(True, "mood"),
            "arousal": TaskSpec(False, "other"),
            "valence": TaskSpec(False, "other"),
            "quadrant": TaskSpec(False, "other"),
            "cluster": TaskSpec(False, "other"),
        },
        licence=LICENCE,
        skipped=skipped,
        options={"parts": sorted(parts), "poprock": len(poprock)},
    )
    return ds


def read_poprock(path: Path) -> dict[str, tuple[str, ...]]:
    """A ``song,labels`` CSV (labels ``pop``, ``rock`` or ``pop|rock``) -> clip id -> labels.

    Raises
    ------
    DatasetError
        If the file is missing or names another label.
    """
    from mcbr_core.training.datasets.base import read_csv, split_multi

    out = {}
    for row in read_csv(Path(path)):
        labels = split_multi(row.get("labels", ""))
        if not labels or set(labels) - {"pop", "rock"}:
            raise DatasetError(
                f"{path}: song {row.get('song')!r} has labels {labels}, expected pop and/or rock"
            )
        out[row["song"]] = labels
    return out


def load_tags(root: Path, *, poprock: str | Path | None = None, emotify_moods: bool = True) -> Dataset:
    """Load every part found under ``root`` and combine them (see the module docstring).

    Parameters
    ----------
    root
        The folder holding ``4q/``, ``emotify/``, ``mirex/``, ``gtzan/``.
    poprock
        Optional CSV (``song,labels``) of what each 4Q Pop/Rock clip is; default both.
    emotify_moods
        Emotify's GEMS emotions become ``moods`` labels (``-O emotify_moods=no``: not).

    Raises
    ------
    DatasetError
        If none of the parts is there.
    """
    from mcbr_core.training.datasets.builtin import load_dataset

    root = Path(root)
    parts = {
        kind: load_dataset(kind, root / kind, **opts)
        for kind, opts in PARTS.items()
        if (root / kind).is_dir()
    }
    if not parts:
        raise DatasetError(f"mcbr-tags: none of {', '.join(PARTS)} under {root}")
    ds = combine(parts, poprock=read_poprock(Path(poprock)) if poprock else None, root=root,
                 emotify_moods=emotify_moods)  # fmt: skip
    # what reloads it (recorded in run folders)
    ds.options = {
        **({"poprock": str(poprock)} if poprock else {}),
        **({} if emotify_moods else {"emotify_moods": False}),
    }
    return ds
