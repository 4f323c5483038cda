"""A catalogue keeps only the scores tagging can use (mcbr-fusion's 577 tags would be 20 kB a row)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mcbr_core.analysis import Analysis
from mcbr_core.catalogue import _analyse_into
from mcbr_core.store.catalogue import Catalogue
from mcbr_core.tagging import score_fields, scored_labels, taggable_scores

KINDS = {"tags": {"rock": "genre", "sad": "mood", "Guitar": "other", "00s": "other"}}
SCORES = {"tags": {"rock": 0.612345678, "sad": 0.2, "Guitar": 0.9, "00s": 0.1, "unmapped": 0.5},
          "genre": {"jazz": 0.3}, "instruments": {"piano": 0.7}}  # fmt: skip


def test_taggable_scores_keep_genre_and_mood_tags_only() -> None:
    kept = taggable_scores(SCORES, KINDS)
    assert kept == {"tags": {"rock": 0.6123, "sad": 0.2}, "genre": {"jazz": 0.3}}
    # nothing tagging reads is lost: the score attributes are the same
    assert score_fields(scored_labels(kept, KINDS)) == score_fields(scored_labels(SCORES, KINDS))


class _Pool:
    """Stands in for a worker pool: yields one analysis per job."""

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def analyze(self, jobs):
        for key, path in jobs:
            yield key, Analysis(str(path), "m-1", "1", 30.0, 12.0, SCORES, np.ones(4, dtype=np.float32))


def test_a_catalogue_row_keeps_the_taggable_scores(tmp_path: Path) -> None:
    path = tmp_path / "a.mp3"
    with Catalogue(tmp_path / "cat.db", create=True) as cat:
        written, failed = _analyse_into(cat, _Pool(), [(bytes(path), path, 1.0)], commit_every=8, progress=None,
                                        kinds=KINDS)  # fmt: skip
        assert (written, failed) == (1, [])
        (entry,) = cat.lookup([bytes(path)], "m-1").values()
    assert entry.scores == {"tags": {"rock": 0.6123, "sad": 0.2}, "genre": {"jazz": 0.3}}
