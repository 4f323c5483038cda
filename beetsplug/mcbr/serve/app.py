"""The Flask application of ``beet mcbr-serve``: the token check, the error answers and the two sets of routes."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from beetsplug.mcbr.serve.service import Service


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

    from beetsplug.mcbr.serve import audiomuse, native
    from beetsplug.mcbr.serve.responses import Responses

    app = flask.Flask("beetsplug.mcbr.serve")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    _guard(app, service)
    responses = Responses(service)
    app.register_blueprint(native.blueprint(responses))
    app.register_blueprint(audiomuse.blueprint(responses))
    return app


def _guard(app: Flask, service: Service) -> None:
    """Refuse requests without the token; answer every error as JSON ``{"error": ...}``."""
    import flask
    from werkzeug.exceptions import HTTPException

    from mcbr_core.api import ApiError

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
