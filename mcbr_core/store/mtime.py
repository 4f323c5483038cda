"""When a file counts as unchanged since its analysis (import-light: used at `beet` start-up)."""

from __future__ import annotations

MTIME_TOLERANCE = 1e-3  # seconds; beets keeps flexible floats to 15 digits, not to the nanosecond


def same_mtime(recorded: float | None, current: float | None) -> bool:
    """Whether a recorded mtime still matches the file's (within ``MTIME_TOLERANCE``)."""
    return recorded is not None and current is not None and abs(float(recorded) - current) < MTIME_TOLERANCE
