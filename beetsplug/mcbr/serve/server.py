"""The HTTP server of ``beet mcbr-serve``: werkzeug with a fixed pool of worker threads."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging

    from flask import Flask
    from werkzeug.serving import BaseWSGIServer

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
