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

Modules: ``service`` (lookups and searches), ``app`` (the Flask application: token,
errors), ``native`` and ``audiomuse`` (the two sets of routes, as blueprints),
``responses`` (what the routes share), ``server`` (the pooled werkzeug server).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Protocol

from beets import ui

from beetsplug.mcbr import settings
from beetsplug.mcbr.serve.app import make_app
from beetsplug.mcbr.serve.server import make_server
from beetsplug.mcbr.serve.service import Plain, Service
from mcbr_core.errors import McbrError

if TYPE_CHECKING:
    from beets.library import Library

    from beetsplug.mcbr import McbrPlugin

__all__ = ["Plain", "ServeOptions", "Service", "make_app", "make_server", "run", "serve_command"]


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
