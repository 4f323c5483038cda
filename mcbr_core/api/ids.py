"""Track ids as HTTP callers send them, and the same forms minted back for results.

Accepted forms (``parse_track_ref``):

``123``
    a beets item id;
``8f3471b5-7e6a-48da-86a9-c1c07a0f47ae``
    a MusicBrainz id: a track's ``mb_releasetrackid`` or its recording's ``mb_trackid``;
``sg-m-<base64url>``
    a BeetstreamNext song id minted from ``mb_releasetrackid`` (or ``mb_trackid``):
    unpadded URL-safe base64 of the id;
``sg-h-<hex>``
    a BeetstreamNext song id of a track without such an id: the first 16 hex digits
    of the SHA-1 of the file's path relative to beets' ``directory`` (see
    ``subsonic_path_hash``);
``sg-<n>``
    BeetstreamNext's legacy song id, ``sg-`` and the beets item id.

Results come back in the caller's *scheme* (``mint``): beets ids as text; recording or
release-track MusicBrainz ids where the result has one (else the other one, else its
beets id); BeetstreamNext ids exactly as BeetstreamNext mints them, whichever ``sg-``
form the caller sent, so that it resolves every result.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from mcbr_core.api import ApiError

#: Schemes of the ids a response is written in.
BEETS, RECORDING, RELEASE_TRACK, SUBSONIC = "beets", "recording", "releasetrack", "subsonic"
SCHEMES = (BEETS, RECORDING, RELEASE_TRACK, SUBSONIC)

#: BeetstreamNext's song id prefixes (``IDs._SNG_*_PREF`` in its ``core/library/ids.py``).
SUBSONIC_MBID, SUBSONIC_HASH, SUBSONIC_ID = "sg-m-", "sg-h-", "sg-"

MAX_ID_LENGTH = 200  # longer is no id of ours: refuse before decoding anything
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_HEX = re.compile(r"^[0-9a-f]{8,64}$")
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_MAX_ITEM_ID = 2**63 - 1  # SQLite's INTEGER


@dataclass(frozen=True)
class TrackRef:
    """A parsed track id, before it is looked up in a library.

    Attributes
    ----------
    kind
        ``id`` (``value`` is a beets item id), ``mbid`` (``value`` is a
        ``mb_releasetrackid`` or ``mb_trackid``) or ``hash`` (``value`` is a
        BeetstreamNext path hash).
    value
        The id itself.
    scheme
        How results are minted for this caller: ``beets``, ``subsonic``, or, for a bare
        MusicBrainz id, ``None`` until the lookup tells a recording from a release track.
    text
        The id as sent, for messages.
    """

    kind: str
    value: int | str
    scheme: str | None
    text: str


def _item_id(digits: str, text: str) -> int:
    value = int(digits)
    if not 0 < value <= _MAX_ITEM_ID:
        raise ApiError(400, f"not a track id: {text!r} (beets ids start at 1)")
    return value


def _b64decode(payload: str) -> str:
    """Unpadded URL-safe base64 to text, as BeetstreamNext decodes it; ``""`` if it does not decode."""
    if not _B64URL.match(payload):
        return ""
    try:
        return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""


def b64encode(text: str) -> str:
    """Unpadded URL-safe base64 of ``text`` (BeetstreamNext's ``sg-m-`` payload)."""
    return base64.urlsafe_b64encode(text.encode("utf-8")).rstrip(b"=").decode("ascii")


def parse_track_ref(text: str | None, *, name: str = "id") -> TrackRef:
    """Parse one track id (see the module docstring for the forms).

    Parameters
    ----------
    text
        The id as the caller sent it.
    name
        The parameter's name, for messages.

    Raises
    ------
    ApiError
        400 for a missing, empty or malformed id.
    """
    if text is None:
        raise ApiError(400, f"missing parameter {name!r}")
    raw = text.strip()
    if not raw:
        raise ApiError(400, f"empty parameter {name!r}")
    if len(raw) > MAX_ID_LENGTH:
        raise ApiError(400, f"{name}: not a track id (longer than {MAX_ID_LENGTH} characters)")
    if raw.isascii() and raw.isdigit():
        return TrackRef("id", _item_id(raw, raw), BEETS, raw)
    if _UUID.match(raw.lower()):
        return TrackRef("mbid", raw.lower(), None, raw)
    if raw.startswith(SUBSONIC_MBID):
        mbid = _b64decode(raw[len(SUBSONIC_MBID) :]).strip()
        if not mbid or not mbid.isprintable():
            raise ApiError(
                400, f"{name}: {raw!r} is not a BeetstreamNext song id (its sg-m- part does not decode)"
            )
        return TrackRef("mbid", mbid, SUBSONIC, raw)  # looked up without regard to case
    if raw.startswith(SUBSONIC_HASH):
        digest = raw[len(SUBSONIC_HASH) :].lower()
        if not _HEX.match(digest):
            raise ApiError(400, f"{name}: {raw!r} is not a BeetstreamNext song id (sg-h- takes a hex hash)")
        return TrackRef("hash", digest, SUBSONIC, raw)
    if raw.startswith(SUBSONIC_ID):
        digits = raw[len(SUBSONIC_ID) :]
        if digits.isascii() and digits.isdigit():
            return TrackRef("id", _item_id(digits, raw), SUBSONIC, raw)
    raise ApiError(
        400,
        f"{name}: not a track id: {raw[:60]!r} (expected a beets id such as 123, a MusicBrainz id, "
        "or a BeetstreamNext song id: sg-m-..., sg-h-... or sg-123)",
    )


def subsonic_path_hash(path: str, root: str) -> str:
    """BeetstreamNext's hash of a track's path: SHA-1 of the path relative to ``root``, 16 hex digits.

    ``root`` is beets' ``directory`` setting as written in the config (BeetstreamNext
    takes ``config['directory'].get()``, not expanded). A path outside it is hashed
    whole. Paths are compared as written, in POSIX form (``PurePosixPath``), as
    BeetstreamNext does on the systems it runs on.
    """
    if not path:
        return ""
    p = PurePosixPath(path)
    try:
        rel = p.relative_to(str(root)).as_posix() if root else p.as_posix()
    except ValueError:
        rel = p.as_posix()
    return hashlib.sha1(rel.encode("utf-8")).hexdigest()[:16]


def mint(scheme: str, fields: Mapping[str, Any], *, root: str = "") -> str:
    """A result's id in ``scheme``.

    Parameters
    ----------
    scheme
        One of ``SCHEMES``.
    fields
        The result's ``id``, ``mb_trackid``, ``mb_releasetrackid`` and (for
        ``subsonic``) ``path`` (text, absolute).
    root
        beets' ``directory`` as configured, for ``sg-h-`` ids.

    Returns
    -------
    str
        ``beets``: ``"123"``; ``recording``: ``mb_trackid``, else ``mb_releasetrackid``,
        else ``"123"``; ``releasetrack``: ``mb_releasetrackid``, else ``mb_trackid``,
        else ``"123"``; ``subsonic``: what BeetstreamNext mints, ``sg-m-`` from
        ``mb_releasetrackid`` or ``mb_trackid``, else ``sg-h-`` from the path, else
        ``sg-123``.
    """
    beets_id = str(int(fields["id"]))
    track = str(fields.get("mb_trackid") or "").strip()
    release_track = str(fields.get("mb_releasetrackid") or "").strip()
    if scheme == BEETS:
        return beets_id
    if scheme == RECORDING:
        return track or release_track or beets_id
    if scheme == RELEASE_TRACK:
        return release_track or track or beets_id
    if scheme == SUBSONIC:
        mbid = release_track or track
        if mbid:
            return SUBSONIC_MBID + b64encode(mbid)
        digest = subsonic_path_hash(str(fields.get("path") or ""), root)
        return SUBSONIC_HASH + digest if digest else SUBSONIC_ID + beets_id
    raise ValueError(f"unknown id scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")


def parse_album_ref(text: str | None, *, name: str = "id") -> tuple[str, int | str]:
    """An album id: ``("id", beets album id)`` or ``("mbid", mb_albumid)``.

    Raises
    ------
    ApiError
        400 for a missing or malformed id.
    """
    if text is None or not text.strip():
        raise ApiError(400, f"missing parameter {name!r}")
    raw = text.strip()
    if raw.isascii() and raw.isdigit() and len(raw) < 20:
        return "id", _item_id(raw, raw)
    if _UUID.match(raw.lower()):
        return "mbid", raw.lower()
    raise ApiError(
        400, f"{name}: not an album id: {raw[:60]!r} (expected a beets album id or a MusicBrainz release id)"
    )
