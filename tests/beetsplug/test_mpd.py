"""MPD with a real ``mpd``: ``beet mcbr-playlist --mpd`` and ``beet mcbr-dj``.

A module fixture starts MPD on a free port of 127.0.0.1 with a null output, over a
music folder of generated (silent, one minute) FLAC files named after the planted
library of test_playlist_command.py: low tones (Jazz), high tones (Rock) and a bridge.
Skipped when the ``mpd`` binary or python-mpd2 is missing (``.ci/run`` installs both).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from beets import context, plugins

from beetsplug.mcbr import mpd_command
from mcbr_core.players.mpd import IdleChannel, MpdSettings, Stopper
from mcbr_core.plugins import reset_plugins
from tests.audiogen import write_audio
from tests.beetsplug.helpers import LIBRARY, ToyHelper

mpd = pytest.importorskip("mpd", reason="python-mpd2 is not installed")
pytestmark = [
    pytest.mark.skipif(shutil.which("mpd") is None, reason="the mpd binary is not installed"),
    pytest.mark.timeout(120),
]

OPEN = ("--max-per-artist", "0", "--max-per-album", "0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MpdServer:
    """``mpd --no-daemon`` on a temporary config: null output, 127.0.0.1, a free port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.music = root / "music"
        self.port = free_port()
        self.conf = root / "mpd.conf"
        (root / "playlists").mkdir(exist_ok=True)
        self.conf.write_text(
            f'music_directory "{self.music}"\n'
            f'playlist_directory "{root / "playlists"}"\n'
            f'db_file "{root / "db"}"\n'
            f'state_file "{root / "state"}"\n'
            f'pid_file "{root / "pid"}"\n'
            'bind_to_address "127.0.0.1"\n'
            f'port "{self.port}"\n'
            'zeroconf_enabled "no"\n'
            'audio_output {\n  type "null"\n  name "null"\n}\n'
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        with open(self.root / "mpd.log", "ab") as log:
            self.proc = subprocess.Popen(
                ["mpd", "--no-daemon", "--stderr", str(self.conf)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
                    if s.recv(64).startswith(b"OK MPD"):
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mpd did not start: {(self.root / 'mpd.log').read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    def client(self) -> Any:
        client = mpd.MPDClient()
        client.timeout = 10
        client.idletimeout = 10
        client.connect("127.0.0.1", self.port)
        return client

    def update(self) -> None:
        """Scan the music folder and wait for MPD's ``update`` idle event to say it is done."""
        watcher = IdleChannel(MpdSettings(host="127.0.0.1", port=self.port, music_directory=str(self.music)))
        watcher.open()  # before the update starts: MPD keeps its events for the next idle
        client = self.client()
        try:
            client.update()
            while "updating_db" in client.status():
                watcher.wait(["update"], None)
        finally:
            watcher.close()
            client.disconnect()


@pytest.fixture(scope="module")
def mpd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MpdServer]:
    server = MpdServer(tmp_path_factory.mktemp("mpd"))
    server.music.mkdir()
    silence = np.zeros((8000 * 60, 1), dtype=np.float32)  # a minute of silence: a few hundred bytes of FLAC
    for title in LIBRARY:
        write_audio(server.music / f"{title}.flac", silence, 8000)
    try:
        server.start()
        server.update()
        yield server
    finally:
        server.stop()  # also when the scan fails: no mpd is left running


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = condition()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or condition}")


class MpdHelper(ToyHelper):
    @pytest.fixture(autouse=True)
    def _library(self, setup: None, mpd_server: MpdServer) -> Iterator[None]:
        """The planted library, its files in MPD's music folder (one stray file outside it)."""
        self.server = mpd_server
        self.config["mpd"]["host"] = "127.0.0.1"
        self.config["mpd"]["port"] = mpd_server.port
        # beets' folder is MPD's: the URIs come from `directory`, and beets stores the paths
        # relative to it, as in a real library
        self.config["directory"] = str(mpd_server.music)
        self.lib.directory = os.fsencode(str(mpd_server.music))
        context.set_music_dir(self.lib.directory)  # what opening a library with that directory does
        self.config["mcbr"]["dj"]["reconnect"] = 20.0
        vectors = self.plant_library(lambda title: mpd_server.music / f"{title}.flac", lambda n: 60.0)
        with self.lib.transaction():
            stray_path = self.lib_path / "stray.flac"  # beets' folder, not MPD's
            stray_path.write_bytes(b"")
            stray = self.add_item(
                title="stray", artist="Z", genres=["Jazz"], length=60.0, path=str(stray_path)
            )
            vectors[stray.id] = np.array([0.305, 0.1], dtype=np.float32)  # right beside low0
        self.store_vectors(vectors)
        with self.lib.transaction() as tx:
            stored = dict(tx.query("SELECT title, path FROM items"))
        assert stored["low0"] == b"low0.flac" and os.path.isabs(stored["stray"])  # as beets stores them
        self.mpd = mpd_server.client()
        self.mpd.clear()
        yield
        with contextlib.suppress(Exception):
            self.mpd.disconnect()
        reset_plugins(None)

    @property
    def mcbr(self) -> Any:
        return next(p for p in plugins.find_plugins() if p.name == "mcbr")

    def output(self, *args: str) -> str:
        return self.run_with_output(*args)

    def queue(self) -> list[str]:
        return [Path(s["file"]).stem for s in self.mpd.playlistinfo()]

    def ahead(self) -> list[str]:
        """Titles queued after the current song."""
        status = self.mpd.status()
        start = int(status.get("song", -1)) + 1
        return self.queue()[start:]

    def load(self, *titles: str, play: int | None = None) -> None:
        for title in titles:
            self.mpd.add(f"{title}.flac")
        if play is not None:
            self.mpd.play(play)

    @contextlib.contextmanager
    def dj(self, **options: Any) -> Iterator[mpd_command.DjRun]:
        """``beet mcbr-dj`` in a thread, stopped (and checked to stop within 5 s) on exit."""
        opts = SimpleNamespace(**{"restrict": None, "ahead": None, "history": None, "seeds": None, **options})
        run = mpd_command.start_dj(self.mcbr, self.lib, opts)
        stopper = Stopper()
        errors: list[BaseException] = []

        def serve() -> None:
            try:
                run.serve(stopper)
            except BaseException as exc:  # handed to the test
                errors.append(exc)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            yield run
        finally:
            stopper.stop()
            thread.join(5.0)
            stopper.close()
        assert not thread.is_alive(), "the DJ did not stop"
        assert not errors, errors


class TestSend(MpdHelper):
    def test_replace_puts_the_playlist_in_the_queue_in_order_and_plays(self) -> None:
        self.load("high5")
        listing = self.output(
            "mcbr-playlist", "radio", "title:high0", "-n", "4", *OPEN, "-f", "$title"
        ).split()
        out = self.output("mcbr-playlist", "radio", "title:high0", "-n", "4", *OPEN, "--replace")
        assert "mcbr: replaced MPD's queue with 4 tracks, playing" in out
        assert self.queue() == listing
        assert self.mpd.status()["state"] == "play"

    def test_mpd_appends_and_skips_files_outside_the_music_folder(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        self.load("high5", play=0)
        listing = self.output(
            "mcbr-playlist", "radio", "title:low0", "-n", "4", *OPEN, "-f", "$title"
        ).split()
        assert "stray" in listing
        out = self.output("mcbr-playlist", "radio", "title:low0", "-n", "4", *OPEN, "--mpd")
        assert "mcbr: added to MPD's queue 3 tracks" in out
        assert self.queue() == ["high5"] + [t for t in listing if t != "stray"]
        assert self.mpd.status()["song"] == "0"  # playback untouched
        outside = [
            r.getMessage() for r in caplog.records if "outside MPD's music directory" in r.getMessage()
        ]
        assert len(outside) == 1 and outside[0].startswith("1 of 4 tracks")

    def test_pretend_sends_nothing(self) -> None:
        out = self.output("mcbr-playlist", "radio", "title:low0", "-n", "3", "--replace", "-p")
        assert "mcbr: would put in place of MPD's queue 3 tracks" in out
        assert self.queue() == []

    def test_mpd_away_is_a_one_line_error(self) -> None:
        from beets.ui import UserError

        self.config["mpd"]["port"] = free_port()
        with pytest.raises(UserError, match=r"^mcbr: cannot connect to MPD at 127\.0\.0\.1:\d+: "):
            self.run_command("mcbr-playlist", "radio", "title:low0", "-n", "3", "--mpd")


class TestDj(MpdHelper):
    def test_keeps_n_ahead_never_repeats_history_and_respects_restrict(self) -> None:
        self.load("low1", "low2", "low0", play=2)  # low1 and low2 played before low0
        with self.dj(ahead=3, restrict="^genres:Rock") as run:
            first = wait_for(lambda: len(self.ahead()) == 3 and self.ahead(), what="three ahead")
            assert not {"low0", "low1", "low2", "stray"} & set(first)
            assert not any(t.startswith("high") for t in first)
            self.mpd.next()  # a skip: low0 played less than skip_seconds
            wait_for(lambda: run.dj.queued >= 4 and len(self.ahead()) == 3, what="refilled after the skip")
            time.sleep(0.3)  # let the DJ settle
            current = self.queue()[int(self.mpd.status()["song"])]
            ahead = self.ahead()
            assert len(ahead) == 3 and len(set(ahead)) == 3
            assert not {"low0", "low1", "low2", current} & set(ahead)
            assert not any(t.startswith("high") for t in ahead)

    def test_reconnects_after_mpd_restarts(self, caplog: pytest.LogCaptureFixture) -> None:
        for _ in range(5):  # use up song ids: after the restart MPD numbers the queue from 1 again
            self.mpd.deleteid(self.mpd.addid("low5.flac"))
        self.load("high0", play=0)
        with self.dj(ahead=2) as run:
            wait_for(lambda: len(self.ahead()) == 2, what="two ahead")
            before = self.ahead()
            self.mpd.disconnect()
            self.server.stop()
            self.server.start()
            self.mpd = self.server.client()
            assert len(self.queue()) == 3  # MPD restored its queue from the state file (new song ids)
            wait_for(
                lambda: any("reconnected to MPD" in r.getMessage() for r in caplog.records),
                what="reconnected",
            )
            self.mpd.deleteid(self.mpd.playlistinfo()[-1]["id"])  # the listener takes the DJ's last one out
            wait_for(lambda: len(self.ahead()) == 2 and run.dj.queued == 3, what="refilled after the restart")
            time.sleep(0.3)
            ahead = self.ahead()
            assert ahead[0] == before[0] and ahead[1] != before[1]  # nothing else replanned
            assert self.queue()[0] == "high0" and run.dj.history == type(run.dj.history)()  # high0 still on

    def test_stops_on_request_and_on_ctrl_c(self) -> None:
        self.load("low0", play=0)
        with self.dj(ahead=2):
            wait_for(lambda: len(self.ahead()) == 2, what="two ahead")
        self.mpd.clear()
        self.load("high0", play=0)
        main = threading.get_ident()
        finished = threading.Event()

        def interrupt() -> None:  # Ctrl-C once the DJ has filled the queue
            with contextlib.suppress(AssertionError):
                wait_for(lambda: finished.is_set() or len(self.ahead_of(watcher)) == 2, what="two ahead")
            if not finished.is_set():
                signal.pthread_kill(main, signal.SIGINT)

        watcher = self.server.client()
        threading.Thread(target=interrupt, daemon=True).start()
        started = time.monotonic()
        try:
            out = self.output("mcbr-dj", "-n", "2")
        finally:
            finished.set()
            watcher.disconnect()
        assert out.splitlines()[-1] == "mcbr-dj: stopped (2 tracks queued)"
        assert time.monotonic() - started < 20

    @staticmethod
    def ahead_of(client: Any) -> list[str]:
        status = client.status()
        return [s["file"] for s in client.playlistinfo()][int(status.get("song", -1)) + 1 :]

    def test_outside_tracks_are_left_out_with_one_line(self, caplog: pytest.LogCaptureFixture) -> None:
        self.load("low0", play=0)
        with self.dj(ahead=4):
            wait_for(lambda: len(self.ahead()) == 4, what="four ahead")
            assert "stray" not in self.ahead()
        lines = [r.getMessage() for r in caplog.records if "outside MPD's music directory" in r.getMessage()]
        music = os.path.normpath(self.server.music)
        expected = (
            f"1 of {len(LIBRARY) + 1} tracks lie outside MPD's music directory {music} and are left out "
            "(set mcbr.mpd.music_directory if MPD sees the library elsewhere)"
        )
        assert lines == [expected]
