"""The sections the other commands read: ``serve`` (``beet mcbr-serve``), ``train``
(``beet mcbr-train``), ``playlist`` (``beet mcbr-playlist``), ``mpd`` and ``dj`` (``beet mcbr-dj``)
and the mixes (``beet mcbr-mixes``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import confuse
from beets import config as beets_config

from beetsplug.mcbr.settings.defaults import check_keys, flag, section_values, user_errors
from mcbr_core.errors import McbrError
from mcbr_core.settings import from_mapping

if TYPE_CHECKING:
    from mcbr_core.players.dj import DjSettings
    from mcbr_core.players.mpd import MpdSettings
    from mcbr_core.playlist.mixes import MixSpec
    from mcbr_core.playlist.settings import PlaylistSettings


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
    with user_errors():
        values = section_values(config, "serve", host=host, port=port, token=token)
        if values.get("token") is None:
            values["token"] = ""
        values["token"] = str(values["token"])
        root = beets_config["directory"].get()
        values["library_root"] = "" if root is None else str(root)
        return from_mapping(ServeSettings, values, where="mcbr.serve")


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
    with user_errors("mcbr-train"):
        values = dict(config["train"].flatten())
        values["out"] = Path(config["train"]["out"].get(confuse.Filename(in_app_dir=True)))
        values["cache"] = str(values.get("cache") or "")
        if values.get("device") == "auto":
            values["device"] = config["device"].as_str()
        values["separator"] = config["mood_separator"].as_str()
        return from_mapping(TrainDefaults, values, where="mcbr.train")


def load_playlist(config: confuse.ConfigView) -> PlaylistSettings:
    """Read and validate ``mcbr.playlist`` (every source merged)."""
    from mcbr_core.playlist.settings import PlaylistSettings

    with user_errors():
        return PlaylistSettings.from_config(config["playlist"].flatten())


def playlist_folder(config: confuse.ConfigView) -> Path | None:
    """The playlist folder: ``mcbr.playlist.dir``, else beets' ``playlist``/``smartplaylist`` ``playlist_dir``."""
    if config["playlist"]["dir"].get():
        return Path(config["playlist"]["dir"].as_filename())
    for section in ("playlist", "smartplaylist"):
        view = beets_config[section]["playlist_dir"]
        if view.exists():
            return Path(view.as_filename())
    return None


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
    with user_errors(also=(ValueError,)):
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


def load_dj(config: confuse.ConfigView, **overrides: Any) -> DjSettings:
    """The ``dj`` section, with command-line ``overrides`` (``None``: keep the config's).

    Raises
    ------
    UserError
        On an invalid value, with the key named.
    """
    from mcbr_core.players.dj import DjSettings

    with user_errors():
        values = section_values(config, "dj", **overrides)
        return from_mapping(DjSettings, values, where="mcbr.dj")


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

    with user_errors():
        check_keys(config)
        auto = flag(config, "mixes_auto")
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
