"""Model backend for EfficientAT's AudioSet taggers (``backend: efficientat``).

This module also registers their front end, the ``efficientat-mel`` feature extractor
(``mcbr_core.features.efficientat_mel``, imported when first built).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcbr_core.backends.pretrained import PretrainedTagger, batch_size
from mcbr_core.hookspecs import Register, hookimpl


def efficientat_backend(
    *, model: Path, card: dict[str, Any], device: str, options: dict[str, Any]
) -> PretrainedTagger:
    """Factory registered as ``efficientat``: a converted EfficientAT checkpoint (``models/as-mn04.safetensors``).

    ``options``: ``batch_size`` (10-s patches per forward pass; 0 or absent = 4 on CPU, 64 on GPU).
    Probabilities ``(B, 527)``, hidden-layer vectors ``(B, 512)`` for ``(B, 1, 128, T)`` patches.
    """
    from mcbr_core.models.efficientat import load_efficientat

    net, card = load_efficientat(model)
    return PretrainedTagger(
        net.to(device), card, device=device, batch_size=batch_size(options, device, cpu=4, accelerator=64)
    )


def efficientat_mel(options: dict[str, Any]) -> Any:
    """Build EfficientAT's log-mel extractor from a feature config dict (a model card's).

    Raises
    ------
    ConfigError
        On an unknown key or a bad value.
    """
    from mcbr_core.features.efficientat_mel import EfficientATMel, EfficientATMelConfig
    from mcbr_core.features.normalise import config_from_options

    return EfficientATMel(config_from_options(EfficientATMelConfig, options, name="efficientat-mel"))


@hookimpl
def register_model_backends(register: Register) -> None:
    """Register the EfficientAT backend."""
    register("efficientat", efficientat_backend)


@hookimpl
def register_feature_extractors(register: Register) -> None:
    """Register EfficientAT's front end."""
    register("efficientat-mel", efficientat_mel)
