"""An mcbr plugin module for the Ray tests: the toy model, and a decoder that misbehaves on demand.

Loaded in Ray workers (and their analysis processes) through
``AnalysisSettings.extra_plugins``. The decoder ``raytoy`` claims WAV, MP3 and FLAC
files and decodes them with soundfile, except that it acts on the file name:

- ``raykill``: kills the Ray worker process that runs the task (``kill -9`` of the
  analysis process's parent), every time;
- ``raykillonce``: the same, the first time only (a flag file beside it);
- ``crash`` aborts the analysis process; ``hang`` sleeps for an hour;
- ``sleep`` takes two seconds;
- ``mark``: under a Ray worker, leaves ``<file>.ray`` beside the file (so a test
  sees where the file was analysed).

With ``MCBR_RAYTOY_SLEEP=S`` in its environment (a Ray job's ``runtime_env``) every
file takes S seconds more.

The kills happen only under a Ray worker (the parent's process title starts with
``ray::``); anywhere else such a file decodes normally, so a local run of the same
files is the reference a Ray run is compared with.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from mcbr_core.audio.decode import AudioInfo, SoundfileDecoder
from mcbr_core.hookspecs import hookimpl
from tests.toymodel import ToyBackend, ToyExtractor


def _under_ray_worker() -> int | None:
    """The parent's pid when it is a Ray worker process, else ``None``."""
    ppid = os.getppid()
    try:
        title = Path(f"/proc/{ppid}/cmdline").read_bytes()
    except OSError:
        return None
    return ppid if title.startswith(b"ray::") else None


class RayToyDecoder(SoundfileDecoder):
    name = "raytoy"
    extensions = frozenset({".wav", ".mp3", ".flac"})

    def info(self, path: Path) -> AudioInfo:
        path = Path(path)
        stem = path.stem
        if "mark" in stem and _under_ray_worker() is not None:
            path.with_name(path.name + ".ray").touch()
        if "raykill" in stem and (ray_worker := _under_ray_worker()) is not None:
            flag = path.with_name(path.name + ".killed")
            if "raykillonce" not in stem or not flag.exists():
                flag.touch()
                os.kill(ray_worker, signal.SIGKILL)
                os._exit(1)
        if "crash" in stem:
            os.abort()
        if "hang" in stem:
            time.sleep(3600)
        if "sleep" in stem:
            time.sleep(2.0)
        time.sleep(float(os.environ.get("MCBR_RAYTOY_SLEEP", 0)))
        return super().info(path)


@hookimpl
def register_decoders(register):
    register("raytoy", RayToyDecoder)


@hookimpl
def register_feature_extractors(register):
    register("toy-features", ToyExtractor)


@hookimpl
def register_model_backends(register):
    register("toy", ToyBackend)
