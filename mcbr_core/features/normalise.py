"""Per-row normalisation statistics, and the plumbing the paper extractors share.

Every extractor config records ``mean`` and ``std``, one value per feature row
(``C * F`` rows of a ``(C, F, T)`` map), fitted on a training set with
:func:`fit_normalisation` and applied as ``(x - mean) / std``. ``None`` means no
normalisation. The statistics change the output, so they are part of the
extractor's version (:func:`feature_version`): a model never meets features
normalised with other statistics than its own.

Typical use::

    raw = TowerMel(TowerMelConfig())                      # no statistics yet
    mean, std = fit_normalisation(raw(y) for y in clips)  # one pass over a training set
    extractor = TowerMel(replace(raw.config, mean=mean, std=std))
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from mcbr_core.errors import ConfigError

if TYPE_CHECKING:
    from mcbr_core.features.spectral import Spectra

__all__ = [
    "ExtractorBase",
    "check_stats",
    "config_from_options",
    "config_options",
    "feature_version",
    "fit_normalisation",
    "normalise",
]

T = TypeVar("T")


def fit_normalisation(
    feature_maps: Iterable[np.ndarray], *, min_std: float = 1e-5
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and standard deviation of every feature row over all frames of all maps.

    Parameters
    ----------
    feature_maps
        Iterable of ``[shape=(C, F, T_i)]`` maps (any ``T_i``, same ``C`` and ``F``), e.g.
        the outputs of an extractor without statistics. Consumed once; sums are kept
        in float64, so any number of clips fits in constant memory.
    min_std
        Floor of the standard deviation (constant rows, e.g. a dB floor, stay finite).

    Returns
    -------
    mean, std : tuple of float
        ``C * F`` values each, in row order, ready for the config's ``mean`` and ``std``.

    Raises
    ------
    ValueError
        On no maps, no frames, a non-3-D map, or maps of different ``(C, F)``.
    """
    if not min_std > 0:
        raise ValueError(f"min_std must be positive, got {min_std!r}")
    total = total_sq = None
    count = 0
    shape = None
    for x in feature_maps:
        x = np.asarray(x)
        if x.ndim != 3:
            raise ValueError(f"expected feature maps of shape (C, F, T), got {x.shape}")
        if shape is None:
            shape = x.shape[:2]
            total = np.zeros(shape[0] * shape[1])
            total_sq = np.zeros(shape[0] * shape[1])
        elif x.shape[:2] != shape:
            raise ValueError(f"feature maps disagree: (C, F) = {x.shape[:2]} after {shape}")
        rows = x.reshape(-1, x.shape[2]).astype(np.float64)  # (C * F, T)
        total += rows.sum(axis=1)
        total_sq += (rows**2).sum(axis=1)
        count += rows.shape[1]
    if shape is None or count == 0:
        raise ValueError("cannot fit normalisation statistics without any frames")
    mean = total / count
    var = np.maximum(total_sq / count - mean**2, 0.0)
    std = np.maximum(np.sqrt(var), min_std)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def normalise(x: np.ndarray, mean: tuple[float, ...] | None, std: tuple[float, ...] | None) -> np.ndarray:
    """Apply per-row statistics to a feature map.

    Parameters
    ----------
    x
        ``[shape=(C, F, T)]``.
    mean, std
        ``C * F`` values each, or both ``None`` (returns ``x`` as float32).

    Returns
    -------
    np.ndarray
        ``[shape=(C, F, T)]`` float32.

    Raises
    ------
    ValueError
        If the statistics do not have one value per row.
    """
    x = np.asarray(x, dtype=np.float32)
    if mean is None or std is None:
        return x
    n_rows = x.shape[0] * x.shape[1]
    if len(mean) != n_rows or len(std) != n_rows:
        raise ValueError(
            f"normalisation statistics have {len(mean)} rows, but the features have C * F = {n_rows}"
        )
    m = np.asarray(mean, dtype=np.float32).reshape(x.shape[0], x.shape[1], 1)  # (C, F, 1)
    s = np.asarray(std, dtype=np.float32).reshape(x.shape[0], x.shape[1], 1)  # (C, F, 1)
    return (x - m) / s


def check_stats(config: Any, n_rows: int | None = None) -> None:
    """Validate (and coerce to float tuples) the ``mean``/``std`` fields of a frozen config.

    Called from ``__post_init__``; JSON lists become tuples.

    Raises
    ------
    ConfigError
        If only one is set, they differ in length or from ``n_rows``, a value is not
        finite, or a standard deviation is not positive.
    """
    mean, std = config.mean, config.std
    if mean is None and std is None:
        return
    if mean is None or std is None:
        raise ConfigError(f"{type(config).__name__}: set both mean and std, or neither")
    try:
        mean = tuple(float(v) for v in mean)
        std = tuple(float(v) for v in std)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{type(config).__name__}: mean and std must be sequences of numbers ({exc})"
        ) from None
    if len(mean) != len(std):
        raise ConfigError(f"{type(config).__name__}: mean has {len(mean)} rows but std has {len(std)}")
    if n_rows is not None and len(mean) != n_rows:
        raise ConfigError(
            f"{type(config).__name__}: statistics have {len(mean)} rows, the features have {n_rows}"
        )
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and min(std) > 0):
        raise ConfigError(f"{type(config).__name__}: statistics must be finite, with positive std")
    object.__setattr__(config, "mean", mean)
    object.__setattr__(config, "std", std)


def feature_version(base: str, *arrays: Any) -> str:
    """``base``, suffixed with a digest of whatever else shapes the output (statistics, codebooks).

    ``feature_version("1")`` is ``"1"``; with statistics it is e.g. ``"1+3fa2c1d0"``.
    """
    present = [a for a in arrays if a is not None]
    if not present:
        return base
    digest = hashlib.sha1()
    for a in present:
        digest.update(np.ascontiguousarray(np.asarray(a, dtype=np.float32)).tobytes())
        digest.update(b"|")
    return f"{base}+{digest.hexdigest()[:8]}"


def config_from_options(
    cls: type[T], options: Mapping[str, Any], *, name: str, fixed: Mapping[str, Any] | None = None
) -> T:
    """Build a frozen config dataclass from a plain dict (a model card's feature config).

    Parameters
    ----------
    cls
        The config dataclass.
    options
        Field values; JSON lists become tuples.
    name
        Extractor name, for messages.
    fixed
        Fields the registered name implies (e.g. Whitell's ``kind``); an option that
        contradicts one is an error.

    Raises
    ------
    ConfigError
        On an unknown key, a contradicted fixed field, or a value the config rejects.
    """
    if not isinstance(options, Mapping):
        raise ConfigError(f"{name}: feature options must be a mapping, got {type(options).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(options) - known
    if unknown:
        raise ConfigError(f"{name}: unknown feature options {sorted(unknown)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    for key, value in (fixed or {}).items():
        if key in values and values[key] != value:
            raise ConfigError(f"{name}: option {key}={values[key]!r} contradicts the extractor ({value!r})")
        values[key] = value
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: {exc}") from None


def config_options(config: Any) -> dict[str, Any]:
    """A config as a JSON-ready dict (tuples become lists): the inverse of :func:`config_from_options`.

    This is what a model card stores as ``features.config`` and a feature cache keys on.
    """
    values = dataclasses.asdict(config)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def require_positive_ints(config: Any, fields: Sequence[str], *, name: str | None = None) -> None:
    """Raise ``ConfigError`` unless each of a config's ``fields`` is an ``int`` >= 1 (``bool`` is not).

    ``name`` (default: the config's class name) starts the message.
    """
    for field in fields:
        value = getattr(config, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(
                f"{name or type(config).__name__}: {field} must be a positive integer, got {value!r}"
            )


class ExtractorBase:
    """Shared behaviour of the paper extractors (see ``features/base.py`` for the protocol).

    Subclasses set ``name`` and implement :meth:`spectra` (the shared transforms a
    clip needs) and :meth:`raw` (the un-normalised ``(C, F, T)`` map). ``__call__``
    runs both and applies the config's statistics; :meth:`extract` does the same for
    a :class:`~mcbr_core.features.spectral.Spectra` computed elsewhere, so several
    extractors with the same STFT/CQT settings can share one.
    """

    name: str = ""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.version: str = feature_version(config.version, config.mean, config.std)
        self.sample_rate: int = config.sr
        self.frames_per_second: float = config.sr / config.hop_length

    @property
    def n_rows(self) -> int:
        """Rows ``C * F`` of the output."""
        return self.config.n_rows

    def spectra(self, y: np.ndarray) -> Spectra:
        """The shared spectra of a clip, with this extractor's transform settings."""
        raise NotImplementedError

    def raw(self, spectra: Spectra) -> np.ndarray:
        """Un-normalised features ``[shape=(C, F, T)]``."""
        raise NotImplementedError

    def extract(self, spectra: Spectra) -> np.ndarray:
        """Normalised features ``[shape=(C, F, T)]`` float32 from precomputed spectra.

        Raises
        ------
        ValueError
            If the spectra were computed at another rate, FFT size or hop.
        """
        self.check_spectra(spectra)
        out = normalise(self.raw(spectra), self.config.mean, self.config.std)
        return (
            out if out.flags.writeable and out.flags.c_contiguous else np.array(out, order="C")
        )  # not a cached view

    def check_spectra(self, spectra: Spectra) -> None:
        """Raise ``ValueError`` unless ``spectra`` has this extractor's rate, FFT size and hop."""
        c = self.config
        if spectra.sr != c.sr or spectra.hop_length != c.hop_length or spectra.n_fft != c.n_fft:
            raise ValueError(
                f"{self.name}: spectra at sr={spectra.sr}, n_fft={spectra.n_fft}, hop={spectra.hop_length}; "
                f"expected sr={c.sr}, n_fft={c.n_fft}, hop={c.hop_length}"
            )

    def __call__(self, y: np.ndarray) -> np.ndarray:
        """Compute features for a whole clip.

        Parameters
        ----------
        y
            Mono signal ``[shape=(n_samples,)]`` at ``sample_rate``.

        Returns
        -------
        np.ndarray
            ``[shape=(C, F, T)]`` float32, ``T = 1 + n_samples // hop_length``.
        """
        return self.extract(self.spectra(y))
