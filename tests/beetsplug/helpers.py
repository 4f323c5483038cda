"""What the plugin's test helpers share: beets with the plugin on the toy model of
tests/toymodel.py, and a library whose embeddings are planted straight into the store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from beets.test.helper import ImportHelper, PluginMixin

from mcbr_core.plugins import Plugins, reset_plugins
from mcbr_core.store.embeddings import EmbeddingStore
from tests.toymodel import ToyPlugin, make_toy_model

#: title -> (centroid kHz, artist, genre, mood)
LIBRARY: dict[str, tuple[float, str, str, str]] = {
    **{f"low{i}": (0.30 + 0.02 * i, "ABC"[i // 2], "Jazz", "Sad") for i in range(6)},
    **{f"high{i}": (2.50 + 0.04 * i, "DEF"[i // 2], "Rock", "Happy") for i in range(6)},
    **{f"bridge{i}": (0.6 + 0.2 * i, f"Bridge {i}", "Fusion", "Calm") for i in range(9)},
}


class ToyHelper(PluginMixin, ImportHelper):
    """beets with the plugin on the toy model: exact index, analysis in this process."""

    plugin: ClassVar[str] = "mcbr"
    db_on_disk: ClassVar[bool] = True

    def setup_beets(self) -> None:
        super().setup_beets()
        self.config["mcbr"]["model"] = str(make_toy_model(self.temp_path / "toy.safetensors"))
        self.config["mcbr"]["index"]["backend"] = "exact"
        self.config["mcbr"]["workers"] = 0  # in-process: the toy model is registered in this process only
        reset_plugins(Plugins((ToyPlugin(),), entry_points=False))

    def teardown_beets(self) -> None:
        reset_plugins(None)
        super().teardown_beets()

    @pytest.fixture(autouse=True)
    def _capture(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys

    def run_with_output(self, *args: str) -> str:
        """Run a beets command and return what it printed (the wheel lacks beets' `io` fixture)."""
        self._capsys.readouterr()
        self.run_command(*args)
        return self._capsys.readouterr().out

    def plant_library(
        self, path: Callable[[str], Path], length: Callable[[int], float]
    ) -> dict[int, np.ndarray]:
        """Add :data:`LIBRARY`'s items (in one transaction) at ``path(title)`` with ``length(n)``
        seconds; their embeddings, by item id (see :meth:`store_vectors`)."""
        vectors = {}
        with self.lib.transaction():  # one commit, not one per item
            for n, (title, (khz, artist, genre, mood)) in enumerate(LIBRARY.items()):
                item = self.add_item(
                    title=title,
                    artist=artist,
                    album=f"{artist} album {n % 2}",
                    genres=[genre],
                    mood=mood,
                    length=length(n),
                    path=str(path(title)),
                )
                vectors[item.id] = np.array([khz, 0.1], dtype=np.float32)
        return vectors

    def store_vectors(self, vectors: dict[int, np.ndarray]) -> None:
        """Write embeddings into the library's store, as the toy model's analysis would."""
        with EmbeddingStore(self.temp_path / "library.mcbr.db") as store:
            for item_id, vector in vectors.items():
                store.put(item_id, vector, model_id="toy-1", feature_version="1")
