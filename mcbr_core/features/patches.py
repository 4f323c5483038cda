"""Cutting a clip's feature map into fixed-length model inputs."""

from __future__ import annotations

import numpy as np


def patches(features: np.ndarray, *, patch_frames: int, hop: int) -> np.ndarray:
    """Cut a clip's features into fixed-length patches along time.

    Patch ``k`` covers frames ``[k * hop, k * hop + patch_frames)``; there are
    ``floor((T - patch_frames) / hop) + 1`` of them, and trailing frames that do
    not fill a patch are dropped (musicnn's rule).

    A clip shorter than one patch (``T < patch_frames``, under ~3 s), for which
    musicnn itself fails, is first repeated (tiled) along time and cut to
    ``patch_frames``, so it still yields exactly one patch. Repeating rather
    than zero-padding matches how the checkpoints were trained
    (``"pad_short": "repeat-pad"`` in their config.json).

    Parameters
    ----------
    features
        ``[shape=(C, F, T)]``, e.g. the output of ``MusicnnMel``.
    patch_frames
        Frames per patch.
    hop
        Frames between patch starts.

    Returns
    -------
    np.ndarray
        ``[shape=(B, C, F, patch_frames)]``, a contiguous copy.

    Raises
    ------
    ValueError
        On bad sizes or an empty clip.
    """
    if features.ndim != 3:
        raise ValueError(f"expected features of shape (C, F, T), got {features.shape}")
    if patch_frames < 1 or hop < 1:
        raise ValueError(f"patch_frames and hop must be positive, got {patch_frames} and {hop}")
    n_t = features.shape[2]
    if n_t == 0:
        raise ValueError("cannot cut patches from a clip with no frames")
    if n_t < patch_frames:
        reps = -(-patch_frames // n_t)
        features = np.tile(features, (1, 1, reps))[:, :, :patch_frames]  # (C, F, patch_frames)
    windows = np.lib.stride_tricks.sliding_window_view(features, patch_frames, axis=2)[
        :, :, ::hop
    ]  # (C, F, B, P)
    return np.ascontiguousarray(windows.transpose(2, 0, 1, 3))  # (B, C, F, P)
