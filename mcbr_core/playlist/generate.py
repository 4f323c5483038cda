"""Run a playlist strategy: check the request, order what it leaves open, enforce the constraints.

Hosts call ``make_playlists``; it is the same for built-in and third-party
strategies, so every mode gets the same order setting and the same guarantees
(limits, caps, no duplicates, no artist twice in a row), even one that ignores them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from mcbr_core.config_keys import check_keys
from mcbr_core.errors import McbrError, PluginError
from mcbr_core.playlist.base import Playlist, PlaylistRequest, PlaylistStrategy
from mcbr_core.playlist.constraints import Transitions, enforce, tour

if TYPE_CHECKING:
    from mcbr_core.plugins import Plugins

#: Above this many tracks a smooth order skips 2-opt (which needs the full cost matrix).
TWO_OPT_LIMIT = 1000


def get_strategy(name: str, plugins: Plugins | None = None) -> PlaylistStrategy:
    """Build the strategy registered as ``name`` (``PluginError`` lists the known ones)."""
    from mcbr_core.plugins import get_plugins

    factory = (plugins or get_plugins()).registry("playlist strategy").get(name)
    strategy = factory()
    for attr in ("name", "queries", "seeded", "summary", "defaults", "generate"):
        if not hasattr(strategy, attr):
            raise PluginError(f"mcbr: playlist strategy {name!r} has no {attr!r} (see docs/playlists.md)")
    return strategy


def strategy_names(plugins: Plugins | None = None) -> list[str]:
    """Registered playlist strategies, in registration order."""
    from mcbr_core.plugins import get_plugins

    return (plugins or get_plugins()).registry("playlist strategy").names()


def check_options(strategy: PlaylistStrategy, options: dict[str, object]) -> dict[str, object]:
    """The strategy's defaults updated by ``options``; an unknown key is an error."""
    check_keys(options, strategy.defaults, where=f"mcbr.playlist.{strategy.name}")
    return {**strategy.defaults, **options}


def make_playlists(strategy: PlaylistStrategy, request: PlaylistRequest) -> list[Playlist]:
    """The strategy's playlists, ordered and checked against the request's constraints.

    Raises
    ------
    McbrError
        When the number of queries does not suit the strategy.
    ConfigError
        For an unknown option.
    """
    low, high = strategy.queries
    if not low <= len(request.seeds) <= high:
        want = str(low) if low == high else f"{low} to {high}"
        raise McbrError(
            f"{strategy.name} takes {want} quer{'y' if want == '1' else 'ies'}, got {len(request.seeds)}"
        )
    options = check_options(strategy, dict(request.options))
    playlists = strategy.generate(replace(request, options=options))
    c = request.constraints
    seeds = {int(i) for seed in request.seeds for i in seed} if strategy.seeded else set()
    exempt = seeds if c.include_seed else set()
    out = []
    for playlist in playlists:
        ids = [int(i) for i in playlist.item_ids]
        allowed = set(request.space.candidate_ids(ids)) | exempt
        ids = [i for i in ids if i in allowed and (c.include_seed or i not in seeds)]
        if not playlist.ordered:
            ids = order(replace(playlist, item_ids=tuple(ids)), request)
        tracks = request.space.tracks(ids)
        kept = enforce([tracks[i] for i in ids if i in tracks], c, exempt=exempt)
        out.append(replace(playlist, item_ids=tuple(t.item_id for t in kept)))
    return out


def order(playlist: Playlist, request: PlaylistRequest) -> list[int]:
    """Item ids of a playlist in the request's ``order``; the first ``prefix`` keep their place."""
    c = request.constraints
    space = request.space
    ids = list(playlist.item_ids)
    prefix = min(max(playlist.prefix, 0), len(ids))
    fixed, rest = ids[:prefix], ids[prefix:]
    got, vecs = space.vectors(rest)
    loose = [i for i in rest if i not in set(got.tolist())]  # no vector (a third-party strategy's pick): last
    if len(got) < 2:
        return fixed + got.tolist() + loose
    by_id = space.tracks(got.tolist())
    got_ids = [i for i in got.tolist() if i in by_id]
    if len(got_ids) != len(got):
        keep = np.isin(got, got_ids)
        got, vecs = got[keep], vecs[keep]
        loose += [i for i in rest if i not in by_id and i not in loose]
    tracks = [by_id[i] for i in got_ids]
    after_id = fixed[-1] if fixed else playlist.after
    after_track = space.track(after_id) if after_id is not None else None
    after_vec = space.vectors([after_id])[1] if after_id is not None else np.zeros((0, 0))
    transitions = Transitions(vecs, tracks, c)
    n = len(tracks)
    if c.order == "smooth":
        first = transitions.from_point(after_vec[0], after_track) if len(after_vec) else None
        matrix = transitions.matrix() if n <= TWO_OPT_LIMIT else None
        row = (lambda i: matrix[i]) if matrix is not None else transitions.row
        positions = tour(
            row,
            tracks,
            first_costs=first,
            after=after_track,
            no_artist_repeat=c.no_artist_repeat,
            matrix=matrix,
        )
    else:
        keys = np.arange(n, dtype=np.float64)  # rank: the strategy's order
        if c.order == "shuffle":
            keys = np.random.default_rng(c.random_seed).permutation(n).astype(np.float64)
        positions = tour(
            lambda i: keys,
            tracks,
            first_costs=keys,
            after=after_track,
            no_artist_repeat=c.no_artist_repeat,
            two_opt=False,
        )
    return fixed + [got_ids[p] for p in positions] + loose
