#!/usr/bin/env python3
"""Where mcbr-fusion's time goes, and what hearing as-mn04 on the bare 2.99-s patch would change (issue 13).

Usage (from the repository root)::

    python bench/fusion_parts.py [../shared/data/4q] [--clips 10] [--rounds 2]

Prints, per round, the forward time of a batch of two patches on one thread: msd-musicnn
(96 x 187 log-mel), as-mn04 on its 10-s input (the fusion repeats each 2.99-s patch to
fill it: 128 x 1000) and as-mn04 on the bare patch (128 x 300); then the cosine between
as-mn04's embedding of a real patch repeated to 10 s and of the bare patch, on clips
of the folder (a patch from 10 s in). Timings are of the networks only, not of the front
ends. This is a benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PATCH = 95744  # samples at 32 kHz: msd-musicnn's 187-frame patch, as mcbr-fusion cuts it


def forward_seconds(fn, x, n: int = 20) -> float:
    """Mean seconds of ``fn(x)`` over ``n`` calls, after three warm-up calls."""
    import torch

    with torch.no_grad():
        for _ in range(3):
            fn(x)
        t = time.perf_counter()
        for _ in range(n):
            fn(x)
    return (time.perf_counter() - t) / n


def main() -> None:
    import torch

    from mcbr_core.audio.decode import PyAVDecoder, SoundfileDecoder, load_audio
    from mcbr_core.features.efficientat_mel import EfficientATMel
    from mcbr_core.models.efficientat import load_efficientat
    from mcbr_core.models.musicnn import load_musicnn

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", type=Path, nargs="?", default=ROOT.parent / "shared" / "data" / "4q")
    ap.add_argument("--clips", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    mn, _ = load_efficientat(ROOT / "models" / "as-mn04.safetensors")
    ms, _ = load_musicnn(ROOT / "models" / "msd-musicnn.safetensors")
    mn.eval(), ms.eval()
    for _ in range(args.rounds):
        a = forward_seconds(ms.forward_features, torch.randn(2, 1, 96, 187))
        b = forward_seconds(mn.forward_features, torch.randn(2, 1, 128, 1000))
        c = forward_seconds(mn.forward_features, torch.randn(2, 1, 128, 300))
        print(f"two patches, one thread: msd-musicnn {a:.4f} s, as-mn04 on 10 s {b:.4f} s, on 2.99 s {c:.4f} s; "
              f"networks {(a + b) / a:.2f}x -> {(a + c) / a:.2f}x of msd-musicnn")  # fmt: skip
    front = EfficientATMel()
    files = sorted(p for p in args.folder.rglob("*") if p.suffix.lower() in (".mp3", ".flac", ".wav"))
    files = files[:: max(1, len(files) // args.clips)][: args.clips]
    cos = []
    for path in files:
        y = load_audio(path, sr=32000, decoders=[SoundfileDecoder(), PyAVDecoder()])
        patch = y[320000 : 320000 + PATCH] if len(y) >= 320000 + PATCH else y[:PATCH]
        mels = [np.asarray(front(np.tile(patch, 4)[:320000]))[..., :1000], np.asarray(front(patch))]
        with torch.no_grad():
            e = [
                mn.embed(torch.from_numpy(m.reshape(1, 1, *m.shape[-2:])).float()).numpy().ravel()
                for m in mels
            ]
        cos.append(float(e[0] @ e[1] / np.linalg.norm(e[0]) / np.linalg.norm(e[1])))
    print(f"as-mn04 embedding, repeated 10 s against the bare patch, {len(cos)} clips: cosine min {min(cos):.4f}, "
          f"mean {np.mean(cos):.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
