"""Seeds: one hash turns a run's seed and a purpose into the seed of one generator.

Every random choice of a run (a split, a fold's initial weights, an epoch's crops and
order, a codebook sample) draws from a generator seeded by :func:`sub_seed` of the
run's seed and names for that choice, so each is reproducible on its own and none
shifts when another draws more or fewer numbers.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np

__all__ = ["seed_everything", "sub_seed", "worker_init"]


def sub_seed(seed: int, *parts: object) -> int:
    """A 32-bit seed for one purpose: the sha256 of ``"seed/part/part..."``, first four bytes, little-endian.

    Examples
    --------
    >>> sub_seed(0, "grouped_split") == sub_seed(0, "grouped_split") != sub_seed(1, "grouped_split")
    True
    """
    text = "/".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and CUDA)."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def worker_init(worker_id: int) -> None:
    """DataLoader workers: seed numpy and ``random`` from the worker's torch seed."""
    import torch

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
