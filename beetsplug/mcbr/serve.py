"""``beet mcbr-serve``: similar tracks, albums, artists and paths as read-only JSON over HTTP.

Two sets of endpoints (docs/players.md, "HTTP API"):

- native, under ``/api/v1``: tracks with their beets fields and a similarity in [0, 1];
- AudioMuse-AI's ``/api/similar_tracks``, ``/api/find_path``, ``/api/track`` and
  ``/api/health``, answering as AudioMuse-AI does, so that BeetstreamNext (an
  OpenSubsonic server for beets) can point its AudioMuse-AI URL here.

The HTTP layer is thin: ``mcbr_core.api`` parses ids and parameters and shapes the
results; ``Service`` looks tracks up in the library and runs the searches. Flask,
werkzeug and NumPy are imported when the command runs, not when ``beet`` starts.

Concurrency: a fixed pool of ``serve.threads`` worker threads answers requests.
beets gives each thread its own connection to the library; the embedding store
serialises reads on its one connection. ``LiveIndex`` swaps in the index rebuilt by a
``beet import`` running beside the server.
"""

from __future__ import annotations

import hmac
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from beets import ui

from beetsplug.mcbr import settings
from mcbr_core.errors import McbrError

if TYPE_CHECKING:
    import logging

    import numpy as np
    from beets.library import Library
    from flask import Flask
    from werkzeug.serving import BaseWSGIServer

    from beetsplug.mcbr import McbrPlugin
    from mcbr_core.api.ids import TrackRef
    from mcbr_core.playlist.base import Track
    from mcbr_core.similarity import Recording

MAX_COUNT = 1000  # most results one request may ask for
MAX_PATH = 200  # most tracks between the two ends of a path
HASH_MAP_TTL = 5.0  # seconds before an unknown sg-h- hash makes the server re-read the library's paths
_CHUNK = 500  # ids per SQL query (SQLite's parameter limit is 999 in old builds)
#: Columns of ``items`` a response or a path needs (``TRACK_FIELDS``, and what ``track_of`` reads).
_COLUMNS = (
    "id", "title", "artist", "album", "albumartist", "year", "genres", "length", "track", "disc", "album_id",
    "mb_trackid", "mb_releasetrackid", "mb_albumid", "mb_artistid", "mb_albumartistid", "bpm", "initial_key", "path",
)  # fmt: skip


class Plain(dict):  # type: ignore[type-arg]
    """A track's fields; also readable as attributes (``playlist_command.track_of`` reads items so)."""

    __getattr__ = dict.get


class ServeOptions(Protocol):
    """Options of ``beet mcbr-serve`` (``None``: the config decides)."""

    host: str | None
    port: int | None
    token: str | None


def serve_command(plugin: McbrPlugin) -> ui.Subcommand:
    """``beet mcbr-serve``: the HTTP API (runs until interrupted)."""
    cmd = ui.Subcommand(
        "mcbr-serve", help="serve similar tracks and paths as JSON over HTTP (AudioMuse-AI compatible)"
    )
    cmd.parser.add_option("--host", default=None, help="address to listen on (default: 127.0.0.1)")
    cmd.parser.add_option("--port", type="int", default=None, help="TCP port (default: 8338)")
    cmd.parser.add_option(
        "--token", default=None, help="require this token (Authorization: Bearer TOKEN, or ?token=TOKEN)"
    )

    def func(lib: Library, opts: ServeOptions, args: list[str]) -> None:
        if args:
            raise ui.UserError("mcbr: mcbr-serve takes no query")
        s = settings.load_serve(plugin.config, host=opts.host, port=opts.port, token=opts.token)
        try:
            import flask  # noqa: F401
        except ImportError:
            raise ui.UserError("mcbr: mcbr-serve needs Flask: pip install 'beets-mcbr[serve]'") from None
        try:
            run(plugin, lib, s)
        except McbrError as exc:
            raise settings.user_error(exc) from None
        except OSError as exc:  # the port is taken, the address is not ours
            raise ui.UserError(f"mcbr: cannot listen on {s.host}:{s.port}: {exc.strerror or exc}") from None

    cmd.func = func
    return cmd


def run(plugin: McbrPlugin, lib: Library, s: settings.ServeSettings) -> None:
    """Load the index, then answer requests until interrupted."""
    service = Service(plugin, lib, s)
    service.start()
    server = make_server(make_app(service), s.host, s.port, threads=s.threads, log=plugin.log)
    try:
        host = f"[{s.host}]" if ":" in s.host else s.host
        ui.print_(
            f"mcbr: serving {service.count()} tracks of {service.model_id} on "
            f"http://{host}:{server.server_port}/ (Ctrl-C stops)"
        )
        if not s.token and s.host not in ("127.0.0.1", "localhost", "::1"):
            plugin.log.warning(
                "serving {} without a token: anyone who can reach it can query the library", s.host
            )
        sys.stdout.flush()
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        service.close()


# -- looking tracks up ------------------------------------------------------------------


class _Row(NamedTuple):
    """The few columns a search needs of a candidate (one SQL query for many ids)."""

    artist: str
    title: str
    mb_trackid: str
    album_id: int | None


class _Rows:
    """Candidates' rows for one request, fetched in batches and cached."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.rows: dict[int, _Row | None] = {}

    def prefetch(self, ids: Iterable[int]) -> None:
        missing = list(dict.fromkeys(int(i) for i in ids if int(i) not in self.rows))
        for start in range(0, len(missing), _CHUNK):
            chunk = missing[start : start + _CHUNK]
            found = self.service.query(
                f"SELECT id, artist, title, mb_trackid, album_id FROM items WHERE id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for row in found:
                self.rows[int(row[0])] = _Row(row[1] or "", row[2] or "", row[3] or "", row[4])
            for item_id in chunk:
                self.rows.setdefault(item_id, None)

    def get(self, item_id: int) -> _Row | None:
        if item_id not in self.rows:
            self.prefetch([item_id])
        return self.rows[item_id]

    def recording(self, item_id: int) -> Recording | None:
        from mcbr_core.similarity import Recording

        row = self.get(item_id)
        return None if row is None else Recording.of(mbid=row.mb_trackid, artist=row.artist, title=row.title)

    def album(self, item_id: int) -> Hashable:
        row = self.get(item_id)
        return None if row is None else row.album_id

    def artist(self, item_id: int) -> Hashable:
        row = self.get(item_id)
        return row.artist if row is not None and row.artist else None


class _CurrentIndex:
    """The index a ``Space`` searches: whichever the live index has loaded when asked."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def query(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        index = self.service.neighbours.loaded
        if index is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        return index.query(vector, n)


class Found(NamedTuple):
    """A resolved track id: the item and the id scheme to answer in."""

    item_id: int
    scheme: str


class Service:
    """What the endpoints do, in plain values: id lookups, searches, paths.

    Parameters
    ----------
    plugin
        The loaded plugin (its engine, settings and logger).
    lib
        The beets library (each request thread gets its own connection from beets).
    s
        The serve settings.
    quiet
        Seconds the store must be quiet before stale index files are rebuilt here
        (see ``mcbr_core.api.live``).
    """

    def __init__(
        self, plugin: McbrPlugin, lib: Library, s: settings.ServeSettings, *, quiet: float = 30.0
    ) -> None:
        from beetsplug.mcbr.playlist_command import load_settings
        from mcbr_core.api.live import LiveIndex

        self.plugin = plugin
        self.lib = lib
        self.s = s
        engine = plugin.engine
        self.engine = engine
        self.model_id = engine.model_id
        self.neighbours = engine.neighbours
        self.metric = self.neighbours.metric
        ps = plugin.settings
        self.separator = ps.tags.separator
        self.duplicates = ps.similar_duplicates
        self.default_count = ps.similar_count
        self.directory = os.fsdecode(lib.directory)
        self.playlist = load_settings(plugin)
        self.live = LiveIndex(self.neighbours, private=engine.index_dir / f"serve-{os.getpid()}", quiet=quiet)
        self._hash_lock = threading.Lock()
        self._hashes: dict[str, int] = {}
        self._hashes_at = float("-inf")

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Claim the store and load (or build) the index before the first request."""
        self.live.start()

    def close(self) -> None:
        """Stop a rebuild under way and remove the server's private index files."""
        self.live.close()

    def count(self) -> int:
        """Tracks with an embedding of the configured model."""
        return self.engine.store.count(self.model_id)

    # -- the library ------------------------------------------------------------------

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """Rows of a read-only SQL query on the library (this thread's connection)."""
        with self.lib.transaction() as tx:
            return tx.query(sql, tuple(args))

    def tracks(self, ids: Sequence[int]) -> dict[int, Plain]:
        """The fields of the tracks still in the library, by id (``TRACK_FIELDS``, ``path`` as text).

        Read with two SQL queries and decoded by beets' own field types, rather than
        as ``Item`` objects: building items costs most of a request's time.
        """
        from beets.library import Item

        types = Item._fields
        columns = [c for c in _COLUMNS if c in types]
        wanted = list(dict.fromkeys(int(i) for i in ids))
        out: dict[int, Plain] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in self.query(f"SELECT {', '.join(columns)} FROM items WHERE id IN ({marks})", chunk):
                track = Plain(dict.fromkeys(_COLUMNS))
                track.update((c, types[c].from_sql(v)) for c, v in zip(columns, row, strict=True))
                track["path"] = os.fsdecode(track["path"]) if track["path"] else ""
                out[int(track["id"])] = track
            for item_id, value in self.query(
                f"SELECT entity_id, value FROM item_attributes WHERE key = 'mood' AND entity_id IN ({marks})",
                chunk,
            ):
                if int(item_id) in out:
                    out[int(item_id)]["mood"] = value
        return out

    def mint(self, scheme: str, fields: dict[str, Any]) -> str:
        """A track's id in the caller's scheme."""
        from mcbr_core.api.ids import mint

        return mint(scheme, fields, root=self.s.library_root)

    def resolve(self, ref: TrackRef) -> Found:
        """The library item a parsed id names.

        Raises
        ------
        ApiError
            404 when no item has that id.
        """
        from mcbr_core.api import ApiError
        from mcbr_core.api.ids import RECORDING, RELEASE_TRACK

        if ref.kind == "id":
            if not self.query("SELECT id FROM items WHERE id = ?", [int(ref.value)]):
                raise ApiError(404, f"no track {ref.text} in the library")
            return Found(int(ref.value), ref.scheme or "beets")
        if ref.kind == "hash":
            item_id = self._by_hash(str(ref.value))
            if item_id is None:
                raise ApiError(404, f"no track {ref.text} in the library")
            return Found(item_id, ref.scheme or "subsonic")
        rows = self.query(
            "SELECT id, mb_releasetrackid, mb_trackid FROM items "
            "WHERE mb_releasetrackid = ? COLLATE NOCASE OR mb_trackid = ? COLLATE NOCASE",
            [ref.value, ref.value],
        )
        if not rows:
            raise ApiError(404, f"no track with the MusicBrainz id {ref.text} in the library")
        wanted = str(ref.value).casefold()

        def rank(row: Any) -> tuple[int, bool, int]:
            release_track, recording = str(row[1] or "").casefold(), str(row[2] or "").casefold()
            # the release track itself; then a track minted with this id (no release track id of its
            # own: BeetstreamNext's sg-m- of it is this id); then another copy of the recording
            tier = 0 if release_track == wanted else 1 if not release_track and recording == wanted else 2
            return tier, not self.embedded(int(row[0])), int(row[0])

        best = min(rows, key=rank)
        by_release_track = str(best[1] or "").casefold() == wanted
        return Found(int(best[0]), ref.scheme or (RELEASE_TRACK if by_release_track else RECORDING))

    def by_title(self, title: str, artist: str) -> int:
        """The item of an artist's title (without regard to case), preferring one with an embedding.

        Raises
        ------
        ApiError
            404 when there is none.
        """
        from mcbr_core.api import ApiError

        rows = self.query(
            "SELECT id FROM items WHERE title = ? COLLATE NOCASE AND artist = ? COLLATE NOCASE ORDER BY id",
            [title.strip(), artist.strip()],
        )
        if not rows:
            raise ApiError(404, f"no track {title[:80]!r} by {artist[:80]!r} in the library")
        ids = [int(r[0]) for r in rows]
        return next((i for i in ids if self.embedded(i)), ids[0])

    def _by_hash(self, digest: str) -> int | None:
        """The item whose BeetstreamNext path hash is ``digest`` (the map is re-read when a hash is unknown)."""
        from mcbr_core.api.ids import subsonic_path_hash

        with self._hash_lock:
            if digest not in self._hashes and time.monotonic() - self._hashes_at > HASH_MAP_TTL:
                hashes: dict[str, int] = {}
                roots = dict.fromkeys([self.s.library_root, self.directory, ""])
                for item_id, path in self.query("SELECT id, path FROM items ORDER BY id"):
                    text = os.fsdecode(path) if path else ""
                    for root in roots:
                        hashes.setdefault(subsonic_path_hash(text, root), int(item_id))
                hashes.pop("", None)
                self._hashes, self._hashes_at = hashes, time.monotonic()
            return self._hashes.get(digest)

    def embedded(self, item_id: int) -> bool:
        """Whether the item has an embedding of the configured model."""
        return self.engine.store.row(item_id, self.model_id) is not None

    def _require_embedding(self, item_ids: Sequence[int], what: str) -> None:
        from mcbr_core.api import ApiError

        if not any(self.embedded(i) for i in item_ids):
            raise ApiError(404, f"{what} has no embedding yet; run `beet mcbr` on it")

    # -- searches ---------------------------------------------------------------------

    def _search(
        self,
        query_ids: Sequence[int],
        n: int,
        rows: _Rows,
        *,
        group: Callable[[int], Hashable] | None = None,
        exclude_groups: Iterable[Hashable] = (),
        same: Callable[[int], Recording | None] | None = None,
        keep: Callable[[list[Hashable]], list[Hashable]] = list,
        spare: int = 1,
    ) -> list[tuple[Hashable, float]]:
        """The ``n`` nearest keys that ``keep`` keeps, asking the index for more until there are enough.

        ``keep`` drops what the answer must not hold (tracks gone from the library since
        the index was built, an artist over its cap). The candidates' rows are fetched
        in one query before the search, which looks a row up per candidate.
        """
        want = n * spare
        exclude = list(exclude_groups)
        query = self.neighbours.query_vector(query_ids)
        while True:
            index = self.neighbours.loaded
            if index is not None and query is not None and (same is not None or group is not None):
                k = (max(4 * want, want + len(query_ids) + 10)) * (8 if group else 2)
                ids, _ = index.query(query, k)
                rows.prefetch(ids.tolist())
            found = self.neighbours.similar(query_ids, want, group=group, exclude_groups=exclude, same=same)
            if group is None:
                rows.prefetch(int(r.key) for r in found)
            kept = keep([r.key for r in found])
            if len(kept) >= n or len(found) < want or want >= 16 * MAX_COUNT:
                distance = {r.key: r.distance for r in found}
                return [(key, distance[key]) for key in kept[:n]]
            want *= 4

    def similar_tracks(
        self, item_id: int, n: int, *, duplicates: bool | None = None, max_per_artist: int = 0
    ) -> list[tuple[int, float]]:
        """The ``n`` tracks nearest to one track: ``(item id, distance)``, nearest first.

        Copies of one recording are listed once unless ``duplicates`` (default:
        ``similar.duplicates``); ``max_per_artist`` caps each artist (0: no cap).
        """
        from mcbr_core.api.results import cap_per_artist

        self.live.refresh()
        self._require_embedding([item_id], f"track {item_id}")
        rows = _Rows(self)
        rows.prefetch([item_id])
        duplicates = self.duplicates if duplicates is None else duplicates

        def keep(keys: list[Hashable]) -> list[Hashable]:
            present = [int(k) for k in keys if rows.get(int(k)) is not None]  # type: ignore[call-overload]
            artists = {i: (row.artist if (row := rows.get(i)) else "") for i in present}
            return list(cap_per_artist(present, artists, max_per_artist))

        found = self._search(
            [item_id],
            n,
            rows,
            same=None if duplicates else rows.recording,
            keep=keep,
            spare=3 if max_per_artist else 1,
        )
        return [(int(k), d) for k, d in found]  # type: ignore[call-overload]

    def album_items(self, kind: str, value: int | str) -> tuple[int, list[int]]:
        """An album's id and its items' ids.

        Raises
        ------
        ApiError
            404 for an unknown album.
        """
        from mcbr_core.api import ApiError

        if kind == "id":
            rows = self.query("SELECT id FROM albums WHERE id = ?", [value])
        else:
            rows = self.query(
                "SELECT id FROM albums WHERE mb_albumid = ? COLLATE NOCASE ORDER BY id", [value]
            )
        if not rows:
            raise ApiError(404, f"no album {value} in the library")
        album_id = int(rows[0][0])
        items = [int(r[0]) for r in self.query("SELECT id FROM items WHERE album_id = ?", [album_id])]
        return album_id, items

    def similar_albums(self, album_id: int, item_ids: list[int], n: int) -> list[tuple[int, float]]:
        """The ``n`` albums nearest to an album's tracks, by their nearest track."""
        self.live.refresh()
        self._require_embedding(item_ids, f"album {album_id}")
        rows = _Rows(self)
        found = self._search(item_ids, n, rows, group=rows.album, exclude_groups={album_id})
        return [(int(k), d) for k, d in found]  # type: ignore[call-overload]

    def artist_items(self, *, name: str | None, mbid: str | None) -> tuple[list[str], list[int]]:
        """An artist's names as tagged and the ids of their tracks.

        Raises
        ------
        ApiError
            404 when no track has that artist.
        """
        from mcbr_core.api import ApiError

        if mbid:
            rows = self.query("SELECT id, artist FROM items WHERE mb_artistid = ? COLLATE NOCASE", [mbid])
        else:
            rows = self.query("SELECT id, artist FROM items WHERE artist = ?", [name]) or self.query(
                "SELECT id, artist FROM items WHERE artist = ? COLLATE NOCASE", [name]
            )
        if not rows:
            raise ApiError(404, f"no tracks by {(mbid or name or '')[:80]!r} in the library")
        names = sorted({str(r[1]) for r in rows if r[1]})
        return names, [int(r[0]) for r in rows]

    def similar_artists(self, names: list[str], item_ids: list[int], n: int) -> list[tuple[str, float]]:
        """The ``n`` artists nearest to an artist's tracks, by their nearest track."""
        self.live.refresh()
        self._require_embedding(item_ids, f"artist {names[0] if names else ''!r}")
        rows = _Rows(self)
        found = self._search(item_ids, n, rows, group=rows.artist, exclude_groups=set(names))
        return [(str(k), d) for k, d in found]

    def artist_facts(self, names: Sequence[str]) -> dict[str, tuple[str, int]]:
        """Artist name -> (a MusicBrainz artist id or ``""``, number of tracks)."""
        out: dict[str, tuple[str, int]] = {}
        names = list(names)
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            for name, count, mbid in self.query(
                f"SELECT artist, COUNT(*), MAX(mb_artistid) FROM items WHERE artist IN ({','.join('?' * len(chunk))}) "
                "GROUP BY artist",
                chunk,
            ):
                out[str(name)] = (str(mbid or ""), int(count))
        return out

    def path(self, start: int, end: int, n: int) -> tuple[list[int], list[float]]:
        """``n`` tracks leading from ``start`` to ``end`` (neither included) and the distance of each step.

        Returns
        -------
        ids
            The tracks between the two ends, in play order (fewer than ``n`` when the
            caps or the candidates leave fewer).
        steps
            ``len(ids) + 1`` distances: from ``start`` to the first track, ..., from the
            last track to ``end``.

        Raises
        ------
        ApiError
            400 when both ends are one track, 404 when one has no embedding, 422 when the
            two sound the same.
        """
        from mcbr_core.api import ApiError
        from mcbr_core.api.results import step_distances
        from mcbr_core.playlist.base import PlaylistRequest
        from mcbr_core.playlist.generate import get_strategy, make_playlists
        from mcbr_core.playlist.space import Space

        if start == end:
            raise ApiError(400, "a path needs two different tracks")
        self.live.refresh()
        self._require_embedding([start], f"track {start}")
        self._require_embedding([end], f"track {end}")
        store = self.engine.store
        space = Space(
            loader=lambda ids: store.vectors(self.model_id, ids),
            tracks=self._tracks,
            metric=self.metric,
            index=_CurrentIndex(self),
        )
        ids: list[int] = []
        if n > 0:
            request = PlaylistRequest(
                seeds=((start,), (end,)),
                space=space,
                constraints=self.playlist.constraints(count=n, duration=0, include_seed=False),
                options=dict(self.playlist.modes.get("path", {})),
                labels=(str(start), str(end)),
            )
            try:
                playlists = make_playlists(get_strategy("path", self.engine.plugins), request)
            except McbrError as exc:
                raise ApiError(422, str(exc)) from None
            ids = [int(i) for i in playlists[0].item_ids] if playlists else []
        _, vecs = space.vectors([start, *ids, end])
        return ids, [float(d) for d in step_distances(vecs, self.metric)]

    def _tracks(self, ids: Sequence[int]) -> dict[int, Track]:
        from beetsplug.mcbr.playlist_command import track_of

        return {i: track_of(fields, self.separator) for i, fields in self.tracks(ids).items()}  # type: ignore[arg-type]


# -- HTTP ---------------------------------------------------------------------------------


def _token_ok(expected: str, header: str | None, query: str | None) -> bool:
    """Whether a request carries the token (``Authorization: Bearer T`` or ``?token=T``)."""
    if not expected:
        return True
    given = ""
    if header and header[:7].lower() == "bearer ":
        given = header[7:].strip()
    elif query:
        given = query
    return bool(given) and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def make_app(service: Service) -> Flask:
    """The Flask application of the endpoints (docs/players.md, "HTTP API")."""
    import flask
    from werkzeug.exceptions import HTTPException

    from mcbr_core import __version__
    from mcbr_core.api import ApiError
    from mcbr_core.api.ids import BEETS, parse_album_ref, parse_track_ref
    from mcbr_core.api.results import (
        album_json,
        artist_json,
        audiomuse_json,
        parse_count,
        parse_flag,
        track_json,
    )

    app = flask.Flask("beetsplug.mcbr.serve")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    metric = service.metric
    log = service.plugin.log

    @app.before_request
    def check_token() -> Any:
        if not _token_ok(
            service.s.token, flask.request.headers.get("Authorization"), flask.request.args.get("token")
        ):
            response = flask.jsonify(error="missing or wrong token")
            response.status_code = 401
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        return None

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Any:
        return flask.jsonify(error=exc.message), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        return flask.jsonify(error=(exc.description or exc.name).split("\n")[0]), exc.code

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        log.error(
            "mcbr-serve: {} {}: {}: {}", flask.request.method, flask.request.path, type(exc).__name__, exc
        )
        return flask.jsonify(error="internal error (see the server's log)"), 500

    def track(ref: str | None, name: str) -> Found:
        return service.resolve(parse_track_ref(ref, name=name))

    def count(name: str = "n", default: int | None = None, high: int = MAX_COUNT) -> int:
        return parse_count(
            flask.request.args.get(name), name=name, default=default or service.default_count, high=high
        )

    def native_tracks(pairs: Sequence[tuple[int, float | None]], scheme: str) -> list[dict[str, Any]]:
        tracks = service.tracks([i for i, _ in pairs])
        out = []
        for item_id, distance in pairs:
            if item_id not in tracks:
                continue
            fields = tracks[item_id]
            out.append(
                track_json(
                    fields,
                    ref=service.mint(scheme, fields),
                    distance=distance,
                    metric=metric,
                    separator=service.separator,
                    directory=service.directory,
                )
            )
        return out

    def audiomuse_tracks(pairs: Sequence[tuple[int, float]], scheme: str) -> list[dict[str, Any]]:
        tracks = service.tracks([i for i, _ in pairs])
        out = []
        for item_id, distance in pairs:
            if item_id in tracks:
                fields = tracks[item_id]
                out.append(
                    audiomuse_json(
                        fields, item_id=service.mint(scheme, fields), distance=distance, metric=metric
                    )
                )
        return out

    # -- native ------------------------------------------------------------------------

    @app.get("/api/v1/status")
    def status() -> Any:
        service.live.refresh()
        index = service.neighbours.loaded
        return flask.jsonify(
            version=__version__,
            model=service.model_id,
            metric=metric,
            tracks=service.count(),
            store_generation=service.engine.store.generation(service.model_id),
            index={
                "generation": service.live.generation,
                "tracks": index.meta.n_items if index is not None and index.meta is not None else 0,
            },
        )

    @app.get("/api/v1/tracks/<ref>")
    def get_track(ref: str) -> Any:
        found = track(ref, "id")
        out = native_tracks([(found.item_id, None)], found.scheme)
        return flask.jsonify({**out[0], "embedded": service.embedded(found.item_id)})

    @app.get("/api/v1/similar/tracks/<ref>")
    def similar_tracks(ref: str) -> Any:
        found = track(ref, "id")
        n = count()
        duplicates = parse_flag(flask.request.args.get("duplicates"), name="duplicates")
        cap = parse_count(
            flask.request.args.get("max_per_artist"), name="max_per_artist", default=0, low=0, high=MAX_COUNT
        )
        pairs = service.similar_tracks(found.item_id, n, duplicates=duplicates, max_per_artist=cap)
        query = native_tracks([(found.item_id, None)], found.scheme)
        return flask.jsonify(query=query[0], tracks=native_tracks(pairs, found.scheme))

    @app.get("/api/v1/similar/albums/<ref>")
    def similar_albums(ref: str) -> Any:
        kind, value = parse_album_ref(ref)
        n = count()
        album_id, item_ids = service.album_items(kind, value)
        pairs = service.similar_albums(album_id, item_ids, n)
        albums = {a.id: a for a in service.lib.albums(_in_ids([album_id, *(k for k, _ in pairs)]))}
        return flask.jsonify(
            query=album_json(albums[album_id], distance=None, metric=metric),
            albums=[album_json(albums[k], distance=d, metric=metric) for k, d in pairs if k in albums],
        )

    @app.get("/api/v1/similar/artists")
    def similar_artists() -> Any:
        name, mbid = (
            (flask.request.args.get("artist") or "").strip(),
            (flask.request.args.get("mbid") or "").strip(),
        )
        if not name and not mbid:
            raise ApiError(400, "missing parameter 'artist' (a name) or 'mbid' (a MusicBrainz artist id)")
        n = count()
        names, item_ids = service.artist_items(name=name or None, mbid=mbid or None)
        pairs = service.similar_artists(names, item_ids, n)
        facts = service.artist_facts([*names, *(k for k, _ in pairs)])
        query_name = names[0] if names else name
        mb, tracks = facts.get(query_name, ("", len(item_ids)))
        return flask.jsonify(
            query=artist_json(query_name, mbid or mb, tracks, distance=None, metric=metric),
            artists=[artist_json(k, *facts.get(k, ("", 0)), distance=d, metric=metric) for k, d in pairs],
        )

    @app.get("/api/v1/path")
    def path() -> Any:
        start, end = track(flask.request.args.get("from"), "from"), track(flask.request.args.get("to"), "to")
        n = parse_count(flask.request.args.get("n"), name="n", default=10, high=MAX_PATH)
        ids, steps = service.path(start.item_id, end.item_id, n)
        ends = native_tracks([(start.item_id, None), (end.item_id, steps[-1])], start.scheme)
        return flask.jsonify(
            {
                "from": ends[0],
                "to": ends[1],
                "tracks": native_tracks(list(zip(ids, steps, strict=False)), start.scheme),
                "distance": round(sum(steps), 6),
            }
        )

    # -- AudioMuse-AI ----------------------------------------------------------------------

    @app.get("/api/health")
    def health() -> Any:
        return flask.jsonify(status="ok", service="beets-mcbr", version=__version__)

    @app.get("/api/track")
    def audiomuse_track() -> Any:
        found = track(flask.request.args.get("item_id"), "item_id")
        fields = service.tracks([found.item_id])[found.item_id]
        out = audiomuse_json(fields, item_id=service.mint(found.scheme, fields), distance=0.0, metric=metric)
        del out["distance"]
        return flask.jsonify(out)

    @app.get("/api/similar_tracks")
    def audiomuse_similar() -> Any:
        if flask.request.args.get("item_id") is not None:
            found = track(flask.request.args.get("item_id"), "item_id")
        elif flask.request.args.get("title") and flask.request.args.get("artist"):
            found = Found(service.by_title(flask.request.args["title"], flask.request.args["artist"]), BEETS)
        else:
            raise ApiError(400, "Request must include either 'item_id' or both 'title' and 'artist'.")
        n = parse_count(flask.request.args.get("n"), name="n", default=10, high=MAX_COUNT)
        eliminate = parse_flag(flask.request.args.get("eliminate_duplicates"), name="eliminate_duplicates")
        cap = service.playlist.max_per_artist if eliminate else 0
        pairs = service.similar_tracks(found.item_id, n, max_per_artist=cap)
        return flask.jsonify(audiomuse_tracks(pairs, found.scheme))

    @app.get("/api/find_path")
    def audiomuse_path() -> Any:
        if not flask.request.args.get("start_song_id") or not flask.request.args.get("end_song_id"):
            raise ApiError(400, "Both a start and end song must be provided.")
        start = track(flask.request.args.get("start_song_id"), "start_song_id")
        end = track(flask.request.args.get("end_song_id"), "end_song_id")
        if start.item_id == end.item_id:
            raise ApiError(400, "Start and end songs cannot be the same.")
        length = parse_count(
            flask.request.args.get("max_steps"), name="max_steps", default=25, low=2, high=MAX_PATH + 2
        )
        ids, steps = service.path(start.item_id, end.item_id, length - 2)
        pairs = list(zip([start.item_id, *ids, end.item_id], [0.0, *steps], strict=False))
        return flask.jsonify(path=audiomuse_tracks(pairs, start.scheme), total_distance=round(sum(steps), 6))

    return app


def _in_ids(ids: Sequence[int]) -> Any:
    from beets.dbcore.query import InQuery

    return InQuery("id", list(dict.fromkeys(ids)))


_TOKEN_IN_QUERY = re.compile(r"(?<=[?&]token=)[^&]*")


def make_server(app: Flask, host: str, port: int, *, threads: int, log: logging.Logger) -> BaseWSGIServer:
    """A werkzeug server answering with a fixed pool of ``threads`` worker threads.

    A pool (rather than a thread per request) bounds the threads, and so the beets
    connections, one per thread. Each connection carries one request (HTTP/1.0), so an
    idle kept-alive client never holds a worker. Requests are logged at debug level,
    with a ``?token=`` replaced by ``***``.

    Each request runs in a copy of the caller's context variables: recent beets keeps
    the library directory in one (``beets.context``) to make the paths it stores
    relative absolute again, and a fresh thread would see none (``item.path`` would
    come back relative).
    """
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler

    class Handler(WSGIRequestHandler):
        protocol_version = "HTTP/1.0"

        def log(self, type: str, message: str, *args: Any) -> None:
            text = _TOKEN_IN_QUERY.sub("***", message % args if args else message)
            log.debug("mcbr-serve: {} {}", self.address_string(), text)

    class PooledServer(BaseWSGIServer):
        multithread = True

        def __init__(self) -> None:
            super().__init__(host, port, app, handler=Handler)
            self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mcbr-serve")
            self.context = contextvars.copy_context()

        def process_request(self, request: Any, client_address: Any) -> None:
            self.pool.submit(self.context.copy().run, self._answer, request, client_address)

        def _answer(self, request: Any, client_address: Any) -> None:
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

        def server_close(self) -> None:
            super().server_close()
            self.pool.shutdown(wait=True)

    return PooledServer()
