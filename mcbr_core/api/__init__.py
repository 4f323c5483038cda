"""What an HTTP API over the embeddings needs, without HTTP and without beets.

- ``ids``: the track ids callers send (beets ids, MusicBrainz ids, BeetstreamNext's
  ``sg-`` song ids), parsed into ``TrackRef`` values and minted back in the caller's form;
- ``results``: request parameters (counts, flags) and the JSON shapes of results,
  with the similarity in [0, 1] derived from the index distance;
- ``live``: keeps a long-running server's index in step with the store while imports
  write to it.

The host (``beetsplug.mcbr.serve``) resolves ids against its library, runs the
searches and turns ``ApiError`` into an HTTP status with ``{"error": message}``.
"""

from __future__ import annotations

from mcbr_core.errors import McbrError


class ApiError(McbrError):
    """A request that cannot be answered, with the HTTP status that says why.

    Parameters
    ----------
    status
        400 for a malformed or out-of-range parameter, 404 for an unknown track or
        one without an embedding, 422 for a request that is well formed but has no
        answer (a path between two tracks that sound the same).
    message
        One line for the caller; never a file path.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
