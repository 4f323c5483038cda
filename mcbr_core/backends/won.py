"""Model backend for Won et al.'s taggers (``backend: won``): FCN, CRNN, short-chunk musicnn.

The model files (``models/jamendo-fcn.safetensors``, ...) come from
``tools/convert_won.py``; their card names the architecture family
(``won-fcn``, ``won-crnn``, ``won-musicnn``, see ``mcbr_core.models.won``) and the
``won-mel`` feature config, whose ``patch_frames`` is the chunk the network was
trained on (1813 frames = 29 s for FCN and CRNN, 188 = 3 s for musicnn). The
Analyzer cuts each track into such patches (a shorter track is repeated to fill
one) and averages the per-patch sigmoid outputs and embeddings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcbr_core.backends.pretrained import PretrainedTagger, batch_size
from mcbr_core.hookspecs import Register, hookimpl

#: patch frames x batch size on an accelerator (64 musicnn-sized patches, 6 of 29 s)
_GPU_FRAMES_PER_BATCH = 12_000


def won_backend(
    *, model: Path, card: dict[str, Any], device: str, options: dict[str, Any]
) -> PretrainedTagger:
    """Factory registered as ``won``: a converted Won tagger.

    ``options``: ``batch_size`` (patches per forward pass; 0 or absent = 2 on CPU, about
    12,000 frames' worth on an accelerator). Probabilities ``(B, 50)``, penultimate
    vectors ``(B, D)`` for ``(B, 1, 96, T)`` log-mel patches.
    """
    from mcbr_core.models.won import load_won

    net, card = load_won(model, device=device)
    frames = int(card["features"]["config"].get("patch_frames", net.config.n_frames))
    accelerator = max(1, _GPU_FRAMES_PER_BATCH // frames)
    return PretrainedTagger(
        net, card, device=device, batch_size=batch_size(options, device, cpu=2, accelerator=accelerator)
    )


@hookimpl
def register_model_backends(register: Register) -> None:
    """Register the Won backend."""
    register("won", won_backend)
