"""MPD: connection settings, paths as MPD URIs, a thin client and sending a playlist.

python-mpd2 is imported when a connection is first made, so importing this module
costs nothing and a missing ``python-mpd2`` is a one-line error at the first use.

MPD names a song by its URI relative to its ``music_directory``; a host knows files
by path. ``MusicDirectory`` maps one to the other: a file outside MPD's music folder
has no URI (and cannot be queued).

The DJ's event loop on this client is in ``mcbr_core.players.mpd_dj``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcbr_core.errors import ConfigError, McbrError
from mcbr_core.players.dj import PlayerState, QueueEntry

if TYPE_CHECKING:
    import mpd

log = logging.getLogger(__name__)

#: The subsystems whose changes wake the DJ.
DJ_SUBSYSTEMS = ("player", "playlist")

#: First and longest delay between reconnection attempts (seconds).
RECONNECT_DELAYS = (0.25, 5.0)


class PlayerError(McbrError):
    """MPD refused a command (a song it does not know, a wrong password)."""


class PlayerGone(McbrError):
    """The connection to MPD failed or was lost."""


@dataclass(frozen=True)
class MpdSettings:
    """Where MPD is, and where its music folder is on this machine.

    Attributes
    ----------
    host
        Host name, or the path of MPD's Unix socket (``/run/mpd/socket``, ``~/.mpd/socket``).
    port
        TCP port (ignored for a socket).
    password
        Sent after connecting when not empty.
    music_directory
        MPD's ``music_directory`` as this machine sees it: a file's URI is its path
        relative to this folder.
    timeout
        Seconds a command may take before the connection counts as lost.
    """

    host: str = "localhost"
    port: int = 6600
    password: str = field(default="", repr=False)
    music_directory: str = ""
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigError("mpd.host: must name a host or a socket")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ConfigError(f"mpd.port: must be a port number, got {self.port!r}")
        if not self.music_directory:
            raise ConfigError("mcbr.mpd.music_directory: must name MPD's music folder")
        if not self.timeout > 0:
            raise ConfigError(f"mcbr.mpd.timeout: must be > 0 seconds, got {self.timeout!r}")

    @property
    def socket_path(self) -> str | None:
        """The Unix socket named by ``host``, or ``None`` for a TCP host."""
        if self.host.startswith(("/", "~")):
            return os.path.expanduser(self.host)
        return None

    @property
    def where(self) -> str:
        """``host:port``, or the socket's path, for messages."""
        return self.socket_path or f"{self.host}:{self.port}"


def _norm(path: str) -> str:
    return os.path.normpath(os.path.abspath(os.path.expanduser(path)))


class MusicDirectory:
    """Paths of this machine <-> URIs relative to MPD's music folder."""

    def __init__(self, root: str) -> None:
        self.root = _norm(root)

    def uri(self, path: str) -> str | None:
        """The URI of a file, or ``None`` when it lies outside the folder (or is not UTF-8)."""
        full = _norm(path)
        try:
            rel = os.path.relpath(full, self.root)
        except ValueError:  # another Windows drive
            return None
        if rel == os.curdir or rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
            return None
        try:
            rel.encode("utf-8")  # a file name that is not UTF-8 (surrogate escapes) has no MPD URI
        except UnicodeEncodeError:
            return None
        return rel.replace(os.sep, "/")

    def path(self, uri: str) -> str | None:
        """The file of a URI, or ``None`` for a stream (``http://...``)."""
        if "://" in uri:
            return None
        return os.path.join(self.root, *uri.split("/"))


class Stopper:
    """A stop request another thread (or a test) can make while the DJ waits on MPD."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._read, self._write = os.pipe()

    def stop(self) -> None:
        """Ask the loop to stop; it closes its connection and returns."""
        if not self._event.is_set():
            self._event.set()
            os.write(self._write, b"x")

    @property
    def stopped(self) -> bool:
        return self._event.is_set()

    def fileno(self) -> int:
        """Readable once ``stop()`` was called (for ``select``)."""
        return self._read

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` unless stopped first; returns whether stopped."""
        return self._event.wait(max(seconds, 0.0))

    def close(self) -> None:
        for fd in (self._read, self._write):
            try:
                os.close(fd)
            except OSError:
                pass


def _seconds(row: dict[str, Any], *keys: str) -> float:
    for key in keys:
        value = row.get(key)
        if value is not None:
            try:
                return float(str(value).split(":")[0])
            except ValueError:
                continue
    return 0.0


def quote(arg: str) -> str:
    """An MPD protocol argument: double-quoted, with ``"`` and ``\\`` escaped."""
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


class IdleChannel:
    """A second connection that only waits on MPD's ``idle`` (the usual two-connection idiom).

    python-mpd2's synchronous client blocks inside ``idle`` and cannot be woken; this
    channel speaks the few lines of the protocol it needs itself, so ``select()`` can
    wait on its socket and on a ``Stopper`` together. MPD keeps the events of a
    connection between two ``idle`` commands, so none is lost while the DJ works.
    """

    def __init__(self, settings: MpdSettings) -> None:
        self.settings = settings
        self._sock: socket.socket | None = None
        self._file: Any = None

    def open(self) -> None:
        s = self.settings
        try:
            if s.socket_path:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(s.timeout)
                sock.connect(s.socket_path)
            else:
                sock = socket.create_connection((s.host, s.port), timeout=s.timeout)
        except OSError as exc:
            raise PlayerGone(f"cannot connect to MPD at {s.where}: {_reason(exc)}") from None
        self._sock, self._file = sock, sock.makefile("rb")
        if not self._line().startswith("OK MPD "):
            self.close()
            raise PlayerGone(f"{s.where} does not speak MPD's protocol")
        if s.password:
            self._send(f"password {quote(s.password)}")
            self._response()

    def _send(self, line: str) -> None:
        assert self._sock is not None
        try:
            self._sock.sendall(line.encode("utf-8") + b"\n")
        except OSError as exc:
            self.close()
            raise PlayerGone(f"lost MPD at {self.settings.where}: {_reason(exc)}") from None

    def _line(self) -> str:
        try:
            raw = self._file.readline() if self._file is not None else b""
        except OSError as exc:
            self.close()
            raise PlayerGone(f"lost MPD at {self.settings.where}: {_reason(exc)}") from None
        if not raw.endswith(b"\n"):
            self.close()
            raise PlayerGone(f"lost MPD at {self.settings.where}: connection closed")
        return raw.decode("utf-8", "replace").rstrip("\n")

    def _response(self) -> list[str]:
        lines = []
        while (line := self._line()) != "OK":
            if line.startswith("ACK "):
                raise PlayerError(f"MPD refused the idle channel: {line.split('} ', 1)[-1]}")
            lines.append(line)
        return lines

    def wait(self, subsystems: Sequence[str], stopper: Stopper | None) -> list[str] | None:
        """Subsystems that changed (at once if they changed since the last wait), or ``None`` when stopped."""
        if self._sock is None:
            self.open()
        assert self._sock is not None
        self._send(" ".join(["idle", *subsystems]))
        watched = [self._sock.fileno()] + ([stopper.fileno()] if stopper is not None else [])
        self._sock.settimeout(None)  # waiting is not a timeout
        try:
            ready, _, _ = select.select(watched, [], [])
            if stopper is not None and stopper.fileno() in ready:
                return None
            return [line.split(": ", 1)[1] for line in self._response() if line.startswith("changed: ")]
        finally:
            if self._sock is not None:
                self._sock.settimeout(self.settings.timeout)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


class MpdPlayer:
    """Connections to MPD: python-mpd2's ``MPDClient`` (imported on ``connect``) for commands, and an
    ``IdleChannel`` to wait on.

    Every method raises ``PlayerGone`` when MPD cannot be reached, and ``PlayerError``
    when it refuses a command. The command connection sits unused while the DJ waits,
    and MPD closes idle connections (``connection_timeout``, 60 s by default): a
    command finding it closed opens it again once before MPD counts as gone.
    """

    def __init__(self, settings: MpdSettings) -> None:
        self.settings = settings
        self.music = MusicDirectory(settings.music_directory)
        self._client: mpd.MPDClient | None = None
        self._idle = IdleChannel(settings)

    # -- connection ----------------------------------------------------------------

    def _open(self) -> mpd.MPDClient:
        try:
            import mpd
        except ImportError:
            raise McbrError(
                "MPD support needs python-mpd2: pip install 'beets-mcbr[mpd]' (or python-mpd2)"
            ) from None
        client = mpd.MPDClient()
        client.timeout = self.settings.timeout
        s = self.settings
        try:
            client.connect(s.socket_path or s.host, s.port)
        except (OSError, mpd.MPDError) as exc:
            raise PlayerGone(f"cannot connect to MPD at {s.where}: {_reason(exc)}") from None
        if s.password:
            try:
                client.password(s.password)
            except mpd.CommandError:
                _disconnect(client)
                raise PlayerError(f"MPD at {s.where} refused the password (mpd.password)") from None
            except (OSError, mpd.MPDError) as exc:
                _disconnect(client)
                raise PlayerGone(f"lost MPD at {s.where}: {_reason(exc)}") from None
        return client

    def connect(self) -> None:
        """Connect (and send the password).

        Raises
        ------
        McbrError
            When python-mpd2 is not installed.
        PlayerGone
            When MPD cannot be reached.
        PlayerError
            When MPD refuses the password.
        """
        self.close()
        self._client = self._open()
        log.debug("connected to MPD %s at %s", self._client.mpd_version, self.settings.where)

    @property
    def connected(self) -> bool:
        return self._client is not None

    def close(self) -> None:
        """Disconnect (quietly, whatever state the connections are in)."""
        client, self._client = self._client, None
        if client is not None:
            _disconnect(client)
        self._idle.close()

    def _call(self, command: str, *args: Any) -> Any:
        import mpd

        for attempt in (1, 2):
            if self._client is None:
                if attempt == 1:
                    raise PlayerGone(f"not connected to MPD at {self.settings.where}")
                self._client = self._open()
            try:
                return getattr(self._client, command)(*args)
            except mpd.CommandError as exc:
                raise PlayerError(f"MPD refused {command}: {_reason(exc)}") from None
            except (OSError, mpd.MPDError) as exc:
                _disconnect(self._client)
                self._client = None
                if attempt == 2:
                    raise PlayerGone(f"lost MPD at {self.settings.where}: {_reason(exc)}") from None
                log.debug("MPD closed the command connection (%s); opening it again", _reason(exc))
        raise AssertionError("unreachable")

    # -- queue -----------------------------------------------------------------------

    def status(self) -> dict[str, str]:
        return self._call("status")

    def queue(self, start: int = 0, end: int | None = None) -> list[dict[str, Any]]:
        """Queue entries from position ``start`` up to ``end`` (default: the end)."""
        if end is None:
            end = int(self.status().get("playlistlength", 0))
        if end <= start:
            return []
        return list(self._call("playlistinfo", f"{start}:{end}"))

    def add(self, uri: str) -> str:
        """Append a song; returns its queue id."""
        return str(self._call("addid", uri))

    def delete(self, song_id: str) -> None:
        self._call("deleteid", song_id)

    def delete_range(self, start: int, end: int) -> None:
        if end > start:
            self._call("delete", f"{start}:{end}")

    def play(self, position: int = 0) -> None:
        self._call("play", position)

    def state(self, item_of: Callable[[str], int | None]) -> PlayerState:
        """What MPD is doing, its songs mapped to library items by ``item_of(path)``."""
        status = self.status()
        length = int(status.get("playlistlength", 0))
        position = status.get("song")
        start = int(position) if position is not None else 0
        rows = self.queue(start, length)
        entries = [self._entry(row, item_of) for row in rows]
        if position is None or not entries:
            return PlayerState(status.get("state", "stop"), None, tuple(entries))
        return PlayerState(
            status.get("state", "stop"),
            entries[0],
            tuple(entries[1:]),
            elapsed=_seconds(status, "elapsed", "time"),
        )

    def played_before(self, n: int, item_of: Callable[[str], int | None]) -> list[int | None]:
        """Items of the ``n`` songs before the current one (oldest first): what most likely played."""
        position = self.status().get("song")
        if position is None or n <= 0:
            return []
        end = int(position)
        return [self._entry(row, item_of).item_id for row in self.queue(max(0, end - n), end)]

    def _entry(self, row: dict[str, Any], item_of: Callable[[str], int | None]) -> QueueEntry:
        path = self.music.path(str(row.get("file", "")))
        return QueueEntry(
            str(row.get("id", "")),
            item_of(path) if path is not None else None,
            _seconds(row, "duration", "time"),
        )

    # -- waiting -------------------------------------------------------------------------

    def open_idle(self) -> None:
        """Open the idle channel now: changes from here on wake the next ``wait``."""
        self._idle.close()
        self._idle.open()

    def wait(self, subsystems: Sequence[str], stopper: Stopper | None = None) -> list[str] | None:
        """Block until one of ``subsystems`` changes (their names) or ``stopper`` stops (``None``)."""
        return self._idle.wait(subsystems, stopper)


def _disconnect(client: Any) -> None:
    with contextlib.suppress(Exception):  # a dead socket may fail in any way while closing
        client.disconnect()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc)
    if text.startswith("[") and "} " in text:  # "[50@0] {addid} No such song"
        text = text.split("} ", 1)[1]
    return text or type(exc).__name__


# -- sending a playlist -------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """What ``send`` did: songs queued, files outside MPD's folder, files MPD does not know."""

    added: int
    outside: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()


def send(player: MpdPlayer, paths: Iterable[str], *, replace: bool = False) -> Sent:
    """Queue files in order: append them, or with ``replace`` put them in place of the queue and play.

    The old queue goes only once at least one new song was added, so a playlist MPD
    knows nothing of leaves the queue as it was.
    """
    outside: list[str] = []
    uris: list[tuple[str, str]] = []
    for path in paths:
        uri = player.music.uri(path)
        if uri is None:
            outside.append(path)
        else:
            uris.append((path, uri))
    old = int(player.status().get("playlistlength", 0)) if replace else 0
    added = 0
    unknown: list[str] = []
    for path, uri in uris:
        try:
            player.add(uri)
            added += 1
        except PlayerError:
            unknown.append(path)
    if replace and added:
        player.delete_range(0, old)
        player.play(0)
    return Sent(added, tuple(outside), tuple(unknown))
