"""The core never imports beets: every ``mcbr_core`` module imports without beets, confuse or mediafile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOST = ("beets", "beetsplug", "confuse", "mediafile")

SCRIPT = """
import importlib, json, pkgutil, sys
import mcbr_core
names = sorted(m.name for m in pkgutil.walk_packages(mcbr_core.__path__, "mcbr_core."))
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except ImportError as exc:  # an optional extra (ray) that is not installed
        failed[name] = str(exc)
print(json.dumps({"modules": names, "failed": failed, "loaded": sorted(sys.modules)}))
"""


def test_no_core_module_imports_the_host() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, check=True, timeout=300
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(report["modules"]) > 40  # the walk found the package
    assert all("ray" in reason for reason in report["failed"].values()), report["failed"]
    leaked = sorted(m for m in report["loaded"] if m.split(".")[0] in HOST)
    assert leaked == []
