"""`beet mcbr --ray`, imports with `mcbr.ray.address`, and adopting a catalogue (`beet mcbr --adopt`).

The cluster is a real two-node local Ray cluster (the session fixture
``ray_cluster``, skipped where Ray is not installed); its workers load the toy
model through ``extra_plugins: [tests.raytoy]``, whose decoder can kill the Ray
worker running it. Without ``--ray``, nothing imports Ray: checked in a real
``beet`` process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mcbr_core.plugins import reset_plugins
from mcbr_core.store.embeddings import EmbeddingStore
from tests.beetsplug.test_plugin import HIGH, LOW, McbrHelper

ROOT = Path(__file__).resolve().parents[2]


class RayHelper(McbrHelper):
    """The toy model in worker processes (local or on the cluster), with the limits of tests/core/test_ray.py."""

    def setup_beets(self) -> None:
        super().setup_beets()
        reset_plugins(None)
        self.cluster = self.request.getfixturevalue("ray_cluster")
        mcbr = self.config["mcbr"]
        # one model for every Ray test: the workers keep their analysis process from test to test
        mcbr["model"] = str(self.cluster.toy_model)
        mcbr["extra_plugins"] = ["tests.raytoy"]
        mcbr["decoders"] = ["raytoy", "soundfile"]
        mcbr["device"] = "cpu"
        mcbr["timeout"] = 30
        mcbr["memory_mb"] = 0
        mcbr["ray"]["batch_size"] = 1

    def add_tracks(self, *specs: tuple[str, float]) -> None:
        """Import tracks without analysing them."""
        for name, freq in specs:
            self.make_track(name, freq=freq, fmt="wav")
        self.config["mcbr"]["auto"] = False
        self.unload_plugins()
        self.load_plugins()
        self.import_singletons()

    def store_rows(self) -> dict[int, np.ndarray]:
        with EmbeddingStore(self.temp_path / "library.mcbr.db") as store:
            ids, vectors = store.vectors("toy-1")
        return dict(zip(ids.tolist(), vectors, strict=True))


@pytest.mark.slow
class TestRay(RayHelper):
    def test_beet_mcbr_on_a_cluster_matches_a_local_run_when_a_worker_dies(self) -> None:
        self.add_tracks(
            ("hi", HIGH), ("lo", LOW), ("hi2", HIGH + 200), ("raykillonce", LOW + 100), ("raykill", HIGH)
        )
        assert "analysed 5, skipped 0 up to date, 0 failed" in self.run_with_output("mcbr", "-W")
        local_rows = self.store_rows()
        local_tags = {i.title: (list(i.genres), i["mood"]) for i in self.lib.items()}
        local_similar = self.run_with_output("similar", "-f", "$title", "title:hi")

        out = self.run_with_output("mcbr", "-f", "-W", "--ray", self.cluster.address)
        assert "analysed 4, skipped 0 up to date, 1 failed" in out
        items = {i.title: i for i in self.lib.items()}
        for title, item in items.items():  # every item ends analysed, or failed with its reason
            assert item["mcbr_status"] in ("ok", "failed"), title
        assert items["raykill"]["mcbr_status"] == "failed"
        assert "Ray worker analysing it died" in items["raykill"]["mcbr_error"]
        assert items["raykillonce"]["mcbr_status"] == "ok"  # its worker died once: the retry analysed it
        # the host wrote tags, store and index as the local run did (the failed item keeps its earlier row)
        assert {t: (list(i.genres), i["mood"]) for t, i in items.items()} == local_tags
        rows = self.store_rows()
        assert set(rows) == set(local_rows)
        for item_id, vector in rows.items():
            np.testing.assert_array_equal(vector, local_rows[item_id])
        assert self.run_with_output("similar", "-f", "$title", "title:hi") == local_similar

    def test_an_import_analyses_on_the_configured_cluster(self) -> None:
        self.config["mcbr"]["ray"]["address"] = self.cluster.address
        self.unload_plugins()
        self.load_plugins()
        self.make_track("hi-mark", freq=HIGH, fmt="wav")
        self.make_track("lo-mark", freq=LOW, fmt="wav")
        self.import_singletons()
        assert sorted(p.name for p in self.import_path.glob("*.ray")) == [
            "hi-mark.wav.ray",
            "lo-mark.wav.ray",
        ]
        assert self.file_tags("hi-mark").genres == ["Rock"] and self.file_tags("lo-mark").genres == ["Jazz"]
        assert all(i["mcbr_status"] == "ok" for i in self.lib.items())
        assert len(self.store_rows()) == 2


class TestAdopt(RayHelper):
    """A catalogue (`mcbr analyze`) gives items the analyses of their unchanged files."""

    def setup_beets(self) -> None:
        McbrHelper.setup_beets(self)  # no cluster needed: analysed in this process
        reset_plugins(None)
        from tests.toymodel import make_toy_model

        self.config["mcbr"]["model"] = str(make_toy_model(self.temp_path / "toy.safetensors"))
        self.config["mcbr"]["extra_plugins"] = ["tests.raytoy"]

    def catalogue(self, folder: Path, *, swap: str) -> Path:
        """Analyse ``folder`` into a catalogue, then swap the genre and mood scores of the file ``swap``.

        The swapped scores tag that file the other way round, which a fresh analysis
        never would: an item tagged so got its tags from the catalogue.
        """
        import sqlite3

        from mcbr_core.catalogue import analyze_folder
        from mcbr_core.settings import AnalysisSettings, PoolSettings

        out = self.temp_path / "catalogue.db"
        settings = AnalysisSettings(model=self.config["mcbr"]["model"].get(), extra_plugins=("tests.raytoy",))
        result = analyze_folder(folder, out, settings=settings, pool=PoolSettings(workers=0))
        assert result.analysed and not result.failed
        db = sqlite3.connect(out)
        rows = db.execute("SELECT e.item_id, a.scores FROM embeddings e JOIN analyses a USING (item_id) "
                          "WHERE CAST(e.path AS TEXT) LIKE ?", (f"%/{swap}.wav",)).fetchall()  # fmt: skip
        ((item_id, scores),) = rows
        scores = {
            head: dict(zip(s, reversed(list(s.values())), strict=True))
            for head, s in json.loads(scores).items()
        }
        with db:
            db.execute("UPDATE analyses SET scores=? WHERE item_id=?", (json.dumps(scores), item_id))
        db.close()
        return out

    def test_an_import_adopts_the_catalogues_analyses(self) -> None:
        self.make_track("hi", freq=HIGH, fmt="wav")
        self.make_track("lo", freq=LOW, fmt="wav")
        self.config["mcbr"]["adopt"] = str(self.catalogue(self.import_path, swap="hi"))
        self.unload_plugins()
        self.load_plugins()
        self.import_singletons()  # copies the files: adopted by their paths before they move
        assert self.file_tags("hi").genres == ["Jazz"]  # the catalogue's (swapped) scores: not analysed again
        assert self.file_tags("lo").genres == ["Jazz"]
        assert all(i["mcbr_status"] == "ok" for i in self.lib.items())
        with EmbeddingStore(self.temp_path / "library.mcbr.db") as store:
            rows = {r.item_id: r for r in store.rows("toy-1")}
        for item in self.lib.items():  # the store row follows the item to its new place
            assert rows[item.id].path == bytes(item.path)

    def test_beet_mcbr_adopt_takes_unchanged_files_only(self) -> None:
        self.add_tracks(("hi", HIGH), ("hi2", HIGH + 100))
        cat = self.catalogue(self.lib_path, swap="hi")
        item = self.lib.items("title:hi2").get()
        item.filepath.touch()  # changed since the catalogue analysed it: analysed again
        out = self.run_with_output("mcbr", "-W", "--adopt", str(cat))
        assert "analysed 2" in out
        items = {i.title: i for i in self.lib.items()}
        assert list(items["hi"].genres) == ["Jazz"]  # adopted
        assert list(items["hi2"].genres) == ["Rock"]  # analysed
        assert "analysed 0, skipped 2" in self.run_with_output("mcbr", "--adopt", str(cat))

    def test_a_catalogue_is_never_a_librarys_store(self) -> None:
        from beets.ui import UserError

        self.add_tracks(("hi", HIGH))
        cat = self.catalogue(self.lib_path, swap="hi")
        self.config["mcbr"]["store"] = str(cat)
        self.unload_plugins()
        self.load_plugins()
        with pytest.raises(UserError, match="is a catalogue written by `mcbr analyze`"):
            self.run_command("mcbr")


@pytest.mark.slow
def test_ctrl_c_cancels_the_cluster_tasks_and_leaves_a_consistent_store(ray_cluster, tmp_path: Path) -> None:
    """SIGINT to `beet mcbr --ray` mid-run: it stops, its tasks stop, and the store holds whole rows of ok items."""
    import signal
    import time

    from tests.scenarios import beet_process, consistency, make_library, store_rows

    folder = make_library(tmp_path / "lib", 6)
    settings = """extra_plugins: [tests.raytoy]
  decoders: [raytoy, soundfile]
  device: cpu
  timeout: 30
  memory_mb: 0
  ray:
    batch_size: 1
    runtime_env: {env_vars: {MCBR_RAYTOY_SLEEP: "1.5"}}"""  # each file takes 1.5 s more on the cluster
    config = (folder / "config.yaml").read_text().replace("extra_plugins: [tests.faulty]", settings)
    (folder / "config.yaml").write_text(config)
    proc = beet_process(folder, "mcbr", "--ray", ray_cluster.address)
    deadline = time.monotonic() + 240
    while store_rows(folder) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()  # still running: interrupted mid-run
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    rows = store_rows(folder)
    assert 1 <= rows < 6, (out, err)
    problems = consistency(folder)
    assert problems["half-written rows"] == problems["orphaned embeddings"] == 0
    assert problems["analysed items without embedding"] == 0
    assert problems["items never analysed"] == 6 - rows
    deadline = time.monotonic() + 30
    while any(_title(pid).startswith(b"ray::analyze_batch") for pid in ray_cluster.worker_pids()):
        assert time.monotonic() < deadline, "the run's tasks still run on the cluster"
        time.sleep(0.2)


def _title(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


SCRIPT = """
import json, sys
from beets.ui import main
try:
    main(sys.argv[1:])
finally:
    print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "ray")))
"""


@pytest.mark.slow
def test_beet_without_ray_never_imports_it(tmp_path: Path) -> None:
    """Start-up, and a whole `beet mcbr` run without --ray, import no Ray (even with Ray installed)."""
    from tests.scenarios import make_library

    folder = make_library(tmp_path / "lib", 3)
    env = {"BEETSDIR": str(folder), "HOME": str(folder), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    for args in (["ls"], ["mcbr"]):
        out = subprocess.run([sys.executable, "-c", SCRIPT, *args], env=env, capture_output=True, text=True,
                             timeout=300, check=False)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout.strip().splitlines()[-1]) == [], args
    assert "analysed 3" in out.stdout
