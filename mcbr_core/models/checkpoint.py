"""Model files: safetensors weights with a JSON card, loaded without pickles.

A model file ``NAME.safetensors`` holds the tensors of a ``state_dict`` and, in
its safetensors metadata under the key ``"card"``, a JSON *model card*: the
architecture config, the feature config and version, the labels of every head,
the embedding facts, the training facts and the licence. The weights and the
facts needed to use them therefore never travel apart, and loading never runs
pickled code (safetensors is a flat tensor format).

This module imports neither torch nor safetensors at import time; the loaders
import them when called.

Card keys (``format = "mcbr-model/1"``):

``id``            stable model id stored with every embedding, e.g. ``"msd-musicnn-1"``
``name``          short name used in config, e.g. ``"msd-musicnn"``
``backend``       registered model backend that runs it, e.g. ``"musicnn"``
``architecture``  ``{"family": str, "config": dict}``
``features``      ``{"extractor": str, "version": str, "config": dict}``
``heads``         ``{head_name: [label, ...]}`` in output order
``tag_kinds``     ``{head_name: {label: "genre" | "mood" | "other"}}`` (optional)
``embedding``     ``{"dim": int, "layer": str, "metric": str}``
``training``, ``metrics``, ``licence``, ``source``, ``versions``: free-form facts
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcbr_core.errors import ModelError

if TYPE_CHECKING:
    import numpy as np
    import torch

CARD_FORMAT = "mcbr-model/1"


def config_from_dict(cls: type, cfg: Mapping[str, Any], *, what: str | None = None) -> Any:
    """Rebuild a frozen config dataclass from ``asdict`` output (a model card's), JSON lists becoming tuples.

    Raises
    ------
    ValueError
        On an unknown key (``unknown WHAT keys: ...``, ``WHAT`` defaulting to the class name).
    """
    from dataclasses import fields

    known = {f.name for f in fields(cls)}
    unknown = set(cfg) - known
    if unknown:
        raise ValueError(f"unknown {what or cls.__name__} keys: {', '.join(sorted(unknown))}")

    def tup(v: Any) -> Any:
        return tuple(tup(x) for x in v) if isinstance(v, (list, tuple)) else v

    return cls(**{k: tup(v) for k, v in cfg.items()})


REQUIRED_KEYS = ("id", "name", "backend", "architecture", "features", "heads", "embedding")


def validate_card(card: Mapping[str, Any], *, source: str = "model card") -> dict[str, Any]:
    """Check that a model card has the keys the backends rely on.

    Parameters
    ----------
    card
        The decoded JSON card.
    source
        Where the card came from, for the error message.

    Returns
    -------
    dict
        A plain-dict copy of the card.

    Raises
    ------
    ModelError
        If the format is unknown or a required key is missing.
    """
    if card.get("format") != CARD_FORMAT:
        raise ModelError(f"{source}: unknown model format {card.get('format')!r}, expected {CARD_FORMAT!r}")
    missing = [k for k in REQUIRED_KEYS if k not in card]
    if missing:
        raise ModelError(f"{source}: model card lacks {', '.join(missing)}")
    if not isinstance(card["heads"], Mapping) or not card["heads"]:
        raise ModelError(f"{source}: model card has no output heads")
    return dict(card)


def save_model(
    path: str | Path, tensors: Mapping[str, torch.Tensor | np.ndarray], card: Mapping[str, Any]
) -> Path:
    """Write weights and card to ``path`` (``.safetensors``) and a sidecar ``.json``.

    Parameters
    ----------
    path
        Target file; the suffix is forced to ``.safetensors``.
    tensors
        Name to tensor (torch or numpy); all are stored contiguous in CPU memory.
    card
        Model card, see the module docstring. ``format`` is filled in.

    Returns
    -------
    Path
        The written ``.safetensors`` path. The sidecar ``.json`` beside it is a
        human-readable copy of the card with the weights' sha256.
    """
    import numpy as np
    from safetensors.numpy import save_file

    path = Path(path).with_suffix(".safetensors")
    card = validate_card({"format": CARD_FORMAT, **card}, source=str(path))
    arrays = {}
    for name, value in tensors.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        arrays[name] = np.ascontiguousarray(value)
    tmp = path.with_suffix(".safetensors.tmp")
    save_file(arrays, str(tmp), metadata={"card": json.dumps(card, sort_keys=True)})
    tmp.replace(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_suffix(".json").write_text(
        json.dumps({**card, "sha256": digest}, indent=2, sort_keys=True) + "\n"
    )
    return path


def read_card(path: str | Path) -> dict[str, Any]:
    """Read only the card of a model file (no tensors are loaded).

    Parameters
    ----------
    path
        A ``.safetensors`` model file.

    Returns
    -------
    dict
        The validated card.

    Raises
    ------
    ModelError
        If the file is missing, is not a safetensors file, or has no valid card.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    # The safetensors header is an 8-byte little-endian length and a JSON object;
    # reading it by hand keeps this function free of heavy imports.
    try:
        with path.open("rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            if not 0 < size < 100_000_000:
                raise ValueError("bad header length")
            header = json.loads(fh.read(size))
        card = json.loads(header["__metadata__"]["card"])
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise ModelError(f"{path}: not an mcbr model file ({exc})") from exc
    return validate_card(card, source=str(path))


def load_model(path: str | Path, *, device: str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load a model's tensors and card, without executing any pickled code.

    Parameters
    ----------
    path
        A ``.safetensors`` model file.
    device
        Torch device for the tensors.

    Returns
    -------
    tensors : dict[str, torch.Tensor]
        The state dict.
    card : dict
        The validated card.
    """
    from safetensors.torch import load_file

    card = read_card(path)
    try:
        tensors = load_file(str(path), device=device)
    except Exception as exc:  # safetensors raises its own error types
        raise ModelError(f"{path}: cannot read weights ({exc})") from exc
    return tensors, card
