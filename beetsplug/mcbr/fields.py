"""The MOOD media field and the types of the plugin's flexible attributes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mediafile
from beets.dbcore import types

from mcbr_core.tagging import decode_own, split_list, user_values

if TYPE_CHECKING:
    from beets.library import Item

#: The beets field holding the predicted (or user's) moods, written as MOOD.
MOOD_FIELD = "mood"

#: The core's tag kinds -> the beets fields that hold them.
KIND_FIELDS = {"genre": "genres", "mood": MOOD_FIELD}

#: Tag field -> flexible attribute recording the values the plugin itself put there.
OWN = {"genres": "mcbr_genres", MOOD_FIELD: "mcbr_moods"}


def mood_of(item: Item) -> str:
    """An item's moods as one string, ``""`` without any (the ``$mood`` template field)."""
    return str(item._values_flex.get(MOOD_FIELD) or "")


def field_values(item: Item, field: str, separator: str) -> list[str]:
    """The values of a genre or mood field (``genres`` is a list; ``mood`` a joined string)."""
    value = item.get(field)
    if not value:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return split_list(str(value), separator)


def own_values(item: Item, field: str) -> list[str] | None:
    """What the plugin wrote into ``field`` (``None``: never wrote it)."""
    return decode_own(item.get(OWN[field]))


def users_values(item: Item, field: str, separator: str) -> list[str]:
    """The values of ``field`` that the user set, not the plugin (``tagging.user_values``)."""
    return user_values(field_values(item, field, separator), own_values(item, field))


def mood_media_field() -> mediafile.MediaField:
    """A MOOD tag in every format beets writes.

    MP3 gets both ``TMOO`` (an ID3v2.4 frame, dropped when saving v2.3) and
    ``TXXX:MOOD`` (kept in both versions); Vorbis comments (FLAC, Ogg, Opus) get
    ``MOOD``; MP4 ``----:com.apple.iTunes:MOOD``; ASF ``WM/Mood``.
    """
    return mediafile.MediaField(
        mediafile.MP3StorageStyle("TMOO"),
        mediafile.MP3DescStorageStyle("MOOD"),
        mediafile.MP4StorageStyle("----:com.apple.iTunes:MOOD"),
        mediafile.StorageStyle("MOOD"),
        mediafile.ASFStorageStyle("WM/Mood"),
    )


class Score(types.Float):
    """A probability shown with three decimals."""

    def __init__(self) -> None:
        super().__init__(digits=3)


#: Flexible attributes that exist whatever the model.
BASE_TYPES: dict[str, types.Type] = {
    "mcbr_model": types.STRING,
    "mcbr_heads": types.STRING,
    "mcbr_mtime": types.FLOAT,
    "mcbr_analyzed": types.DATE,
    "mcbr_status": types.STRING,
    "mcbr_error": types.STRING,
    "mcbr_distance": Score(),
}


def score_types(field_names: list[str]) -> dict[str, types.Type]:
    """Types of the per-label score attributes (``mcbr_genre_rock``, ``mcbr_mood_sad``)."""
    return {name: Score() for name in field_names}
