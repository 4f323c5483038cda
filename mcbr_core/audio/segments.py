"""Which parts of a track the model hears.

Short tracks (up to ``max_patches`` patches) are analysed whole, as musicnn
does. Longer tracks are analysed in ``max_patches // window_patches`` windows of
``window_patches`` consecutive patches, spread evenly between 5 % and 95 % of
the track (skipping fades and silent intros), so that a song's intro, body and
outro all count and decoding stays bounded whatever the track's length.

Window starts are rounded to a whole-second grid: copies of one track in several
formats state lengths a few ms apart (AAC priming, an MP3 without a LAME tag: +23 to
+40 ms on 240 s), which would otherwise shift every window by up to that much.
"""

from __future__ import annotations

GRID = 1.0  # seconds; window starts are multiples of it


def choose_windows(
    duration: float,
    *,
    patch_seconds: float,
    max_patches: int,
    window_patches: int,
    grid: float = GRID,
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
    grid
        Starts are rounded to multiples of this many seconds (0: exact).

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
        starts = [(lo + hi) / 2]
    else:
        step = (hi - lo) / (n_windows - 1)
        starts = [lo + i * step for i in range(n_windows)]
    if grid > 0:
        # to the nearest point, not down: round durations put exact starts on whole seconds
        last = max(duration - length, 0.0)  # binds only for tracks barely longer than a window
        starts = [min(round(s / grid) * grid, last) for s in starts]
    return [(s, length) for s in starts]
