"""The DJ's event loop on MPD: keep the queue ahead, reconnect when MPD goes away.

The loop never polls: it waits on MPD's ``idle`` (``player`` and ``playlist``) and on
a ``Stopper``'s pipe together, so it wakes on a change or on ``stop()``. When MPD
goes away it reconnects with a growing delay, for at most ``DjSettings.reconnect``
seconds. It logs through ``mcbr_core.players.mpd``'s logger.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mcbr_core.errors import McbrError
from mcbr_core.players.dj import Dj
from mcbr_core.players.mpd import (
    DJ_SUBSYSTEMS,
    RECONNECT_DELAYS,
    MpdPlayer,
    PlayerError,
    PlayerGone,
    Stopper,
    log,
)


def run_dj(
    dj: Dj,
    player: MpdPlayer,
    *,
    path_of: Callable[[int], str | None],
    item_of: Callable[[str], int | None],
    stopper: Stopper | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Keep MPD's queue ``dj.settings.ahead`` songs ahead until ``stopper`` stops (or Ctrl-C).

    Parameters
    ----------
    dj
        The decisions.
    player
        Not connected yet: the first connection failing is an error (nothing is retried).
    path_of
        A library item's file path, or ``None`` when it is gone.
    item_of
        The library item of a file path, or ``None``.
    stopper
        Stops the loop from another thread.
    clock
        Monotonic seconds (for the skip rule).

    Raises
    ------
    McbrError
        When MPD cannot be reached at first, refuses the password, or stays away
        longer than ``dj.settings.reconnect`` seconds.
    """
    player.connect()
    try:
        while True:
            try:
                _serve(dj, player, path_of=path_of, item_of=item_of, stopper=stopper, clock=clock)
                return
            except PlayerGone as exc:
                player.close()
                log.warning("%s; reconnecting", exc)
                if not _reconnect(player, dj.settings.reconnect, stopper, clock):
                    return
                dj.reconnected()
                log.info("reconnected to MPD at %s", player.settings.where)
    finally:
        player.close()


def _reconnect(player: MpdPlayer, budget: float, stopper: Stopper | None, clock: Callable[[], float]) -> bool:
    """Connect again with a growing delay, for at most ``budget`` seconds; ``False`` when stopped."""
    deadline = clock() + budget
    delay, longest = RECONNECT_DELAYS
    last: PlayerGone | None = None
    while clock() < deadline:
        pause = min(delay, max(deadline - clock(), 0.0))
        if stopper is not None and stopper.wait(pause):
            return False
        if stopper is None:
            time.sleep(pause)
        try:
            player.connect()
            return True
        except PlayerGone as exc:
            last = exc
        delay = min(delay * 2, longest)
    reason = f": {last}" if last else ""
    raise McbrError(f"MPD at {player.settings.where} did not come back within {budget:g} s{reason}")


def _serve(
    dj: Dj,
    player: MpdPlayer,
    *,
    path_of: Callable[[int], str | None],
    item_of: Callable[[str], int | None],
    stopper: Stopper | None,
    clock: Callable[[], float],
) -> None:
    player.open_idle()  # first: a change while the DJ looks is not missed
    dj.start(player.played_before(dj.settings.history, item_of))
    refusals = 0
    warned = False
    while True:
        if stopper is not None and stopper.stopped:
            return
        actions = dj.update(player.state(item_of), clock())
        for song_id in actions.delete:
            try:
                player.delete(song_id)
            except PlayerError:  # gone already
                pass
        refused = 0
        for item_id in actions.add:
            path = path_of(item_id)
            uri = player.music.uri(path) if path else None
            if uri is None:
                log.debug("item %d is outside MPD's music directory %s", item_id, player.music.root)
                dj.refused(item_id)
                refused += 1
                continue
            try:
                dj.added(player.add(uri), item_id)
            except PlayerError as exc:
                log.debug("%s: %s", uri, exc)
                dj.refused(item_id)
                refused += 1
        refusals = refusals + refused if refused else 0
        if refused and refusals < 3 * dj.settings.ahead:
            continue  # choose others at once
        if refusals and not warned:
            log.warning(
                "MPD does not know %d of the tracks chosen; is its database up to date (mpc update)?",
                refusals,
            )
            warned = True
        refusals = 0
        if player.wait(DJ_SUBSYSTEMS, stopper) is None:
            return
