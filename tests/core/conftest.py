"""Fixtures of the training tests (tests/core/training_library.py): module-scoped, so each
test module trains on its own tiny library; torch is imported only by the tests that use them."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def toy_plugins():
    from mcbr_core.plugins import Plugins, reset_plugins
    from tests.core.training_library import TinyArchitectures
    from tests.toymodel import ToyPlugin

    plugins = Plugins((ToyPlugin(), TinyArchitectures()), entry_points=False)
    reset_plugins(plugins)
    yield plugins
    reset_plugins(None)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory):
    from mcbr_core.training.datasets.builtin import load_dataset
    from tests.core.training_library import write_library

    return load_dataset("library", write_library(tmp_path_factory.mktemp("lib")), min_count=1)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")
