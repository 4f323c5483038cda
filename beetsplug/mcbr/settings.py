"""The only module that knows both confuse and mcbr_core: config in, frozen settings out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import confuse
from beets import config as beets_config
from beets.ui import UserError

from mcbr_core.errors import McbrError
from mcbr_core.genres import GenreRules
from mcbr_core.settings import (
    AnalysisSettings,
    IndexSettings,
    KindSettings,
    PoolSettings,
    RaySettings,
    TagSettings,
    from_mapping,
)

if TYPE_CHECKING:
    from mcbr_core.players.dj import DjSettings
    from mcbr_core.players.mpd import MpdSettings
    from mcbr_core.playlist.mixes import MixSpec
    from mcbr_core.playlist.settings import PlaylistSettings

#: Defaults, mirrored in docs/configuration.md.
DEFAULTS: dict[str, Any] = {
    "auto": True,
    "force": False,
    "keep_existing": False,
    "write": True,
    "quiet": False,
    "model": "mcbr-fusion",  # msd-musicnn and as-mn04 on one decode; its heads tag genres, moods, arousal, valence
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
    # the best label is always written (from `floor` on); the others from `threshold` on
    # (auto: each label's own, from the head's card); `specific`: sub-genres of a written family from this score
    "genre": {"threshold": "auto", "count": 3, "source": "auto", "floor": 0.0, "specific": 0.4},
    "mood": {"threshold": "auto", "count": 3, "source": "auto", "floor": 0.0},
    # genre names as lastgenre resolves them, from the files that ship with beets' lastgenre
    "whitelist": True,  # yes: lastgenre's genres.txt; no: any genre; a file; a list
    "canonical": True,  # yes: lastgenre's genres-tree.yaml (labels bring their parents); no; a file
    "prefer_specific": False,  # the most specific genre first
    "aliases": True,  # yes: lastgenre's aliases.yaml (hip-hop -> hip hop); no; a mapping name: [regex]
    "renames": {},  # model label -> name written ("" drops it), before the rules above
    "per_track": False,  # albums: each track keeps its own genres and moods (the album gets the consensus)
    "title_case": True,
    "mood_separator": "; ",
    "store": "auto",  # auto: a sidecar beside the library file (LIBRARY.mcbr.db), one store per library
    "index": {"backend": "annoy", "n_trees": 16, "search_k": 3000},
    "adopt": "",  # a catalogue (`mcbr analyze -o FILE`): items whose file it analysed unchanged adopt its rows
    # analysis on a Ray cluster (docs/scale.md); `beet mcbr --ray ADDRESS` sets the address for one run
    "ray": {
        "address": "",  # empty: local worker processes
        "batch_size": 8,
        "num_cpus": 1,
        "num_gpus": "auto",
        "max_in_flight": 0,
        "path_map": {},  # {"/beets/music": "/mnt/music"}: where workers find the host's files
        "runtime_env": {},
    },
    "similar": {
        "count": 10,
        "format_item": "$mcbr_distance  $artist - $album - $title",
        "format_album": "$mcbr_distance  $albumartist - $album",
        "format_artist": "$mcbr_distance  $artist",
        "analyze_missing": 50,
        "duplicates": False,  # list every copy of a recording (mp3 + flac of one song), not just the nearest
    },
    # MPD (`beet mcbr-playlist --mpd`, `beet mcbr-dj`); host, port and password: beets' `mpd:` section
    "mpd": {
        "music_directory": "",  # MPD's music folder seen from here; empty: mpd.music_directory or directory
        "timeout": 10.0,  # seconds an MPD command may take
    },
    # read by beetsplug.mcbr.mpd_command (`beet mcbr-dj`); -n, --history and --seeds override these
    "dj": {"ahead": 5, "history": 50, "seeds": 3, "skip_seconds": 30.0, "replan": True, "reconnect": 60.0},
    # read by beetsplug.mcbr.mixes_command: playlists declared here, written again when the library changes
    "mixes": [],
    "mixes_auto": True,
    "mixes_dir": "",  # empty: mcbr.playlist.dir, playlist.playlist_dir or smartplaylist.playlist_dir
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
    # read by beetsplug.mcbr.serve (`beet mcbr-serve`); --host, --port and --token override these
    "serve": {
        "host": "127.0.0.1",  # loopback only; 0.0.0.0 or an address to serve other machines
        "port": 8338,  # beets' own web plugin takes 8337
        "token": "",  # empty: no token asked; else `Authorization: Bearer TOKEN` or ?token=TOKEN
        "threads": 8,  # requests answered at once
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


@dataclass(frozen=True)
class ServeSettings:
    """``beet mcbr-serve``'s settings (the ``serve`` section, with command-line overrides).

    Attributes
    ----------
    host
        Address to listen on.
    port
        TCP port; 0 picks a free one (tests).
    token
        Token every request must carry (``Authorization: Bearer`` or ``?token=``);
        ``""`` for none.
    threads
        Requests answered at once (one worker thread each, each with its own beets
        database connection).
    library_root
        beets' ``directory`` exactly as configured (not expanded), which BeetstreamNext
        hashes ``sg-h-`` song ids against.
    """

    host: str = "127.0.0.1"
    port: int = 8338
    token: str = ""
    threads: int = 8
    library_root: str = ""

    def __post_init__(self) -> None:
        if not self.host.strip():
            raise McbrError("mcbr.serve.host: must not be empty")
        if not 0 <= self.port <= 65535:
            raise McbrError(f"mcbr.serve.port: must be between 0 and 65535, got {self.port}")
        if not 1 <= self.threads <= 64:
            raise McbrError(f"mcbr.serve.threads: must be between 1 and 64, got {self.threads}")
        if any(c.isspace() for c in self.token):
            raise McbrError("mcbr.serve.token: must not contain spaces")


def load_serve(
    config: confuse.ConfigView, *, host: str | None = None, port: int | None = None, token: str | None = None
) -> ServeSettings:
    """Read and validate the ``serve`` section; ``host``, ``port`` and ``token`` override it.

    Raises
    ------
    UserError
        On any invalid value, with the key named.
    """
    from mcbr_core.settings import from_mapping

    try:
        check_keys(config)
        values = dict(config["serve"].flatten())
        for key, value in (("host", host), ("port", port), ("token", token)):
            if value is not None:
                values[key] = value
        if values.get("token") is None:
            values["token"] = ""
        values["token"] = str(values["token"])
        root = beets_config["directory"].get()
        values["library_root"] = "" if root is None else str(root)
        return from_mapping(ServeSettings, values, where="mcbr.serve")
    except (confuse.ConfigError, McbrError) as exc:
        raise user_error(exc) from None


#: Broad genres the default whitelist always allows, in the tree's spelling where it has one
#: (lastgenre's genres.txt says "folk music", "gospel music", "latin american").
FAMILIES = frozenset({
    "rock", "pop", "heavy metal", "punk rock", "alternative rock", "indie rock", "electronic", "house", "techno",
    "trance", "drum and bass", "dubstep", "ambient", "hip hop", "r&b", "soul", "funk", "jazz", "blues", "country",
    "folk", "reggae", "latin", "classical", "soundtrack", "world music", "new age", "easy listening", "gospel",
})  # fmt: skip


def _kind_settings(view: confuse.ConfigView, where: str) -> KindSettings:
    """``mcbr.genre`` / ``mcbr.mood`` (``specific: no`` turns sub-genres off)."""
    values = dict(view.flatten())
    if values.get("specific") is False:
        values["specific"] = None
    return from_mapping(KindSettings, values, where=where)


def _lastgenre_file(name: str) -> Path:
    """A data file shipped with beets' lastgenre plugin (found without importing the plugin)."""
    import importlib.util

    spec = importlib.util.find_spec("beetsplug.lastgenre")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    raise McbrError(f"beets' lastgenre data file {name} is missing from the beets installation")


def _read_yaml(path: Path, key: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise McbrError(f"mcbr.{key}: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None


def _whitelist(view: confuse.ConfigView) -> frozenset[str]:
    """lastgenre's ``whitelist``: yes (its genres.txt), no (any), a file, or (ours) a list."""
    value = view.get()
    if value is False:
        return frozenset()
    if isinstance(value, list):
        return frozenset(str(v).strip().lower() for v in value)
    path = _lastgenre_file("genres.txt") if value in (True, "", None) else Path(view.as_filename())
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise McbrError(f"mcbr.whitelist: cannot read {path}: {exc.strerror}") from None
    return frozenset(ln.strip().lower() for ln in lines if ln.strip() and not ln.startswith("#"))


def _genre_rules(config: confuse.ConfigView) -> tuple[GenreRules, dict[str, str]]:
    """lastgenre's genre options -> the core's rules, and the user's label renames."""
    from mcbr_core.genres import compile_aliases, flatten_tree

    renames = {str(k): str(v or "") for k, v in (config["renames"].get() or {}).items()}
    canonical = config["canonical"].get()
    if isinstance(canonical, dict):  # before 0.2: canonical was the label renames
        renames = {**{str(k): str(v or "") for k, v in canonical.items()}, **renames}
        canonical = True
    branches: tuple[tuple[str, ...], ...] = ()
    if canonical is not False or config["prefer_specific"].get(bool):  # prefer_specific needs a tree
        tree = (
            _lastgenre_file("genres-tree.yaml")
            if canonical in (True, False, "", None)
            else Path(config["canonical"].as_filename())
        )
        branches = flatten_tree(_read_yaml(tree, "canonical"))
    aliases_value = config["aliases"].get()
    if aliases_value is False:
        aliases = {}
    elif isinstance(aliases_value, dict):
        aliases = aliases_value
    elif aliases_value in (True, "", None):
        aliases = _read_yaml(_lastgenre_file("aliases.yaml"), "aliases") or {}
    else:
        raise McbrError(
            f"mcbr.aliases: expected yes, no or a mapping of names to patterns, got {aliases_value!r}"
        )
    try:
        compiled = compile_aliases({str(k): [str(p) for p in v] for k, v in aliases.items()})
    except (re.error, TypeError) as exc:
        raise McbrError(f"mcbr.aliases: {exc}") from None
    whitelist = _whitelist(config["whitelist"])
    if config["whitelist"].get() in (True, "", None):  # lastgenre's list spells some families otherwise
        whitelist |= {genre for branch in branches for genre in branch} | FAMILIES
    rules = GenreRules(
        branches=branches,
        canonical=canonical is not False,  # with canonical: no, the tree only ranks (prefer_specific)
        whitelist=whitelist,
        aliases=compiled,
        prefer_specific=config["prefer_specific"].get(bool),
    )
    return rules, renames


def _workers(value: object) -> int:
    """``auto`` (one per core, at most 8) or a number >= 0."""
    from mcbr_core.workers import auto_workers

    if value != "auto" and not isinstance(value, int):
        raise confuse.ConfigTypeError(f"mcbr.workers: must be auto or a number, not {value!r}")
    return auto_workers(value)


#: Sections whose keys are the user's own (a mapping of names), or are checked where they are
#: read: ``playlist`` holds a mapping per playlist mode, including modes of other plugins.
_FREE_SECTIONS = frozenset({"canonical", "renames", "aliases", "playlist"})


def user_error(exc: Exception, command: str = "mcbr") -> UserError:
    """A core error as beets shows it: one line, prefixed with the command unless it names a key already."""
    message = str(exc)
    return UserError(message if message.startswith("mcbr") else f"{command}: {message}")


@dataclass(frozen=True)
class TrainDefaults:
    """The ``mcbr.train`` section (what ``beet mcbr-train`` options default to), validated."""

    task: str
    mode: str
    arch: str
    features: str
    base_model: str
    epochs: int
    batch_size: int
    lr: float
    patience: int
    folds: int
    seed: int
    device: str  # auto: mcbr.device
    workers: int
    min_count: int
    max_seconds: float
    out: Path
    cache: str
    separator: str  # mcbr.mood_separator, to read the library's moods


def load_train(config: confuse.ConfigView) -> TrainDefaults:
    """Read and validate ``mcbr.train``.

    Raises
    ------
    UserError
        On an unknown key or a value of the wrong type, naming it.
    """
    try:
        values = dict(config["train"].flatten())
        values["out"] = Path(config["train"]["out"].get(confuse.Filename(in_app_dir=True)))
        values["cache"] = str(values.get("cache") or "")
        if values.get("device") == "auto":
            values["device"] = config["device"].as_str()
        values["separator"] = config["mood_separator"].as_str()
        return from_mapping(TrainDefaults, values, where="mcbr.train")
    except (confuse.ConfigError, McbrError) as exc:
        raise user_error(exc, "mcbr-train") from None


def load_playlist(config: confuse.ConfigView) -> PlaylistSettings:
    """Read and validate ``mcbr.playlist`` (every source merged)."""
    from mcbr_core.playlist.settings import PlaylistSettings

    try:
        return PlaylistSettings.from_config(config["playlist"].flatten())
    except (confuse.ConfigError, McbrError) as exc:
        raise user_error(exc) from None


def playlist_folder(config: confuse.ConfigView) -> Path | None:
    """The playlist folder: ``mcbr.playlist.dir``, else beets' ``playlist``/``smartplaylist`` ``playlist_dir``."""
    if config["playlist"]["dir"].get():
        return Path(config["playlist"]["dir"].as_filename())
    for section in ("playlist", "smartplaylist"):
        view = beets_config[section]["playlist_dir"]
        if view.exists():
            return Path(view.as_filename())
    return None


def library_file() -> Path:
    """The library database beets opens (``library``, or ``-l``)."""
    return Path(beets_config["library"].as_filename())


def id3v23() -> bool:
    """beets' ``id3v23``: write ID3v2.3 tags to new MP3 tags."""
    return bool(beets_config["id3v23"].get(bool))


def import_writes(session_config: confuse.ConfigView) -> bool:
    """beets' ``import.write`` for an import session (``-w``/``-W`` included)."""
    return bool(session_config["write"].get(bool))


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
        if (
            isinstance(default, dict)
            and default
            and key not in _FREE_SECTIONS
            and isinstance(config[key].get(), dict)
        ):
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
    except (confuse.ConfigError, McbrError) as exc:
        raise user_error(exc) from None


# -- players and mixes (beetsplug.mcbr.mpd_command, beetsplug.mcbr.mixes_command) --------------


def load_mpd(config: confuse.ConfigView) -> MpdSettings:
    """MPD's address from beets' ``mpd:`` section, read as mpdstats reads it, and ``mcbr.mpd``.

    ``mpd.host`` (default ``$MPD_HOST`` or ``localhost``; ``PASSWORD@HOST`` as MPD's own
    clients take it), ``mpd.port`` (``$MPD_PORT`` or 6600), ``mpd.password``. MPD's
    music folder: ``mcbr.mpd.music_directory``, else mpdstats' ``mpd.music_directory``,
    else beets' ``directory``.

    Raises
    ------
    UserError
        On an invalid value, with the key named.
    """
    import os

    from mcbr_core.players.mpd import MpdSettings

    mpd = beets_config["mpd"]
    try:
        check_keys(config)
        host = mpd["host"].as_str() if mpd["host"].exists() else os.environ.get("MPD_HOST", "localhost")
        port = mpd["port"].get(int) if mpd["port"].exists() else int(os.environ.get("MPD_PORT", "6600"))
        password = mpd["password"].as_str() if mpd["password"].exists() else ""
        if not password and "@" in host and not host.startswith(("/", "~", "@")):
            password, host = host.split("@", 1)
        if config["mpd"]["music_directory"].get():
            music = config["mpd"]["music_directory"].as_filename()
        elif mpd["music_directory"].exists() and mpd["music_directory"].get():
            music = mpd["music_directory"].as_filename()
        else:
            music = beets_config["directory"].as_filename()
        return MpdSettings(
            host=host,
            port=port,
            password=password or "",
            music_directory=music,
            timeout=config["mpd"]["timeout"].as_number(),
        )
    except (confuse.ConfigError, McbrError, ValueError) as exc:
        raise user_error(exc) from None


def load_dj(config: confuse.ConfigView, **overrides: Any) -> DjSettings:
    """The ``dj`` section, with command-line ``overrides`` (``None``: keep the config's).

    Raises
    ------
    UserError
        On an invalid value, with the key named.
    """
    from mcbr_core.players.dj import DjSettings

    try:
        check_keys(config)
        values = dict(config["dj"].flatten())
        values.update({k: v for k, v in overrides.items() if v is not None})
        return from_mapping(DjSettings, values, where="mcbr.dj")
    except (confuse.ConfigError, McbrError) as exc:
        raise user_error(exc) from None


@dataclass(frozen=True)
class MixesSettings:
    """The ``mixes``, ``mixes_auto`` and ``mixes_dir`` settings.

    Attributes
    ----------
    mixes
        The declared mixes, validated.
    auto
        Write them again at the end of a command that changed the library.
    folder
        Where their files go; ``None`` when no folder is configured anywhere.
    """

    mixes: tuple[MixSpec, ...]
    auto: bool
    folder: Path | None


def load_mixes(config: confuse.ConfigView) -> MixesSettings:
    """Read and validate the mixes; the folder is ``mixes_dir``, else ``mcbr.playlist.dir``, else
    beets' ``playlist.playlist_dir`` or ``smartplaylist.playlist_dir``.

    Raises
    ------
    UserError
        On an invalid value, with the key named.
    """
    from mcbr_core.playlist.mixes import load_mixes as load_specs

    try:
        check_keys(config)
        auto = config["mixes_auto"].get()
        if not isinstance(auto, bool):
            raise McbrError(f"mcbr.mixes_auto: expected yes or no, got {auto!r}")
        specs = load_specs(config["mixes"].get())
        folder = None
        for view in (config["mixes_dir"], config["playlist"]["dir"]):
            if view.get():
                folder = Path(view.as_filename())
                break
        else:
            for section in ("playlist", "smartplaylist"):
                view = beets_config[section]["playlist_dir"]
                if view.exists() and view.get():
                    folder = Path(view.as_filename())
                    break
        return MixesSettings(specs, auto, folder)
    except (confuse.ConfigError, McbrError) as exc:
        raise user_error(exc) from None
