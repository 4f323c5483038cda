"""What each musicnn tag means: genre, mood or other, and its canonical name.

The kinds follow ``shared/reference/musicnn.md`` section 8 for MSD, with the
borderline calls made for a music library: *chillout* and *easy listening* are
moods here (they describe how a track feels more than where it is filed), *party*
and *catchy* are moods of use, eras and instrumentation are "other". The MTT
vocabulary is classified the same way. ``docs/tags.md`` is generated from this
module (``python -m mcbr_core.backends.musicnn_vocab``).

The names written into files come from ``mcbr_core.tagging.canonical``.
"""

from __future__ import annotations

from mcbr_core.tagging import canonical

MSD_LABELS: tuple[str, ...] = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock",
    "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill", "instrumental",
    "punk", "oldies", "blues", "hard rock", "ambient", "acoustic", "experimental", "female vocalist",
    "guitar", "Hip-Hop", "70s", "party", "country", "easy listening", "sexy", "catchy", "funk",
    "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop", "sad", "House", "happy",
)  # fmt: skip

MTT_LABELS: tuple[str, ...] = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
    "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male",
    "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman",
    "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice",
    "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello", "no voice", "weird",
    "country", "metal", "female voice", "choral",
)  # fmt: skip

_MSD_GENRES = {
    "alternative", "alternative rock", "ambient", "blues", "classic rock", "country", "dance",
    "electro", "electronic", "electronica", "experimental", "folk", "funk", "hard rock",
    "heavy metal", "Hip-Hop", "House", "indie", "indie pop", "indie rock", "jazz", "metal", "pop",
    "Progressive rock", "punk", "rnb", "rock", "soul",
}  # fmt: skip
_MSD_MOODS = {
    "beautiful", "catchy", "chill", "chillout", "easy listening", "happy", "Mellow", "party",
    "sad", "sexy",
}  # fmt: skip
_MTT_GENRES = {
    "classical", "techno", "electronic", "rock", "ambient", "indian", "opera", "pop", "new age",
    "dance", "country", "metal",
}  # fmt: skip
_MTT_MOODS = {"slow", "fast", "loud", "quiet", "soft", "weird"}


def kinds(labels: tuple[str, ...]) -> dict[str, str]:
    """Map each label of a musicnn head to ``"genre"``, ``"mood"`` or ``"other"``.

    Parameters
    ----------
    labels
        ``MSD_LABELS`` or ``MTT_LABELS``.

    Returns
    -------
    dict[str, str]
        Label to kind, in label order.
    """
    genres, moods = (_MSD_GENRES, _MSD_MOODS) if labels == MSD_LABELS else (_MTT_GENRES, _MTT_MOODS)
    return {lab: "genre" if lab in genres else "mood" if lab in moods else "other" for lab in labels}


def markdown_table() -> str:
    """Render the tag table of ``docs/tags.md``."""
    lines = []
    for title, labels in (("MSD (`msd-musicnn`)", MSD_LABELS), ("MTT (`mtt-musicnn`)", MTT_LABELS)):
        lines += [f"## {title}", "", "| index | tag | kind | written as |", "|---:|---|---|---|"]
        for i, (lab, kind) in enumerate(kinds(labels).items()):
            lines.append(f"| {i} | {lab} | {kind} | {canonical(lab) if kind != 'other' else '-'} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
