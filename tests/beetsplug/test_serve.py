"""`beet mcbr-serve`: the real HTTP server over a library with planted embeddings, called over HTTP.

The toy model (tests/toymodel.py) embeds a track as (centroid kHz, rms), euclidean.
Three albums: low tones (artists A, B, C), high tones (D, E, F) and a bridge of tones
in between; ``low0`` has a copy (the same recording, a hair away). The server runs in
a thread (werkzeug, the command's own pool of workers); one test runs the command
itself in a subprocess.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from beets import plugins
from beets.test.helper import ImportHelper, PluginMixin

from beetsplug.mcbr import serve, settings
from mcbr_core.plugins import Plugins, reset_plugins
from mcbr_core.similarity import Neighbours
from mcbr_core.store.embeddings import EmbeddingStore
from tests.audiogen import tone, write_audio
from tests.toymodel import ToyPlugin, make_toy_model

pytest.importorskip("flask")

#: title -> (centroid kHz, artist, album)
LIBRARY: dict[str, tuple[float, str, str]] = {
    **{f"low{i}": (0.30 + 0.02 * i, "ABC"[i // 2], "Low") for i in range(6)},
    **{f"high{i}": (2.50 + 0.04 * i, "DEF"[i // 2], "High") for i in range(6)},
    **{f"bridge{i}": (0.6 + 0.2 * i, f"Bridge {i}", "Bridge") for i in range(9)},
}
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def mbid(kind: str, title: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}:{title}"))


class ServeHelper(PluginMixin, ImportHelper):
    plugin: ClassVar[str] = "mcbr"
    db_on_disk: ClassVar[bool] = True

    def setup_beets(self) -> None:
        super().setup_beets()
        self.toy = make_toy_model(self.temp_path / "toy.safetensors")
        self.config["mcbr"]["model"] = str(self.toy)
        self.config["mcbr"]["index"]["backend"] = "exact"
        self.config["mcbr"]["workers"] = 0  # in-process: the toy model is registered in this process only
        self.config["import"]["quiet"] = True
        self.config["mcbr"]["playlist"]["max_per_album"] = 0  # one album holds the whole bridge
        reset_plugins(Plugins((ToyPlugin(),), entry_points=False))
        self.ids: dict[str, int] = {}
        self.meta: dict[int, dict[str, str]] = {}  # item id -> title, path in the library, MusicBrainz ids
        vectors: dict[int, np.ndarray] = {}
        albums: dict[str, list] = {}
        with self.lib.transaction():
            for title, (khz, artist, album) in LIBRARY.items():
                low = title.startswith("low")  # the low tones carry MusicBrainz ids, the others none
                item = self.add_item(
                    title=title,
                    artist=artist,
                    album=album,
                    albumartist=album,
                    genres=["Jazz" if low else "Rock"],
                    mood="Sad; Calm" if low else "Happy",
                    length=200.0,
                    year=1970,
                    path=str(self.lib_path / album / f"{title}.mp3"),
                    mb_trackid=mbid("recording", title) if low else "",
                    mb_releasetrackid=mbid("track", title) if low else "",
                    mb_artistid=mbid("artist", artist),
                )
                self.ids[title] = item.id
                self.meta[item.id] = {"title": title, "rel": f"{album}/{title}.mp3"} | (
                    {"track": mbid("track", title), "recording": mbid("recording", title)} if low else {}
                )
                vectors[item.id] = np.array([khz, 0.1], dtype=np.float32)
                albums.setdefault(album, []).append(item)
            copy = self.add_item(  # low0 again: the same recording on a compilation
                title="low0",
                artist="A",
                album="Best of",
                path=str(self.lib_path / "Best of" / "low0.mp3"),
                mb_trackid=mbid("recording", "low0"),
            )
            self.ids["low0-copy"] = copy.id
            self.meta[copy.id] = {
                "title": "low0",
                "rel": "Best of/low0.mp3",
                "recording": mbid("recording", "low0"),
            }
            vectors[copy.id] = np.array([0.3001, 0.1], dtype=np.float32)
            bare = self.add_item(title="unanalysed", artist="Z", path=str(self.lib_path / "unanalysed.mp3"))
            self.ids["unanalysed"] = bare.id
        for items in [*albums.values(), [copy]]:
            self.lib.add_album(items)
        self.store_path = self.temp_path / "library.mcbr.db"
        with EmbeddingStore(self.store_path) as store:
            for item_id, vector in vectors.items():
                store.put(item_id, vector, model_id="toy-1", feature_version="1")
        self.server: Any = None

    def teardown_beets(self) -> None:
        self.stop()
        reset_plugins(None)
        super().teardown_beets()

    # -- the server ----------------------------------------------------------------------

    @property
    def mcbr(self) -> Any:
        return next(p for p in plugins.find_plugins() if p.name == "mcbr")

    def start(self, *, token: str = "", quiet: float = 30.0) -> str:
        """Start the server on a free port; its base URL."""
        plugin = self.mcbr
        plugin.use_library(self.lib)
        s = settings.load_serve(plugin.config, port=0, token=token)
        self.service = serve.Service(plugin, self.lib, s, quiet=quiet)
        self.service.start()
        self.server = serve.make_server(
            serve.make_app(self.service), "127.0.0.1", 0, threads=8, log=plugin.log
        )
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        return self.base

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.service.close()
            self.server = None

    def get(
        self, path: str, *, headers: dict[str, str] | None = None, method: str = "GET"
    ) -> tuple[int, Any]:
        """Status and decoded JSON body of a request."""
        request = urllib.request.Request(self.base + path, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            body = exc.read()
            assert exc.headers["Content-Type"] == "application/json", body
            return exc.code, json.loads(body)

    def ok(self, path: str) -> Any:
        status, body = self.get(path)
        assert status == 200, body
        return body

    def title_of(self, item_id: int) -> str:
        return next(t for t, i in self.ids.items() if i == item_id)


class TestNative(ServeHelper):
    def test_similar_tracks_have_beets_fields_and_a_similarity(self) -> None:
        self.start()
        body = self.ok(f"/api/v1/similar/tracks/{self.ids['low2']}?n=4")
        assert body["query"]["title"] == "low2" and "similarity" not in body["query"]
        tracks = body["tracks"]
        assert len(tracks) == 4 and all(t["title"].startswith("low") and t["title"] != "low2" for t in tracks)
        assert [t["title"] for t in tracks][:2] in (["low1", "low3"], ["low3", "low1"])
        first = tracks[0]
        for key in (
            "id",
            "ref",
            "title",
            "artist",
            "album",
            "albumartist",
            "year",
            "genres",
            "mood",
            "length",
        ):
            assert key in first
        assert (
            first["ref"] == str(first["id"])
            and first["genres"] == ["Jazz"]
            and first["mood"] == ["Sad", "Calm"]
        )
        assert first["mb_trackid"] == mbid("recording", first["title"])
        assert first["path"] == f"Low/{first['title']}.mp3"  # relative to the library: never absolute
        similarities = [t["similarity"] for t in tracks]
        assert all(0.0 <= s <= 1.0 for s in similarities) and similarities == sorted(
            similarities, reverse=True
        )
        assert [t["distance"] for t in tracks] == sorted(t["distance"] for t in tracks)

    def test_a_recording_is_listed_once_unless_duplicates(self) -> None:
        self.start()
        ids = [t["id"] for t in self.ok(f"/api/v1/similar/tracks/{self.ids['low1']}?n=10")["tracks"]]
        assert (self.ids["low0"] in ids) != (self.ids["low0-copy"] in ids)
        every = self.ok(f"/api/v1/similar/tracks/{self.ids['low1']}?n=10&duplicates=true")["tracks"]
        assert {self.ids["low0"], self.ids["low0-copy"]} <= {t["id"] for t in every}
        # and the query's own copy never comes back
        own = [t["id"] for t in self.ok(f"/api/v1/similar/tracks/{self.ids['low0']}?n=10")["tracks"]]
        assert self.ids["low0-copy"] not in own

    def test_max_per_artist(self) -> None:
        self.start()
        tracks = self.ok(f"/api/v1/similar/tracks/{self.ids['low0']}?n=5&max_per_artist=1")["tracks"]
        artists = [t["artist"] for t in tracks]
        assert len(tracks) == 5 and len(set(artists)) == len(artists)

    def test_path_moves_from_a_to_b(self) -> None:
        self.start()
        body = self.ok(f"/api/v1/path?from={self.ids['low0']}&to={self.ids['high0']}&n=5")
        assert body["from"]["title"] == "low0" and body["to"]["title"] == "high0"
        khz = [LIBRARY[t["title"]][0] for t in body["tracks"]]
        assert len(khz) == 5 and khz == sorted(khz) and 0.30 < khz[0] and khz[-1] < 2.50
        assert all(0.0 <= t["similarity"] <= 1.0 for t in body["tracks"])
        steps = [t["distance"] for t in body["tracks"]] + [body["to"]["distance"]]
        assert body["distance"] == pytest.approx(sum(steps), abs=1e-5)

    def test_similar_albums_and_artists(self) -> None:
        self.start()
        album = self.lib.get_item(self.ids["low0"]).album_id
        albums = self.ok(f"/api/v1/similar/albums/{album}?n=3")
        assert albums["query"]["album"] == "Low"
        assert [a["album"] for a in albums["albums"]][:2] == ["Best of", "Bridge"]
        assert albums["albums"][-1]["album"] == "High" and all(
            0 <= a["similarity"] <= 1 for a in albums["albums"]
        )
        artists = self.ok("/api/v1/similar/artists?artist=A&n=2")
        assert artists["query"]["artist"] == "A" and artists["query"]["mb_artistid"] == mbid("artist", "A")
        assert [a["artist"] for a in artists["artists"]] == ["B", "C"]
        assert artists["artists"][0]["tracks"] == 2
        by_mbid = self.ok(f"/api/v1/similar/artists?mbid={mbid('artist', 'A')}&n=2")
        assert [a["artist"] for a in by_mbid["artists"]] == ["B", "C"]  # (the copy of low0 has no artist id)

    def test_status(self) -> None:
        self.start()
        body = self.ok("/api/v1/status")
        assert body["model"] == "toy-1" and body["tracks"] == 22 and body["index"]["tracks"] == 22
        assert body["index"]["generation"] == body["store_generation"]


class TestAudioMuse(ServeHelper):
    def test_similar_tracks_as_audiomuse_answers(self) -> None:
        self.start()
        body = self.ok(f"/api/similar_tracks?item_id={self.ids['high1']}&n=3")
        assert isinstance(body, list) and len(body) == 3
        for track in body:
            assert set(track) == {"item_id", "title", "author", "album", "album_artist", "distance"}
            assert track["title"].startswith("high") and track["author"] in "DEF" and track["album"] == "High"
            assert track["item_id"] == str(self.ids[track["title"]])
        assert [t["distance"] for t in body] == sorted(t["distance"] for t in body)

    def test_title_and_artist_instead_of_an_id(self) -> None:
        self.start()
        by_title = self.ok("/api/similar_tracks?title=HIGH1&artist=d&n=3")
        assert by_title == self.ok(f"/api/similar_tracks?item_id={self.ids['high1']}&n=3")

    def test_eliminate_duplicates_caps_each_artist(self) -> None:
        self.config["mcbr"]["playlist"]["max_per_artist"] = 1
        self.start()
        body = self.ok(f"/api/similar_tracks?item_id={self.ids['low0']}&n=4&eliminate_duplicates=true")
        assert len({t["author"] for t in body}) == len(body) == 4
        loose = self.ok(f"/api/similar_tracks?item_id={self.ids['low0']}&n=4&eliminate_duplicates=false")
        assert len({t["author"] for t in loose}) < 4

    def test_find_path_includes_both_ends(self) -> None:
        self.start()
        start, end = self.ids["low0"], self.ids["high0"]
        body = self.ok(f"/api/find_path?start_song_id={start}&end_song_id={end}&max_steps=7")
        path = body["path"]
        assert len(path) == 7 and path[0]["item_id"] == str(start) and path[-1]["item_id"] == str(end)
        assert path[0]["distance"] == 0.0 and all(p["distance"] > 0 for p in path[1:])
        assert body["total_distance"] == pytest.approx(sum(p["distance"] for p in path), abs=1e-5)
        khz = [LIBRARY[p["title"]][0] for p in path]
        assert khz == sorted(khz)
        two = self.ok(f"/api/find_path?start_song_id={start}&end_song_id={end}&max_steps=2")["path"]
        assert [p["item_id"] for p in two] == [str(start), str(end)]

    def test_health_and_track(self) -> None:
        self.start()
        assert self.ok("/api/health")["status"] == "ok"
        track = self.ok(f"/api/track?item_id={self.ids['bridge3']}")
        assert track == {
            "item_id": str(self.ids["bridge3"]),
            "title": "bridge3",
            "author": "Bridge 3",
            "album": "Bridge",
            "album_artist": "Bridge",
        }


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


class TestIds(ServeHelper):
    """Every id form resolves, and results come back in the caller's form."""

    def forms(self, title: str) -> dict[str, str]:
        item_id = self.ids[title]
        meta = self.meta[item_id]
        out = {"beets": str(item_id), "sg-legacy": f"sg-{item_id}"}
        if "track" in meta:
            out |= {
                "releasetrack": meta["track"],
                "recording": meta["recording"].upper(),  # case does not matter
                "sg-m": "sg-m-" + b64(meta["track"]),
            }
        else:  # BeetstreamNext: sha1 of the path relative to beets' `directory`, 16 hex digits
            out["sg-h"] = "sg-h-" + hashlib.sha1(meta["rel"].encode()).hexdigest()[:16]
        return out

    def expected(self, form: str, item_id: int) -> str:
        """The id a caller using ``form`` must get back for ``item_id``."""
        meta = self.meta[item_id]
        track, recording = meta.get("track"), meta.get("recording")
        if form.startswith("sg"):  # as BeetstreamNext mints it, whichever sg- form was sent
            if track or recording:
                return "sg-m-" + b64(track or recording or "")
            return "sg-h-" + hashlib.sha1(meta["rel"].encode()).hexdigest()[:16]
        if form == "releasetrack":
            return track or recording or str(item_id)
        if form == "recording":
            return recording or track or str(item_id)
        return str(item_id)

    @pytest.mark.parametrize("title", ["low2", "bridge4"])
    def test_each_form_round_trips(self, title: str) -> None:
        self.start()
        for form, ref in self.forms(title).items():
            track = self.ok(f"/api/v1/tracks/{ref}")
            assert track["title"] == title, form
            results = self.ok(f"/api/similar_tracks?item_id={ref}&n=6")
            assert len(results) == 6, form
            for result in results:
                back = result["item_id"]
                resolved = self.ok(f"/api/v1/tracks/{back}")  # whatever came back resolves, to that track
                assert resolved["title"] == result["title"], (form, back)
                assert back == self.expected(form, resolved["id"]), (form, result)

    def test_native_refs_follow_the_form(self) -> None:
        self.start()
        body = self.ok(f"/api/v1/similar/tracks/sg-{self.ids['low1']}?n=3")
        assert body["query"]["ref"] == "sg-m-" + b64(mbid("track", "low1"))
        assert [t["ref"] for t in body["tracks"]] == [self.expected("sg", t["id"]) for t in body["tracks"]]

    def test_find_path_with_subsonic_ids(self) -> None:
        self.start()
        start, end = self.forms("low0")["sg-m"], self.forms("high0")["sg-h"]
        path = self.ok(f"/api/find_path?start_song_id={start}&end_song_id={end}&max_steps=4")["path"]
        assert path[0]["item_id"] == start and path[-1]["item_id"] == end


#: (request, status, words of the error); ``{low0}`` stands for that track's beets id
BAD_REQUESTS = [
    ("/api/v1/similar/tracks/999999", 404, "no track 999999"),
    ("/api/v1/similar/tracks/abc", 400, "not a track id"),
    ("/api/v1/similar/tracks/sg-m-!!!", 400, "sg-m-"),
    ("/api/v1/similar/tracks/sg-h-xyz", 400, "hex"),
    ("/api/v1/similar/tracks/0", 400, "start at 1"),
    ("/api/v1/similar/tracks/{low0}?n=0", 400, "between 1 and 1000"),
    ("/api/v1/similar/tracks/{low0}?n=100000", 400, "between 1 and 1000"),
    ("/api/v1/similar/tracks/{low0}?n=ten", 400, "whole number"),
    ("/api/v1/similar/tracks/{low0}?duplicates=maybe", 400, "true or false"),
    ("/api/v1/similar/tracks/{unanalysed}", 404, "no embedding"),
    ("/api/v1/similar/tracks/" + "1" * 300, 400, "longer than"),
    ("/api/v1/similar/albums/abc", 400, "not an album id"),
    ("/api/v1/similar/albums/9999", 404, "no album"),
    ("/api/v1/similar/artists", 400, "missing parameter"),
    ("/api/v1/similar/artists?artist=Nobody", 404, "no tracks by"),
    ("/api/v1/path?from={low0}", 400, "missing parameter 'to'"),
    ("/api/v1/path?from={low0}&to={low0}", 400, "two different tracks"),
    ("/api/v1/path?from={low0}&to={high0}&n=500", 400, "between 1 and 200"),
    ("/api/similar_tracks", 400, "either 'item_id'"),
    ("/api/similar_tracks?title=low0", 400, "either 'item_id'"),
    ("/api/similar_tracks?title=nothing&artist=A", 404, "no track"),
    ("/api/similar_tracks?item_id=" + str(uuid.uuid4()), 404, "MusicBrainz id"),
    ("/api/find_path?start_song_id={low0}", 400, "Both a start and end"),
    ("/api/find_path?start_song_id={low0}&end_song_id={low0}", 400, "cannot be the same"),
    ("/api/find_path?start_song_id={low0}&end_song_id={high0}&max_steps=1", 400, "between 2"),
    ("/nothing/here", 404, "not found"),
    ("/api/v1/tracks/..%2F..%2Fetc%2Fpasswd", 404, "not found"),
]


class TestBadInput(ServeHelper):
    def test_bad_requests_get_a_json_error(self) -> None:
        self.start()  # one server for every case: starting one per case costs a second each
        names = {k.replace("-", "_"): v for k, v in self.ids.items()}
        for path, status, says in BAD_REQUESTS:
            got, body = self.get(path.format(**names))
            assert (got, set(body)) == (status, {"error"}), (path, body)
            assert says.lower() in body["error"].lower(), (path, body)
            assert str(self.temp_path) not in body["error"], (path, body)

    def test_only_get(self) -> None:
        self.start()
        status, body = self.get(f"/api/similar_tracks?item_id={self.ids['low0']}", method="POST")
        assert status == 405 and set(body) == {"error"}

    def test_no_response_names_a_file(self) -> None:
        self.start()
        for path in (
            f"/api/v1/similar/tracks/{self.ids['low0']}?n=30&duplicates=true",
            f"/api/similar_tracks?item_id={self.ids['low0']}&n=30",
            f"/api/v1/path?from={self.ids['low0']}&to={self.ids['high0']}",
        ):
            text = json.dumps(self.ok(path))
            assert str(self.temp_path) not in text and ".mcbr" not in text


class TestToken(ServeHelper):
    def test_a_token_is_required_when_set(self) -> None:
        self.start(token="s3cret")
        path = f"/api/similar_tracks?item_id={self.ids['low0']}&n=2"
        assert self.get(path)[0] == 401
        assert self.get(path + "&token=wrong")[0] == 401
        assert self.get(path, headers={"Authorization": "Bearer wrong"})[0] == 401
        assert self.get(path, headers={"Authorization": "Bearer s3cret"})[0] == 200
        assert self.get(path + "&token=s3cret")[0] == 200
        assert self.get("/api/health")[0] == 401

    def test_the_token_must_be_one_word(self) -> None:
        with pytest.raises(Exception, match="must not contain spaces"):
            settings.load_serve(self.mcbr.config, token="two words")


class TestConcurrency(ServeHelper):
    def requests(self) -> list[str]:
        ids = self.ids
        return [
            f"/api/v1/similar/tracks/{ids['low1']}?n=5",
            f"/api/similar_tracks?item_id={ids['high2']}&n=4",
            f"/api/similar_tracks?item_id=sg-m-{b64(mbid('track', 'low3'))}&n=3",
            f"/api/v1/path?from={ids['low0']}&to={ids['high0']}&n=4",
            "/api/v1/similar/artists?artist=B&n=3",
        ]

    def hammer(self, threads: int, rounds: int, check: dict[str, Any] | None) -> list[str]:
        """``threads`` clients of ``rounds`` requests each; the failures (empty: all answered alike)."""
        failures: list[str] = []
        paths = self.requests()

        def client(n: int) -> None:
            for r in range(rounds):
                path = paths[(n + r) % len(paths)]
                try:
                    status, body = self.get(path)
                except Exception as exc:
                    failures.append(f"{path}: {exc!r}")
                    continue
                if status != 200 or (check is not None and body != check[path]):
                    failures.append(f"{path}: {status} {str(body)[:200]}")

        workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return failures

    def test_eight_clients_get_what_one_gets(self) -> None:
        self.start()
        expected = {path: self.ok(path) for path in self.requests()}
        assert self.hammer(8, 20, expected) == []

    def test_an_import_while_serving(self) -> None:
        """A real `beet import` (analysis, store writes) beside 8 clients; its track shows up afterwards."""
        self.start(quiet=0.2)
        music = self.import_path / "new.flac"
        write_audio(music, tone(3.0, sr=22050, freq=440), 22050)
        before = self.ok("/api/v1/status")["store_generation"]
        failures: list[str] = []
        clients = threading.Thread(target=lambda: failures.extend(self.hammer(8, 20, None)))
        clients.start()
        self.setup_singleton_importer(autotag=False).run()
        clients.join()
        assert failures == []
        new = max(self.lib.items(), key=lambda i: i.id)
        assert new.id not in self.meta
        assert self.service.embedded(new.id)
        assert self.ok("/api/v1/status")["store_generation"] > before
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the server rebuilds its own index once the store is quiet
            ids = [t["id"] for t in self.ok(f"/api/v1/similar/tracks/{self.ids['low1']}?n=30")["tracks"]]
            if new.id in ids:
                break
            self.service.live.wait(5)
            time.sleep(0.1)
        assert new.id in ids
        assert self.ok(f"/api/v1/similar/tracks/{new.id}?n=3")["tracks"]

    def test_another_process_rebuilds_the_index(self) -> None:
        """A writer with its own store connection adds a track and rebuilds the shared index; the server swaps it in."""
        self.start()  # quiet 30 s: only the writer's rebuild can bring the track in
        extra = self.add_item(title="low-extra", artist="X", path=str(self.lib_path / "x.mp3"))
        failures: list[str] = []
        clients = threading.Thread(target=lambda: failures.extend(self.hammer(8, 20, None)))
        clients.start()
        with EmbeddingStore(self.store_path) as store:
            store.put(
                extra.id, np.array([0.311, 0.1], dtype=np.float32), model_id="toy-1", feature_version="1"
            )
            plugin = self.mcbr
            writer = Neighbours(
                store,
                model_id="toy-1",
                folder=plugin.engine.index_dir,
                settings=plugin.settings.index,
                metric="euclidean",
                plugins=plugin.engine.plugins,
            )
            writer.index(rebuild=True)
        clients.join()
        assert failures == []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            first = self.ok(f"/api/v1/similar/tracks/{self.ids['low0']}?n=1")["tracks"][0]["id"]
            if first == extra.id:
                break
            time.sleep(0.2)
        assert first == extra.id
        assert self.service.live.swaps >= 1


class TestCommand(ServeHelper):
    def test_beet_mcbr_serve_in_a_subprocess(self) -> None:
        """The command itself: options, the start-up line, the token, and a clean stop on Ctrl-C."""
        config = self.temp_path / "config.yaml"
        config.write_text(
            f"library: {self.lib.path}\ndirectory: {self.lib_path}\nplugins: mcbr\n"
            f"mcbr:\n  model: {self.toy}\n  index: {{backend: exact}}\n  workers: 0\n"
        )
        env = {**os.environ, "BEETSDIR": str(self.temp_path), "HOME": str(self.temp_path)}
        command = ["mcbr-serve", "--port", "0", "--token", "t0k"]
        with subprocess.Popen(
            [sys.executable, "-c", "from beets.ui import main; main()", *command],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            try:
                line = proc.stdout.readline() if proc.stdout else ""
                m = re.search(r"serving (\d+) tracks of toy-1 on http://127\.0\.0\.1:(\d+)/", line)
                assert m, (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
                assert m.group(1) == "22"
                self.base = f"http://127.0.0.1:{m.group(2)}"
                assert self.get("/api/health")[0] == 401
                status, body = self.get(f"/api/similar_tracks?item_id={self.ids['low1']}&n=2&token=t0k")
                assert status == 200 and len(body) == 2
            finally:
                proc.send_signal(signal.SIGINT)
                _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert not list(Path(self.temp_path).glob("library.mcbr-index/serve-*"))
