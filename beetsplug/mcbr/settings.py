"""The only module that knows both confuse and mcbr_core: config in, frozen settings out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import confuse
from beets import config as beets_config
from beets.ui import UserError

from mcbr_core.errors import McbrError
from mcbr_core.settings import AnalysisSettings, IndexSettings, KindSettings, PoolSettings, TagSettings, from_mapping

#: Defaults, mirrored in docs/configuration.md.
DEFAULTS: dict[str, Any] = {
    "auto": True,
    "force": False,
    "keep_existing": False,
    "write": True,
    "quiet": False,
    "model": "msd-musicnn",
    "backend": "auto",
    "extractor": "auto",
    "decoders": ["soundfile", "pyav"],
    "device": "auto",
    "threads": 0,
    "max_patches": 16,
    "window_patches": 4,
    "batch_size": 0,
    "extra_plugins": [],
    "workers": "auto",
    "timeout": 120,
    "memory_mb": 2048,
    "min_coverage": 0.9,  # a file decoding to less of its stated length is damaged: failed (or partial)
    "partial": False,  # analyse a damaged file on what decodes, marked mcbr_status: partial
    "genre": {"threshold": 0.3, "count": 2, "source": "auto"},  # tuned for the softmax heads (source: auto)
    "mood": {"threshold": 0.3, "count": 2, "source": "auto"},
    "whitelist": "",
    "canonical": {},
    "title_case": True,
    "mood_separator": "; ",
    "store": "auto",  # auto: a sidecar beside the library file (LIBRARY.mcbr.db), one store per library
    "index": {"backend": "annoy", "n_trees": 16, "search_k": 3000},
    "similar": {
        "count": 10,
        "format_item": "$mcbr_distance  $artist - $album - $title",
        "format_album": "$mcbr_distance  $albumartist - $album",
        "format_artist": "$mcbr_distance  $artist",
        "analyze_missing": 50,
        "duplicates": False,  # list every copy of a recording (mp3 + flac of one song), not just the nearest
    },
    # read by beetsplug.mcbr.train_command (`beet mcbr-train`); command-line options override these
    "train": {
        "task": "genre",
        "mode": "net",
        "arch": "whitell_time",
        "features": "whitell-mel",
        "base_model": "msd-musicnn",
        "epochs": 30,
        "batch_size": 32,
        "lr": 0.001,
        "patience": 5,
        "folds": 0,
        "seed": 0,
        "device": "auto",
        "workers": 0,
        "min_count": 5,
        "max_seconds": 30.0,
        "out": "mcbr-runs",
        "cache": "",
    },
    # read by beetsplug.mcbr.playlist_command into mcbr_core.playlist.settings.PlaylistSettings
    "playlist": {
        "count": 25,
        "duration": 0,
        "max_per_artist": 3,
        "max_per_album": 2,
        "no_artist_repeat": True,
        "include_seed": False,
        "restrict": "",
        "order": "smooth",
        "bpm_weight": 0.5,
        "key_weight": 0.5,
        "seed": 0,
        "format": "$artist - $album - $title",
        "output": "",
        "save": False,
        "dir": "",
        "name": "",
        "extension": "m3u",
        "paths": "absolute",
        "extended": True,
        "forward_slash": False,
        "pretend": False,
        "radio": {"seed_weight": 1.0, "previous_weight": 1.0, "pool": 1000},
        "path": {"previous_weight": 0.5, "pool": 1000, "steps": 25},
        "cluster": {"clusters": 8, "iterations": 100, "restarts": 4},
        "signature": {"dims": 8, "spread_floor": 0.25},
    },
}

_ANALYSIS_KEYS = (
    "model", "backend", "extractor", "decoders", "device", "threads", "max_patches", "window_patches", "batch_size",
    "extra_plugins", "min_coverage", "partial",
)  # fmt: skip


@dataclass(frozen=True)
class PluginSettings:
    """Everything the plugin needs from its config section, validated."""

    force: bool
    keep_existing: bool
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


def _whitelist(view: confuse.ConfigView) -> tuple[str, ...] | None:
    value = view.get()
    if value in ("", None, False):
        return None
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    path = Path(view.as_filename())
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UserError(f"mcbr: cannot read the genre whitelist {path}: {exc.strerror}") from None
    return tuple(ln.strip() for ln in lines if ln.strip() and not ln.startswith("#"))


def _workers(value: object) -> int:
    """``auto`` (one per core, at most 8) or a number >= 0."""
    from mcbr_core.workers import auto_workers

    if value != "auto" and not isinstance(value, int):
        raise confuse.ConfigTypeError(f"mcbr.workers: must be auto or a number, not {value!r}")
    return auto_workers(value)


#: Sections whose keys are the user's own (a mapping of names), or are checked where they are
#: read: ``playlist`` holds a mapping per playlist mode, including modes of other plugins.
_FREE_SECTIONS = frozenset({"canonical", "playlist"})


def user_error(exc: Exception, command: str = "mcbr") -> UserError:
    """A core error as beets shows it: one line, prefixed with the command unless it names a key already."""
    message = str(exc)
    return UserError(message if message.startswith("mcbr") else f"{command}: {message}")


def check_keys(config: confuse.ConfigView, defaults: dict[str, Any] = DEFAULTS, where: str = "mcbr") -> None:
    """Reject unknown keys in the section and in its sub-sections, naming the nearest valid key.

    Raises
    ------
    mcbr_core.errors.ConfigError
        For the first unknown key.
    """
    from mcbr_core.config_keys import check_keys as check

    if not isinstance(config.get(), dict):
        raise McbrError(f"{where}: must be a mapping of settings, got {config.get()!r}")
    check(config.keys(), defaults, where=where)
    for key, default in defaults.items():
        if isinstance(default, dict) and default and key not in _FREE_SECTIONS and isinstance(config[key].get(), dict):
            check_keys(config[key], default, f"{where}.{key}")


def read_auto(config: confuse.ConfigView) -> bool:
    """The ``auto`` setting alone (read when the plugin loads, before the rest).

    Raises
    ------
    UserError
        If it is not yes or no.
    """
    value = config["auto"].get()
    if not isinstance(value, bool):
        raise UserError(f"mcbr.auto: expected yes or no, got {value!r}")
    return value


def load(config: confuse.ConfigView) -> PluginSettings:
    """Read and validate the ``mcbr`` section.

    Raises
    ------
    UserError
        On any invalid value, with the key named.
    """
    try:
        check_keys(config)
        read_auto(config)
        base_dir = Path(beets_config.config_dir())
        store_path = (
            None if config["store"].get() in ("auto", "", None) else Path(config["store"].get(confuse.Filename(in_app_dir=True)))
        )
        analysis = from_mapping(AnalysisSettings, {k: config[k].get() for k in _ANALYSIS_KEYS}, where="mcbr")
        tags = TagSettings(
            genre=from_mapping(KindSettings, config["genre"].flatten(), where="mcbr.genre"),
            mood=from_mapping(KindSettings, config["mood"].flatten(), where="mcbr.mood"),
            whitelist=_whitelist(config["whitelist"]),
            canonical={str(k): str(v or "") for k, v in (config["canonical"].flatten() or {}).items()},
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
        similar = config["similar"]
        if similar["count"].get(int) < 1:
            raise McbrError(f"mcbr.similar.count: must be at least 1, got {similar['count'].get()}")
        if similar["analyze_missing"].get(int) < 0:
            raise McbrError(f"mcbr.similar.analyze_missing: must be >= 0, got {similar['analyze_missing'].get()}")
        return PluginSettings(
            force=config["force"].get(bool),
            keep_existing=config["keep_existing"].get(bool),
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
        )
    except (confuse.ConfigError, McbrError) as exc:
        raise user_error(exc) from None
