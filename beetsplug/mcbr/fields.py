"""The MOOD media field and the types of the plugin's flexible attributes."""

from __future__ import annotations

import mediafile
from beets.dbcore import types

#: The beets field holding the predicted (or user's) moods, written as MOOD.
MOOD_FIELD = "mood"


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
