"""AudioMuse-AI's endpoints (``/api/similar_tracks``, ``/api/find_path``, ``/api/track``, ``/api/health``).

They answer as AudioMuse-AI does, so that BeetstreamNext (an OpenSubsonic server for
beets) can point its AudioMuse-AI URL here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import flask

from beetsplug.mcbr.serve.service import MAX_COUNT, MAX_PATH, Found
from mcbr_core import __version__
from mcbr_core.api import ApiError
from mcbr_core.api.ids import BEETS
from mcbr_core.api.results import audiomuse_json, parse_count, parse_flag

if TYPE_CHECKING:
    from beetsplug.mcbr.serve.responses import Responses


def blueprint(r: Responses) -> flask.Blueprint:
    """AudioMuse-AI's routes, answering from ``r.service``."""
    bp = flask.Blueprint("audiomuse", __name__, url_prefix="/api")
    service = r.service

    @bp.get("/health")
    def health() -> Any:
        return flask.jsonify(status="ok", service="beets-mcbr", version=__version__)

    @bp.get("/track")
    def audiomuse_track() -> Any:
        found = r.track(flask.request.args.get("item_id"), "item_id")
        fields = service.tracks([found.item_id])[found.item_id]
        out = audiomuse_json(
            fields, item_id=service.mint(found.scheme, fields), distance=0.0, metric=r.metric
        )
        del out["distance"]
        return flask.jsonify(out)

    @bp.get("/similar_tracks")
    def audiomuse_similar() -> Any:
        if flask.request.args.get("item_id") is not None:
            found = r.track(flask.request.args.get("item_id"), "item_id")
        elif flask.request.args.get("title") and flask.request.args.get("artist"):
            found = Found(service.by_title(flask.request.args["title"], flask.request.args["artist"]), BEETS)
        else:
            raise ApiError(400, "Request must include either 'item_id' or both 'title' and 'artist'.")
        n = parse_count(flask.request.args.get("n"), name="n", default=10, high=MAX_COUNT)
        eliminate = parse_flag(flask.request.args.get("eliminate_duplicates"), name="eliminate_duplicates")
        cap = service.playlist.max_per_artist if eliminate else 0
        pairs = service.similar_tracks(found.item_id, n, max_per_artist=cap)
        return flask.jsonify(r.audiomuse_tracks(pairs, found.scheme))

    @bp.get("/find_path")
    def audiomuse_path() -> Any:
        if not flask.request.args.get("start_song_id") or not flask.request.args.get("end_song_id"):
            raise ApiError(400, "Both a start and end song must be provided.")
        start = r.track(flask.request.args.get("start_song_id"), "start_song_id")
        end = r.track(flask.request.args.get("end_song_id"), "end_song_id")
        if start.item_id == end.item_id:
            raise ApiError(400, "Start and end songs cannot be the same.")
        length = parse_count(
            flask.request.args.get("max_steps"), name="max_steps", default=25, low=2, high=MAX_PATH + 2
        )
        ids, steps = service.path(start.item_id, end.item_id, length - 2)
        pairs = list(zip([start.item_id, *ids, end.item_id], [0.0, *steps], strict=False))
        return flask.jsonify(
            path=r.audiomuse_tracks(pairs, start.scheme), total_distance=round(sum(steps), 6)
        )

    return bp
