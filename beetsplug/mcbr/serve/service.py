"""What ``beet mcbr-serve`` answers, in plain values: id lookups, searches and paths.

``Service`` looks tracks up in the library (SQL on beets' own connection per thread)
and runs the searches on the live index; the HTTP layer (``beetsplug.mcbr.serve.app``)
only parses requests and shapes responses.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from mcbr_core.errors import McbrError

if TYPE_CHECKING:
    import numpy as np
    from beets.library import Library

    from beetsplug.mcbr import McbrPlugin, settings
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
    """A track's fields; also readable as attributes (``playlist_items.track_of`` reads items so)."""

    __getattr__ = dict.get


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
        from beetsplug.mcbr.playlist_items import track_of

        return {i: track_of(fields, self.separator) for i, fields in self.tracks(ids).items()}  # type: ignore[arg-type]
