"""The ``beet mcbr-playlist`` subcommand.

It turns beets into plain values for ``mcbr_core.playlist``: the queries' items
become seed ids, library items become ``Track`` values, the embedding store and
its index become a ``Space``, the config and options become ``Constraints``. It
then lists the playlists in a beets format and writes them as M3U/M3U8 files.

No heavy imports at module level: NumPy, pluggy and the core playlist modules load
when the command runs, not when ``beet`` starts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from beets import ui

from beetsplug.mcbr import settings as plugin_settings
from beetsplug.mcbr.commands import ensure_embeddings
from beetsplug.mcbr.settings import user_error
from mcbr_core.errors import McbrError

if TYPE_CHECKING:
    import numpy as np
    from beets.library import Item, Library

    from beetsplug.mcbr import McbrPlugin
    from mcbr_core.playlist.base import Constraints, Playlist, PlaylistStrategy, Track
    from mcbr_core.playlist.settings import PlaylistSettings
    from mcbr_core.store.index import IndexBackend

#: Separates the two queries of ``path`` when a query has several terms.
PATH_SEPARATOR = "to"

USAGE = """%prog MODE [QUERY ...] [options]

Modes:
  radio QUERY            start at the query's tracks, walk to near neighbours
  path QUERY_A QUERY_B   a smooth path from A to B (several terms per query:
                         path artist:A year:1970 to artist:B)
  cluster [QUERY]        split the library (or the query's tracks) into playlists
  signature QUERY        extend a playlist or album by the dimensions it shares
A QUERY may also be an .m3u/.m3u8 file: its tracks are the query's items."""


class PlaylistOptions(Protocol):
    """Options of ``beet mcbr-playlist`` (``None``: the config decides)."""

    count: int | None
    duration: float | None
    max_per_artist: int | None
    max_per_album: int | None
    no_artist_repeat: bool | None
    include_seed: bool | None
    restrict: str | None
    order: str | None
    clusters: int | None
    dims: int | None
    seed: int | None
    format: str | None
    output: str | None
    save: bool | None
    dir: str | None
    name: str | None
    paths: str | None
    extended: bool | None
    pretend: bool | None
    options: list[str] | None
    mpd: bool | None
    replace: bool | None


def playlist_command(plugin: McbrPlugin) -> ui.Subcommand:
    """``beet mcbr-playlist MODE [QUERY ...]``: playlists from the embeddings."""
    cmd = ui.Subcommand(
        "mcbr-playlist", help="make playlists from how tracks sound (radio, path, cluster, signature)"
    )
    cmd.parser.set_usage(USAGE)
    add = cmd.parser.add_option
    add("-n", "--count", type="int", default=None, help="tracks per playlist, 0 for no limit (default: 25)")
    add(
        "--duration",
        type="float",
        default=None,
        metavar="MINUTES",
        help="minutes per playlist, 0 for no limit; without -n it lifts the track count",
    )
    add(
        "--max-per-artist",
        type="int",
        default=None,
        metavar="N",
        help="at most N tracks per artist (0: no cap)",
    )
    add(
        "--max-per-album",
        type="int",
        default=None,
        metavar="N",
        help="at most N tracks per album (0: no cap)",
    )
    add(
        "--no-artist-repeat",
        action="store_true",
        dest="no_artist_repeat",
        default=None,
        help="never the same artist twice in a row (default)",
    )
    add(
        "--artist-repeat",
        action="store_false",
        dest="no_artist_repeat",
        help="allow an artist twice in a row",
    )
    add(
        "--include-seed",
        action="store_true",
        dest="include_seed",
        default=None,
        help="put the query's own tracks into the playlist",
    )
    add(
        "--exclude-seed",
        action="store_false",
        dest="include_seed",
        help="leave the query's tracks out (default)",
    )
    add(
        "-r",
        "--restrict",
        default=None,
        metavar="QUERY",
        help='draw only from tracks matching this beets query, e.g. "^genres:Christmas"',
    )
    add(
        "--order",
        choices=["smooth", "rank", "shuffle"],
        default=None,
        help="order of cluster and signature playlists: smooth (default), rank or shuffle",
    )
    add("--clusters", type="int", default=None, metavar="N", help="cluster: number of playlists (default: 8)")
    add(
        "--dims",
        type="int",
        default=None,
        metavar="N",
        help="signature: dimensions in the signature (default: 8)",
    )
    add("--seed", type="int", default=None, help="random seed of cluster starts and shuffle (default: 0)")
    add(
        "-O",
        "--option",
        action="append",
        dest="options",
        default=None,
        metavar="KEY=VALUE",
        help="an option of the mode (see docs/playlists.md), e.g. -O previous_weight=2",
    )
    cmd.parser.add_format_option(target="item")
    add(
        "-o",
        "--output",
        default=None,
        metavar="FILE",
        help="write an .m3u/.m3u8 file (or, for a folder, one file per playlist)",
    )
    add("-s", "--save", action="store_true", default=None, help="write into the playlist folder")
    add("--dir", default=None, metavar="FOLDER", help="the playlist folder for --save")
    add("--name", default=None, help="name of the playlist (and of its file with --save)")
    add(
        "--relative",
        action="store_const",
        const="relative",
        dest="paths",
        default=None,
        help="paths relative to the playlist file",
    )
    add("--absolute", action="store_const", const="absolute", dest="paths", help="absolute paths (default)")
    add(
        "--extended",
        action="store_true",
        dest="extended",
        default=None,
        help="#EXTM3U with durations and titles (default)",
    )
    add("--plain", action="store_false", dest="extended", help="paths only, no #EXTINF lines")
    add("-p", "--pretend", action="store_true", default=None, help="print the playlists; write no file")
    add("--mpd", action="store_true", default=None, help="send the playlist to MPD's queue (appended)")
    add(
        "--append",
        action="store_false",
        dest="replace",
        default=None,
        help="add after MPD's queue (default of --mpd; implies --mpd)",
    )
    add(
        "--replace",
        action="store_true",
        dest="replace",
        help="put the playlist in place of MPD's queue and play it (implies --mpd)",
    )

    def func(lib: Library, opts: PlaylistOptions, args: list[str]) -> None:
        if not args:
            raise ui.UserError(
                "mcbr: name a mode: beet mcbr-playlist radio|path|cluster|signature [QUERY ...]"
            )
        try:
            run(plugin, lib, args[0], args[1:], opts)
        except McbrError as exc:
            raise user_error(exc) from None

    cmd.func = func
    return cmd


# -- settings --------------------------------------------------------------------------


def load_settings(plugin: McbrPlugin) -> PlaylistSettings:
    """The ``mcbr.playlist`` section, validated (every source merged)."""
    return plugin_settings.load_playlist(plugin.config)


def _mode_options(
    strategy: PlaylistStrategy, settings: PlaylistSettings, opts: PlaylistOptions
) -> dict[str, Any]:
    from mcbr_core.options import parse_options

    options = dict(settings.modes.get(strategy.name, {}))
    for flag, key in (("--clusters", "clusters"), ("--dims", "dims")):
        value = getattr(opts, key)
        if value is None:
            continue
        if key not in strategy.defaults:
            raise ui.UserError(f"mcbr: {flag} does not apply to {strategy.name}")
        options[key] = value
    try:
        options.update(parse_options(opts.options or [], what="mcbr: -O"))
    except McbrError as exc:
        raise user_error(exc) from None
    return options


def _pick(cli: Any, config: Any) -> Any:
    return config if cli is None else cli


# -- queries and items -------------------------------------------------------------------


def split_queries(terms: Sequence[str], strategy: PlaylistStrategy) -> list[list[str]]:
    """The command line's terms as the strategy's queries (lists of beets query terms).

    One-query modes take every term as one query, as ``beet ls`` does. ``path`` takes
    two: split at a lone ``to``, or, without one, exactly two terms.
    """
    low, high = strategy.queries
    terms = list(terms)
    if high <= 1:
        if low == 1 and not terms:
            raise ui.UserError(
                f"mcbr: {strategy.name} needs a query, e.g. beet mcbr-playlist {strategy.name} artist:Phish"
            )
        return [terms] if terms else []
    if terms.count(PATH_SEPARATOR) == 1 and high == 2:
        cut = terms.index(PATH_SEPARATOR)
        queries = [terms[:cut], terms[cut + 1 :]]
    elif high == 2 and len(terms) == 2:
        queries = [[terms[0]], [terms[1]]]
    else:
        queries = [[t] for t in terms]
    if not low <= len(queries) <= high or any(not q for q in queries):
        raise ui.UserError(
            f"mcbr: {strategy.name} takes two queries: `{strategy.name} QUERY_A QUERY_B`, "
            f"or with several terms `{strategy.name} artist:A year:1970 {PATH_SEPARATOR} artist:B`"
        )
    return queries


def query_items(plugin: McbrPlugin, lib: Library, terms: list[str]) -> list[Item]:
    """Items of one query, in its order; a lone ``.m3u``/``.m3u8`` path reads that playlist's tracks."""
    from mcbr_core.playlist import m3u

    if len(terms) == 1 and m3u.is_playlist(os.path.expanduser(terms[0])):
        from beets.dbcore.query import PathQuery

        path = os.path.expanduser(terms[0])
        _, entries = m3u.read(path)
        items, missing = [], 0
        for entry in entries:
            found = (
                list(lib.items(PathQuery("path", os.fsencode(entry.path))))
                if os.path.isabs(entry.path)
                else []
            )
            items += found[:1]
            missing += not found
        if missing:
            plugin.log.warning(
                "{} of the {} entries of {} are not in the library", missing, len(entries), path
            )
        if not items:
            raise ui.UserError(f"mcbr: no track of {path} is in the library")
        return list({i.id: i for i in items}.values())
    items = list(lib.items(terms))
    if not items:
        raise ui.UserError(f"mcbr: no items match the query {' '.join(terms)!r}")
    return items


def track_of(item: Item, mood_separator: str) -> Track:
    """The plain ``Track`` of a beets item."""
    from mcbr_core.playlist.base import Track
    from mcbr_core.tagging import split_list

    if item.album_id is not None:
        album: Any = item.album_id
    elif item.album:
        album = f"{item.albumartist or item.artist}\x1f{item.album}"  # singletons of one tagged album
    else:
        album = None
    mood = item.get("mood") or ""
    genres = item.get("genres") or []
    return Track(
        item.id,
        artist=item.artist or item.albumartist or "",
        album_id=album,
        duration=float(item.length or 0.0),
        bpm=float(item.bpm) if item.bpm else None,
        key=item.initial_key or None,
        genres=tuple(str(g) for g in genres),
        mood=tuple(split_list(str(mood), mood_separator)),
        path=os.fsdecode(item.path),
        title=item.title or "",
        album=item.album or "",
    )


class _Library:
    """Items and tracks by id, fetched in chunks and kept for the output."""

    def __init__(self, lib: Library, mood_separator: str) -> None:
        self.lib = lib
        self.separator = mood_separator
        self.items: dict[int, Item] = {}

    def add(self, items: Sequence[Item]) -> None:
        for item in items:
            self.items[item.id] = item

    def tracks(self, ids: Sequence[int]) -> dict[int, Track]:
        from beets.dbcore.query import InQuery

        wanted = [int(i) for i in ids if int(i) not in self.items]
        for start in range(0, len(wanted), 500):
            self.add(list(self.lib.items(InQuery("id", wanted[start : start + 500]))))
        return {int(i): track_of(self.items[int(i)], self.separator) for i in ids if int(i) in self.items}


class _LazyIndex:
    """The neighbour index, loaded (and rebuilt if stale) on the first query only."""

    def __init__(self, plugin: McbrPlugin) -> None:
        self.plugin = plugin
        self._index: IndexBackend | None = None

    def query(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        if self._index is None:
            self._index = self.plugin.engine.neighbours.index()
        if self._index is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return self._index.query(vector, n)


# -- the command -------------------------------------------------------------------------


def run(
    plugin: McbrPlugin, lib: Library, mode: str, terms: list[str], opts: PlaylistOptions
) -> list[Playlist]:
    """Make the playlists of one command line, print and write them."""
    from mcbr_core.playlist.generate import get_strategy

    settings = load_settings(plugin)
    engine = plugin.engine
    strategy = get_strategy(mode, engine.plugins)
    options = _mode_options(strategy, settings, opts)
    queries = split_queries(terms, strategy)
    known = _Library(lib, plugin.settings.tags.separator)
    seeds = []
    for query in queries:
        items = query_items(plugin, lib, query)
        known.add(items)
        seeds.append(items)
    if seeds:
        ensure_embeddings(
            plugin, [i for items in seeds for i in items], " ".join(" ".join(q) for q in queries)
        )
    if engine.store.count(engine.model_id) == 0:
        raise ui.UserError(f"mcbr: no track has an embedding of {engine.model_id} yet; run `beet mcbr` first")
    restrict = _pick(opts.restrict, settings.restrict)
    duration = opts.duration
    count = (
        opts.count if opts.count is not None or duration is None else 0
    )  # --duration alone lifts the count
    constraints = settings.constraints(
        count=count,
        duration=duration,
        max_per_artist=opts.max_per_artist,
        max_per_album=opts.max_per_album,
        no_artist_repeat=opts.no_artist_repeat,
        include_seed=opts.include_seed,
        order=opts.order,
        seed=opts.seed,
    )
    playlists = generate(
        plugin,
        lib,
        strategy,
        seeds,
        labels=[" ".join(q) for q in queries],
        constraints=constraints,
        options=options,
        restrict=restrict,
        known=known,
    )
    if not playlists:
        hint = f" matching {restrict!r}" if restrict else ""
        raise ui.UserError(f"mcbr: no track{hint} fits the playlist (see the caps, -n and --duration)")
    for playlist in playlists:
        wanted = constraints.count
        if wanted is not None and len(playlist.item_ids) < wanted and strategy.name != "cluster":
            plugin.log.info(
                "{}: {} of {} tracks (the candidates, caps or duration left no more)",
                playlist.name,
                len(playlist.item_ids),
                wanted,
            )
    output(plugin, lib, playlists, known, settings, opts)
    return playlists


def generate(
    plugin: McbrPlugin,
    lib: Library,
    strategy: PlaylistStrategy,
    seeds: Sequence[Sequence[Item]],
    *,
    labels: Sequence[str],
    constraints: Constraints,
    options: dict[str, Any],
    restrict: str,
    known: _Library,
    allowed_cache: dict[str, list[int]] | None = None,
) -> list[Playlist]:
    """The strategy's non-empty playlists for seed items, drawn from the tracks matching ``restrict``.

    ``known`` collects the items met on the way (for the output); ``allowed_cache``
    keeps the restriction's ids between calls with the same ``restrict``.
    """
    from mcbr_core.playlist.base import PlaylistRequest
    from mcbr_core.playlist.generate import make_playlists
    from mcbr_core.playlist.space import Space

    engine = plugin.engine
    allowed = None
    if restrict:
        if allowed_cache is not None and restrict in allowed_cache:
            allowed = allowed_cache[restrict]
        else:
            restricted = list(lib.items(restrict))
            known.add(restricted)
            allowed = [i.id for i in restricted]
            if allowed_cache is not None:
                allowed_cache[restrict] = allowed
            plugin.log.debug("{} track(s) match the restriction {!r}", len(allowed), restrict)
    space = Space(
        loader=lambda ids: engine.store.vectors(engine.model_id, ids),
        tracks=known.tracks,
        metric=engine.neighbours.metric,
        allowed=allowed,
        index=_LazyIndex(plugin),
    )
    request = PlaylistRequest(
        seeds=tuple(tuple(i.id for i in items) for items in seeds),
        space=space,
        constraints=constraints,
        options=options,
        labels=tuple(labels),
    )
    return [p for p in make_playlists(strategy, request) if p.item_ids]


# -- output --------------------------------------------------------------------------------


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
    known: _Library,
    settings: PlaylistSettings,
    opts: PlaylistOptions,
) -> None:
    """List the playlists and write their files."""
    from mcbr_core.playlist import m3u

    pretend = bool(_pick(opts.pretend, settings.pretend))
    out_file = _pick(opts.output, settings.output)
    save = bool(_pick(opts.save, settings.save))
    name = _pick(opts.name, settings.name)
    names = [p.name for p in playlists]
    if name:
        names = [name] if len(playlists) == 1 else [f"{name} - {n}" for n in names]
    files: list[list[Path]] = [[] for _ in playlists]
    if out_file:
        for n, path in enumerate(targets(names, out_file, settings.extension)):
            files[n].append(path)
    if save:
        folder = playlist_dir(plugin, settings, opts.dir)
        for n, playlist_name in enumerate(names):
            files[n].append(folder / f"{file_name(playlist_name)}.{settings.extension}")
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
            for item_id in playlist.item_ids:
                item = known.items.get(item_id) or lib.get_item(item_id)
                if item is None:
                    continue
                if item_id in playlist.scores:
                    item["mcbr_distance"] = playlist.scores[item_id]  # in memory only, for the format
                ui.print_(format(item, fmt))
        entries = [m3u.entry(tracks[i]) for i in playlist.item_ids if i in tracks]
        for path in files[n]:
            if pretend:
                ui.print_(f"mcbr: would write {path} ({summary})")
                continue
            try:
                m3u.write(
                    path,
                    entries,
                    name=names[n],
                    extended=_pick(opts.extended, settings.extended),
                    relative=_pick(opts.paths, settings.paths) == "relative",
                    forward_slash=settings.forward_slash,
                )
            except OSError as exc:
                raise ui.UserError(f"mcbr: cannot write {path}: {exc.strerror or exc}") from None
            ui.print_(f"mcbr: wrote {path} ({summary})")
        if to_mpd:
            from beetsplug.mcbr.mpd_command import send_to_mpd

            paths = [tracks[i].path for i in playlist.item_ids if i in tracks]
            send_to_mpd(plugin, paths, replace=bool(opts.replace), pretend=pretend)
