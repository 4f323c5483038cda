"""Model files load without executing pickled code; mismatches give a clear message."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from mcbr_core.errors import ModelError


class Evil:
    """Unpickling this creates a marker file: the proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture
def evil(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"state_dict": Evil(marker)})
    model = tmp_path / "evil.safetensors"
    model.write_bytes(payload)
    return model, marker


def test_malicious_pickle_named_safetensors_runs_nothing(evil: tuple[Path, Path]) -> None:
    from mcbr_core.analysis import Analyzer
    from mcbr_core.models.checkpoint import load_model, read_card
    from mcbr_core.settings import AnalysisSettings

    model, marker = evil
    with pytest.raises(ModelError, match="not an mcbr model"):
        read_card(model)
    with pytest.raises(ModelError):
        load_model(model)
    with pytest.raises(ModelError):
        Analyzer(AnalysisSettings(model=str(model), device="cpu"))
    assert not marker.exists()


def test_torch_checkpoints_are_read_with_weights_only(tmp_path: Path) -> None:
    import torch

    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"w": Evil(marker)}, protocol=2))
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    assert not marker.exists()
    # and the pickle really is malicious: loading it unsafely would have run it
    pickle.loads(path.read_bytes())["w"].close()
    assert marker.exists()


def test_unknown_model_name_lists_the_shipped_ones() -> None:
    from mcbr_core.models.shipped import resolve_model

    with pytest.raises(ModelError, match="msd-musicnn"):
        resolve_model("no-such-model")
