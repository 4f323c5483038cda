"""Mixes: ``beet mcbr-mixes`` and the rewrite at the end of a command that changed the library.

A mix (``mcbr.mixes``, see ``mcbr_core.playlist.mixes``) is made as ``mcbr-playlist``
makes a playlist, from the ``mcbr.playlist`` settings with the mix's overrides, and
written into the mixes folder as an M3U file with paths relative to it. A file whose
content would not change is not touched (players rescan by modification time).

Like smartplaylist, the plugin notes ``database_change`` and writes the mixes once, at
``cli_exit``, when ``mixes_auto`` is on. No item is analysed on the way: a seed without
an embedding is left out, and a mix none of whose seeds has one is reported.
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from beets import ui

from beetsplug.mcbr import settings as plugin_settings
from beetsplug.mcbr.settings import user_error
from mcbr_core.errors import McbrError

if TYPE_CHECKING:
    from beets.library import Item, Library

    from beetsplug.mcbr import McbrPlugin
    from beetsplug.mcbr.playlist_items import KnownItems
    from mcbr_core.playlist.mixes import MixFile, MixSpec
    from mcbr_core.playlist.settings import PlaylistSettings


class MixesOptions(Protocol):
    """Options of ``beet mcbr-mixes``."""

    pretend: bool | None


def mixes_command(plugin: McbrPlugin) -> ui.Subcommand:
    """``beet mcbr-mixes [NAME ...]``: write the configured mixes now."""
    cmd = ui.Subcommand("mcbr-mixes", help="write the mixes of mcbr.mixes again (all, or those named)")
    cmd.parser.set_usage("%prog [NAME ...] [-p]")
    cmd.parser.add_option(
        "-p", "--pretend", action="store_true", default=None, help="show what would change; write nothing"
    )

    def func(lib: Library, opts: MixesOptions, args: list[str]) -> None:
        watcher = getattr(plugin, "mixes_watcher", None)
        if watcher is not None:
            watcher.done = True  # no second rewrite when the command ends
        try:
            files = write_mixes(plugin, lib, names=args, pretend=bool(opts.pretend))
        except McbrError as exc:
            raise user_error(exc, "mcbr-mixes") from None
        for f in files:
            ui.print_(describe(f, pretend=bool(opts.pretend)))
        if opts.pretend:
            ui.print_("mcbr-mixes: nothing written (-p)")

    cmd.func = func
    return cmd


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def describe(f: MixFile, *, pretend: bool = False) -> str:
    """One line per file: ``new: Calm evenings.m3u (30 tracks, 1:52:10)``."""
    was = f", was {f.was}" if f.was is not None else ""
    status = (
        {"new": "would be new", "changed": "would change"}.get(f.status, f.status) if pretend else f.status
    )
    return f"{status}: {f.path.name} ({f.tracks} tracks, {_clock(f.seconds)}{was})"


def _select(specs: Sequence[MixSpec], names: Sequence[str]) -> list[MixSpec]:
    """The specs a command line names (all without names). A name may be a mix's (``"Radio $artist"``)
    or one of a family's (``"Radio Phish"``): the families are then kept, to be matched by the
    names they make."""
    if not names:
        return list(specs)
    wanted = {n.strip().lower() for n in names}
    chosen = [s for s in specs if s.name.strip().lower() in wanted]
    unknown = wanted - {s.name.strip().lower() for s in specs}
    if not unknown:
        return chosen
    families = [s for s in specs if s.for_each and s not in chosen]
    if not families:
        known = ", ".join(repr(s.name) for s in specs) or "none"
        raise ui.UserError(f"mcbr-mixes: no mix is called {min(unknown)!r} (mixes: {known})")
    return [s for s in specs if s in chosen or s in families]


def _groups(
    plugin: McbrPlugin, lib: Library, spec: MixSpec, strategy: Any
) -> list[tuple[str, list[list[Item]], list[str]]]:
    """``(name, seed items per query, labels)`` of each mix a spec makes; a query matching nothing
    is reported and makes none."""
    from beetsplug.mcbr.playlist_items import split_queries
    from mcbr_core.tagging import split_list

    terms = shlex.split(spec.query)
    if spec.for_each:
        items = list(lib.items(terms))
        by_value: dict[str, list[Item]] = {}
        sep = plugin.settings.tags.separator
        for item in items:
            value = item.get(spec.for_each)
            if value is None or value == "":
                continue
            if isinstance(value, (list, tuple)):
                values = [str(v) for v in value]
            elif spec.for_each == "mood":
                values = split_list(str(value), sep)
            else:
                values = [str(value)]
            for v in dict.fromkeys(v.strip() for v in values if str(v).strip()):
                by_value.setdefault(v, []).append(item)
        if not by_value:
            what = f"the query {spec.query!r}" if spec.query else "the library"
            plugin.log.warning(
                "mix {}: no track of {} has a {}; nothing written", spec.name, what, spec.for_each
            )
            return []
        ranked = sorted(by_value, key=lambda v: (-len(by_value[v]), v.lower()))
        if spec.limit and len(ranked) > spec.limit:
            plugin.log.debug(
                "mix {}: the {} {} values with most tracks of {} (limit)",
                spec.name,
                spec.limit,
                spec.for_each,
                len(ranked),
            )
            ranked = ranked[: spec.limit]
        return [(spec.expand(v), [by_value[v]], [v]) for v in ranked]
    queries = split_queries(terms, strategy) if terms or strategy.queries[0] else []
    seeds = []
    for query in queries:
        found = list(lib.items(query))
        if not found:
            plugin.log.warning(
                "mix {}: the query {!r} matches nothing; nothing written", spec.name, " ".join(query)
            )
            return []
        seeds.append(found)
    return [(spec.name, seeds, [" ".join(q) for q in queries])]


def write_mixes(
    plugin: McbrPlugin, lib: Library, *, names: Sequence[str] = (), pretend: bool = False
) -> list[MixFile]:
    """Make the mixes (all, or those ``names`` name) and write those that changed.

    Returns one ``MixFile`` per playlist file, written or not. A mix that matches nothing,
    or that no track fits, is reported in one log line and its file is left alone.

    Raises
    ------
    UserError
        For an invalid mix, an unknown name, or no folder to write into.
    """
    from beetsplug.mcbr.playlist_command import generate, load_settings
    from beetsplug.mcbr.playlist_items import KnownItems

    mixes = plugin_settings.load_mixes(plugin.config)
    specs = _select(mixes.mixes, names)
    if not specs:
        return []
    if mixes.folder is None:
        raise ui.UserError("mcbr: mixes need a folder: set mcbr.mixes_dir (or playlist.playlist_dir)")
    settings = load_settings(plugin)
    engine = plugin.engine
    if engine.store.count(engine.model_id) == 0:
        plugin.log.warning("mixes: no track has an embedding of {} yet; nothing written", engine.model_id)
        return []
    known = KnownItems(lib, plugin.settings.tags.separator)
    allowed_cache: dict[str, list[int]] = {}
    wanted = {n.strip().lower() for n in names}
    out: list[MixFile] = []
    matched: set[str] = set()
    for spec in specs:
        strategy, options = _strategy(spec, f"mcbr.mixes[{mixes.mixes.index(spec)}]", engine, settings)
        constraints = _constraints(settings, spec)
        restrict = spec.restrict if spec.restrict is not None else settings.restrict
        extension = spec.extension or settings.extension
        for name, seeds, labels in _groups(plugin, lib, spec, strategy):
            if wanted and spec.name.strip().lower() not in wanted:
                if name.lower() not in wanted:
                    continue  # another mix of the family
                matched.add(name.lower())
            for items in seeds:
                known.add(items)
            try:
                playlists = generate(
                    plugin,
                    lib,
                    strategy,
                    seeds,
                    labels=labels,
                    constraints=constraints,
                    options=options,
                    restrict=restrict,
                    known=known,
                    allowed_cache=allowed_cache,
                )
            except McbrError as exc:
                plugin.log.warning("mix {}: {}; nothing written", name, exc)
                continue
            if not playlists:
                plugin.log.warning(
                    "mix {}: no track fits (the caps, restrict or duration); nothing written", name
                )
                continue
            for playlist in playlists:
                title = name if len(playlists) == 1 else f"{name} - {playlist.name}"
                out.append(_write_file(title, playlist, known, settings, mixes.folder, extension, pretend))
    unmatched = wanted - matched - {s.name.strip().lower() for s in specs}
    if unmatched:
        plugin.log.warning("no mix is called {!r}", min(unmatched))
    return out


def _strategy(
    spec: MixSpec, where: str, engine: Any, settings: PlaylistSettings
) -> tuple[Any, dict[str, Any]]:
    """The mix's strategy and its options (``mcbr.playlist``'s for the mode, then the mix's own), checked."""
    from mcbr_core.config_keys import check_keys
    from mcbr_core.playlist.generate import get_strategy

    try:
        strategy = get_strategy(spec.mode, engine.plugins)
    except McbrError as exc:
        raise McbrError(f"{where}.mode: {exc}") from None
    options = {**settings.modes.get(strategy.name, {}), **spec.options}
    check_keys(options, strategy.defaults, where=f"{where}.options")
    return strategy, options


def _write_file(
    title: str,
    playlist: Any,
    known: KnownItems,
    settings: PlaylistSettings,
    folder: Path,
    extension: str,
    pretend: bool,
) -> MixFile:
    """Write one playlist of a mix to ``folder/TITLE.EXTENSION`` unless it is unchanged (or ``pretend``)."""
    from beetsplug.mcbr.playlist_output import file_name
    from mcbr_core.playlist import m3u
    from mcbr_core.playlist.mixes import MixFile, compare

    path = Path(folder) / f"{file_name(title)}.{extension}"
    tracks = known.tracks(playlist.item_ids)
    entries = [m3u.entry(tracks[i]) for i in playlist.item_ids if i in tracks]
    style = {
        "name": title,
        "extended": settings.extended,
        "relative": True,
        "forward_slash": settings.forward_slash,
    }
    status, was = compare(path, m3u.render(entries, folder=path.parent, **style))
    if status != "unchanged" and not pretend:
        try:
            m3u.write(path, entries, **style)
        except OSError as exc:
            raise ui.UserError(f"mcbr: cannot write {path}: {exc.strerror or exc}") from None
    seconds = sum(tracks[i].duration for i in playlist.item_ids if i in tracks)
    return MixFile(title, path, status, len(entries), seconds, was)


def _constraints(settings: PlaylistSettings, spec: MixSpec) -> Any:
    count = (
        spec.count if spec.count is not None or spec.duration is None else 0
    )  # duration alone lifts the count
    return settings.constraints(
        count=count,
        duration=spec.duration,
        max_per_artist=spec.max_per_artist,
        max_per_album=spec.max_per_album,
        no_artist_repeat=spec.no_artist_repeat,
        include_seed=spec.include_seed,
        order=spec.order,
        seed=spec.seed,
    )


# -- the rewrite at the end of a command -----------------------------------------------------


class MixesWatcher:
    """Notes library changes and writes the mixes once, when the command ends (smartplaylist's pattern)."""

    def __init__(self, plugin: McbrPlugin) -> None:
        self.plugin = plugin
        self.changed = False
        self.done = False  # `beet mcbr-mixes` wrote them already

    def database_change(self, lib: Library, model: object) -> None:
        self.changed = True

    def cli_exit(self, lib: Library) -> None:
        changed, self.changed = self.changed, False
        done, self.done = self.done, False
        if not changed or done:
            return
        try:
            mixes = plugin_settings.load_mixes(self.plugin.config)
            if not mixes.auto or not mixes.mixes:
                return
            files = write_mixes(self.plugin, lib)
        except (McbrError, ui.UserError) as exc:
            self.plugin.log.error("cannot write the mixes: {}", exc)
            return
        counts = Counter(f.status for f in files)
        if counts["new"] or counts["changed"]:
            self.plugin.log.info(
                "mixes: {} new, {} changed, {} unchanged in {}",
                counts["new"],
                counts["changed"],
                counts["unchanged"],
                files[0].path.parent,
            )
