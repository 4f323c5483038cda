"""What the head shippers (``tools/ship_heads.py``, ``tools/ship_tag_heads.py``) share: their
command line's common arguments and the licence section of a model card's Markdown."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def argument_parser(doc: str | None, data_help: str, out: Path, runs: Path) -> argparse.ArgumentParser:
    """A parser with the ``data`` folder, ``--out`` (where the models go) and ``--runs`` (run folders)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help=data_help)
    ap.add_argument("--out", type=Path, default=out)
    ap.add_argument("--runs", type=Path, default=runs)
    return ap


def licence_lines(licence: dict[str, Any]) -> list[str]:
    """The card's ``## Licences`` section: weights, training data, base model, and each citation
    (``cite`` is one string or a list of them)."""
    cites = [licence["cite"]] if isinstance(licence["cite"], str) else licence["cite"]
    return [
        "## Licences",
        "",
        f"- Weights: {licence['weights']}.",
        f"- Training data: {licence['training_data']}.",
        f"- Base model: {licence['base_model']}.",
        *[f"- Cite: {c}" for c in cites],
        "",
    ]
