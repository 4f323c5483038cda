#!/usr/bin/env python3
"""ANN index on a million vectors: build time, size, query latency and recall.

Usage::

    python bench/index.py [--n 1000000] [--dim 200] [--trees 16,32] [--search-k 2000,5000,10000]

The vectors are synthetic but shaped like embeddings: a 32-d Gaussian mixture
(1,000 components) mapped linearly to ``dim`` dimensions, plus isotropic noise
(learned embeddings have a low intrinsic dimension; pure white noise, which no
ANN index handles well, is reported with ``--white``). 200 held-out queries are
compared with exact cosine search. Prints one row per (n_trees, search_k).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def vectors(n: int, dim: int, *, white: bool, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if white:
        return rng.standard_normal((n, dim), dtype=np.float32)
    centres = rng.standard_normal((1000, 32)).astype(np.float32) * 3
    latent = centres[rng.integers(0, 1000, n)] + rng.standard_normal((n, 32), dtype=np.float32)
    mix = rng.standard_normal((32, dim)).astype(np.float32) / np.sqrt(32)
    out = latent @ mix  # (n, dim)
    out += 0.3 * rng.standard_normal((n, dim), dtype=np.float32)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=200)
    parser.add_argument("--trees", default="16,32")
    parser.add_argument("--search-k", default="2000,5000,10000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--white", action="store_true", help="white-noise vectors instead of clustered ones")
    args = parser.parse_args()

    from mcbr_core.store.index import AnnoyIndexBackend

    t = time.perf_counter()
    data = vectors(args.n + args.queries, args.dim, white=args.white)
    base, queries = data[: args.n], data[args.n :]
    print(f"data          : {args.n} x {args.dim} {'white-noise' if args.white else 'clustered'} vectors "
          f"({time.perf_counter() - t:.1f} s to generate)", flush=True)  # fmt: skip
    t = time.perf_counter()
    unit = base / np.linalg.norm(base, axis=1, keepdims=True)
    truth = []
    for q in queries:
        sims = unit @ (q / np.linalg.norm(q))
        truth.append(set(np.argpartition(-sims, 10)[:10].tolist()))
    print(
        f"exact search  : {(time.perf_counter() - t) / args.queries * 1000:.0f} ms per query (numpy, brute force)"
    )
    ids = np.arange(args.n, dtype=np.int64)
    print(
        f"{'n_trees':>7} {'build s':>8} {'size MB':>8} {'search_k':>8} {'p50 ms':>7} {'p95 ms':>7} {'recall@10':>9}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for n_trees in (int(x) for x in args.trees.split(",")):
            path = Path(tmp) / f"idx{n_trees}"
            index = AnnoyIndexBackend(path=path, dim=args.dim, metric="angular", model_id="bench",
                                      options={"n_trees": n_trees})  # fmt: skip
            t = time.perf_counter()
            index.build(ids, base, generation=1)
            build_s = time.perf_counter() - t
            size = os.path.getsize(str(path) + ".ann") / 2**20
            for search_k in (int(x) for x in args.search_k.split(",")):
                index = AnnoyIndexBackend(path=path, dim=args.dim, metric="angular", model_id="bench",
                                          options={"n_trees": n_trees, "search_k": search_k})  # fmt: skip
                index.load()
                index.query(queries[0], 10)
                lat, recall = [], []
                for q, want in zip(queries, truth, strict=True):
                    t = time.perf_counter()
                    got, _ = index.query(q, 10)
                    lat.append(time.perf_counter() - t)
                    recall.append(len(want & set(got.tolist())) / 10)
                lat.sort()
                print(f"{n_trees:>7} {build_s:>8.0f} {size:>8.0f} {search_k:>8} {statistics.median(lat) * 1000:>7.2f} "
                      f"{lat[int(0.95 * len(lat))] * 1000:>7.2f} {statistics.fmean(recall):>9.3f}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
