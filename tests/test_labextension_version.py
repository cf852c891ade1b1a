"""The lab extension has one version (labextension/package.json) and is installed where JupyterLab looks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import accel_nb

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = json.loads((ROOT / "labextension" / "package.json").read_text(encoding="utf-8"))
BUILT = ROOT / "accel_nb" / "labextension" / "package.json"


def test_python_reports_the_package_json_version() -> None:
    assert accel_nb.__version__ == PACKAGE["version"]


def test_the_build_carries_the_same_version() -> None:
    if not BUILT.exists():
        pytest.fail("the lab extension is not built: `pip install -e .` builds it (needs Node.js 20+)")
    built = json.loads(BUILT.read_text(encoding="utf-8"))
    assert (built["name"], built["version"]) == (PACKAGE["name"], PACKAGE["version"])


def test_jupyterlab_lists_it_enabled() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"], capture_output=True, text=True, timeout=60
    )
    listing = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)  # drop colours
    expected = f"{PACKAGE['name']} v{PACKAGE['version']} enabled OK"  # + "(python, accel_nb)" unless linked
    assert expected in listing, f"`pip install -e .` installs the extension; jupyter sees:\n{listing}"
