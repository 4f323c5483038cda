"""beets-mcbr: content-based genre/mood tagging and similar-track search for beets.

The plugin translates beets (items, queries, config, UI) into plain values and
calls ``mcbr_core``. Importing this module must stay light: torch, annoy and
librosa are imported only when the engine is first used.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mediafile
from beets import ui
from beets.plugins import BeetsPlugin
from beets.util import syspath

from beetsplug.mcbr import fields, settings
from beetsplug.mcbr.mixes_command import MixesWatcher
from mcbr_core.errors import McbrError
from mcbr_core.tagger import file_mtime
from mcbr_core.tagging import encode_own

if TYPE_CHECKING:
    from beets.importer import ImportSession, ImportTask
    from beets.library import Album, Item, Library

    from mcbr_core.engine import Engine
    from mcbr_core.settings import RaySettings
    from mcbr_core.store.lock import RunLock
    from mcbr_core.tagger import Outcome, Tagger, Track

#: The score attributes this plugin owns: per label, and the continuous ones.
SCORE_PREFIXES = ("mcbr_genre_", "mcbr_mood_", "mcbr_arousal", "mcbr_valence")


class _BeetsLogHandler(logging.Handler):
    """Bridges the core's stdlib log records into the plugin's beets logger."""

    def __init__(self, plugin_log: logging.Logger) -> None:
        super().__init__()
        self.plugin_log = plugin_log

    def emit(self, record: logging.LogRecord) -> None:
        # beets' logger formats with {} placeholders: hand it the finished message
        self.plugin_log.log(record.levelno, "{}", record.getMessage())


class McbrPlugin(BeetsPlugin):
    """The ``mcbr`` beets plugin."""

    def __init__(self, name: str = "mcbr") -> None:
        super().__init__(name)
        self.config.add(settings.DEFAULTS)
        self._add_mood_field()
        # `$mood` in a format is empty, not a literal `$mood`, for an item without moods
        self.template_fields[fields.MOOD_FIELD] = fields.mood_of
        self._library: Path | None = None
        self._ray_address: str | None = None  # beet mcbr --ray
        self._catalogue: Path | None = None  # beet mcbr --adopt
        self._pending_writes: dict[int, bool] = {}
        self._import_counts: Counter[str] = Counter()
        core_log = logging.getLogger("mcbr_core")
        core_log.handlers = [h for h in core_log.handlers if not isinstance(h, _BeetsLogHandler)]
        core_log.addHandler(_BeetsLogHandler(self._log))
        core_log.setLevel(logging.DEBUG)
        core_log.propagate = False
        try:
            auto = settings.read_auto(self.config)
        except ui.UserError:
            auto = True  # the first import stage or command stops with the error's one line
        if auto:
            self.import_stages = [self.imported]
            self.register_listener("import_task_files", self.import_task_files)
            self.register_listener("import", self.import_summary)
        self.register_listener("library_opened", self.use_library)
        self.register_listener("item_removed", self.item_removed)
        self.register_listener("item_moved", self.item_moved)
        self.register_listener("cli_exit", self.cli_exit)
        # mixes: noted on any library change, written once when the command ends (after the index)
        self.mixes_watcher = MixesWatcher(self)
        self.register_listener("database_change", self.mixes_watcher.database_change)
        self.register_listener("cli_exit", self.mixes_watcher.cli_exit)

    # -- setup ---------------------------------------------------------------

    def _add_mood_field(self) -> None:
        if fields.MOOD_FIELD in mediafile.MediaFile.fields():
            self._log.debug("a {} media field exists already; using it", fields.MOOD_FIELD)
            return
        try:
            self.add_media_field(fields.MOOD_FIELD, fields.mood_media_field())
        except ValueError:  # a second registration (plugin loaded twice)
            pass

    @cached_property
    def settings(self) -> settings.PluginSettings:
        """Validated config (read once per process)."""
        return settings.load(self.config)

    @cached_property
    def engine(self) -> Engine:
        """The core engine; creating it imports nothing heavy."""
        from mcbr_core.engine import Engine

        s = self.settings
        store_path = self.store_path
        return Engine(
            analysis=s.analysis,
            pool=s.pool,
            tags=s.tags,
            index=s.index,
            store_path=store_path,
            index_dir=store_path.parent / f"{store_path.stem}-index",
            base_dir=s.base_dir,
            owner=self._library_identity(),
            ray=self._ray_settings(),
            catalogue=self._catalogue or s.adopt,
        )

    def use_cluster(self, address: str | None = None, catalogue: Path | None = None) -> None:
        """For this command: analyse on the Ray cluster at ``address`` and adopt from ``catalogue``.

        The command-line options ``--ray`` and ``--adopt``; each overrides its
        setting (``ray.address``, ``adopt``) where given.
        """
        self._ray_address = address or self._ray_address
        self._catalogue = catalogue or self._catalogue
        engine = self.__dict__.get("engine")
        if engine is not None:
            engine.use_ray(self._ray_settings())
            engine.adopt_from(self._catalogue or self.settings.adopt)

    def _ray_settings(self) -> RaySettings:
        from dataclasses import replace

        ray = self.settings.ray
        return replace(ray, address=self._ray_address) if self._ray_address else ray

    # -- the library's own store -----------------------------------------------

    def _library_path(self) -> Path:
        return self._library or settings.library_file()

    def _library_identity(self) -> str:
        from mcbr_core.store.ownership import library_identity

        path = self._library_path()
        return ":memory:" if str(path) == ":memory:" else library_identity(path)

    @property
    def store_path(self) -> Path:
        """This library's embedding store: ``mcbr.store``, or a sidecar beside the library file."""
        if self.settings.store_path is not None:
            return self.settings.store_path
        library = self._library_path()
        if str(library) == ":memory:":  # a throw-away library: the config folder's store
            return self.settings.legacy_store
        return library.with_name(f"{library.stem}.mcbr.db")

    def use_library(self, lib: Library) -> None:
        """Work on ``lib``'s store from now on (sent by beets when it opens a library).

        The first time a library's sidecar store is wanted while an older store
        shared per config folder exists, its rows are taken over where they are
        unambiguously this library's (``mcbr_core.store.ownership.adopt``).
        """
        path = Path(os.fsdecode(lib.path))
        if path == self._library:
            return
        self._library = path
        engine = self.__dict__.get("engine")
        if engine is not None and engine.store_path != self.store_path:
            del self.__dict__["engine"]
            self._finish(engine)
        store_path, legacy = self.store_path, self.settings.legacy_store
        if (
            self.settings.store_path is None
            and store_path != legacy
            and legacy.exists()
            and not store_path.exists()
        ):
            self._adopt(lib, legacy)

    def _adopt(self, lib: Library, legacy: Path) -> None:
        from mcbr_core.store.ownership import adopt

        items = {item.id: bytes(item.path) for item in lib.items()}
        try:
            result = adopt(legacy, self.engine.store, items, self._library_identity())
        except McbrError as exc:
            self._log.warning("cannot take over {}: {}", legacy, exc)
            return
        if result.copied:
            self._log.info(
                "this library's embeddings now live in {} (taken over from {})", self.store_path, legacy
            )
            self.engine.dirty = True
        else:
            self._log.debug("not taking over {}: {}", legacy, result.reason)

    @property
    def item_types(self) -> dict[str, Any]:  # type: ignore[override]
        """Typed flexible attributes, including one score per genre/mood label of the model."""
        types = dict(fields.BASE_TYPES)
        try:
            types.update(fields.score_types(self.engine.score_field_names()))
        except (McbrError, ui.UserError) as exc:
            self._log.warning("score attributes untyped: {}", exc)
        return types

    def commands(self) -> list[ui.Subcommand]:
        from beetsplug.mcbr.commands import analyze_command, similar_command
        from beetsplug.mcbr.mixes_command import mixes_command
        from beetsplug.mcbr.mpd_command import dj_command
        from beetsplug.mcbr.playlist_command import playlist_command
        from beetsplug.mcbr.serve import serve_command
        from beetsplug.mcbr.train_command import train_command

        return [
            analyze_command(self),
            similar_command(self),
            playlist_command(self),
            dj_command(self),
            mixes_command(self),
            train_command(self),
            serve_command(self),
        ]

    # -- analysis: beets items <-> the core's plain requests and outcomes -----------------

    @property
    def log(self) -> logging.Logger:
        """The plugin's beets logger (``{}`` placeholders), for the subcommands."""
        return self._log

    @property
    def tagger(self) -> Tagger:
        """The core's analyse-tag-record entry point, with this config's ownership rule."""
        from mcbr_core.tagger import Tagger

        return Tagger(self.engine, force=self.settings.force, keep_existing=self.settings.keep_existing)

    def track(self, item: Item | Album) -> Track:
        """The core's request for ``item``: its file, its tags and what its last analysis recorded.

        An album has no file of its own: its request serves the album's consensus.
        """
        from beets.library import Item

        from mcbr_core.tagger import Track

        sep = self.settings.tags.separator
        return Track(
            id=item.id,
            path=os.fsdecode(syspath(item.path)) if isinstance(item, Item) else "",
            values={
                kind: fields.field_values(item, field, sep) for kind, field in fields.KIND_FIELDS.items()
            },
            own={kind: fields.own_values(item, field) for kind, field in fields.KIND_FIELDS.items()},
            model=item.get("mcbr_model"),
            heads=item.get("mcbr_heads"),
            status=item.get("mcbr_status"),
            mtime=item.get("mcbr_mtime"),
            scores={k: item[k] for k in self.engine.subgenre_fields if k in item},
        )

    def process(
        self,
        items: list[Item],
        *,
        reanalyse: bool = False,
        persist: bool = True,
        plan: dict[int, str] | None = None,
    ) -> Iterator[tuple[Item, Outcome]]:
        """Bring items up to date through the core; yield each with its outcome, already applied.

        The items' fields are set (not stored, not written): see ``apply``. With
        ``persist=False`` (``--pretend``) the store is left alone.
        """
        self.check_sources()
        by_id = {item.id: item for item in items}
        for outcome in self.tagger.run([self.track(i) for i in items], reanalyse=reanalyse, persist=persist,
                                       plan=plan):  # fmt: skip
            item = by_id[outcome.id]
            self.apply(item, outcome)
            yield item, outcome

    def check_sources(self) -> None:
        """Load the kinds' clip heads and open the store once, before any item is analysed.

        A wrong ``source`` setting, or a store of another library, stops the run
        with one message, rather than marking every item failed.

        Raises
        ------
        ui.UserError
            If a head cannot be found or loaded, or reads another model's embedding,
            or the store belongs to another library.
        """
        try:
            _ = self.engine.heads  # loads them
            _ = self.engine.store  # claims it for this library, or refuses another library's
        except McbrError as exc:
            raise settings.user_error(exc) from None

    def apply(self, item: Item, outcome: Outcome) -> None:
        """Set an outcome's tags, scores and attributes on ``item`` (not stored, not written)."""
        if outcome.action == "current":
            return
        sep = self.settings.tags.separator
        for kind, field in fields.KIND_FIELDS.items():
            if kind not in outcome.values:
                continue
            new = outcome.values[kind]
            if new != fields.field_values(item, field, sep):
                item[field] = new if field == "genres" else sep.join(new)
            item[fields.OWN[field]] = encode_own(outcome.own[kind])
        if outcome.tags is not None:
            stale = [
                k
                for k in item.keys(computed=False)
                if k.startswith(SCORE_PREFIXES) and k not in outcome.scores
            ]
            for key in stale:
                del item[key]  # a score of a label the current source does not have (after a source change)
            for key, value in outcome.scores.items():
                item[key] = value
        for key, value in outcome.attributes.items():
            item[key] = value
        if outcome.action == "consensus":  # only the names written changed
            return
        item["mcbr_status"] = outcome.status
        if outcome.error:
            item["mcbr_error"] = outcome.error
        elif "mcbr_error" in item:
            del item["mcbr_error"]

    def album_consensus(self, album: Album | None, items: list[Item]) -> list[Item]:
        """Give an album one set of genres and moods, from its analysed tracks' mean scores.

        The album gets them, and so do its items unless ``per_track`` is set (each
        item keeps its user's values under the ownership rule). The album is
        stored without passing fields on to its items, so an item's own value is
        never replaced by another track's. Items are set, not stored.

        Returns
        -------
        list[Item]
            The items whose genres or moods changed.
        """
        analysed = [i for i in items if i.get("mcbr_status") in ("ok", "partial")]
        if not analysed:
            return []
        scores = [{k: i[k] for k in i.keys(computed=False) if k.startswith(SCORE_PREFIXES)} for i in analysed]
        targets: list[Any] = [] if self.settings.per_track else list(analysed)
        if album is not None:
            targets.append(album)
        outcomes = self.tagger.consensus([self.track(t) for t in targets], scores)
        changed = []
        for target, outcome in zip(targets, outcomes):
            before = [
                fields.field_values(target, f, self.settings.tags.separator)
                for f in fields.KIND_FIELDS.values()
            ]
            self.apply(target, outcome)
            after = [
                fields.field_values(target, f, self.settings.tags.separator)
                for f in fields.KIND_FIELDS.values()
            ]
            if target is album:
                album.store(inherit=False)
            elif before != after:
                changed.append(target)
        return changed

    # -- writing ---------------------------------------------------------------

    def should_write(self, write_opt: bool | None = None) -> bool:
        """Whether tags go into files: the plugin's ``write`` and beets' ``import.write``/-w/-W."""
        return self.settings.write and ui.should_write(write_opt)

    def write_fields(self, item: Item) -> bool:
        """Write only the genre and mood tags into the file; other tags stay untouched.

        An MP3 keeps the ID3 version it has (v2.3 stays v2.3), so no other frame is
        converted. Returns ``False`` (after one log line) if the file cannot be
        written; the file is then left as it was.
        """
        values = {"genres": item.get("genres") or [], fields.MOOD_FIELD: item.get(fields.MOOD_FIELD) or None}
        path = syspath(item.path)
        if not os.access(path, os.W_OK):
            reason = "file not found" if not os.path.exists(path) else "the file is read-only"
            self._log.error("{}: cannot write tags: {}", item.filepath, reason)
            return False
        try:
            mf = mediafile.MediaFile(path, id3v23=settings.id3v23())
            version = getattr(getattr(mf.mgfile, "tags", None), "version", None)
            if mf.type == "mp3" and version is not None and tuple(version[:2]) in ((2, 3), (2, 4)):
                mf.id3v23 = tuple(version[:2]) == (2, 3)
            mf.update(values)
            mf.save()
        except (mediafile.UnreadableFileError, OSError) as exc:
            self._log.error("{}: cannot write tags: {}", item.filepath, exc)
            return False
        # the audio did not change: keep the embedding fresh for the new mtime
        mtime = os.stat(syspath(item.path)).st_mtime
        item.mtime = mtime
        item["mcbr_mtime"] = mtime
        self.engine.file_moved(item.id, bytes(item.path), mtime)
        return True

    def run_lock(self) -> RunLock:
        """The lock that makes two analysis runs on this library take turns."""
        from mcbr_core.store.lock import RunLock

        return RunLock(self.store_path.with_suffix(".lock"))

    # -- import ----------------------------------------------------------------

    @contextmanager
    def _own_listeners_allowed(self) -> Iterator[None]:
        """Let this plugin's own listeners run inside one of its stages or listeners.

        beets asserts that a plugin's handler never starts while another of its
        handlers runs (it sets the plugin's log level per call); ``item.store()``
        in the import stage sends ``database_change`` to this plugin's mixes.
        """
        level = self._log.level
        self._log.setLevel(logging.NOTSET)
        try:
            yield
        finally:
            self._log.setLevel(level)

    def imported(self, session: ImportSession, task: ImportTask) -> None:
        """Import stage: analyse the task's items before files move."""
        from beets.importer import Action

        self.use_library(session.lib)
        beets_writes = settings.import_writes(session.config) and (
            task.apply or task.choice_flag == Action.RETAG
        )
        items = list(task.imported_items())
        for item, outcome in self.process(items, reanalyse=True):
            with self._own_listeners_allowed():
                item.store()
            self._import_counts["failed" if outcome.status == "failed" else "analysed"] += 1
            if outcome.status != "failed" and any(outcome.own.values()):
                self._import_counts["tagged"] += 1
            # beets writes every field itself after applying a match; for as-is
            # imports and unchanged re-imports it writes nothing, so we do. Failed
            # items only need their mtime recorded again once the file has moved.
            self._pending_writes[item.id] = (
                outcome.status != "failed" and not beets_writes and self.should_write()
            )
        if task.is_album and task.album is not None:  # one set of genres and moods for the album
            with self._own_listeners_allowed():
                for item in self.album_consensus(task.album, items):
                    item.store()

    def import_task_files(self, session: ImportSession, task: ImportTask) -> None:
        """After files moved (and beets wrote): write our own fields where beets did not."""
        for item in task.imported_items():
            own_write = self._pending_writes.pop(item.id, None)
            if own_write is None:
                continue
            if own_write:
                self.write_fields(item)
            else:
                mtime = file_mtime(syspath(item.path)) or 0.0
                item["mcbr_mtime"] = mtime
                self.engine.file_moved(item.id, bytes(item.path), mtime)
            with self._own_listeners_allowed():
                item.store()

    def import_summary(self, lib: Library, paths: list[bytes]) -> None:
        """At the end of an import: how many tracks were analysed, tagged and failed."""
        counts, self._import_counts = self._import_counts, Counter()
        if not counts or (self.settings.quiet and not counts["failed"]):
            return
        where = " (`beet ls mcbr_status:failed -f '$path: $mcbr_error'`)" if counts["failed"] else ""
        ui.print_(
            f"mcbr: analysed {counts['analysed']}, tagged {counts['tagged']}, {counts['failed']} failed{where}"
        )

    # -- library events ----------------------------------------------------------

    def item_removed(self, item: Item) -> None:
        """Drop the embedding of a removed item."""
        self.engine.forget([item.id])

    def item_moved(self, item: Item, source: bytes, destination: bytes) -> None:
        """Keep the embedding of a moved item, with its new path."""
        self.engine.file_moved(item.id, bytes(destination))

    def cli_exit(self, lib: Library) -> None:
        """Bring the index up to date once per command if this command changed the store."""
        engine = self.__dict__.get("engine")
        if engine is not None:
            self._finish(engine)

    def _finish(self, engine: Engine) -> None:
        """Rebuild ``engine``'s index if its store changed, then stop its workers and close its store."""
        try:
            if engine.dirty:
                engine.refresh_index()
        except McbrError as exc:
            self._log.error("cannot rebuild the index: {}", exc)
        finally:
            engine.close()
