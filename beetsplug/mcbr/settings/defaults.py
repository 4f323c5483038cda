"""The plugin's defaults and the rules every section loader shares (unknown keys, errors)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import confuse
from beets.ui import UserError

from mcbr_core.errors import McbrError

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

#: Sections whose keys are the user's own (a mapping of names), or are checked where they are
#: read: ``playlist`` holds a mapping per playlist mode, including modes of other plugins.
_FREE_SECTIONS = frozenset({"canonical", "renames", "aliases", "playlist"})


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
        if (
            isinstance(default, dict)
            and default
            and key not in _FREE_SECTIONS
            and isinstance(config[key].get(), dict)
        ):
            check_keys(config[key], default, f"{where}.{key}")


def flag(config: confuse.ConfigView, key: str) -> bool:
    """A yes/no setting of ``config`` (``mcbr``).

    Raises
    ------
    mcbr_core.errors.McbrError
        ``mcbr.auto: expected yes or no, got 'maybe'``.
    """
    value = config[key].get()
    if not isinstance(value, bool):
        raise McbrError(f"mcbr.{key}: expected yes or no, got {value!r}")
    return value


def section_values(config: confuse.ConfigView, name: str, **overrides: Any) -> dict[str, Any]:
    """The ``name`` section's values (after checking every key of ``config``), with the
    ``overrides`` that are not ``None`` on top."""
    check_keys(config)
    values = dict(config[name].flatten())
    values.update({k: v for k, v in overrides.items() if v is not None})
    return values


@contextmanager
def user_errors(command: str = "mcbr", also: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Turn config and core errors (and ``also``) raised inside the block into :func:`user_error`."""
    try:
        yield
    except (confuse.ConfigError, McbrError, *also) as exc:
        raise user_error(exc, command) from None
