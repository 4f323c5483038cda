"""Frozen, validated settings the core receives (never a confuse view).

Each dataclass validates in ``__post_init__``; ``from_mapping`` rejects unknown
keys, so a typo in a user's config is an error and not a silent default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from mcbr_core.config_keys import check_keys
from mcbr_core.errors import ConfigError
from mcbr_core.genres import GenreRules

T = TypeVar("T")


def from_mapping(cls: type[T], data: Mapping[str, Any], *, where: str) -> T:
    """Build settings dataclass ``cls`` from a mapping, rejecting unknown keys.

    Parameters
    ----------
    cls
        A settings dataclass.
    data
        Plain values (lists become tuples).
    where
        Config section for error messages, e.g. ``"mcbr.tags"``.
    """
    check_keys(data, (f.name for f in fields(cls)), where=where)  # type: ignore[arg-type]
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    hints = get_type_hints(cls)
    for key, value in values.items():
        check_type(value, hints.get(key), where=f"{where}.{key}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith("mcbr") else f"{where}: {message}") from None


_EXPECTED = {bool: "yes or no", int: "a whole number", float: "a number", str: "text"}


def check_type(value: Any, hint: Any, *, where: str) -> None:
    """Reject a value that is not of a plain field type (bool, int, float, str, or an optional one).

    Other annotations (tuples, mappings, unions of several types) are left to the
    dataclass's own ``__post_init__``.

    Raises
    ------
    ConfigError
        ``mcbr.playlist.radio.pool: expected a whole number, got 'abc'``.
    """
    if get_origin(hint) in (Union, UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if value is None and len(args) < len(get_args(hint)):
            return
        hint = args[0] if len(args) == 1 else None
    if hint not in _EXPECTED:
        return
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }[hint]
    if not ok:
        raise ConfigError(f"{where}: expected {_EXPECTED[hint]}, got {value!r}")


@dataclass(frozen=True)
class AnalysisSettings:
    """How audio becomes tags and an embedding.

    Attributes
    ----------
    model
        Shipped model name or path to a ``.safetensors`` model file.
    backend
        Registered model backend, or ``"auto"`` for the one the model card names.
    extractor
        Registered feature extractor, or ``"auto"`` for the model's own.
    decoders
        Decoders to try, in order (those claiming the extension go first).
    device
        ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    threads
        Torch threads per process; 0 = torch's default.
    max_patches
        At most this many model patches per track (about 3 s each for musicnn).
        Tracks up to that length are analysed whole.
    window_patches
        Longer tracks are analysed in ``max_patches // window_patches`` windows of
        this many consecutive patches, spread evenly over the track.
    batch_size
        Patches per forward pass; 0 = auto (2 on a CPU, where small batches
        measured fastest, 64 on a GPU).
    extra_plugins
        Importable module names registered as mcbr plugins besides the entry
        points (handy for a local plugin that is not packaged).
    min_coverage
        A file whose decoded audio falls short of this fraction of the length its
        header states (of the windows asked for, for long tracks) is damaged: it
        fails, or with ``partial`` is analysed on what decoded. Within (0, 1].
    partial
        Analyse a damaged file on the audio that decoded instead of failing it; the
        result's ``coverage`` says how much that was.
    """

    model: str = "mcbr-fusion"
    backend: str = "auto"
    extractor: str = "auto"
    decoders: tuple[str, ...] = ("soundfile", "pyav")
    device: str = "auto"
    threads: int = 0
    max_patches: int = 16
    window_patches: int = 4
    batch_size: int = 0
    extra_plugins: tuple[str, ...] = ()
    min_coverage: float = 0.9
    partial: bool = False

    def __post_init__(self) -> None:
        if not self.model:
            raise ConfigError("mcbr.model: must name a model")
        if not self.decoders:
            raise ConfigError("mcbr.decoders: at least one decoder is needed")
        for name in ("threads",):
            if getattr(self, name) < 0:
                raise ConfigError(f"mcbr.{name}: must be >= 0")
        if self.batch_size < 0:
            raise ConfigError("mcbr.batch_size: must be >= 0 (0 = auto)")
        for name in ("max_patches", "window_patches"):
            if getattr(self, name) < 1:
                raise ConfigError(f"mcbr.{name}: must be >= 1")
        if self.window_patches > self.max_patches:
            raise ConfigError("mcbr.window_patches: must not exceed max_patches")
        if isinstance(self.min_coverage, bool) or not isinstance(self.min_coverage, (int, float)):
            raise ConfigError(f"mcbr.min_coverage: must be a number, got {self.min_coverage!r}")
        if not 0.0 < self.min_coverage <= 1.0:
            raise ConfigError(f"mcbr.min_coverage: must be within (0, 1], got {self.min_coverage}")
        if not isinstance(self.partial, bool):
            raise ConfigError(f"mcbr.partial: must be yes or no, got {self.partial!r}")


@dataclass(frozen=True)
class KindSettings:
    """Tag selection for one kind (genre or mood).

    Attributes
    ----------
    threshold
        Minimum probability for a tag to be written, but the best one: a number for
        every label, or ``"auto"`` for each label's own threshold from the clip
        head's card (chosen for precision on the training folds; see
        docs/results.md), ``DEFAULT_THRESHOLD`` for labels without one.
    floor
        Minimum probability for the best tag to be written (0: every track gets one).
    count
        At most this many tags of the kind (best first); 0 disables the kind.
    source
        Where the kind's tags come from: ``"auto"`` (the shipped clip head that
        measured best for the kind on the configured model's embedding, if there is
        one, else the model's own tags), ``"model"`` (the configured model's own
        tags), or a clip head's name or file (``mcbr train --mode head``).
    specific
        Genres only: a pretrained tag naming a sub-genre of a written family (deeper
        in the genre tree, e.g. ``heavy metal`` under ``rock``) is written too from
        this probability on; ``None``: never.
    """

    threshold: float | str = "auto"
    count: int = 3
    source: str = "auto"
    floor: float = 0.0  # the best label is written from this score on: 0 gives every track one
    specific: float | None = None

    def __post_init__(self) -> None:
        if not self.source:
            raise ConfigError("source must name a clip head, or be auto or model")
        if isinstance(self.threshold, str):
            if self.threshold != "auto":
                raise ConfigError(f"threshold must be auto or a number within [0, 1], got {self.threshold!r}")
        elif isinstance(self.threshold, bool) or not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be within [0, 1], got {self.threshold}")
        if not 0.0 <= self.floor <= 1.0:
            raise ConfigError(f"floor must be within [0, 1], got {self.floor}")
        if self.specific is not None and (isinstance(self.specific, bool) or not 0.0 <= self.specific <= 1.0):
            raise ConfigError(f"specific must be within [0, 1] (or no), got {self.specific!r}")
        if self.count < 0:
            raise ConfigError(f"count must be >= 0, got {self.count}")

    def threshold_of(self, label: str, thresholds: Mapping[str, float] | None) -> float:
        """The threshold ``label`` must reach (``thresholds``: the head card's, for ``auto``)."""
        if isinstance(self.threshold, str):
            return float((thresholds or {}).get(label, DEFAULT_THRESHOLD))
        return float(self.threshold)


#: The threshold of labels without one of their own, under ``threshold: auto``.
DEFAULT_THRESHOLD = 0.3


@dataclass(frozen=True)
class TagSettings:
    """Which predicted tags are written, and how they are spelled.

    Attributes
    ----------
    genre, mood
        Threshold and count per kind.
    genres
        lastgenre's rules for genre names: aliases, tree, whitelist, ``prefer_specific``.
    renames
        Label (case-insensitive) to the name written, before the genre rules
        (``{"Hip-Hop": "Rap"}``). Mapping a label to ``""`` drops it.
    title_case
        Title-case names (small words such as "and" stay lower case).
    separator
        Joins several moods in the single MOOD tag.
    """

    genre: KindSettings = field(default_factory=lambda: KindSettings(count=3, specific=0.4))
    mood: KindSettings = field(default_factory=lambda: KindSettings(count=3))
    genres: GenreRules = field(default_factory=GenreRules)
    renames: Mapping[str, str] = field(default_factory=dict)
    title_case: bool = True
    separator: str = "; "

    def __post_init__(self) -> None:
        if not self.separator:
            raise ConfigError("mcbr.mood_separator: must not be empty")
        if self.mood.specific is not None:
            raise ConfigError("mcbr.mood.specific: sub-genres are for genres only (mcbr.genre.specific)")


@dataclass(frozen=True)
class IndexSettings:
    """The nearest-neighbour index.

    Attributes
    ----------
    backend
        Registered index backend (``annoy`` or ``exact``).
    n_trees
        Annoy trees: more is more accurate and larger.
    search_k
        Nodes Annoy inspects per query (more: better recall, slower); -1 = ``n_trees * n``.
    """

    backend: str = "annoy"
    n_trees: int = 16  # bench/index.py: 1M vectors, recall@10 0.988 at search_k 3000, p50 0.44 ms
    search_k: int = 3000

    def __post_init__(self) -> None:
        if self.n_trees < 1:
            raise ConfigError("mcbr.index.n_trees: must be >= 1")


@dataclass(frozen=True)
class PoolSettings:
    """Worker processes for analysis (``mcbr_core.workers``).

    Attributes
    ----------
    workers
        Worker processes; 0 = analyse in the calling process (no isolation).
    timeout
        Seconds one file may take before its worker is killed and the file fails.
    memory_mb
        Resident-memory ceiling per worker in MB; 0 = none.
    """

    workers: int = 2
    timeout: float = 120.0
    memory_mb: int = 2048

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ConfigError("mcbr.workers: must be >= 0 or auto")
        if self.timeout <= 0:
            raise ConfigError("mcbr.timeout: must be > 0")
        if self.memory_mb < 0:
            raise ConfigError("mcbr.memory_mb: must be >= 0")


@dataclass(frozen=True)
class RaySettings:
    """Analysis on a Ray cluster (``mcbr_core.ray_pool``); docs/scale.md.

    Attributes
    ----------
    address
        The cluster, as ``ray.init`` takes it (``HOST:PORT`` of the head, ``auto``
        for a cluster this machine belongs to, ``ray://HOST:10001`` through Ray
        Client); empty: analyse with the local worker pool.
    batch_size
        Files per Ray task. Larger batches cost less scheduling; smaller ones lose
        less when a worker dies and spread a short run over more workers.
    num_cpus
        CPUs Ray reserves for each task (its analysis process gets as many torch
        threads unless ``threads`` is set).
    num_gpus
        GPUs per task: ``auto`` shares the cluster's GPUs evenly among the tasks its
        CPUs can run (none on a cluster without GPUs), or a number (fractions share
        a GPU between tasks).
    max_in_flight
        Tasks queued on the cluster at once; 0 = twice as many as can run, which
        keeps workers busy while the host writes and bounds what Ctrl-C cancels.
    path_map
        Host path prefix -> the prefix under which workers read the same files
        (``{"/beets/music": "/mnt/music"}``), for a shared mount at another place.
    runtime_env
        Passed to ``ray.init`` (``env_vars``, ``py_modules``, ``pip``...) when this
        process connects; empty: the workers' own environment.
    """

    address: str = ""
    batch_size: int = 8
    num_cpus: float = 1.0
    num_gpus: float | str = "auto"
    max_in_flight: int = 0
    path_map: Mapping[str, str] = field(default_factory=dict)
    runtime_env: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.address, str):
            raise ConfigError(f"mcbr.ray.address: expected text, got {self.address!r}")
        if self.batch_size < 1:
            raise ConfigError(f"mcbr.ray.batch_size: must be >= 1, got {self.batch_size}")
        if self.num_cpus < 0:
            raise ConfigError(f"mcbr.ray.num_cpus: must be >= 0, got {self.num_cpus}")
        gpus = self.num_gpus
        if gpus != "auto" and (
            isinstance(gpus, (bool, str)) or not isinstance(gpus, (int, float)) or gpus < 0
        ):
            raise ConfigError(f"mcbr.ray.num_gpus: expected auto or a number >= 0, got {gpus!r}")
        if isinstance(gpus, (int, float)) and gpus > 1 and gpus != int(gpus):
            raise ConfigError(f"mcbr.ray.num_gpus: above 1 it must be a whole number, got {gpus}")
        if self.num_cpus == 0 and gpus in (0, 0.0):
            raise ConfigError("mcbr.ray: a task needs some num_cpus or num_gpus")
        if self.max_in_flight < 0:
            raise ConfigError(f"mcbr.ray.max_in_flight: must be >= 0, got {self.max_in_flight}")
        if not isinstance(self.path_map, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and k.startswith("/") and v.startswith("/")
            for k, v in self.path_map.items()
        ):
            raise ConfigError(
                f"mcbr.ray.path_map: expected absolute host folders mapped to absolute worker folders, "
                f"got {self.path_map!r}"
            )
        if not isinstance(self.runtime_env, Mapping):
            raise ConfigError(f"mcbr.ray.runtime_env: expected a mapping, got {self.runtime_env!r}")
