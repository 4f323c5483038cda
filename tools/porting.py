"""What the model converters (``tools/convert_*.py``) share: checksums of the sources, decoding check clips."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def decode(path: Path, sr: int) -> np.ndarray:
    """Mono float32 audio at ``sr`` through the package's own decoders (soundfile, then PyAV)."""
    from mcbr_core.audio.decode import PyAVDecoder, SoundfileDecoder, load_audio

    return load_audio(path, sr=sr, decoders=[SoundfileDecoder(), PyAVDecoder()])
