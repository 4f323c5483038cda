"""The tags of Won et al.'s taggers: names, and what each one is (genre, mood or other).

MTG-Jamendo's top-50 labels are ``category---tag`` ids (``genre---hiphop``,
``instrument---piano``, ``mood/theme---happy``). The models' heads carry readable
names instead (``hip hop``, ``piano``, ``happy``): those are what a tagger writes
(through ``mcbr_core.tagging.canonical``); the ids stay in the model card
(``source.labels``). The Jamendo models output the ids in *sorted* order, not in the
order of ``TAGS`` in sota-music-tagging-models' ``src/eval.py`` (and of ``tags.json``
beside the shared weights): see :data:`JAMENDO_IDS`.

Kinds follow MTG-Jamendo's categories (genre -> genre, instrument -> other,
mood/theme -> mood) with the calls the musicnn MSD vocabulary makes for a music
library (``mcbr_core.backends.musicnn_vocab``): *chillout* and *easy listening*
are moods (how a track feels more than where it is filed), and so is
*atmospheric*; the theme *film* (music for films) is "other", not a mood.

The MSD models use the same 50 Last.fm tags as msd-musicnn, in the same order, and
the same kinds (``musicnn_vocab.MSD_LABELS`` and ``kinds``).
"""

from __future__ import annotations

from mcbr_core.backends.musicnn_vocab import MSD_LABELS
from mcbr_core.backends.musicnn_vocab import kinds as msd_kinds

__all__ = ["JAMENDO_IDS", "JAMENDO_LABELS", "MSD_LABELS", "jamendo_kinds", "msd_kinds"]

#: MTG-Jamendo top-50 ids in the order of ``TAGS`` in ``src/eval.py`` (and ``tags.json``)
_EVAL_TAGS: tuple[str, ...] = (
    "genre---downtempo", "genre---ambient", "genre---rock", "instrument---synthesizer",
    "genre---atmospheric", "genre---indie", "instrument---electricpiano", "genre---newage",
    "instrument---strings", "instrument---drums", "instrument---drummachine", "genre---techno",
    "instrument---guitar", "genre---alternative", "genre---easylistening", "genre---instrumentalpop",
    "genre---chillout", "genre---metal", "mood/theme---happy", "genre---lounge", "genre---reggae",
    "genre---popfolk", "genre---orchestral", "instrument---acousticguitar", "genre---poprock",
    "instrument---piano", "genre---trance", "genre---dance", "instrument---electricguitar",
    "genre---soundtrack", "genre---house", "genre---hiphop", "genre---classical",
    "mood/theme---energetic", "genre---electronic", "genre---world", "genre---experimental",
    "instrument---violin", "genre---folk", "mood/theme---emotional", "instrument---voice",
    "instrument---keyboard", "genre---pop", "instrument---bass", "instrument---computer",
    "mood/theme---film", "genre---triphop", "genre---jazz", "genre---funk", "mood/theme---relaxing",
)  # fmt: skip

#: The models' output order: sorted ids. Won's Jamendo loader and evaluation encode
#: the labels with ``LabelBinarizer().fit(TAGS)``, whose ``classes_`` are sorted, so
#: output ``i`` is ``sorted(TAGS)[i]``, not ``TAGS[i]`` (checked on real clips: in
#: ``TAGS`` order a metal track's top tags read "piano, happy, world").
JAMENDO_IDS: tuple[str, ...] = tuple(sorted(_EVAL_TAGS))

#: Jamendo's run-together tags, spelled as words
_SPELLING = {
    "newage": "new age", "hiphop": "hip hop", "triphop": "trip hop", "easylistening": "easy listening",
    "instrumentalpop": "instrumental pop", "popfolk": "pop folk", "poprock": "pop rock",
    "electricpiano": "electric piano", "drummachine": "drum machine",
    "acousticguitar": "acoustic guitar", "electricguitar": "electric guitar",
}  # fmt: skip


def _name(tag_id: str) -> str:
    tag = tag_id.split("---", 1)[1]
    return _SPELLING.get(tag, tag)


JAMENDO_LABELS: tuple[str, ...] = tuple(_name(t) for t in JAMENDO_IDS)

_MOOD_GENRES = {"chillout", "easy listening", "atmospheric"}  # filed as genres by Jamendo
_NOT_MOODS = {"film"}  # a theme (music for films)


def jamendo_kinds() -> dict[str, str]:
    """Each Jamendo label (readable name) to ``"genre"``, ``"mood"`` or ``"other"``, in output order."""
    out = {}
    for tag_id, label in zip(JAMENDO_IDS, JAMENDO_LABELS, strict=True):
        category = tag_id.split("---", 1)[0]
        if label in _MOOD_GENRES or (category == "mood/theme" and label not in _NOT_MOODS):
            out[label] = "mood"
        elif category == "genre":
            out[label] = "genre"
        else:
            out[label] = "other"
    return out
