"""The output of ``beet mcbr-playlist``: the playlists listed in a beets format, written as
M3U/M3U8 files (``-o``, ``--save``) and sent to MPD (``--mpd``)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from beets import ui

from beetsplug.mcbr import settings as plugin_settings

if TYPE_CHECKING:
    from beets.library import Library

    from beetsplug.mcbr import McbrPlugin
    from beetsplug.mcbr.playlist_command import PlaylistOptions
    from beetsplug.mcbr.playlist_items import KnownItems
    from mcbr_core.playlist.base import Playlist
    from mcbr_core.playlist.settings import PlaylistSettings


def pick(cli: Any, config: Any) -> Any:
    """The command line's value, or the config's when the option was not given."""
    return config if cli is None else cli


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def file_name(name: str) -> str:
    """A playlist name as a file name (no separators or characters Windows refuses)."""
    name = name.replace(": ", " - ")
    name = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", name).strip(" .")
    return name[:200] or "playlist"


def playlist_dir(plugin: McbrPlugin, settings: PlaylistSettings, cli: str | None) -> Path:
    """The folder of ``--save``: ``--dir``, ``mcbr.playlist.dir``, or beets' playlist folders."""
    if cli:
        return Path(os.path.expanduser(cli))
    folder = plugin_settings.playlist_folder(plugin.config)
    if folder is not None:
        return folder
    raise ui.UserError(
        "mcbr: --save needs a playlist folder: set mcbr.playlist.dir (or playlist.playlist_dir)"
    )


def targets(names: list[str], output: str, extension: str) -> list[Path]:
    """Files for ``-o``: a ``.m3u``/``.m3u8`` path is a file (one per playlist, suffixed by name when
    there are several); anything else is a folder holding ``<name>.<extension>`` files."""
    path = Path(os.path.expanduser(output))
    if path.suffix.lower() in (".m3u", ".m3u8"):
        if len(names) == 1:
            return [path]
        return [path.with_name(f"{path.stem} - {file_name(n)}{path.suffix}") for n in names]
    return [path / f"{file_name(n)}.{extension}" for n in names]


def output(
    plugin: McbrPlugin,
    lib: Library,
    playlists: list[Playlist],
    known: KnownItems,
    settings: PlaylistSettings,
    opts: PlaylistOptions,
) -> None:
    """List the playlists and write their files."""
    from mcbr_core.playlist import m3u

    pretend = bool(pick(opts.pretend, settings.pretend))
    names = _names(playlists, settings, opts)
    files = _files(plugin, names, settings, opts)
    to_mpd = bool(getattr(opts, "mpd", None)) or getattr(opts, "replace", None) is not None
    if to_mpd and len(playlists) > 1:
        raise ui.UserError(
            f"mcbr: --mpd sends one playlist; {len(playlists)} were made (--clusters 1, or -o to write them)"
        )
    writes = any(files) or to_mpd
    fmt = opts.format or settings.format
    for n, playlist in enumerate(playlists):
        tracks = known.tracks(playlist.item_ids)
        seconds = sum(t.duration for t in tracks.values())
        summary = f"{len(playlist.item_ids)} tracks, {_clock(seconds)}"
        if opts.format is not None or not writes or pretend:
            if len(playlists) > 1:
                if n:
                    ui.print_()
                ui.print_(f"{names[n]} ({summary})")
            _print_items(lib, playlist, known, fmt)
        entries = [m3u.entry(tracks[i]) for i in playlist.item_ids if i in tracks]
        for path in files[n]:
            _write(path, entries, names[n], summary, settings, opts, pretend=pretend)
        if to_mpd:
            from beetsplug.mcbr.mpd_command import send_to_mpd

            paths = [tracks[i].path for i in playlist.item_ids if i in tracks]
            send_to_mpd(plugin, paths, replace=bool(opts.replace), pretend=pretend)


def _names(playlists: list[Playlist], settings: PlaylistSettings, opts: PlaylistOptions) -> list[str]:
    """The playlists' names: their own, or ``--name`` (followed by their own when there are several)."""
    name = pick(opts.name, settings.name)
    names = [p.name for p in playlists]
    if name:
        names = [name] if len(playlists) == 1 else [f"{name} - {n}" for n in names]
    return names


def _files(
    plugin: McbrPlugin, names: list[str], settings: PlaylistSettings, opts: PlaylistOptions
) -> list[list[Path]]:
    """The files to write, per playlist: ``-o``'s, then ``--save``'s."""
    out_file = pick(opts.output, settings.output)
    save = bool(pick(opts.save, settings.save))
    files: list[list[Path]] = [[] for _ in names]
    if out_file:
        for n, path in enumerate(targets(names, out_file, settings.extension)):
            files[n].append(path)
    if save:
        folder = playlist_dir(plugin, settings, opts.dir)
        for n, playlist_name in enumerate(names):
            files[n].append(folder / f"{file_name(playlist_name)}.{settings.extension}")
    return files


def _print_items(lib: Library, playlist: Playlist, known: KnownItems, fmt: str) -> None:
    """One line per track of the playlist, in the beets format ``fmt`` (``$mcbr_distance`` set)."""
    for item_id in playlist.item_ids:
        item = known.items.get(item_id) or lib.get_item(item_id)
        if item is None:
            continue
        if item_id in playlist.scores:
            item["mcbr_distance"] = playlist.scores[item_id]  # in memory only, for the format
        ui.print_(format(item, fmt))


def _write(
    path: Path,
    entries: list[Any],
    name: str,
    summary: str,
    settings: PlaylistSettings,
    opts: PlaylistOptions,
    *,
    pretend: bool,
) -> None:
    """Write one playlist file (or say that it would be written)."""
    from mcbr_core.playlist import m3u

    if pretend:
        ui.print_(f"mcbr: would write {path} ({summary})")
        return
    try:
        m3u.write(
            path,
            entries,
            name=name,
            extended=pick(opts.extended, settings.extended),
            relative=pick(opts.paths, settings.paths) == "relative",
            forward_slash=settings.forward_slash,
        )
    except OSError as exc:
        raise ui.UserError(f"mcbr: cannot write {path}: {exc.strerror or exc}") from None
    ui.print_(f"mcbr: wrote {path} ({summary})")
