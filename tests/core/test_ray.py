"""Analysis on a Ray cluster: the same results as the local pool, a dead worker costs only its files.

The cluster tests use a real two-node local cluster (the session fixture
``ray_cluster``) and skip where Ray is not installed; the rest need no Ray.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mcbr_core.errors import ConfigError
from mcbr_core.ray_pool import RayAnalysisPool, map_path
from mcbr_core.settings import AnalysisSettings, PoolSettings, RaySettings, from_mapping
from mcbr_core.workers import AnalysisFailed, AnalysisPool
from tests.audiogen import tone, write_audio

ROOT = Path(__file__).resolve().parents[2]


def test_path_map_replaces_the_longest_whole_folder_prefix() -> None:
    mapping = {"/beets/music": "/mnt/music", "/beets/music/live/": "/srv/live"}
    assert map_path("/beets/music/a/b.flac", mapping) == "/mnt/music/a/b.flac"
    assert map_path("/beets/music/live/c.mp3", mapping) == "/srv/live/c.mp3"
    assert map_path("/beets/musical/d.mp3", mapping) == "/beets/musical/d.mp3"  # not a folder of /beets/music
    assert map_path("/elsewhere/e.mp3", mapping) == "/elsewhere/e.mp3"
    assert map_path("/beets/music/f.mp3", {}) == "/beets/music/f.mp3"


def test_ray_settings_reject_bad_values() -> None:
    assert RaySettings().address == "" and RaySettings().num_gpus == "auto"
    with pytest.raises(ConfigError, match="mcbr.ray.batch_size: must be >= 1"):
        RaySettings(batch_size=0)
    with pytest.raises(ConfigError, match="num_gpus: expected auto or a number"):
        RaySettings(num_gpus="some")
    with pytest.raises(ConfigError, match="path_map: expected absolute"):
        RaySettings(path_map={"music": "/mnt/music"})
    with pytest.raises(ConfigError, match="unknown key 'adress'"):
        from_mapping(RaySettings, {"adress": "x"}, where="mcbr.ray")


def test_the_core_imports_no_ray_until_it_analyses_on_a_cluster(tmp_path: Path) -> None:
    """Engine, settings and the Ray pool module load without Ray; a local pool never imports it."""
    code = f"""
import sys
from pathlib import Path
from mcbr_core.engine import Engine
from mcbr_core.ray_pool import RayAnalysisPool
from mcbr_core.settings import AnalysisSettings, IndexSettings, PoolSettings, RaySettings, TagSettings
from tests.toymodel import make_toy_model
model = make_toy_model(Path({str(tmp_path)!r}) / "toy.safetensors")
engine = Engine(analysis=AnalysisSettings(model=str(model), extra_plugins=("tests.raytoy",)), tags=TagSettings(),
                index=IndexSettings(), store_path=Path({str(tmp_path)!r}) / "s.db", index_dir=Path({str(tmp_path)!r}),
                pool=PoolSettings(workers=0), ray=RaySettings())
results = list(engine.pool.analyze([(1, "/nonexistent.wav")]))
assert len(results) == 1
print("ray" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# -- on a cluster ------------------------------------------------------------------------


#: The limits of every Ray test (tests/beetsplug/test_ray.py too): equal settings share the workers' processes.
POOL = PoolSettings(workers=1, timeout=30.0, memory_mb=0)


@pytest.fixture
def settings(ray_cluster) -> AnalysisSettings:
    return AnalysisSettings(
        model=str(ray_cluster.toy_model), decoders=("raytoy", "soundfile"), extra_plugins=("tests.raytoy",),
        device="cpu",
    )  # fmt: skip


def tracks(folder: Path, *names: str) -> list[tuple[str, Path]]:
    """One generated WAV per name, at a different frequency each (so each has its own embedding)."""
    jobs = []
    for i, name in enumerate(names):
        path = folder / f"{name}.wav"
        write_audio(path, tone(2.0, sr=8000, freq=300.0 + 250.0 * i, seed=i), 8000)
        jobs.append((name, path))
    return jobs


@pytest.mark.slow
def test_a_cluster_gives_the_local_results_and_a_dead_worker_costs_only_its_file(
    ray_cluster, tmp_path: Path, settings: AnalysisSettings
) -> None:
    # (a worker killed once, whose task the retry completes: tests/beetsplug/test_ray.py)
    jobs = tracks(tmp_path, "a", "b", "c", "raykill", "crash", "d")
    with AnalysisPool(settings, PoolSettings(workers=0)) as local:  # in this process: no crash among them
        expected = dict(local.analyze(job for job in jobs if job[0] != "crash"))
    ray = RaySettings(address=ray_cluster.address, batch_size=2)
    with RayAnalysisPool(settings, POOL, ray) as remote:
        got = dict(remote.analyze(jobs))
    assert set(got) == {name for name, _ in jobs}  # every file comes back, analysed or failed
    for name in ("a", "b", "c", "d"):  # analysed as a local run analyses them
        assert not isinstance(got[name], Exception), got[name]
        assert got[name].path == str(dict(jobs)[name])  # the host's path
        np.testing.assert_array_equal(got[name].embedding, expected[name].embedding)
        assert got[name].scores == expected[name].scores
    # it kills its worker on every try: its batch failed twice, was split, and only it failed, with the reason
    assert isinstance(got["raykill"], AnalysisFailed) and "Ray worker analysing it died" in str(
        got["raykill"]
    )
    assert not isinstance(expected["raykill"], Exception)  # (a local run analyses it)
    # a bad input fails inside the task by the local pool's rules, with the reason a local run gives
    assert (
        isinstance(got["crash"], AnalysisFailed)
        and str(got["crash"]) == "the analysis worker crashed (signal 6)"
    )


@pytest.mark.slow
def test_closing_the_run_cancels_the_cluster_tasks(
    ray_cluster, tmp_path: Path, settings: AnalysisSettings
) -> None:
    import ray

    jobs = tracks(tmp_path, "x", *(f"sleep{i}" for i in range(6)))
    run = RayAnalysisPool(settings, POOL, RaySettings(address=ray_cluster.address, batch_size=1))
    results = run.analyze(jobs)
    first = next(results)  # the run is under way: tasks are queued and running on both nodes
    assert first[0] in dict(jobs)
    pending = list(run._pending)
    assert pending
    results.close()  # what Ctrl-C does to the generator: its finally cancels what is still out
    assert not run._pending
    cancelled = 0
    for ref in pending:  # a task that finished just before the cancel returns its result; the others never do
        try:
            ray.get(ref, timeout=30)
        except (ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError):
            cancelled += 1
    assert cancelled >= len(pending) - 2  # at most one task per node was about to finish
    run.close()


@pytest.mark.slow
def test_mcbr_analyze_writes_the_same_catalogue_on_a_cluster_and_locally(ray_cluster, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mcbr_core.cli import main
    from mcbr_core.store.catalogue import Catalogue
    from mcbr_core.store.ownership import adopt_by_path

    model = ray_cluster.toy_model
    music = tmp_path / "music"
    music.mkdir()
    jobs = tracks(music, "one", "two", "three")
    (music / "notes.txt").write_text("not audio")
    args = ["analyze", str(music), "--model", str(model), "-P", "tests.raytoy", "--device", "cpu"]
    # on the cluster from a process of its own, which connects (and disconnects) by itself
    out = subprocess.run(
        [sys.executable, "-c", "from mcbr_core.cli import main; main()", *args, "-o", str(tmp_path / "ray.db"),
         "--ray", ray_cluster.address, "--batch-size", "2"],
        cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "analysed 3 " in out.stdout
    local = [*args, "-o", str(tmp_path / "local.db"), "--workers", "0"]
    assert "analysed 3 " in CliRunner().invoke(main, local, catch_exceptions=False).output
    assert (
        "analysed 0 " in CliRunner().invoke(main, local, catch_exceptions=False).output
    )  # nothing new to do
    paths = [str(p).encode() for _, p in jobs]
    with Catalogue(tmp_path / "ray.db") as a, Catalogue(tmp_path / "local.db") as b:
        ra, rb = a.lookup(paths, "toy-1"), b.lookup(paths, "toy-1")
    assert set(ra) == set(rb) == set(paths)
    for p in paths:
        np.testing.assert_array_equal(ra[p].embedding, rb[p].embedding)
        assert ra[p].scores == rb[p].scores and ra[p].mtime == rb[p].mtime
    # adoption by path: an unchanged file adopts its row; a changed one (new mtime) does not
    files = {i: (p, Path(p.decode()).stat().st_mtime) for i, p in enumerate(paths)}
    files[2] = (paths[2], files[2][1] + 10.0)
    adopted = adopt_by_path(tmp_path / "ray.db", files, model_id="toy-1", feature_version="1")
    assert sorted(adopted) == [0, 1]
    assert adopted[0].scores == ra[paths[0]].scores and adopted[0].path == paths[0].decode()
    json.dumps(adopted[0].scores)  # plain values, as a fresh Analysis has
