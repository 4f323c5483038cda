"""`beet` start-up stays light: enabling the plugin imports no torch, annoy, librosa, audio I/O or Flask."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = (
    "torch", "annoy", "librosa", "soundfile", "soxr", "av", "safetensors", "pluggy", "numpy",
    "flask", "werkzeug",  # `beet mcbr-serve` imports them when it runs
)  # fmt: skip

SCRIPT = """
import json, sys
from beets.ui import main
main(["ls"])
print(json.dumps(sorted(sys.modules)))
"""


def modules_after_beet_ls(folder: Path, plugins: str) -> set[str]:
    folder.mkdir()
    (folder / "config.yaml").write_text(
        f"library: {folder / 'lib.db'}\ndirectory: {folder / 'music'}\nplugins: {plugins}\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={"BEETSDIR": str(folder), "HOME": str(folder), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_beet_ls_with_the_plugin_imports_nothing_heavy(tmp_path: Path) -> None:
    without = modules_after_beet_ls(tmp_path / "without", "[]")
    with_plugin = modules_after_beet_ls(tmp_path / "with", "mcbr")
    added = with_plugin - without
    assert "beetsplug.mcbr" in added
    heavy = sorted(m for m in added if m.split(".")[0] in HEAVY)
    assert not heavy, f"enabling mcbr imports {heavy}"
