#!/usr/bin/env python3
"""Sub-genres from the pretrained taggers' tags (issue 13): how often they are written, and how often rightly.

Usage (from the repository root, after ``python bench/tag_sources.py ../shared/data embed``)::

    python bench/subgenres.py ../shared/data [--thresholds 0.3,0.4,0.5,0.6,0.7]

With ``mcbr.genre.specific: T``, a tag of mcbr-fusion's parts (as-mn04's AudioSet
genres, msd-musicnn's MSD tags) that names a sub-genre in lastgenre's tree (``heavy
metal``, ``house``, ``swing``, ``opera``, ...) is written beside its family when its
probability reaches ``T`` and the genre head wrote that family. None of our labelled
sets names sub-genres, so this measures what can be measured: per threshold, the share
of clips that get a sub-genre and the *family precision*: how often the sub-genre's
family in the tree is among the clip's own genres (4Q's AllMusic genres, Emotify's and
GTZAN's). It is measured without the family gate, so the written sub-genres are at least
this precise. The clip probabilities are the plugin's (mean over patches of each
tag's sigmoid, from the cached per-patch vectors of ``bench/tag_sources.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tag_sources as bench


def tree_rules():
    """lastgenre's default rules, as the plugin builds them (beets' own files)."""
    import confuse

    from beetsplug.mcbr import settings

    config = confuse.Configuration("mcbr-bench", read=False)
    config.add(settings.DEFAULTS)
    return settings._genre_rules(config)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--thresholds", default="0.3,0.4,0.5,0.6,0.7")
    args = parser.parse_args()
    rules = tree_rules()
    st = bench.Study(args.data)
    idx, Y, _ = st.task("genres")
    import tempfile

    from mcbr_core.engine import Engine
    from mcbr_core.models.checkpoint import read_card
    from mcbr_core.models.shipped import resolve_model
    from mcbr_core.settings import AnalysisSettings, IndexSettings, KindSettings, TagSettings

    # the plugin's own choice of sub-genre tags (Engine._subgenres), each scored as the best of its taggers' tags
    work = Path(tempfile.mkdtemp())
    engine = Engine(analysis=AnalysisSettings(), tags=TagSettings(genre=KindSettings(specific=0.0), genres=rules),
                    index=IndexSettings(backend="exact"), store_path=work / "s.db", index_dir=work)  # fmt: skip
    source = {"as-mn04": st.vectors("mn04-patch"), "msd-musicnn": st.vectors("msd-musicnn")}  # fusion's parts
    subs = {name: np.max([source[head].tag(label)[idx] for head, label in pairs], axis=0)
            for name, pairs in engine._subgenres.values()}  # fmt: skip
    family_col = {g: k for k, g in enumerate(st.genres)}
    # the genre head's labels named otherwise in the tree (latin: "caribbean and latin american")
    tree = read_card(resolve_model("mcbr-genres")).get("genre_tree", {})
    family_col.update(
        {v["tree"]: family_col[label] for label, v in tree.items() if v.get("tree") and label in family_col}
    )
    print(f"{len(idx)} clips with genres; {len(subs)} sub-genres: {', '.join(sorted(subs))}")
    print("| threshold | clips with a sub-genre | sub-genres written | family precision | most written |")
    print("|---|---|---|---|---|")
    for t in (float(x) for x in args.thresholds.split(",")):
        written = right = 0
        clips = np.zeros(len(idx), dtype=bool)
        counts: dict[str, int] = {}
        for name, p in subs.items():
            hit = p >= t
            family = rules.family(name)
            col = family_col.get(family)
            n = int(hit.sum())
            written += n
            right += int(Y[hit, col].sum()) if col is not None else 0
            clips |= hit
            if n:
                counts[name] = n
        top = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:5])
        prec = f"{right / written:.3f}" if written else "–"
        print(f"| {t:.2f} | {clips.mean():.3f} | {written} | {prec} | {top} |")


if __name__ == "__main__":
    main()
