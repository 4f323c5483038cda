"""Registers the built-in feature extractors (``register_feature_extractors``)."""

from __future__ import annotations

from typing import Any

from mcbr_core.errors import ConfigError
from mcbr_core.hookspecs import Register, hookimpl


def musicnn_mel(options: dict[str, Any]):  # noqa: ANN201 - returns MusicnnMel
    """Build the musicnn log-mel extractor from a feature config dict."""
    from dataclasses import fields

    from mcbr_core.features.musicnn_mel import MusicnnMel, MusicnnMelConfig

    known = {f.name for f in fields(MusicnnMelConfig)}
    unknown = set(options) - known
    if unknown:
        raise ConfigError(f"musicnn-mel: unknown feature options {sorted(unknown)}")
    return MusicnnMel(MusicnnMelConfig(**options))


@hookimpl
def register_feature_extractors(register: Register) -> None:
    """Register the built-in extractors."""
    register("musicnn-mel", musicnn_mel)
