"""The ``beet mcbr-playlist`` subcommand.

It turns beets into plain values for ``mcbr_core.playlist``: the queries' items
become seed ids, library items become ``Track`` values, the embedding store and
its index become a ``Space``, the config and options become ``Constraints``. It
then lists the playlists in a beets format and writes them as M3U/M3U8 files.

Modules: this one (options, settings, the run), ``playlist_items`` (queries and
items to seeds and ``Track``s), ``playlist_output`` (listing, files, MPD).

No heavy imports at module level: NumPy, pluggy and the core playlist modules load
when the command runs, not when ``beet`` starts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from beets import ui

from beetsplug.mcbr import settings as plugin_settings
from beetsplug.mcbr.commands import ensure_embeddings
from beetsplug.mcbr.playlist_items import (
    PATH_SEPARATOR,
    KnownItems,
    LazyIndex,
    query_items,
    split_queries,
    track_of,
)
from beetsplug.mcbr.playlist_output import file_name, output, pick
from beetsplug.mcbr.settings import user_error
from mcbr_core.errors import McbrError

if TYPE_CHECKING:
    from beets.library import Item, Library

    from beetsplug.mcbr import McbrPlugin
    from mcbr_core.playlist.base import Constraints, Playlist, PlaylistStrategy
    from mcbr_core.playlist.settings import PlaylistSettings

__all__ = [
    "PATH_SEPARATOR",
    "PlaylistOptions",
    "file_name",
    "generate",
    "load_settings",
    "playlist_command",
    "query_items",
    "run",
    "split_queries",
    "track_of",
]

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
    _constraint_options(add)
    _strategy_options(add)
    cmd.parser.add_format_option(target="item")
    _file_options(add)
    _mpd_options(add)

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


def _constraint_options(add: Callable[..., Any]) -> None:
    """Options of what may go into a playlist: length, caps, seeds, restriction."""
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


def _strategy_options(add: Callable[..., Any]) -> None:
    """Options of the modes: order, clusters, dimensions, seed and ``-O KEY=VALUE``."""
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


def _file_options(add: Callable[..., Any]) -> None:
    """Options of the playlist files: where, named how, which paths."""
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


def _mpd_options(add: Callable[..., Any]) -> None:
    """Options of sending the playlist to MPD's queue."""
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
    known = KnownItems(lib, plugin.settings.tags.separator)
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
    restrict = pick(opts.restrict, settings.restrict)
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
    known: KnownItems,
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
        index=LazyIndex(plugin),
    )
    request = PlaylistRequest(
        seeds=tuple(tuple(i.id for i in items) for items in seeds),
        space=space,
        constraints=constraints,
        options=options,
        labels=tuple(labels),
    )
    return [p for p in make_playlists(strategy, request) if p.item_ids]
