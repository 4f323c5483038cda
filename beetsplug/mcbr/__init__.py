"""beets-mcbr: content-based genre/mood tagging and similar-track search for beets.

The plugin translates beets (items, queries, config, UI) into plain values and
calls ``mcbr_core``. Importing this module must stay light: torch, annoy and
librosa are imported only when the engine is first used.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import Counter
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mediafile
from beets import config as beets_config
from beets import ui
from beets.plugins import BeetsPlugin
from beets.util import syspath

from beetsplug.mcbr import fields, settings
from mcbr_core.errors import McbrError

if TYPE_CHECKING:
    from beets.importer import ImportSession, ImportTask
    from beets.library import Item, Library

    from mcbr_core.analysis import Analysis
    from mcbr_core.engine import Engine, Tags
    from mcbr_core.store.lock import RunLock

SCORE_PREFIXES = ("mcbr_genre_", "mcbr_mood_")  # the score attributes this plugin owns


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
        self._touched_store = False
        self._library: Path | None = None
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
        )

    # -- the library's own store -----------------------------------------------

    def _library_path(self) -> Path:
        return self._library or Path(beets_config["library"].as_filename())

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
            engine.close()
        store_path, legacy = self.store_path, self.settings.legacy_store
        if self.settings.store_path is None and store_path != legacy and legacy.exists() and not store_path.exists():
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
            self._log.info("this library's embeddings now live in {} (taken over from {})", self.store_path, legacy)
            self._touched_store = True
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
        from beetsplug.mcbr.playlist_command import playlist_command
        from beetsplug.mcbr.train_command import train_command

        return [analyze_command(self), similar_command(self), playlist_command(self), train_command(self)]

    # -- analysis of one item ------------------------------------------------

    def analyze_items(self, items: list[Item], *, persist: bool = True) -> Iterator[tuple[Item, Tags | None]]:
        """Analyse items in the worker pool; yield each with its tags as it finishes.

        Each analysed item gets its fields set (not stored, not written) and, with
        ``persist``, its embedding stored. An item that cannot be analysed gets one
        log line naming the file and the reason, is marked ``mcbr_status: failed``
        and is yielded with ``None``. ``persist=False`` (``--pretend``) leaves the
        store alone.
        """
        from mcbr_core.workers import AnalysisFailed

        self.check_sources()
        by_id = {item.id: item for item in items}
        for item_id, result in self.engine.pool.analyze((item.id, item.filepath) for item in items):
            item = by_id[item_id]
            if isinstance(result, AnalysisFailed):
                self.fail(item, str(result))
                yield item, None
                continue
            try:
                yield item, self._record(item, result, persist=persist)
            except (McbrError, OSError, ValueError) as exc:
                self.fail(item, str(exc) or type(exc).__name__)
                yield item, None

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

    def analyze_item(self, item: Item, *, persist: bool = True) -> Tags | None:
        """Analyse one item (see ``analyze_items``)."""
        return next(self.analyze_items([item], persist=persist))[1]

    def retag_item(self, item: Item) -> Tags:
        """Tag ``item`` again from its stored embedding (new clip heads, unchanged audio).

        Sets the item's fields (not stored, not written), like an analysis.

        Raises
        ------
        McbrError
            If the store has no embedding of the item by the configured model, or a
            kind takes the model's own tags (see ``Engine.can_tag_from_embedding``).
        """
        engine = self.engine
        embedding = engine.store.get(item.id, engine.model_id)
        if embedding is None:
            raise McbrError(f"{item.filepath}: no stored embedding by {engine.model_id}")
        tags = engine.tags_of_embedding(embedding)
        self.apply_tags(item, tags)
        item["mcbr_heads"] = engine.heads_id
        return tags

    @property
    def log(self) -> logging.Logger:
        """The plugin's beets logger (``{}`` placeholders), for the subcommands."""
        return self._log

    def fail(self, item: Item, reason: str) -> None:
        """Mark ``item`` failed (not stored) after one log line naming the file and the reason."""
        self._log.error("{}: {}", item.filepath, reason)
        item["mcbr_status"] = "failed"
        item["mcbr_error"] = reason[:500]
        item["mcbr_model"] = self.engine.model_id
        item["mcbr_mtime"] = _mtime(item)

    def _record(self, item: Item, analysis: Analysis, *, persist: bool) -> Tags:
        """Store an analysis' embedding and set the item's tags and attributes."""
        tags = self.engine.tags(analysis)
        mtime = os.stat(syspath(item.path)).st_mtime
        if persist:
            self.engine.store.put(
                item.id,
                analysis.embedding,
                model_id=analysis.model_id,
                feature_version=analysis.feature_version,
                path=bytes(item.path),
                mtime=mtime,
            )
            self._touched_store = True
        self.apply_tags(item, tags)
        item["mcbr_model"] = analysis.model_id
        item["mcbr_heads"] = self.engine.heads_id
        item["mcbr_mtime"] = mtime
        item["mcbr_analyzed"] = time.time()
        if analysis.coverage < self.settings.analysis.min_coverage:  # analysed in part (``partial: yes``)
            percent = math.floor(analysis.coverage * 100 + 1e-9)  # as the failure says it: 89.6 % is 89 %
            reason = f"only {percent}% of the audio decodes; tagged on that part"
            self._log.warning("{}: {}", item.filepath, reason)
            item["mcbr_status"] = "partial"
            item["mcbr_error"] = reason
        else:
            item["mcbr_status"] = "ok"
            if "mcbr_error" in item:
                del item["mcbr_error"]
        self._log.debug(
            "{}: genres {}, moods {} ({:.2f}s decode, {:.2f}s features, {:.2f}s model)",
            item.filepath,
            tags.genres,
            tags.moods,
            *(analysis.timings.get(k, 0.0) for k in ("decode", "features", "model")),
        )
        return tags

    def apply_tags(self, item: Item, tags: Tags) -> None:
        """Set genres, mood and score attributes, honouring ``force`` and ``keep_existing``.

        ``mcbr_genres`` / ``mcbr_moods`` record only the values the plugin itself put
        in a field, never the user's: a value the user typed or edited is theirs
        from then on, and is replaced only with ``force``.
        """
        from mcbr_core.tagging import encode_own, merge, user_values

        s = self.settings
        sep = s.tags.separator
        for field, predicted in (("genres", tags.genres), (fields.MOOD_FIELD, tags.moods)):
            current = fields.field_values(item, field, sep)
            ours = fields.own_values(item, field)
            new = merge(current, predicted, ours=ours, force=s.force, keep_existing=s.keep_existing)
            if new != current:
                item[field] = new if field == "genres" else sep.join(new)
            users = {v.lower() for v in user_values(current, ours)}
            item[fields.OWN[field]] = encode_own([v for v in new if v.lower() not in users])
        for key in [k for k in item.keys(computed=False) if k.startswith(SCORE_PREFIXES) and k not in tags.scores]:
            del item[key]  # a score of a label the current source does not have (after a source change)
        for key, value in tags.scores.items():
            item[key] = value

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
            mf = mediafile.MediaFile(path, id3v23=beets_config["id3v23"].get(bool))
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
        if self.engine.store.row(item.id, self.engine.model_id) is not None:
            self.engine.store.set_path(item.id, bytes(item.path), mtime)
        return True

    def run_lock(self) -> RunLock:
        """The lock that makes two analysis runs on this library take turns."""
        from mcbr_core.store.lock import RunLock

        return RunLock(self.store_path.with_suffix(".lock"))

    # -- import ----------------------------------------------------------------

    def imported(self, session: ImportSession, task: ImportTask) -> None:
        """Import stage: analyse the task's items before files move."""
        from beets.importer import Action

        self.use_library(session.lib)
        beets_writes = bool(session.config["write"].get(bool)) and (task.apply or task.choice_flag == Action.RETAG)
        for item, tags in self.analyze_items(list(task.imported_items())):
            item.store()
            self._import_counts["failed" if tags is None else "analysed"] += 1
            if tags is not None and any(fields.own_values(item, f) for f in fields.OWN):
                self._import_counts["tagged"] += 1
            # beets writes every field itself after applying a match; for as-is
            # imports and unchanged re-imports it writes nothing, so we do. Failed
            # items only need their mtime recorded again once the file has moved.
            self._pending_writes[item.id] = tags is not None and not beets_writes and self.should_write()

    def import_task_files(self, session: ImportSession, task: ImportTask) -> None:
        """After files moved (and beets wrote): write our own fields where beets did not."""
        for item in task.imported_items():
            own_write = self._pending_writes.pop(item.id, None)
            if own_write is None:
                continue
            if own_write:
                self.write_fields(item)
            else:
                mtime = _mtime(item)
                item["mcbr_mtime"] = mtime
                self.engine.store.set_path(item.id, bytes(item.path), mtime)
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
        if self.store_path.exists() and self.engine.store.remove([item.id]):
            self._touched_store = True

    def item_moved(self, item: Item, source: bytes, destination: bytes) -> None:
        """Keep the embedding of a moved item, with its new path."""
        if self.store_path.exists():
            self.engine.store.set_path(item.id, bytes(destination))

    def index_rebuilt(self) -> None:
        """The command rebuilt the index itself: nothing left to do at exit."""
        self._touched_store = False

    def cli_exit(self, lib: Library) -> None:
        """Rebuild the index once per command if this command changed the store."""
        if not self._touched_store:
            return
        self._touched_store = False
        try:
            self.engine.neighbours.index()
        except McbrError as exc:
            self._log.error("cannot rebuild the index: {}", exc)
        finally:
            self.engine.close()


def _mtime(item: Item) -> float:
    try:
        return os.stat(syspath(item.path)).st_mtime
    except OSError:
        return 0.0

