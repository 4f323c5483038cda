"""What the two sets of routes share: parsing a track id or a count, and shaping tracks as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from beetsplug.mcbr.serve.service import MAX_COUNT

if TYPE_CHECKING:
    from beetsplug.mcbr.serve.service import Found, Service


class Responses:
    """Request helpers bound to one ``Service`` (called inside a request: they read ``flask.request``)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.metric = service.metric

    def track(self, ref: str | None, name: str) -> Found:
        """The track a request parameter (or URL part) ``name`` names."""
        from mcbr_core.api.ids import parse_track_ref

        return self.service.resolve(parse_track_ref(ref, name=name))

    def count(self, name: str = "n", default: int | None = None, high: int = MAX_COUNT) -> int:
        """The count parameter ``name`` (default: ``similar.count``)."""
        import flask

        from mcbr_core.api.results import parse_count

        return parse_count(
            flask.request.args.get(name), name=name, default=default or self.service.default_count, high=high
        )

    def native_tracks(self, pairs: Sequence[tuple[int, float | None]], scheme: str) -> list[dict[str, Any]]:
        """``(item id, distance)`` pairs as the native API's tracks (those gone from the library left out)."""
        from mcbr_core.api.results import track_json

        service = self.service
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
                    metric=self.metric,
                    separator=service.separator,
                    directory=service.directory,
                )
            )
        return out

    def audiomuse_tracks(self, pairs: Sequence[tuple[int, float]], scheme: str) -> list[dict[str, Any]]:
        """``(item id, distance)`` pairs as AudioMuse-AI's tracks (those gone from the library left out)."""
        from mcbr_core.api.results import audiomuse_json

        service = self.service
        tracks = service.tracks([i for i, _ in pairs])
        out = []
        for item_id, distance in pairs:
            if item_id in tracks:
                fields = tracks[item_id]
                out.append(
                    audiomuse_json(
                        fields, item_id=service.mint(scheme, fields), distance=distance, metric=self.metric
                    )
                )
        return out
