"""M3U and M3U8 playlists: an extended writer and a tolerant reader.

Written files are UTF-8 (``.m3u8`` by definition; ``.m3u`` too, which every current
player reads), with paths as the file system spells them, so a path that is not
valid UTF-8 still resolves. Extended files carry ``#EXTM3U``, a ``#PLAYLIST:`` name
and one ``#EXTINF:<seconds>,<artist> - <title>`` line per track. Files are written
to a temporary name and renamed into place.

The reader takes what players write: a byte-order mark, CRLF line ends,
``file://`` URIs, comments and ``#EXT`` directives; relative paths are resolved
against the playlist's folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mcbr_core.playlist.base import Track

SUFFIXES = (".m3u", ".m3u8")


@dataclass(frozen=True)
class Entry:
    """One line of a playlist.

    Attributes
    ----------
    path
        The media file as written (absolute, or relative to the playlist's folder),
        or, when read, resolved to an absolute path where it is a local file.
    duration
        Seconds, ``None`` when unknown (``#EXTINF:-1``).
    title
        The ``#EXTINF`` title (``"Artist - Title"``).
    """

    path: str
    duration: float | None = None
    title: str = ""


def entry(track: Track) -> Entry:
    """The playlist line of a track."""
    title = " - ".join(p for p in (track.artist, track.title) if p) or Path(track.path).stem
    return Entry(track.path, track.duration if track.duration > 0 else None, title)


def _line(text: str) -> str:
    return " ".join(text.split())  # a title must stay on one line


def render(
    entries: Iterable[Entry],
    *,
    folder: str | os.PathLike[str],
    name: str = "",
    extended: bool = True,
    relative: bool = False,
    forward_slash: bool = False,
) -> bytes:
    """The bytes of a playlist stored in ``folder``.

    Parameters
    ----------
    entries
        The tracks, in play order.
    folder
        Where the playlist file goes: relative paths start there.
    name
        Written as ``#PLAYLIST:`` in extended playlists.
    extended
        Write ``#EXTM3U``, ``#PLAYLIST`` and ``#EXTINF`` lines.
    relative
        Paths relative to ``folder`` (absolute where no relative path exists, as
        across Windows drives).
    forward_slash
        Separate path parts with ``/`` whatever the platform.
    """
    base = os.path.abspath(os.fspath(folder))
    lines: list[bytes] = []
    if extended:
        lines.append(b"#EXTM3U")
        if name:
            lines.append(f"#PLAYLIST:{_line(name)}".encode("utf-8", "replace"))
    for e in entries:
        path = e.path
        if relative:
            try:
                path = os.path.relpath(os.path.abspath(path), base)
            except ValueError:
                path = os.path.abspath(path)
        if forward_slash:
            path = path.replace(os.sep, "/")
        if extended:
            seconds = round(e.duration) if e.duration else -1
            lines.append(f"#EXTINF:{seconds},{_line(e.title)}".encode("utf-8", "replace"))
        lines.append(os.fsencode(path))
    return b"\n".join(lines) + b"\n"


def write(
    path: str | os.PathLike[str],
    entries: Iterable[Entry],
    *,
    name: str = "",
    extended: bool = True,
    relative: bool = False,
    forward_slash: bool = False,
) -> Path:
    """Write a playlist file (creating its folder); returns its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = render(
        entries,
        folder=target.parent,
        name=name,
        extended=extended,
        relative=relative,
        forward_slash=forward_slash,
    )
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def parse(data: bytes, *, folder: str | os.PathLike[str] | None = None) -> tuple[str, list[Entry]]:
    """The name (``#PLAYLIST``, or ``""``) and entries of playlist bytes.

    Relative paths are joined to ``folder`` when it is given; ``file://`` URIs become
    paths; other URIs (``http://...``) are kept as they are.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    name = ""
    entries: list[Entry] = []
    duration: float | None = None
    title = ""
    for raw in data.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith(b"#"):
            text = line.decode("utf-8", "replace")
            if text.upper().startswith("#EXTINF:"):
                info, _, title = text[8:].partition(",")
                head = info.strip().split(" ", 1)[0]
                try:
                    seconds = float(head)
                except ValueError:
                    seconds = -1.0
                duration = seconds if seconds >= 0 else None
                title = title.strip()
            elif text.upper().startswith("#PLAYLIST:"):
                name = text[10:].strip()
            continue
        path = os.fsdecode(line)
        scheme = urlsplit(path).scheme
        if scheme == "file":
            path = unquote(urlsplit(path).path)
        elif len(scheme) > 1:  # a URL (one letter is a Windows drive)
            entries.append(Entry(path, duration, title))
            duration, title = None, ""
            continue
        if folder is not None and not os.path.isabs(path):
            path = os.path.normpath(os.path.join(os.fspath(folder), path.replace("/", os.sep)))
        entries.append(Entry(path, duration, title))
        duration, title = None, ""
    return name, entries


def read(path: str | os.PathLike[str]) -> tuple[str, list[Entry]]:
    """The name and entries of a playlist file, relative paths resolved against its folder."""
    target = Path(path)
    return parse(target.read_bytes(), folder=target.parent.absolute())


def is_playlist(path: str) -> bool:
    """Whether ``path`` names an existing M3U/M3U8 file."""
    return path.lower().endswith(SUFFIXES) and os.path.isfile(path)
