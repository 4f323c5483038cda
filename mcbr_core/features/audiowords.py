"""Zhang et al.'s audio words (registered as ``zhang-audiowords``).

Zhang et al. (2015, sections 3 and 4.2) turn a song into a sequence of "audio
words": frames of 1024 samples with a hop of 512 at 22.05 kHz are described by
a mel spectrogram; consecutive frames are concatenated into segment vectors;
the segments are PCA-whitened and clustered by k-means, and each segment of a
song becomes the index of its nearest centroid. The KCNN
(``mcbr_core/models/zhang.py``) looks the indices up in a table initialised
from the centroids.

The codebook is learned from a dataset (:func:`fit_audio_words`; on cached frame
features, :func:`fit_codebook`) and saved with the model:
:meth:`AudioWordsState.state_tensors` gives the arrays to store, and the
``zhang-audiowords`` factory takes them back as ``options["state"]``. Training maps
every cached clip to its word ids once per codebook (:func:`encode_files`).

Parameters the paper leaves open (frames per segment, PCA dimensions, codebook
size, mel bands) are chosen here and marked as such.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcbr_core.errors import ConfigError
from mcbr_core.features.normalise import (
    ExtractorBase,
    check_stats,
    feature_version,
    normalise,
    require_positive_ints,
)
from mcbr_core.features.spectral import Spectra

__all__ = [
    "STATE_KEYS",
    "AudioWords",
    "AudioWordsConfig",
    "AudioWordsState",
    "encode_files",
    "fit_audio_words",
    "fit_codebook",
    "segments",
]

#: Names of the state arrays, as stored in a model file.
STATE_KEYS = ("pca_mean", "pca_components", "pca_scale", "centroids")


@dataclass(frozen=True)
class AudioWordsConfig:
    """Parameters of ``zhang-audiowords``.

    Attributes
    ----------
    sr, n_fft, hop_length
        Rate, frame size and hop of the short-term features.
    n_mels, top_db
        Mel bands of the frame features and their dB range.
    n_frames_per_segment
        Consecutive frames concatenated into one segment vector.
    segment_hop
        Frames between segment starts (``None``: ``n_frames_per_segment``, i.e. the
        song is "partitioned into fix-sized segments").
    n_components
        PCA dimensions kept after whitening (the lookup table's width).
    n_words
        Codebook size (k-means clusters).
    mean, std
        Per-band statistics of the frame features (``n_mels`` values each), applied
        before segmenting, or ``None``.
    version
        Bumped whenever the output changes for the same input, statistics and codebook.
    """

    sr: int = 22050  # "converted into ... mono-channel and 22,050 Hz sampling rate"
    n_fft: int = 1024  # "The frame size and hop size were set to 1,024 samples and 50%"
    hop_length: int = 512
    n_mels: int = 40  # MIRtoolbox's default mel bands (the paper computed its mel spectrogram there)
    top_db: float | None = 80.0
    n_frames_per_segment: int = 4  # our choice (~116 ms); the paper only says "multiple consecutive frames"
    segment_hop: int | None = None
    n_components: int = 64  # our choice; the paper whitens "to reduce the data dimensionality"
    n_words: int = 512  # our choice; the codebook size is not given
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    version: str = "1"

    def __post_init__(self) -> None:
        name = type(self).__name__
        require_positive_ints(
            self, ("sr", "n_fft", "hop_length", "n_mels", "n_frames_per_segment", "n_components", "n_words")
        )
        if self.n_fft % 2:
            raise ConfigError(f"{name}: n_fft must be even, got {self.n_fft}")
        if self.segment_hop is not None and (not isinstance(self.segment_hop, int) or self.segment_hop < 1):
            raise ConfigError(
                f"{name}: segment_hop must be a positive integer or None, got {self.segment_hop!r}"
            )
        if self.n_components > self.segment_dim:
            raise ConfigError(
                f"{name}: n_components={self.n_components} exceeds the segment size "
                f"n_mels * n_frames_per_segment = {self.segment_dim}"
            )
        if self.top_db is not None and self.top_db <= 0:
            raise ConfigError(f"{name}: top_db must be positive or None, got {self.top_db!r}")
        check_stats(self, self.n_mels)

    @property
    def hop(self) -> int:
        """Frames between segment starts."""
        return self.n_frames_per_segment if self.segment_hop is None else self.segment_hop

    @property
    def segment_dim(self) -> int:
        """Length of a segment vector."""
        return self.n_mels * self.n_frames_per_segment

    @property
    def n_rows(self) -> int:
        """Rows of the frame features (statistics apply to these)."""
        return self.n_mels


@dataclass(frozen=True, eq=False)
class AudioWordsState:
    """A learned codebook: PCA whitening and k-means centroids, as float32 arrays.

    Attributes
    ----------
    pca_mean : np.ndarray [shape=(D,)]
        Mean segment vector.
    pca_components : np.ndarray [shape=(K, D)]
        Principal axes, largest variance first.
    pca_scale : np.ndarray [shape=(K,)]
        Standard deviation along each axis (the whitening divisor).
    centroids : np.ndarray [shape=(n_words, K)]
        Audio words in the whitened space.
    """

    pca_mean: np.ndarray
    pca_components: np.ndarray
    pca_scale: np.ndarray
    centroids: np.ndarray

    def __post_init__(self) -> None:
        for key in STATE_KEYS:
            value = np.array(getattr(self, key), dtype=np.float32)  # private copy
            if not np.all(np.isfinite(value)):
                raise ConfigError(f"audio-word state: {key} is not finite")
            value.setflags(write=False)
            object.__setattr__(self, key, value)
        d, k = self.pca_mean.shape, self.pca_components.shape
        if len(d) != 1 or len(k) != 2 or k[1] != d[0]:
            raise ConfigError(f"audio-word state: pca_components {k} does not match pca_mean {d}")
        if self.pca_scale.shape != (k[0],) or np.any(self.pca_scale <= 0):
            raise ConfigError(f"audio-word state: pca_scale must be {k[0]} positive values")
        if self.centroids.ndim != 2 or self.centroids.shape[1] != k[0]:
            raise ConfigError(
                f"audio-word state: centroids {self.centroids.shape} do not have {k[0]} columns"
            )

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> AudioWordsState:
        """Rebuild from :meth:`state_tensors` output (numpy arrays or CPU tensors)."""
        missing = [k for k in STATE_KEYS if k not in arrays]
        if missing:
            raise ConfigError(f"audio-word state lacks {', '.join(missing)}")
        values = {}
        for key in STATE_KEYS:
            value = arrays[key]
            if hasattr(value, "detach"):  # a torch tensor from a model file
                value = value.detach().cpu().numpy()
            values[key] = np.asarray(value)
        return cls(**values)

    def state_tensors(self) -> dict[str, np.ndarray]:
        """The arrays to store in a model file, by name."""
        return {key: getattr(self, key) for key in STATE_KEYS}

    def digest(self) -> str:
        """sha256 (hex) of the arrays, in key order: names the word-id files of this codebook."""
        arrays = self.state_tensors()
        return hashlib.sha256(
            b"".join(np.ascontiguousarray(arrays[k]).tobytes() for k in sorted(arrays))
        ).hexdigest()

    @property
    def n_words(self) -> int:
        """Codebook size."""
        return self.centroids.shape[0]

    @property
    def n_components(self) -> int:
        """Whitened dimensions."""
        return self.pca_components.shape[0]

    @property
    def segment_dim(self) -> int:
        """Length of a segment vector."""
        return self.pca_mean.shape[0]

    def whiten(self, segs: np.ndarray) -> np.ndarray:
        """PCA-whiten segment vectors ``[shape=(N, D)]`` to ``[shape=(N, K)]``."""
        return ((segs - self.pca_mean) @ self.pca_components.T) / self.pca_scale

    def assign(self, segs: np.ndarray) -> np.ndarray:
        """Index of the nearest centroid (Euclidean, whitened space) ``[shape=(N,)]`` int64."""
        z = self.whiten(np.asarray(segs, dtype=np.float32)).astype(np.float64)  # (N, K)
        c = self.centroids.astype(np.float64)  # (W, K)
        dist = (c**2).sum(axis=1)[None, :] - 2.0 * z @ c.T  # (N, W), ||z||^2 dropped
        return dist.argmin(axis=1)


def segments(frames: np.ndarray, *, n_frames_per_segment: int, hop: int) -> np.ndarray:
    """Concatenate consecutive frames into segment vectors.

    Parameters
    ----------
    frames
        ``[shape=(C, F, T)]`` frame features.
    n_frames_per_segment
        Frames per segment.
    hop
        Frames between segment starts.

    Returns
    -------
    np.ndarray
        ``[shape=(S, n_frames_per_segment * C * F)]`` float32, frame-major, with
        ``S = (T - n_frames_per_segment) // hop + 1``.

    Raises
    ------
    ValueError
        If the map is not 3-D or is shorter than one segment.
    """
    if n_frames_per_segment < 1 or hop < 1:
        raise ValueError(f"n_frames_per_segment and hop must be positive, got {n_frames_per_segment}, {hop}")
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 3:
        raise ValueError(f"expected frame features of shape (C, F, T), got {frames.shape}")
    rows = frames.reshape(-1, frames.shape[2])  # (C * F, T)
    if rows.shape[1] < n_frames_per_segment:
        raise ValueError(f"{rows.shape[1]} frames are fewer than one segment ({n_frames_per_segment})")
    win = np.lib.stride_tricks.sliding_window_view(rows, n_frames_per_segment, axis=1)[:, ::hop]  # (CF, S, n)
    return np.ascontiguousarray(win.transpose(1, 2, 0)).reshape(win.shape[1], -1)  # (S, n * CF)


def fit_audio_words(
    feature_maps: Iterable[np.ndarray],
    *,
    n_frames_per_segment: int,
    n_components: int,
    n_words: int,
    seed: int,
    segment_hop: int | None = None,
    max_segments: int = 200_000,
    n_init: int = 3,
) -> AudioWordsState:
    """Learn a codebook: PCA whitening of segment vectors, then k-means.

    Parameters
    ----------
    feature_maps
        Iterable of frame features ``[shape=(C, F, T_i)]`` of training clips, e.g.
        :meth:`AudioWords.frames` outputs.
    n_frames_per_segment
        Frames per segment.
    n_components
        PCA dimensions kept (at most ``n_frames_per_segment * C * F``).
    n_words
        Clusters.
    seed
        Seeds the segment subsample and k-means: the same inputs and seed give the
        same state.
    segment_hop
        Frames between segment starts (``None``: non-overlapping).
    max_segments
        Segments kept (uniformly at random) when there are more.
    n_init
        k-means restarts.

    Returns
    -------
    AudioWordsState

    Raises
    ------
    ValueError
        On bad sizes, or fewer segments than ``n_words``.
    """
    from sklearn.cluster import KMeans

    hop = n_frames_per_segment if segment_hop is None else segment_hop
    if min(n_frames_per_segment, hop, n_components, n_words, max_segments, n_init) < 1:
        raise ValueError("sizes must be positive")
    parts = [segments(m, n_frames_per_segment=n_frames_per_segment, hop=hop) for m in feature_maps]
    if not parts:
        raise ValueError("cannot fit audio words without feature maps")
    X = np.concatenate(parts).astype(np.float64)  # (N, D)
    rng = np.random.default_rng(seed)
    if X.shape[0] > max_segments:
        X = X[np.sort(rng.choice(X.shape[0], size=max_segments, replace=False))]
    n, d = X.shape
    if n_components > d:
        raise ValueError(f"n_components={n_components} exceeds the segment size {d}")
    if n < max(n_words, 2):
        raise ValueError(f"{n} segments are too few for {n_words} audio words")

    mean = X.mean(axis=0)
    Xc = X - mean
    eigval, eigvec = np.linalg.eigh(Xc.T @ Xc / (n - 1))  # ascending
    order = np.argsort(eigval)[::-1][:n_components]
    components = eigvec[:, order].T  # (K, D)
    # Deterministic signs: the largest-magnitude loading of each axis is positive.
    signs = np.sign(components[np.arange(n_components), np.abs(components).argmax(axis=1)])
    components *= np.where(signs == 0, 1.0, signs)[:, None]
    scale = np.sqrt(np.maximum(eigval[order], 1e-10 * max(eigval.max(), 1e-30)))  # (K,)
    Z = (Xc @ components.T) / scale  # (N, K), unit variance per axis

    km = KMeans(n_clusters=n_words, n_init=n_init, random_state=seed).fit(Z)
    return AudioWordsState(
        pca_mean=mean, pca_components=components, pca_scale=scale, centroids=km.cluster_centers_
    )


def fit_codebook(
    frame_files: Iterable[str | Path], config: AudioWordsConfig, *, seed: int
) -> AudioWordsState:
    """:func:`fit_audio_words` with ``config``'s sizes on cached frame features.

    Parameters
    ----------
    frame_files
        ``.npy`` files of :meth:`AudioWords.frames` outputs ``[shape=(1, n_mels, T_i)]``
        (memory-mapped one at a time).
    config
        Segment length and hop, PCA dimensions, codebook size.
    seed
        Seeds the segment subsample and k-means.
    """
    return fit_audio_words(
        (np.load(path, mmap_mode="r") for path in frame_files),
        n_frames_per_segment=config.n_frames_per_segment,
        n_components=config.n_components,
        n_words=config.n_words,
        seed=seed,
        segment_hop=config.segment_hop,
    )


def encode_files(state: AudioWordsState, frame_files: Sequence[str | Path], folder: Path, *,
                 config: AudioWordsConfig) -> list[str]:  # fmt: skip
    """Word ids of cached frame features, each written once under ``folder/words-<digest>/``.

    Parameters
    ----------
    state
        The codebook.
    frame_files
        ``.npy`` files of frame features ``[shape=(1, n_mels, T_i)]``.
    folder
        Where the ``words-<digest>`` folder goes (a feature cache's folder).
    config
        Segment length and hop.

    Returns
    -------
    list[str]
        One ``.npy`` file per input, of the same name: word ids ``[shape=(1, 1, S_i)]`` float32.
    """
    out_dir = Path(folder) / f"words-{state.digest()[:12]}"
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for src in frame_files:
        out = out_dir / Path(src).name
        if not out.exists():
            frames = np.load(src, mmap_mode="r")
            ids = state.assign(
                segments(frames, n_frames_per_segment=config.n_frames_per_segment, hop=config.hop)
            )
            tmp = out.with_name(f".{out.name}.tmp")
            with tmp.open("wb") as fh:
                np.save(fh, ids.astype(np.float32).reshape(1, 1, -1))  # (1, 1, S)
            tmp.replace(out)
        paths.append(str(out))
    return paths


class AudioWords(ExtractorBase):
    """Maps a clip to its sequence of audio-word indices.

    Parameters
    ----------
    config
        Extractor parameters.
    state
        The learned codebook; without one only :meth:`frames` works (to fit it).

    Notes
    -----
    ``__call__(y)`` maps ``[shape=(n_samples,)]`` to ``[shape=(1, 1, S)]`` float32
    holding integer word ids in ``[0, n_words)``, one per segment.
    """

    name = "zhang-audiowords"

    def __init__(self, config: AudioWordsConfig | None = None, state: AudioWordsState | None = None) -> None:
        super().__init__(config or AudioWordsConfig())
        c = self.config
        self.state = state
        if state is not None:
            if state.segment_dim != c.segment_dim:
                raise ConfigError(
                    f"{self.name}: the codebook has segments of {state.segment_dim} values, "
                    f"the config {c.segment_dim} (n_mels * n_frames_per_segment)"
                )
            if state.n_words != c.n_words or state.n_components != c.n_components:
                raise ConfigError(
                    f"{self.name}: the codebook has {state.n_words} words of {state.n_components} "
                    f"dimensions, the config {c.n_words} of {c.n_components}"
                )
            self.version = feature_version(c.version, c.mean, c.std, *state.state_tensors().values())
        self.frames_per_second = c.sr / (c.hop_length * c.hop)

    def state_tensors(self) -> dict[str, np.ndarray]:
        """The codebook arrays to store with a model (see :class:`AudioWordsState`)."""
        if self.state is None:
            raise ConfigError(f"{self.name}: no codebook (fit one with fit_audio_words)")
        return self.state.state_tensors()

    def spectra(self, y: np.ndarray) -> Spectra:
        """The shared STFT of a clip."""
        c = self.config
        return Spectra(y, sr=c.sr, n_fft=c.n_fft, hop_length=c.hop_length)

    def frames(self, y: np.ndarray) -> np.ndarray:
        """Normalised frame features ``[shape=(1, n_mels, T)]`` (the input of :func:`fit_audio_words`)."""
        return self.frames_from(self.spectra(y))

    def frames_from(self, spectra: Spectra) -> np.ndarray:
        """:meth:`frames` from precomputed spectra."""
        self.check_spectra(spectra)
        c = self.config
        log_mel = np.array(spectra.log_mel(n_mels=c.n_mels, top_db=c.top_db))[None]  # (1, n_mels, T), a copy
        return normalise(log_mel, c.mean, c.std)

    def extract(self, spectra: Spectra) -> np.ndarray:
        """Word ids ``[shape=(1, 1, S)]`` float32 from precomputed spectra.

        Raises
        ------
        ConfigError
            Without a codebook.
        ValueError
            If the clip is shorter than one segment.
        """
        if self.state is None:
            raise ConfigError(f"{self.name}: no codebook; pass options['state'] from the model file")
        c = self.config
        segs = segments(self.frames_from(spectra), n_frames_per_segment=c.n_frames_per_segment, hop=c.hop)
        ids = self.state.assign(segs)  # (S,)
        return ids.astype(np.float32).reshape(1, 1, -1)  # (1, 1, S)
