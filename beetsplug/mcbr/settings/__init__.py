"""The only package that knows both confuse and mcbr_core: config in, frozen settings out.

``defaults`` holds the defaults (mirrored in docs/configuration.md) and the rules every loader
shares; ``genres`` reads lastgenre's genre options; ``sections`` the sections of the other
commands (serve, train, playlist, mpd, dj, mixes). This module reads the ``mcbr`` section itself
and re-exports the rest, so ``from beetsplug.mcbr.settings import DEFAULTS, load, ...`` keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import confuse
from beets import config as beets_config

from beetsplug.mcbr.settings.defaults import DEFAULTS, check_keys, flag, user_error, user_errors
from beetsplug.mcbr.settings.genres import FAMILIES, _genre_rules, _lastgenre_file, _read_yaml, _whitelist
from beetsplug.mcbr.settings.sections import (
    MixesSettings,
    ServeSettings,
    TrainDefaults,
    load_dj,
    load_mixes,
    load_mpd,
    load_playlist,
    load_serve,
    load_train,
    playlist_folder,
)
from mcbr_core.errors import McbrError
from mcbr_core.settings import (
    AnalysisSettings,
    IndexSettings,
    KindSettings,
    PoolSettings,
    RaySettings,
    TagSettings,
    from_mapping,
)

__all__ = [
    "DEFAULTS",
    "FAMILIES",
    "MixesSettings",
    "PluginSettings",
    "ServeSettings",
    "TrainDefaults",
    "_genre_rules",
    "_lastgenre_file",
    "_read_yaml",
    "_whitelist",
    "check_keys",
    "id3v23",
    "import_writes",
    "library_file",
    "load",
    "load_dj",
    "load_mixes",
    "load_mpd",
    "load_playlist",
    "load_serve",
    "load_train",
    "playlist_folder",
    "read_auto",
    "user_error",
]

_ANALYSIS_KEYS = (
    "model", "backend", "extractor", "decoders", "device", "threads", "max_patches", "window_patches", "batch_size",
    "extra_plugins", "min_coverage", "partial",
)  # fmt: skip


@dataclass(frozen=True)
class PluginSettings:
    """Everything the plugin needs from its config section, validated."""

    force: bool
    keep_existing: bool
    per_track: bool
    write: bool
    quiet: bool
    analysis: AnalysisSettings
    pool: PoolSettings
    tags: TagSettings
    index: IndexSettings
    store_path: Path | None  # None: beside the library file (``store: auto``)
    legacy_store: Path  # where stores lived before they went beside the library (taken over once)
    base_dir: Path
    similar_count: int
    analyze_missing: int
    similar_duplicates: bool
    formats: dict[str, str]
    ray: RaySettings = field(default_factory=RaySettings)
    adopt: Path | None = None  # a catalogue to adopt rows from before analysing


def _kind_settings(view: confuse.ConfigView, where: str) -> KindSettings:
    """``mcbr.genre`` / ``mcbr.mood`` (``specific: no`` turns sub-genres off)."""
    values = dict(view.flatten())
    if values.get("specific") is False:
        values["specific"] = None
    return from_mapping(KindSettings, values, where=where)


def _workers(value: object) -> int:
    """``auto`` (one per core, at most 8) or a number >= 0."""
    from mcbr_core.workers import auto_workers

    if value != "auto" and not isinstance(value, int):
        raise confuse.ConfigTypeError(f"mcbr.workers: must be auto or a number, not {value!r}")
    return auto_workers(value)


def library_file() -> Path:
    """The library database beets opens (``library``, or ``-l``)."""
    return Path(beets_config["library"].as_filename())


def id3v23() -> bool:
    """beets' ``id3v23``: write ID3v2.3 tags to new MP3 tags."""
    return bool(beets_config["id3v23"].get(bool))


def import_writes(session_config: confuse.ConfigView) -> bool:
    """beets' ``import.write`` for an import session (``-w``/``-W`` included)."""
    return bool(session_config["write"].get(bool))


def read_auto(config: confuse.ConfigView) -> bool:
    """The ``auto`` setting alone (read when the plugin loads, before the rest).

    Raises
    ------
    UserError
        If it is not yes or no.
    """
    with user_errors():
        return flag(config, "auto")


def load(config: confuse.ConfigView) -> PluginSettings:
    """Read and validate the ``mcbr`` section.

    Raises
    ------
    UserError
        On any invalid value, with the key named.
    """
    with user_errors():
        check_keys(config)
        read_auto(config)
        base_dir = Path(beets_config.config_dir())
        store_path = (
            None
            if config["store"].get() in ("auto", "", None)
            else Path(config["store"].get(confuse.Filename(in_app_dir=True)))
        )
        analysis = from_mapping(AnalysisSettings, {k: config[k].get() for k in _ANALYSIS_KEYS}, where="mcbr")
        genres, renames = _genre_rules(config)
        tags = TagSettings(
            genre=_kind_settings(config["genre"], "mcbr.genre"),
            mood=_kind_settings(config["mood"], "mcbr.mood"),
            genres=genres,
            renames=renames,
            title_case=config["title_case"].get(bool),
            separator=config["mood_separator"].as_str(),
        )
        index = from_mapping(IndexSettings, config["index"].flatten(), where="mcbr.index")
        workers = config["workers"].get()
        pool = PoolSettings(
            workers=_workers(workers),
            timeout=config["timeout"].as_number(),
            memory_mb=config["memory_mb"].get(int),
        )
        ray = from_mapping(RaySettings, config["ray"].flatten(), where="mcbr.ray")
        catalogue = config["adopt"]
        adopt = (
            None if catalogue.get() in ("", None) else Path(catalogue.get(confuse.Filename(in_app_dir=True)))
        )
        similar = config["similar"]
        if similar["count"].get(int) < 1:
            raise McbrError(f"mcbr.similar.count: must be at least 1, got {similar['count'].get()}")
        if similar["analyze_missing"].get(int) < 0:
            raise McbrError(
                f"mcbr.similar.analyze_missing: must be >= 0, got {similar['analyze_missing'].get()}"
            )
        return PluginSettings(
            force=config["force"].get(bool),
            keep_existing=config["keep_existing"].get(bool),
            per_track=config["per_track"].get(bool),
            write=config["write"].get(bool),
            quiet=config["quiet"].get(bool),
            analysis=analysis,
            pool=pool,
            tags=tags,
            index=index,
            store_path=store_path,
            legacy_store=base_dir / "mcbr.db",
            base_dir=base_dir,
            similar_count=similar["count"].get(int),
            analyze_missing=similar["analyze_missing"].get(int),
            similar_duplicates=similar["duplicates"].get(bool),
            formats={k: similar[f"format_{k}"].as_str() for k in ("item", "album", "artist")},
            ray=ray,
            adopt=adopt,
        )
