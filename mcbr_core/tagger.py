"""Analyse, tag, record: the one entry point a host (the beets plugin) calls per batch of tracks.

The host maps its own objects to plain ``Track`` requests (id, path, what the
user already has, what was recorded at the last analysis) and gets back one
``Outcome`` per track: what to write (tags, scores, status) after the embedding
was recorded in the store. Freshness (file mtime, model, features, clip heads)
and ownership (``tagging.user_values``) are decided here, in one place each.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mcbr_core import tagging
from mcbr_core.errors import McbrError
from mcbr_core.store.mtime import same_mtime

if TYPE_CHECKING:
    from mcbr_core.analysis import Analysis
    from mcbr_core.engine import Engine, Tags

log = logging.getLogger(__name__)

#: What a track needs: nothing, tags from its stored embedding, a full analysis, or its file back.
CURRENT, RETAG, ANALYSE, MISSING = "current", "retag", "analyse", "missing"


@dataclass(frozen=True)
class Track:
    """What the host knows of one track.

    Attributes
    ----------
    id
        The host's id (a beets item id): the store's key.
    path
        The audio file (a filesystem path).
    values
        Kind (``genre``, ``mood``) -> the values the track has now, best first.
    own
        Kind -> the values the plugin wrote last time (``None``: it never wrote the kind).
    model, heads, status, mtime
        What the last analysis recorded (``mcbr_model``, ``mcbr_heads``,
        ``mcbr_status``, ``mcbr_mtime``); ``None`` when never analysed.
    scores
        Its sub-genre score attributes (``Engine.subgenre_fields``, e.g.
        ``mcbr_genre_heavy_metal``): tagging again from the stored embedding keeps
        these scores, which came from the audio.
    """

    id: int
    path: str | bytes
    values: Mapping[str, Sequence[str]] = field(default_factory=dict)
    own: Mapping[str, Sequence[str] | None] = field(default_factory=dict)
    model: str | None = None
    heads: str | None = None
    status: str | None = None
    mtime: float | None = None
    scores: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What to write for one track.

    Attributes
    ----------
    id
        The track's id.
    action
        ``analysed``, ``retagged`` (from the stored embedding), ``current``
        (nothing to do), or ``failed``.
    status
        ``ok``, ``partial`` (analysed on the part that decoded) or ``failed``;
        ``None`` for ``current``.
    error
        One line: why it failed, or how much of a ``partial`` file decoded.
    values, own
        Kind -> the new values, and the record of which of them are the plugin's.
    scores
        ``mcbr_<kind>_<label>`` -> score, every score attribute the track has now.
    attributes
        ``mcbr_model``, ``mcbr_heads``, ``mcbr_mtime``, ``mcbr_analyzed`` as far as known.
    tags
        The model's tags (before merging with the user's values), if analysed or retagged.
    """

    id: int
    action: str
    status: str | None = None
    error: str = ""
    values: dict[str, list[str]] = field(default_factory=dict)
    own: dict[str, list[str]] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    tags: Tags | None = None

    @property
    def missing(self) -> bool:
        """Whether it failed because the file is not there."""
        return self.action == "failed" and self.error == FILE_NOT_FOUND


FILE_NOT_FOUND = "file not found"


def file_mtime(path: str | bytes) -> float | None:
    """The file's mtime, ``None`` if it is missing."""
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


class Tagger:
    """Analyse, tag and record tracks with an engine's model, heads and store.

    Parameters
    ----------
    engine
        The engine (model, clip heads, pool, store).
    force
        Replace the user's own values (``mcbr.force``).
    keep_existing
        With ``force``: keep the user's values and add the predicted ones after them.
    """

    def __init__(self, engine: Engine, *, force: bool = False, keep_existing: bool = False) -> None:
        self.engine = engine
        self.force = force
        self.keep_existing = keep_existing

    def freshness(self, track: Track) -> str:
        """What ``track`` needs under the configured model and clip heads.

        Returns
        -------
        str
            ``missing``: the file is not there; ``current``: analysed by this
            model and these heads and the file has not changed (a failed track
            stays failed until its file changes); ``retag``: only the clip heads
            changed and they tag every kind, so the stored embedding is enough;
            ``analyse``: the audio must go through the model again.
        """
        engine = self.engine
        mtime = file_mtime(track.path)
        if mtime is None:
            return MISSING
        if track.model != engine.model_id:
            return ANALYSE
        if track.status == "failed":
            return CURRENT if same_mtime(track.mtime, mtime) else ANALYSE
        row = engine.store.row(track.id, engine.model_id)
        if row is None or row.feature_version != engine.feature_version or not same_mtime(row.mtime, mtime):
            return ANALYSE
        if (track.heads or "") == engine.heads_id:
            return CURRENT
        return RETAG if engine.can_tag_from_embedding else ANALYSE

    def plan(self, tracks: Iterable[Track], *, reanalyse: bool = False) -> dict[int, str]:
        """Track id -> what it needs (``freshness``; with ``reanalyse`` every present file is analysed)."""
        plan = {}
        for track in tracks:
            state = self.freshness(track) if not reanalyse else ANALYSE
            if reanalyse and file_mtime(track.path) is None:
                state = MISSING
            plan[track.id] = state
        return plan

    def run(
        self,
        tracks: Sequence[Track],
        *,
        reanalyse: bool = False,
        persist: bool = True,
        plan: Mapping[int, str] | None = None,
    ) -> Iterator[Outcome]:
        """Bring tracks up to date; yield one ``Outcome`` per track, analysed ones as they finish.

        Parameters
        ----------
        tracks
            The tracks.
        reanalyse
            Analyse every track whose file is there, current or not (``beet mcbr -f``, imports).
        persist
            Record embeddings in the store; ``False`` previews (``--pretend``).
        plan
            What each track needs, if the caller decided it already (``plan``).

        Raises
        ------
        McbrError
            If the workers cannot start at all, or the store refuses this host.
        """
        plan = dict(plan) if plan is not None else self.plan(tracks, reanalyse=reanalyse)
        analyse: list[Track] = []
        for track in tracks:
            state = plan[track.id]
            if state == MISSING:
                log.error("%s: %s", os.fsdecode(track.path), FILE_NOT_FOUND)
                yield self._failed(track, FILE_NOT_FOUND, mtime=None)
            elif state == CURRENT:
                yield Outcome(track.id, "current")
            elif state == RETAG:
                outcome = self._retag(track)
                if outcome is None:
                    analyse.append(track)
                else:
                    yield outcome
            else:
                analyse.append(track)
        yield from self._analyse(analyse, persist=persist)

    def consensus(self, tracks: Sequence[Track], scores: Sequence[Mapping[str, float]]) -> list[Outcome]:
        """Give tracks one set of genres and moods: those of their mean scores (an album's).

        Each track keeps its user's values under the ownership rule, and its own
        score attributes; only the genres and moods written change.

        Parameters
        ----------
        tracks
            The tracks (of one album), as they are now.
        scores
            Per track: its ``mcbr_<kind>_<label>`` score attributes.
        """
        tags = self.engine.tags_of_scores([dict(s) for s in scores])
        outcomes = []
        for track in tracks:
            outcome = self._tagged(
                track, tags, "consensus", status=track.status or "ok", error="", attributes={}
            )
            outcomes.append(replace(outcome, scores={}, tags=None))  # keep the track's own scores
        return outcomes

    # -- the three ways a track gets its tags -----------------------------------------

    def _retag(self, track: Track) -> Outcome | None:
        """Tags from the stored embedding (new clip heads, same audio); ``None`` if that cannot be done."""
        engine = self.engine
        embedding = engine.store.get(track.id, engine.model_id)
        if embedding is None:
            log.debug(
                "%s: no stored embedding by %s; analysing it again", os.fsdecode(track.path), engine.model_id
            )
            return None
        try:
            tags = engine.tags_of_embedding(embedding, track.scores)
        except McbrError as exc:
            log.debug("%s: %s; analysing it again", os.fsdecode(track.path), exc)
            return None
        return self._tagged(track, tags, "retagged", status=track.status or "ok", error="", attributes={
            "mcbr_heads": engine.heads_id,
        })  # fmt: skip

    def _analyse(self, tracks: list[Track], *, persist: bool) -> Iterator[Outcome]:
        from mcbr_core.workers import AnalysisFailed

        if not tracks:
            return
        by_id = {t.id: t for t in tracks}
        for track_id, result in self.engine.pool.analyze((t.id, os.fsdecode(t.path)) for t in tracks):
            track = by_id[track_id]
            if isinstance(result, AnalysisFailed):
                log.error("%s: %s", os.fsdecode(track.path), result)
                yield self._failed(track, str(result) or "analysis failed", mtime=file_mtime(track.path))
                continue
            try:
                yield self._record(track, result, persist=persist)
            except (McbrError, OSError, ValueError) as exc:
                reason = str(exc) or type(exc).__name__
                log.error("%s: %s", os.fsdecode(track.path), reason)
                yield self._failed(track, reason, mtime=file_mtime(track.path))

    def _record(self, track: Track, analysis: Analysis, *, persist: bool) -> Outcome:
        """Store an analysis' embedding; the outcome carries its tags."""
        engine = self.engine
        tags = engine.tags(analysis)
        mtime = os.stat(track.path).st_mtime
        if persist:
            engine.record(track.id, analysis, path=os.fsencode(track.path), mtime=mtime)
        status, error = "ok", ""
        if analysis.coverage < engine.analysis_settings.min_coverage:  # analysed in part (``partial: yes``)
            percent = math.floor(analysis.coverage * 100 + 1e-9)  # as the failure says it: 89.6 % is 89 %
            status, error = "partial", f"only {percent}% of the audio decodes; tagged on that part"
            log.warning("%s: %s", os.fsdecode(track.path), error)
        log.debug(
            "%s: genres %s, moods %s (%.2fs decode, %.2fs features, %.2fs model)",
            os.fsdecode(track.path),
            tags.genres,
            tags.moods,
            *(analysis.timings.get(k, 0.0) for k in ("decode", "features", "model")),
        )
        return self._tagged(track, tags, "analysed", status=status, error=error, attributes={
            "mcbr_model": analysis.model_id,
            "mcbr_heads": engine.heads_id,
            "mcbr_mtime": mtime,
            "mcbr_analyzed": time.time(),
        })  # fmt: skip

    def _tagged(
        self, track: Track, tags: Tags, action: str, *, status: str, error: str, attributes: dict[str, Any]
    ) -> Outcome:
        """Merge the model's tags with the track's values under the ownership rule."""
        values, own = {}, {}
        for kind, predicted in (("genre", tags.genres), ("mood", tags.moods)):
            current = [v for v in track.values.get(kind, ()) if v]
            ours = track.own.get(kind)
            new = tagging.merge(
                current, predicted, ours=ours, force=self.force, keep_existing=self.keep_existing
            )
            users = {v.lower() for v in tagging.user_values(current, ours)}
            values[kind] = new
            own[kind] = [v for v in new if v.lower() not in users]
        return Outcome(track.id, action, status, error, values, own, dict(tags.scores), attributes, tags)

    def _failed(self, track: Track, reason: str, *, mtime: float | None) -> Outcome:
        return Outcome(track.id, "failed", "failed", reason[:500], attributes={
            "mcbr_model": self.engine.model_id,
            "mcbr_mtime": mtime if mtime is not None else 0.0,
        })  # fmt: skip
