"""Where shipped models live, and how a model name or path becomes a file.

Import-light (no numpy, no torch): the beets plugin uses it at start-up.
"""

from __future__ import annotations

from pathlib import Path

from mcbr_core.errors import ModelError


def shipped_models_dir() -> Path:
    """Folder of the models shipped with the package.

    Installed wheels carry them as ``mcbr_core/shipped_models``; a source checkout
    (editable install) has them in the repository's ``models/``.
    """
    here = Path(__file__).resolve().parent.parent  # mcbr_core/
    installed = here / "shipped_models"
    return installed if installed.is_dir() else here.parent / "models"


def shipped_models() -> dict[str, Path]:
    """Shipped model names to their ``.safetensors`` files."""
    folder = shipped_models_dir()
    return {p.stem: p for p in sorted(folder.glob("*.safetensors"))} if folder.is_dir() else {}


def resolve_model(model: str, *, base_dir: Path | None = None) -> Path:
    """Turn a model name or path into a model file.

    Parameters
    ----------
    model
        A shipped model name (``"msd-musicnn"``) or a path to a ``.safetensors`` file
        (relative paths are taken from ``base_dir``).
    base_dir
        Folder relative paths start from (the beets config folder in the plugin).

    Raises
    ------
    ModelError
        If nothing by that name or path exists.
    """
    shipped = shipped_models()
    if model in shipped:
        return shipped[model]
    path = Path(model).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if path.is_file():
        return path
    names = ", ".join(shipped) or "none"
    raise ModelError(f"model {model!r} is neither a shipped model ({names}) nor an existing file")
