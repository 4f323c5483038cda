"""Model backend for the musicnn taggers (``backend: musicnn``).

It runs both families of the musicnn 0.1.0 wheel, by the card's architecture family:
``musicnn`` (``models/msd-musicnn``, ``mtt-musicnn``) and ``musicnn-vgg``
(``models/msd-vgg``, ``mtt-vgg``; see ``mcbr_core.models.musicnn_vgg``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcbr_core.backends.pretrained import PretrainedTagger, batch_size
from mcbr_core.hookspecs import Register, hookimpl


def musicnn_backend(
    *, model: Path, card: dict[str, Any], device: str, options: dict[str, Any]
) -> PretrainedTagger:
    """Factory registered as ``musicnn``: a converted musicnn or musicnn-VGG checkpoint.

    ``options``: ``batch_size`` (3-s patches per forward pass; 0 or absent = 2 on CPU, 64 on GPU).
    Probabilities ``(B, 50)`` and embeddings ``(B, D)`` for ``(B, 1, 96, 187)`` patches: musicnn's
    penultimate layer (D = 200) or the VGG's flattened ``pool5`` (D = 256).
    """
    from mcbr_core.models.musicnn import load_musicnn

    net, card = load_musicnn(model)
    return PretrainedTagger(
        net.to(device), card, device=device, batch_size=batch_size(options, device, cpu=2, accelerator=64)
    )


@hookimpl
def register_model_backends(register: Register) -> None:
    """Register the built-in backends."""
    register("musicnn", musicnn_backend)
