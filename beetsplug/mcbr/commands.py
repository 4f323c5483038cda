"""The ``beet mcbr`` and ``beet similar`` subcommands (no heavy imports here)."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from beets import ui
from beets.util import syspath

from beetsplug.mcbr import settings
from mcbr_core.errors import McbrError
from mcbr_core.store.mtime import same_mtime

if TYPE_CHECKING:
    from beets.library import Item, Library

    from beetsplug.mcbr import McbrPlugin
    from mcbr_core.similarity import Recording


class AnalyzeOptions(Protocol):
    """Options of ``beet mcbr``."""

    force: bool
    pretend: bool
    write: bool | None
    quiet: bool
    check: bool
    fix: bool
    ray: str | None
    adopt: str | None


class SimilarOptions(Protocol):
    """Options of ``beet similar``."""

    count: int | None
    album: bool
    artist: bool
    format: str | None
    duplicates: bool | None


class Progress:
    """A one-line progress display on stderr, with the time left, for runs of more than a few items."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled and total > 3 and sys.stderr.isatty()
        self.done = 0
        self.started = time.monotonic()

    def eta(self) -> str:
        """The time left as ``m:ss`` (``h:mm:ss`` past an hour), from the mean time per item so far."""
        if not self.done:
            return "?"
        left = round((time.monotonic() - self.started) / self.done * (self.total - self.done))
        hours, rest = divmod(left, 3600)
        return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"

    def step(self, label: str) -> None:
        self.done += 1
        if self.enabled:
            head = f"mcbr: {self.done}/{self.total}, {self.eta()} left "
            text = (head + label)[:79]
            sys.stderr.write(f"\r{text:<79}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 79 + "\r")
            sys.stderr.flush()


class Counts(NamedTuple):
    """What one ``beet mcbr`` run did (``failed`` includes ``missing``)."""

    analysed: int
    retagged: int
    skipped: int
    failed: int
    missing: int = 0


def analyze_items(plugin: McbrPlugin, lib: Library, items: list[Item], opts: AnalyzeOptions) -> Counts:
    """Analyse (or re-tag from stored embeddings) items, set and write their tags."""
    write = plugin.should_write(opts.write)
    plugin.check_sources()  # a wrong source stops here, before any item is judged or marked failed
    tagger = plugin.tagger
    plan = tagger.plan([plugin.track(i) for i in items], reanalyse=opts.force)
    before = {i.id: i.copy() for i in items if plan[i.id] != "current"}
    progress = Progress(sum(1 for state in plan.values() if state == "analyse"), enabled=not opts.quiet)
    counts: Counter[str] = Counter()
    touched: list[Item] = []
    try:
        for item, outcome in plugin.process(items, persist=not opts.pretend, plan=plan):
            counts[outcome.action] += 1
            counts["missing"] += outcome.missing
            if outcome.action == "current":
                continue
            if outcome.action != "retagged":
                progress.step(item.filepath.name)
            if outcome.action == "failed":
                if not opts.pretend:
                    item.store()
                continue
            progress.close()
            if opts.pretend:
                ui.show_model_changes(item, before[item.id], fields=["genres", "mood"], always=True)
                continue
            if not opts.quiet:
                ui.show_model_changes(item, before[item.id], fields=["genres", "mood"])
            if write:
                plugin.write_fields(item)
            item.store()
            touched.append(item)
    finally:
        progress.close()
    if not opts.pretend:  # an album's tracks share one set of genres and moods
        for album_id in sorted({i.album_id for i in touched if i.album_id is not None}):
            album = lib.get_album(album_id)
            if album is None:
                continue
            for item in plugin.album_consensus(album, list(album.items())):
                if write:
                    plugin.write_fields(item)
                item.store()
    return Counts(
        counts["analysed"], counts["retagged"], counts["current"], counts["failed"], counts["missing"]
    )


def analyze_command(plugin: McbrPlugin) -> ui.Subcommand:
    """``beet mcbr [QUERY]``: analyse library items."""
    cmd = ui.Subcommand("mcbr", help="analyse tracks: genre and mood tags, embeddings for `beet similar`")
    cmd.parser.add_option("-f", "--force", action="store_true", default=False,
                          help="re-analyse items analysed before with the same model")  # fmt: skip
    cmd.parser.add_option("-p", "--pretend", action="store_true", default=False,
                          help="show the tags that would change; change nothing")  # fmt: skip
    cmd.parser.add_option("-w", "--write", action="store_true", default=None,
                          help="write tags to files (default: import.write)")  # fmt: skip
    cmd.parser.add_option("-W", "--nowrite", action="store_false", dest="write",
                          help="do not write tags to files")  # fmt: skip
    cmd.parser.add_option("-q", "--quiet", action="store_true", default=None,
                          help="print nothing but errors")  # fmt: skip
    cmd.parser.add_option("--check", action="store_true", default=False,
                          help="report items without embeddings, orphans, stale models and the index state")  # fmt: skip
    cmd.parser.add_option("--fix", action="store_true", default=False,
                          help="repair what --check reports (analyse, delete orphans, rebuild the index)")  # fmt: skip
    cmd.parser.add_option("--ray", metavar="ADDRESS", default=None,
                          help="analyse on this Ray cluster (HOST:PORT of its head, or auto; docs/scale.md)")  # fmt: skip
    cmd.parser.add_option("--adopt", metavar="CATALOGUE", default=None,
                          help="take analyses of unchanged files from a catalogue (`mcbr analyze -o CATALOGUE`)")  # fmt: skip

    def func(lib: Library, opts: AnalyzeOptions, args: list[str]) -> None:
        opts.quiet = plugin.settings.quiet if opts.quiet is None else opts.quiet
        if opts.ray or opts.adopt:
            plugin.use_cluster(opts.ray, Path(opts.adopt).expanduser().resolve() if opts.adopt else None)
        if opts.check or opts.fix:
            check_library(plugin, lib, opts)
            return
        items = list(lib.items(args))
        if not items:
            raise ui.UserError("mcbr: no items match the query")
        try:
            with plugin.run_lock():
                counts = analyze_items(plugin, lib, items, opts)
        except McbrError as exc:
            raise settings.user_error(exc) from None
        if not opts.quiet or counts.failed:
            verb = "would analyse" if opts.pretend else "analysed"
            retag_verb = "would re-tag" if opts.pretend else "re-tagged"
            retagged = f"{retag_verb} {counts.retagged} from stored embeddings, " if counts.retagged else ""
            missing = (
                f" ({counts.missing} {'file' if counts.missing == 1 else 'files'} missing)"
                if counts.missing
                else ""
            )
            where = " (`beet ls mcbr_status:failed -f '$path: $mcbr_error'`)" if counts.failed else ""
            ui.print_(f"mcbr: {verb} {counts.analysed}, {retagged}skipped {counts.skipped} up to date, "
                      f"{counts.failed} failed{missing}{where}")  # fmt: skip

    cmd.func = func
    return cmd


def check_library(plugin: McbrPlugin, lib: Library, opts: AnalyzeOptions) -> None:
    """``beet mcbr --check`` / ``--fix``: compare store and index with the library, and repair.

    Each finding names its items (beets' item format). ``--fix`` analyses what lacks
    an embedding or changed, drops orphans and rows of other models, rebuilds the
    index, and marks items whose file is missing as failed: only the user can
    repair those (restore the file, or ``beet remove`` the item).
    """
    from mcbr_core.store.check import check

    engine = plugin.engine
    mtimes: dict[int, float | None] = {}
    failed = set()
    items = {item.id: item for item in lib.items()}
    for item in items.values():
        try:
            mtimes[item.id] = os.stat(syspath(item.path)).st_mtime
        except OSError:
            mtimes[item.id] = None
        if item.get("mcbr_status") == "failed" and same_mtime(item.get("mcbr_mtime"), mtimes[item.id]):
            failed.add(item.id)
    with plugin.run_lock():
        report = check(
            engine.store,
            mtimes,
            model_id=engine.model_id,
            feature_version=engine.feature_version,
            neighbours=engine.neighbours,
            failed=frozenset(failed),
        )
        for line, ids in report.findings():
            ui.print_(f"mcbr: {line}")
            if not opts.quiet:
                for item_id in ids:
                    if item_id in items:
                        ui.print_(f"  {format(items[item_id])}")
        if report.absent:
            ui.print_("mcbr: --fix cannot repair missing files: restore them, or `beet remove` their items")
        if not opts.fix:
            if not report.ok:
                ui.print_("mcbr: run `beet mcbr --fix` to repair")
            return
        if opts.pretend:
            ui.print_("mcbr: --pretend: nothing repaired")
            return
        removed = engine.forget(report.orphans)
        for item_id, model_id in report.stale:
            removed += engine.forget([item_id], model_id=model_id)
        for item, _ in plugin.process([items[i] for i in report.absent], reanalyse=True):
            item.store()  # failed: file not found
        todo = [items[i] for i in report.missing + report.changed]
        opts.force = True
        counts = analyze_items(plugin, lib, todo, opts) if todo else Counts(0, 0, 0, 0)
        engine.refresh_index(rebuild=True)
        ui.print_(
            f"mcbr: removed {removed} embeddings, analysed {counts.analysed} items ({counts.failed} failed), "
            "rebuilt the index"
            + (f"; missing files left as failed: {len(report.absent)}" if report.absent else "")
        )


def similar_command(plugin: McbrPlugin) -> ui.Subcommand:
    """``beet similar QUERY``: the tracks, albums or artists that sound closest."""
    cmd = ui.Subcommand("similar", help="list the tracks (or albums, artists) that sound most like the query")
    cmd.parser.add_option("-n", "--count", type="int", default=None, help="number of results (default: 10)")
    cmd.parser.add_option("--album", action="store_true", default=False, help="list similar albums")
    cmd.parser.add_option("--artist", action="store_true", default=False, help="list similar artists")
    cmd.parser.add_option(
        "-d",
        "--duplicates",
        action="store_true",
        default=None,
        help="list every copy of a recording (mp3 and flac of one song), and copies of the query's tracks",
    )
    cmd.parser.add_format_option(target="item")

    def func(lib: Library, opts: SimilarOptions, args: list[str]) -> None:
        if opts.album and opts.artist:
            raise ui.UserError("mcbr: --album and --artist exclude each other")
        if not args:
            raise ui.UserError("mcbr: similar needs a query, e.g. beet similar artist:Phish")
        if opts.count is not None and opts.count < 1:
            raise ui.UserError(f"mcbr: -n/--count must be at least 1, got {opts.count}")
        try:
            similar(plugin, lib, args, opts)
        except McbrError as exc:
            raise settings.user_error(exc) from None

    cmd.func = func
    return cmd


def similar(plugin: McbrPlugin, lib: Library, query: list[str], opts: SimilarOptions) -> None:
    """Print the nearest items, albums or artists to the query's items."""
    s = plugin.settings
    engine = plugin.engine
    items = list(lib.items(query))
    if not items:
        raise ui.UserError("mcbr: no items match the query")
    ensure_embeddings(plugin, items, " ".join(query))
    n = s.similar_count if opts.count is None else opts.count
    ids = [i.id for i in items]
    if opts.album:
        kind = "album"
        query_albums = {i.album_id for i in items if i.album_id is not None}
        results = engine.neighbours.similar(ids, n, group=_album_of(lib), exclude_groups=query_albums)
        if not results:
            _explain_no_albums(lib, query_albums)
        objs = [(lib.get_album(r.key), r.distance) for r in results]
    elif opts.artist:
        kind = "artist"
        query_artists = {i.artist for i in items}
        results = engine.neighbours.similar(ids, n, group=_artist_of(lib), exclude_groups=query_artists)
        objs = [(_representative(lib, r.key), r.distance) for r in results]
    else:
        kind = "item"
        duplicates = s.similar_duplicates if opts.duplicates is None else opts.duplicates
        same = None if duplicates else _recording_of(lib, items)
        results = engine.neighbours.similar(ids, n, same=same)
        objs = [(lib.get_item(r.key), r.distance) for r in results]
    fmt = opts.format or s.formats[kind]
    for obj, distance in objs:
        if obj is None:
            continue
        obj["mcbr_distance"] = distance  # in memory only, for the format string
        ui.print_(format(obj, fmt))


def ensure_embeddings(plugin: McbrPlugin, items: list[Item], query: str) -> None:
    """Analyse items without an embedding, as ``beet similar`` does (up to ``similar.analyze_missing``)."""
    engine = plugin.engine
    missing = [i for i in items if engine.store.row(i.id, engine.model_id) is None]
    if not missing:
        return
    if len(missing) > plugin.settings.analyze_missing:
        others = [m for m in engine.store.model_ids() if m != engine.model_id]
        if others:
            raise ui.UserError(
                f"mcbr: the store holds embeddings of {', '.join(others)}, but mcbr.model is now "
                f"{engine.model_id}; run `beet mcbr` to re-analyse the library with it"
            )
        raise ui.UserError(
            f"mcbr: {len(missing)} of the query's items have no embedding; run `beet mcbr {query}` first"
        )
    plugin.log.info("analysing {} item(s) without an embedding", len(missing))
    for item, outcome in plugin.process(missing, reanalyse=True):
        if outcome.status != "failed" and plugin.should_write():
            plugin.write_fields(item)
        item.store()
    if all(engine.store.row(i.id, engine.model_id) is None for i in items):
        raise ui.UserError("mcbr: none of the query's items could be analysed")


def _album_of(lib: Library) -> Callable[[int], Hashable]:
    cache: dict[int, Hashable] = {}

    def key(item_id: int) -> Hashable:
        if item_id not in cache:
            item = lib.get_item(item_id)
            cache[item_id] = item.album_id if item else None
        return cache[item_id]

    return key


def _explain_no_albums(lib: Library, query_albums: set[int]) -> None:
    """Say why ``similar --album`` found nothing: no other album, or none with an embedding yet."""
    others = sum(1 for album in lib.albums() if album.id not in query_albums)
    if not others:
        singletons = "every track was imported as a singleton, " if not query_albums else ""
        raise ui.UserError(
            f"mcbr: --album: the library has no album besides the query's ({singletons}singletons "
            "belong to no album); try --artist, or beet similar without --album"
        )
    raise ui.UserError(
        f"mcbr: --album: none of the other {others} albums has an embedding yet; run `beet mcbr`"
    )


def _artist_of(lib: Library) -> Callable[[int], Hashable]:
    def key(item_id: int) -> Hashable:
        item = lib.get_item(item_id)
        return item.artist if item and item.artist else None

    return key


def _representative(lib: Library, artist: str) -> Item | None:
    from beets.dbcore.query import MatchQuery

    return next(iter(lib.items(MatchQuery("artist", artist))), None)


def _recording_of(lib: Library, known: list[Item]) -> Callable[[int], Recording | None]:
    """Each item's recording for ``beet similar``: its ``mb_trackid``, and its artist and title."""
    from mcbr_core.similarity import Recording

    def of(item: Item) -> Recording | None:
        return Recording.of(mbid=item.get("mb_trackid"), artist=item.get("artist"), title=item.get("title"))

    cache: dict[int, Recording | None] = {i.id: of(i) for i in known}

    def key(item_id: int) -> Recording | None:
        if item_id not in cache:
            item = lib.get_item(item_id)
            cache[item_id] = of(item) if item else None
        return cache[item_id]

    return key
