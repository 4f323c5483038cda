#!/usr/bin/env python3
"""`beet mcbr-serve` on a large library: requests per second and latency of similar tracks.

Usage::

    python bench/serve.py [--items 100000] [--clients 8] [--seconds 20] [--threads 8]

Builds a real beets library of N items (placeholder paths, no audio; rows written
with SQL into the schema beets creates) with synthetic
200-d embeddings of the shipped model in the library's sidecar store, builds the
index once, starts `beet mcbr-serve` in its own process and sends
`GET /api/similar_tracks?item_id=K&n=10` (AudioMuse-AI's call) from --clients client
threads for --seconds, one request per connection, random K. The same is measured
with one client, and for the native `/api/v1/similar/tracks/K?n=10`. For comparison
it times `beet similar id:K -n 10` in fresh processes (what one query costs from the
command line: start-up, index load, query) and `beet ls id:K` (beets' own start-up).

The clients run in this process, beside the server on the same machine: on a
machine of few cores they take part of the CPU the server could use. The server's
own CPU time per request (from ``/proc``) is printed too: it depends less on what
else the machine is doing than the wall-clock figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

BEET = [sys.executable, "-c", "import sys; from beets.ui import main; main(sys.argv[1:])"]


def build(folder: Path, n: int) -> None:
    """A library of ``n`` items (one album per 12) and their embeddings in the sidecar store.

    beets creates the schema; the rows go in with one SQL statement, as `Item.add`
    costs several milliseconds per item on a busy machine (minutes for 100,000).
    """
    import sqlite3

    from beets.library import Library

    from mcbr_core.models.checkpoint import read_card
    from mcbr_core.models.shipped import resolve_model
    from mcbr_core.store.embeddings import EmbeddingStore

    Library(str(folder / "library.db"), str(folder / "music"))._close()  # the schema, as beets makes it
    rows = ((i, f"{i}.mp3".encode(), f"Track {i}", f"Artist {i // 12}", f"Album {i // 12}", f"Artist {i // 12}",
             240.0, "MP3") for i in range(1, n + 1))  # fmt: skip
    with sqlite3.connect(
        folder / "library.db"
    ) as db:  # paths relative to the music directory, as beets stores them
        db.executemany(
            "INSERT INTO items (id, path, title, artist, album, albumartist, length, format) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    card = read_card(resolve_model("msd-musicnn"))
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((500, 200)).astype(np.float32)
    vectors = centres[rng.integers(0, 500, n)] + 0.3 * rng.standard_normal((n, 200)).astype(np.float32)
    with EmbeddingStore(folder / "library.mcbr.db") as store:
        store.put_many(
            np.arange(1, n + 1), vectors, model_id=card["id"], feature_version=card["features"]["version"]
        )


def run_beet(folder: Path, *args: str) -> float:
    """Wall time of one `beet ARGS` in a fresh process."""
    env = dict(os.environ, BEETSDIR=str(folder), HOME=str(folder))
    t = time.perf_counter()
    subprocess.run([*BEET, *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def load(port: int, paths: list[str], clients: int, seconds: float) -> tuple[list[float], int]:
    """Latencies (s) of the requests ``clients`` threads complete in ``seconds``, and the failures."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(k: int) -> None:
        mine: list[float] = []
        bad = 0
        n = k
        while time.perf_counter() < stop:
            path = paths[n % len(paths)]
            n += clients
            t = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                body = response.read()
                if response.status != 200 or not json.loads(body):
                    bad += 1
                    continue
            except OSError:
                bad += 1
                continue
            finally:
                conn.close()
            mine.append(time.perf_counter() - t)
        with lock:
            latencies.extend(mine)
            failures[0] += bad

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, failures[0]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report(label: str, latencies: list[float], failures: int, seconds: float, cpu: float) -> None:
    ms = np.array(latencies) * 1000
    print(
        f"{label:<34}: {len(ms) / seconds:7.1f} req/s, p50 {np.percentile(ms, 50):6.1f} ms, "
        f"p99 {np.percentile(ms, 99):6.1f} ms, server CPU {cpu / max(len(ms), 1) * 1000:5.1f} ms/request "
        f"({len(ms)} requests, {failures} failed)"
    )


def measure(
    label: str, server: int, port: int, paths: list[str], clients: int, seconds: float
) -> tuple[list[float], int]:
    """Run one load and print its line."""
    before = cpu_seconds(server)
    latencies, failures = load(port, paths, clients, seconds)
    report(label, latencies, failures, seconds, cpu_seconds(server) - before)
    return latencies, failures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=8, help="the server's worker threads (serve.threads)")
    parser.add_argument("--runs", type=int, default=5, help="fresh `beet similar` processes to time")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "config.yaml").write_text(
            f"library: {folder / 'library.db'}\ndirectory: {folder / 'music'}\nplugins: mcbr\n"
            f"mcbr:\n  serve:\n    threads: {args.threads}\n"
        )
        t = time.perf_counter()
        build(folder, args.items)
        print(f"library                           : {args.items} items, synthetic 200-d embeddings "
              f"(built in {time.perf_counter() - t:.0f} s)")  # fmt: skip
        t = time.perf_counter()
        run_beet(folder, "similar", "id:1", "-n", "10")  # the first command builds the index
        print(f"index build                       : {time.perf_counter() - t:.1f} s (once)")
        ls = [run_beet(folder, "ls", f"id:{1 + (k * 7919) % args.items}") for k in range(args.runs)]
        similar = [
            run_beet(folder, "similar", f"id:{1 + (k * 7919) % args.items}", "-n", "10")
            for k in range(args.runs)
        ]
        print(
            f"beet ls id:K (fresh process)      : {statistics.median(ls) * 1000:7.0f} ms (median of {args.runs})"
        )
        print(
            f"beet similar id:K -n 10 (fresh)   : {statistics.median(similar) * 1000:7.0f} ms (median of {args.runs})"
        )

        env = dict(os.environ, BEETSDIR=str(folder), HOME=str(folder))
        t = time.perf_counter()
        with subprocess.Popen(
            [*BEET, "mcbr-serve", "--port", "0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as server:
            try:
                line = server.stdout.readline() if server.stdout else ""
                m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
                if not m:
                    print(f"the server did not start: {line!r}", file=sys.stderr)
                    return 1
                port = int(m.group(1))
                print(f"mcbr-serve start-up               : {time.perf_counter() - t:.1f} s")
                ids = rng.integers(1, args.items + 1, 5000)
                audiomuse = [f"/api/similar_tracks?item_id={i}&n=10" for i in ids]
                native = [f"/api/v1/similar/tracks/{i}?n=10" for i in ids]
                load(port, audiomuse[:50], 2, 2.0)  # warm-up: page the index in
                pid = server.pid
                measure("similar_tracks, 1 client", pid, port, audiomuse, 1, args.seconds / 2)
                measure(
                    f"similar_tracks, {args.clients} clients",
                    pid,
                    port,
                    audiomuse[1000:],
                    args.clients,
                    args.seconds,
                )
                measure(
                    f"/api/v1/similar/tracks, {args.clients} clients",
                    pid,
                    port,
                    native[2000:],
                    args.clients,
                    args.seconds / 2,
                )
            finally:
                server.send_signal(signal.SIGINT)
                server.communicate(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
