"""A long-running server's index, kept in step with a store that other processes write.

``beet import`` and ``beet mcbr`` write embeddings while a server answers queries,
and rebuild the index files once, when they finish (``cli_exit``). Before each query
the server calls ``LiveIndex.refresh()``:

- the store's generation is unchanged: the loaded index is current, nothing to do;
- it moved on: the index files are read again (at most once per ``poll`` seconds)
  and swapped in once they are newer than the loaded ones, so a finished import shows
  in the next answers without a restart;
- the files stay behind while the store has been quiet for ``quiet`` seconds (the
  writer did not rebuild them: it was killed, or it was another tool): the server
  builds an index of its own in a private folder, in a background thread, and
  swaps that in. It never writes the shared index files, so it cannot race a
  ``beet`` command that rebuilds them.

Until then the previous index keeps answering: queries under way finish on the
index they started with, tracks added since are missing from the results, and the
host drops results whose tracks are gone from its library.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mcbr_core.errors import McbrError
from mcbr_core.similarity import Neighbours

log = logging.getLogger(__name__)


class LiveIndex:
    """Keeps ``neighbours``' index current for a server.

    Parameters
    ----------
    neighbours
        The neighbour search the server queries (its ``loaded`` index is swapped).
    private
        Folder for the server's own index when it has to build one (removed by
        ``close``).
    quiet
        Seconds without store writes after which stale index files are rebuilt here.
    poll
        Least seconds between two reads of the index files while they are stale.
    clock
        Monotonic time source (tests pass a fake one).
    """

    def __init__(
        self,
        neighbours: Neighbours,
        *,
        private: Path,
        quiet: float = 30.0,
        poll: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.neighbours = neighbours
        self.private = Path(private)
        self.quiet = quiet
        self.poll = poll
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: int | None = None  # the store generation last seen
        self._changed_at = clock()
        self._read_at = float("-inf")
        self._builder: threading.Thread | None = None
        self.swaps = 0  # indexes swapped in since start (for /api/v1/status and tests)

    @property
    def generation(self) -> int | None:
        """Store generation of the index answering queries, or ``None`` without one."""
        index = self.neighbours.loaded
        return index.meta.generation if index is not None and index.meta is not None else None

    def start(self) -> None:
        """Load the index before serving, building the shared files if they are stale (as any command does)."""
        self._seen = self.neighbours.store.generation(self.neighbours.model_id)
        self.neighbours.index()

    def refresh(self) -> None:
        """Swap in a newer index if there is one; start a private rebuild if the files stay stale."""
        store = self.neighbours.store
        generation = store.generation(self.neighbours.model_id)
        now = self.clock()
        with self._lock:
            if generation != self._seen:
                self._seen = generation
                self._changed_at = now
            if self.generation == generation or now - self._read_at < self.poll:
                return
            self._read_at = now
        self._read_files(generation)
        with self._lock:
            if self.generation == generation or self._builder is not None:
                return
            if now - self._changed_at < self.quiet:
                return
            self._builder = threading.Thread(
                target=self._build, args=(generation,), name="mcbr-serve-index", daemon=True
            )
            self._builder.start()

    def _read_files(self, generation: int) -> None:
        index = self.neighbours.load()
        if index is None or index.meta is None:
            return
        current = self.generation
        if current is None or index.meta.generation > current:
            self.neighbours.use(index)
            self.swaps += 1
            state = "current" if index.meta.generation == generation else "still behind the store"
            log.info("reloaded the index (generation %d, %s)", index.meta.generation, state)

    def _build(self, generation: int) -> None:
        """Build a private index from the store and swap it in (runs in its own thread)."""
        n = self.neighbours
        try:
            log.info("the index files lag behind the store; building one for this server")
            own = Neighbours(
                n.store,
                model_id=n.model_id,
                folder=self.private,
                settings=n.settings,
                metric=n.metric,
                plugins=n.plugins,
            )
            index = own.index(rebuild=True)
            if index is not None and index.meta is not None:
                current = self.generation
                if current is None or index.meta.generation > current:
                    n.use(index)
                    self.swaps += 1
        except (McbrError, OSError) as exc:
            log.error("cannot build the index: %s", exc)
        finally:
            with self._lock:
                self._builder = None

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a private rebuild under way (tests, shutdown)."""
        builder = self._builder
        if builder is not None:
            builder.join(timeout)

    def close(self) -> None:
        """Wait for a rebuild under way and remove the private folder."""
        self.wait()
        shutil.rmtree(self.private, ignore_errors=True)
