"""The lab extension's Jest tests (models, message parsing), so `make test` runs every tier."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LABEXT = Path(__file__).resolve().parents[1] / "labextension"


def test_jest() -> None:
    jlpm = shutil.which("jlpm", path=str(Path(sys.executable).parent)) or shutil.which("jlpm")
    if jlpm is None or not (LABEXT / "node_modules").is_dir():
        pytest.fail("labextension/node_modules is missing: `pip install -e .` (or `jlpm install` in labextension/)")
    result = subprocess.run([jlpm, "test", "--ci"], cwd=LABEXT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
