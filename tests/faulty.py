"""An mcbr plugin module for fault tests: a decoder that crashes, hangs or hogs memory on demand.

Loaded into worker processes through ``AnalysisSettings.extra_plugins``, so it
is a module with module-level hook implementations. The decoder claims the
``.bad`` extension and acts on the file name: ``crash`` aborts the process,
``hang`` sleeps, ``hog`` allocates without end, anything else decodes a tone.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from mcbr_core.audio.decode import AudioInfo
from mcbr_core.hookspecs import hookimpl
from tests.audiogen import tone
from tests.toymodel import ToyBackend, ToyExtractor


class FaultyDecoder:
    name = "faulty"
    extensions = frozenset({".bad"})

    def info(self, path: Path) -> AudioInfo:
        return AudioInfo(22050, 1, 3.0)

    def decode(
        self, path: Path, *, start: float = 0.0, duration: float | None = None
    ) -> tuple[np.ndarray, int]:
        stem = path.stem
        if "crash" in stem:
            os.abort()
        if "hang" in stem:
            time.sleep(3600)
        if "hog" in stem:
            hog = []
            while True:
                hog.append(np.ones(2**25))  # 256 MB a step, touched so it is resident
        freq = 2500.0 if "high" in stem else 300.0
        return tone(3.0, freq=freq), 22050


@hookimpl
def register_decoders(register):
    register("faulty", FaultyDecoder)


@hookimpl
def register_feature_extractors(register):
    register("toy-features", ToyExtractor)


@hookimpl
def register_model_backends(register):
    register("toy", ToyBackend)
