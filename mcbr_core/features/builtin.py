"""Registers the built-in feature extractors (``register_feature_extractors``).

Each factory takes the extractor's config as a plain dict (a model card's
``features.config``); unknown keys are a ``ConfigError``. The extractor modules
are imported inside the factories, so registering costs nothing at start-up.
"""

from __future__ import annotations

import importlib
from typing import Any

from mcbr_core.errors import ConfigError
from mcbr_core.hookspecs import Register, hookimpl


def musicnn_mel(options: dict[str, Any]):
    """Build the musicnn log-mel extractor from a feature config dict."""
    from dataclasses import fields

    from mcbr_core.features.musicnn_mel import MusicnnMel, MusicnnMelConfig

    known = {f.name for f in fields(MusicnnMelConfig)}
    unknown = set(options) - known
    if unknown:
        raise ConfigError(f"musicnn-mel: unknown feature options {sorted(unknown)}")
    return MusicnnMel(MusicnnMelConfig(**options))


def won_mel(options: dict[str, Any]):
    """Build the log-mel extractor of Won et al.'s taggers from a feature config dict."""
    return _build("won-mel", "mcbr_core.features.won_mel", "WonMel", "WonMelConfig", options)


def mcbr_stats(options: dict[str, Any]):
    """Build the statistics baseline's extractor (MFCC/chroma/contrast statistics) from a feature config dict."""
    return _build("mcbr-stats", "mcbr_core.features.stats", "StatsExtractor", "StatsConfig", options)


def _build(name: str, module: str, extractor: str, config: str, options: dict[str, Any], **fixed: Any):
    from mcbr_core.features.normalise import config_from_options

    mod = importlib.import_module(module)
    cfg = config_from_options(getattr(mod, config), options, name=name, fixed=fixed)
    return getattr(mod, extractor)(cfg)


def xing_hyperimage(options: dict[str, Any]):
    """Build Xing et al.'s hyper-image extractor from a feature config dict."""
    return _build(
        "xing-hyperimage", "mcbr_core.features.hyperimage", "XingHyperImage", "XingHyperImageConfig", options
    )


def tower_mel(options: dict[str, Any]):
    """Build Tower & Vegner's log-mel extractor from a feature config dict."""
    return _build("tower-mel", "mcbr_core.features.mel", "TowerMel", "TowerMelConfig", options)


def _whitell(kind: str):
    name = {
        "stft": "whitell-stft",
        "stft_half": "whitell-stft-half",
        "mel": "whitell-mel",
        "cqt": "whitell-cqt",
        "mfcc": "whitell-mfcc",
        "chroma": "whitell-chroma",
    }[kind]

    def factory(options: dict[str, Any]):
        return _build(
            name, "mcbr_core.features.whitell", "WhitellFeature", "WhitellFeatureConfig", options, kind=kind
        )

    factory.__name__ = factory.__qualname__ = name.replace("-", "_")
    factory.__doc__ = f"Build Whitell's {kind} extractor from a feature config dict."
    return name, factory


def zhang_audiowords(options: dict[str, Any]):
    """Build Zhang et al.'s audio-word extractor from a feature config dict.

    ``options["state"]`` (optional) holds the codebook arrays stored with the model
    (``AudioWordsState.state_tensors()``: name -> array); the other keys are the config.
    """
    from mcbr_core.features.audiowords import AudioWords, AudioWordsConfig, AudioWordsState
    from mcbr_core.features.normalise import config_from_options

    options = dict(options)
    state = options.pop("state", None)
    if state is not None and not isinstance(state, dict):
        raise ConfigError(
            f"zhang-audiowords: options['state'] must be a dict of arrays, got {type(state).__name__}"
        )
    cfg = config_from_options(AudioWordsConfig, options, name="zhang-audiowords")
    return AudioWords(cfg, AudioWordsState.from_arrays(state) if state is not None else None)


@hookimpl
def register_feature_extractors(register: Register) -> None:
    """Register the built-in extractors."""
    register("musicnn-mel", musicnn_mel)
    register("xing-hyperimage", xing_hyperimage)
    register("tower-mel", tower_mel)
    register("won-mel", won_mel)
    for kind in ("stft", "stft_half", "mel", "cqt", "mfcc", "chroma"):
        register(*_whitell(kind))
    register("zhang-audiowords", zhang_audiowords)
    register("mcbr-stats", mcbr_stats)
