"""kill -9 in the middle of `beet mcbr`, and two runs at once, leave store and index consistent."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scenarios import beet, beet_process, consistency, kill_midway, make_library, store_rows

pytestmark = pytest.mark.slow


def test_kill_9_midway_then_rerun_is_complete_and_consistent(tmp_path: Path) -> None:
    folder = make_library(tmp_path / "lib", 100)
    stored = kill_midway(folder, "mcbr", when_rows=20)
    assert 20 <= stored < 100  # killed midway: some rows committed, not all
    result = beet(folder, "mcbr")
    assert result.returncode == 0, result.stderr
    assert store_rows(folder) == 100
    assert consistency(folder) == {k: 0 for k in consistency(folder)}


def test_two_runs_at_once_take_turns_and_corrupt_nothing(tmp_path: Path) -> None:
    folder = make_library(tmp_path / "lib", 40)
    first = beet_process(folder, "mcbr")
    second = beet_process(folder, "mcbr", "-f")
    out1, err1 = first.communicate(timeout=600)
    out2, err2 = second.communicate(timeout=600)
    assert first.returncode == 0 and second.returncode == 0, err1 + err2
    assert "waiting" in err1 + err2  # one of them said that it waits
    assert store_rows(folder) == 40
    assert consistency(folder) == {k: 0 for k in consistency(folder)}
