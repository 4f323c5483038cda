"""Which parts of a track the model hears.

Short tracks (up to ``max_patches`` patches) are analysed whole, as musicnn
does. Longer tracks are analysed in ``max_patches // window_patches`` windows of
``window_patches`` consecutive patches, spread evenly between 5 % and 95 % of
the track (skipping fades and silent intros), so that a song's intro, body and
outro all count and decoding stays bounded whatever the track's length.
"""

from __future__ import annotations


def choose_windows(
    duration: float,
    *,
    patch_seconds: float,
    max_patches: int,
    window_patches: int,
) -> list[tuple[float, float | None]]:
    """Pick the ``(start, duration)`` windows to decode.

    Parameters
    ----------
    duration
        Track length in seconds (0 or unknown: decode everything).
    patch_seconds
        Seconds per model patch.
    max_patches
        Patch budget per track.
    window_patches
        Consecutive patches per window.

    Returns
    -------
    list[tuple[float, float | None]]
        Windows in seconds; ``[(0.0, None)]`` means the whole file.
    """
    if duration <= 0 or duration <= (max_patches + 1) * patch_seconds:
        return [(0.0, None)]
    n_windows = max(1, max_patches // window_patches)
    # a small margin so that the window still yields `window_patches` whole patches
    length = window_patches * patch_seconds + 0.05
    lo, hi = 0.05 * duration, 0.95 * duration - length
    if hi <= lo:
        lo, hi = 0.0, max(duration - length, 0.0)
    if n_windows == 1:
        return [((lo + hi) / 2, length)]
    step = (hi - lo) / (n_windows - 1)
    return [(lo + i * step, length) for i in range(n_windows)]
