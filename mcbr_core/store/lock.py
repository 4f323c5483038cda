"""An inter-process lock so two analysis runs on one library take turns.

SQLite transactions already keep the store consistent and the index is swapped
in atomically; the lock additionally stops two runs from analysing the same
items twice. The second run says that it waits, and then goes on.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)


class RunLock:
    """An exclusive advisory lock on ``path`` (``fcntl.flock``; a no-op where unsupported).

    Parameters
    ----------
    path
        Lock file (created if missing; holds the owner's pid for messages).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh = None

    def acquire(self, *, wait: bool = True) -> bool:
        """Take the lock; with ``wait=False`` return ``False`` instead of waiting."""
        try:
            import fcntl
        except ImportError:  # Windows: runs rely on SQLite transactions alone
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            owner = fh.read().strip() or "?"
            if not wait:
                fh.close()
                return False
            log.warning(
                "another mcbr run (pid %s) is analysing this library; waiting for it to finish", owner
            )
            fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return True

    def release(self) -> None:
        """Release the lock."""
        if self._fh is not None:
            import fcntl

            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
