"""MPD from beets: ``beet mcbr-playlist --mpd`` and ``beet mcbr-dj``.

The plugin side of ``mcbr_core.players``: beets' items become ``Track`` values and a
``Space`` (as for ``mcbr-playlist``), MPD's file URIs become library items by path,
and the config becomes ``MpdSettings`` and ``DjSettings`` (``settings.load_mpd``,
``settings.load_dj``). No heavy imports at module level.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from beets import ui

from beetsplug.mcbr import settings as plugin_settings
from beetsplug.mcbr.settings import user_error
from mcbr_core.errors import McbrError

if TYPE_CHECKING:
    from beets.library import Library

    from beetsplug.mcbr import McbrPlugin
    from mcbr_core.players.dj import Dj
    from mcbr_core.players.mpd import MpdSettings, Stopper


def send_to_mpd(plugin: McbrPlugin, paths: Sequence[str], *, replace: bool, pretend: bool) -> int:
    """Queue files in MPD (``--mpd``): appended, or with ``replace`` in place of the queue, playing.

    Returns the number of songs queued. Files outside MPD's music folder, or unknown
    to its database, are skipped with one log line each kind.

    Raises
    ------
    UserError
        When MPD cannot be reached or queues none of the files.
    """
    from mcbr_core.players.mpd import MpdPlayer, send

    mpd_settings = plugin_settings.load_mpd(plugin.config)
    verb = "put in place of MPD's queue" if replace else "add to MPD's queue"
    if pretend:
        ui.print_(f"mcbr: would {verb} {len(paths)} tracks (MPD at {mpd_settings.where})")
        return 0
    player = MpdPlayer(mpd_settings)
    try:
        player.connect()
        sent = send(player, paths, replace=replace)
    except McbrError as exc:
        raise user_error(exc) from None
    finally:
        player.close()
    if sent.outside:
        plugin.log.warning(
            "{} of {} tracks lie outside MPD's music directory {} and were skipped, e.g. {} "
            "(set mcbr.mpd.music_directory if MPD sees the library elsewhere)",
            len(sent.outside),
            len(paths),
            player.music.root,
            sent.outside[0],
        )
    if sent.unknown:
        plugin.log.warning(
            "MPD does not know {} of the tracks, e.g. {}; is its database up to date (mpc update)?",
            len(sent.unknown),
            sent.unknown[0],
        )
    if not sent.added:
        raise ui.UserError(f"mcbr: MPD at {mpd_settings.where} queued none of the {len(paths)} tracks")
    done = "replaced MPD's queue with" if replace else "added to MPD's queue"
    ui.print_(f"mcbr: {done} {sent.added} tracks" + (", playing" if replace else ""))
    return sent.added


# -- beet mcbr-dj ------------------------------------------------------------------------


class DjOptions(Protocol):
    """Options of ``beet mcbr-dj`` (``None``: the config decides)."""

    restrict: str | None
    ahead: int | None
    history: int | None
    seeds: int | None


def dj_command(plugin: McbrPlugin) -> ui.Subcommand:
    """``beet mcbr-dj``: keep MPD's queue going with tracks that sound like what plays."""
    cmd = ui.Subcommand("mcbr-dj", help="keep MPD's queue going with tracks that sound like what is playing")
    cmd.parser.set_usage("%prog [options]")
    add = cmd.parser.add_option
    add(
        "-r",
        "--restrict",
        default=None,
        metavar="QUERY",
        help='queue only tracks matching this query, e.g. "genres:Jazz" (default: mcbr.playlist.restrict)',
    )
    add(
        "-n",
        "--ahead",
        type="int",
        default=None,
        metavar="N",
        help="tracks kept queued after the current one (5)",
    )
    add(
        "--history",
        type="int",
        default=None,
        metavar="N",
        help="never queue one of the last N songs played (50)",
    )
    add(
        "--seeds",
        type="int",
        default=None,
        metavar="N",
        help="sound like the last N songs played, skips left out (3)",
    )

    def func(lib: Library, opts: DjOptions, args: list[str]) -> None:
        if args:
            raise ui.UserError("mcbr-dj takes no query; restrict it with -r QUERY")
        from mcbr_core.players.mpd import Stopper

        stopper = Stopper()
        run: DjRun | None = None
        try:
            run = start_dj(plugin, lib, opts)
            ahead, where = run.dj.settings.ahead, run.mpd.where
            ui.print_(f"mcbr-dj: keeping {ahead} tracks ahead in MPD at {where}; Ctrl-C stops")
            run.serve(stopper)
        except KeyboardInterrupt:
            ui.print_(f"mcbr-dj: stopped ({run.dj.queued if run else 0} tracks queued)")
        except McbrError as exc:
            raise user_error(exc, "mcbr-dj") from None
        finally:
            stopper.close()

    cmd.func = func
    return cmd


def music_dir_context(lib: Library) -> contextlib.AbstractContextManager[Any]:
    """The library's folder bound for path conversion in this thread.

    beets 2.x stores paths below ``directory`` relative to it, and expands them with
    the folder kept in a context variable that only the thread opening the library
    has set: a thread of its own (a test's DJ) binds it first.
    """
    bind = getattr(lib, "music_dir_context", None)
    return bind() if bind is not None else contextlib.nullcontext()


def _expand(path: bytes) -> bytes:
    """A path as the database stores it, made absolute (relative to ``directory`` since beets 2.x)."""
    try:
        from beets.dbcore.pathutils import expand_path_from_db
    except ImportError:  # a beets that stores absolute paths
        return path
    return expand_path_from_db(path)


class _DjLibrary:
    """Library items by path (for MPD's files) and by id (for the DJ's picks)."""

    def __init__(self, plugin: McbrPlugin, lib: Library) -> None:
        from beetsplug.mcbr.playlist_items import KnownItems

        self.lib = lib
        self.known = KnownItems(lib, plugin.settings.tags.separator)
        with lib.transaction() as tx:  # ids and paths only: no Item objects for the whole library
            rows = tx.query("SELECT id, path FROM items")
        with music_dir_context(lib):
            self.by_path = {
                os.path.normpath(os.fsdecode(_expand(bytes(path)))): int(i) for i, path in rows if path
            }

    def item_of(self, path: str) -> int | None:
        key = os.path.normpath(path)
        found = self.by_path.get(key)
        if found is None:  # imported since the DJ started
            from beets.dbcore.query import PathQuery

            item = self.lib.items(PathQuery("path", os.fsencode(key))).get()
            if item is not None:
                found = self.by_path[key] = item.id
        return found

    def path_of(self, item_id: int) -> str | None:
        track = self.known.tracks([item_id]).get(item_id)
        return track.path if track is not None else None


def start_dj(plugin: McbrPlugin, lib: Library, opts: DjOptions) -> DjRun:
    """The DJ for a command line: MPD's settings, the candidates (the restriction, inside MPD's
    music folder), caps and radio weights from ``mcbr.playlist``."""
    from beetsplug.mcbr.playlist_command import load_settings
    from beetsplug.mcbr.playlist_items import LazyIndex
    from mcbr_core.players.dj import Dj
    from mcbr_core.players.mpd import MusicDirectory
    from mcbr_core.playlist.space import Space
    from mcbr_core.playlist.strategies import RadioOptions
    from mcbr_core.settings import from_mapping

    mpd_settings = plugin_settings.load_mpd(plugin.config)
    dj_settings = plugin_settings.load_dj(
        plugin.config, ahead=opts.ahead, history=opts.history, seeds=opts.seeds
    )
    settings = load_settings(plugin)
    radio = from_mapping(RadioOptions, settings.modes.get("radio", {}), where="mcbr.playlist.radio")
    engine = plugin.engine
    if engine.store.count(engine.model_id) == 0:
        raise ui.UserError(f"mcbr: no track has an embedding of {engine.model_id} yet; run `beet mcbr` first")
    library = _DjLibrary(plugin, lib)
    music = MusicDirectory(mpd_settings.music_directory)
    restrict = opts.restrict if opts.restrict is not None else settings.restrict
    if restrict:
        ids = {item.id for item in lib.items(restrict)}
        candidates = {p: i for p, i in library.by_path.items() if i in ids}
        if not candidates:
            raise ui.UserError(f"mcbr-dj: no track matches {restrict!r}")
    else:
        candidates = library.by_path
    inside = [i for p, i in candidates.items() if music.uri(p) is not None]
    outside = len(candidates) - len(inside)
    if outside:
        plugin.log.warning(
            "{} of {} tracks lie outside MPD's music directory {} and are left out "
            "(set mcbr.mpd.music_directory if MPD sees the library elsewhere)",
            outside,
            len(candidates),
            music.root,
        )
    if not inside:
        raise ui.UserError(f"mcbr-dj: no track lies inside MPD's music directory {music.root}")
    space = Space(
        loader=lambda ids: engine.store.vectors(engine.model_id, ids),
        tracks=library.known.tracks,
        metric=engine.neighbours.metric,
        allowed=inside,
        index=LazyIndex(plugin),
    )
    return DjRun(Dj(space, dj_settings, settings.constraints(), radio), library, mpd_settings)


@dataclass
class DjRun:
    """A DJ ready to run: its decisions, the library lookups and MPD's address."""

    dj: Dj
    library: _DjLibrary
    mpd: MpdSettings

    def serve(self, stopper: Stopper | None = None) -> None:
        """Run until ``stopper`` stops it or Ctrl-C (``KeyboardInterrupt`` propagates, the
        connection closed).

        Raises
        ------
        McbrError
            When MPD cannot be reached, or stays away longer than ``mcbr.dj.reconnect``.
        """
        from mcbr_core.players.mpd import MpdPlayer
        from mcbr_core.players.mpd_dj import run_dj

        with music_dir_context(self.library.lib):
            run_dj(
                self.dj,
                MpdPlayer(self.mpd),
                path_of=self.library.path_of,
                item_of=self.library.item_of,
                stopper=stopper,
            )
