"""Fingerprints of training clips: which audio a model was fitted on.

A trained model's card lists, under ``training.fingerprint``, one short hash per clip
of its training and validation parts, so that ``mcbr eval`` can tell when it is
evaluating a model on its own training data (figures that overstate accuracy).

A clip's hash is the first 16 hex digits (8 bytes) of the SHA-1 of the first 64 KiB
of its audio file after any leading tag block (an ID3v2 tag; FLAC's metadata
blocks). It depends on the audio bytes only: the same file under another path, in
another dataset layout, or retagged (beets writes tags into the files it imports)
keeps its hash; a re-encoded copy does not. 64 KiB is one read per file: over the
1529 MP3s of ../shared/data (all distinct) 0.31 ms a file on the first pass and
0.20 ms on the next, a fraction of decoding the file; hashing whole files instead
took twice as long on these 130-KB clips, and grows with the file (a 30-MB FLAC).
64 KiB covers 13 s of a 40 kbit/s MP3, several seconds of anything else; a file
shorter than that is hashed whole.

Import-light: only the standard library.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["METHOD", "PREFIX_BYTES", "clip_hash", "clip_hash_or_none", "fingerprint", "overlap"]

#: What ``training.fingerprint.method`` names; a card with another method is not compared.
METHOD = "sha1[:16] of the first 64 KiB after leading tags"
PREFIX_BYTES = 65536


def _audio_offset(fh: Any) -> int:
    """Where the audio starts: after an ID3v2 tag and, in a FLAC file, after its metadata blocks."""
    offset = 0
    head = fh.read(10)
    if len(head) == 10 and head[:3] == b"ID3":
        size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
        offset = 10 + size + (10 if head[5] & 0x10 else 0)  # syncsafe size; a footer adds 10 bytes
    fh.seek(offset)
    if fh.read(4) == b"fLaC":
        offset += 4
        while True:  # metadata blocks: 1 byte (last flag, type), 3 bytes length
            block = fh.read(4)
            if len(block) < 4:
                break
            offset += 4 + int.from_bytes(block[1:], "big")
            fh.seek(offset)
            if block[0] & 0x80:
                break
    return offset


def clip_hash(path: str | Path) -> str:
    """The fingerprint of one audio file (16 hex digits).

    Raises
    ------
    OSError
        If the file cannot be read.
    """
    with Path(path).open("rb") as fh:
        fh.seek(_audio_offset(fh))
        return hashlib.sha1(fh.read(PREFIX_BYTES), usedforsecurity=False).hexdigest()[:16]


def clip_hash_or_none(path: str | Path) -> str | None:
    """:func:`clip_hash`, or ``None`` for a file that cannot be read."""
    try:
        return clip_hash(path)
    except OSError:
        return None


def fingerprint(hashes: Iterable[str]) -> dict[str, Any]:
    """The card entry ``training.fingerprint``: the method and the sorted, distinct clip hashes."""
    clips = sorted(set(hashes))
    return {"method": METHOD, "n": len(clips), "clips": clips}


def overlap(card: Mapping[str, Any], hashes: Iterable[str | None]) -> int | None:
    """How many of ``hashes`` (one per evaluated clip; ``None``: unreadable) are in the card's training data.

    Returns
    -------
    int or None
        ``None`` when the card records no fingerprint (a model trained before they
        existed, or one trained elsewhere, like msd-musicnn), or one of another method.
    """
    entry = (card.get("training") or {}).get("fingerprint")
    if not isinstance(entry, Mapping) or entry.get("method") != METHOD:
        return None
    seen = set(entry.get("clips") or ())
    return sum(1 for h in hashes if h is not None and h in seen)
