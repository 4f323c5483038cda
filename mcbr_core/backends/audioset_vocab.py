"""What each AudioSet class means to a music library: genre, mood or other.

The 527 AudioSet classes (Gemmeke et al. 2017; ontology CC BY 4.0, Google) are mostly
sounds and instruments. The genres here are the ontology's *Music genre* branch,
without *Beatboxing* (a vocal technique filed under Hip hop), plus four *Music role*
classes that name what a track is filed under (*Soundtrack music*, *Video game music*,
*Christmas music*, *Dance music*); the other roles (*Song*, *Background music*,
*Theme music*, *Jingle*, *Lullaby*, *Wedding music*) are "other". The moods are the
ontology's *Music mood* branch.

The labels themselves travel in the model card (``models/as-mn04.json``), in output
order, as ``tools/convert_efficientat.py`` read them from ``class_labels_indices.csv``.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["GENRES", "MOODS", "kinds"]

GENRES: frozenset[str] = frozenset({
    "Pop music", "Hip hop music", "Rock music", "Heavy metal", "Punk rock", "Grunge",
    "Progressive rock", "Rock and roll", "Psychedelic rock", "Rhythm and blues", "Soul music",
    "Reggae", "Country", "Swing music", "Bluegrass", "Funk", "Folk music", "Middle Eastern music",
    "Jazz", "Disco", "Classical music", "Opera", "Electronic music", "House music", "Techno",
    "Dubstep", "Drum and bass", "Electronica", "Electronic dance music", "Ambient music",
    "Trance music", "Music of Latin America", "Salsa music", "Flamenco", "Blues",
    "Music for children", "New-age music", "Vocal music", "A capella", "Music of Africa",
    "Afrobeat", "Christian music", "Gospel music", "Music of Asia", "Carnatic music",
    "Music of Bollywood", "Ska", "Traditional music", "Independent music",
    "Soundtrack music", "Video game music", "Christmas music", "Dance music",
})  # fmt: skip

MOODS: frozenset[str] = frozenset({
    "Happy music", "Funny music", "Sad music", "Tender music", "Exciting music", "Angry music",
    "Scary music",
})  # fmt: skip


def kinds(labels: Sequence[str]) -> dict[str, str]:
    """Map each AudioSet label to ``"genre"``, ``"mood"`` or ``"other"``.

    Parameters
    ----------
    labels
        The display names, in output order.

    Returns
    -------
    dict[str, str]
        Label to kind, in label order.

    Raises
    ------
    ValueError
        If a genre or mood name is missing from ``labels`` (a different label list).
    """
    missing = sorted((GENRES | MOODS) - set(labels))
    if missing:
        raise ValueError(f"not the AudioSet label list: {', '.join(missing[:5])} missing")
    return {lab: "genre" if lab in GENRES else "mood" if lab in MOODS else "other" for lab in labels}
