"""The native endpoints, under ``/api/v1``: tracks with their beets fields and a similarity in [0, 1]."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import flask

from beetsplug.mcbr.serve.service import MAX_COUNT, MAX_PATH
from mcbr_core import __version__
from mcbr_core.api import ApiError
from mcbr_core.api.ids import parse_album_ref
from mcbr_core.api.results import album_json, artist_json, parse_count, parse_flag

if TYPE_CHECKING:
    from beetsplug.mcbr.serve.responses import Responses


def blueprint(r: Responses) -> flask.Blueprint:
    """The native routes, answering from ``r.service``."""
    bp = flask.Blueprint("native", __name__, url_prefix="/api/v1")
    service, metric = r.service, r.metric

    @bp.get("/status")
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

    @bp.get("/tracks/<ref>")
    def get_track(ref: str) -> Any:
        found = r.track(ref, "id")
        out = r.native_tracks([(found.item_id, None)], found.scheme)
        return flask.jsonify({**out[0], "embedded": service.embedded(found.item_id)})

    @bp.get("/similar/tracks/<ref>")
    def similar_tracks(ref: str) -> Any:
        found = r.track(ref, "id")
        n = r.count()
        duplicates = parse_flag(flask.request.args.get("duplicates"), name="duplicates")
        cap = parse_count(
            flask.request.args.get("max_per_artist"), name="max_per_artist", default=0, low=0, high=MAX_COUNT
        )
        pairs = service.similar_tracks(found.item_id, n, duplicates=duplicates, max_per_artist=cap)
        query = r.native_tracks([(found.item_id, None)], found.scheme)
        return flask.jsonify(query=query[0], tracks=r.native_tracks(pairs, found.scheme))

    @bp.get("/similar/albums/<ref>")
    def similar_albums(ref: str) -> Any:
        kind, value = parse_album_ref(ref)
        n = r.count()
        album_id, item_ids = service.album_items(kind, value)
        pairs = service.similar_albums(album_id, item_ids, n)
        albums = {a.id: a for a in service.lib.albums(_in_ids([album_id, *(k for k, _ in pairs)]))}
        return flask.jsonify(
            query=album_json(albums[album_id], distance=None, metric=metric),
            albums=[album_json(albums[k], distance=d, metric=metric) for k, d in pairs if k in albums],
        )

    @bp.get("/similar/artists")
    def similar_artists() -> Any:
        name, mbid = (
            (flask.request.args.get("artist") or "").strip(),
            (flask.request.args.get("mbid") or "").strip(),
        )
        if not name and not mbid:
            raise ApiError(400, "missing parameter 'artist' (a name) or 'mbid' (a MusicBrainz artist id)")
        n = r.count()
        names, item_ids = service.artist_items(name=name or None, mbid=mbid or None)
        pairs = service.similar_artists(names, item_ids, n)
        facts = service.artist_facts([*names, *(k for k, _ in pairs)])
        query_name = names[0] if names else name
        mb, tracks = facts.get(query_name, ("", len(item_ids)))
        return flask.jsonify(
            query=artist_json(query_name, mbid or mb, tracks, distance=None, metric=metric),
            artists=[artist_json(k, *facts.get(k, ("", 0)), distance=d, metric=metric) for k, d in pairs],
        )

    @bp.get("/path")
    def path() -> Any:
        start, end = (
            r.track(flask.request.args.get("from"), "from"),
            r.track(flask.request.args.get("to"), "to"),
        )
        n = parse_count(flask.request.args.get("n"), name="n", default=10, high=MAX_PATH)
        ids, steps = service.path(start.item_id, end.item_id, n)
        ends = r.native_tracks([(start.item_id, None), (end.item_id, steps[-1])], start.scheme)
        return flask.jsonify(
            {
                "from": ends[0],
                "to": ends[1],
                "tracks": r.native_tracks(list(zip(ids, steps, strict=False)), start.scheme),
                "distance": round(sum(steps), 6),
            }
        )

    return bp


def _in_ids(ids: Sequence[int]) -> Any:
    from beets.dbcore.query import InQuery

    return InQuery("id", list(dict.fromkeys(ids)))
