"""``%load_ext accel_nb`` imports nothing heavy: the engine, numpy and widgets load on first use.

Speed itself is measured by ``benchmarks/import_time.py``, side by side with the SDKs; here
the time is only printed, as a smoke signal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import accel_nb

REPO = Path(accel_nb.__file__).resolve().parents[1]
HEAVY = ("aiohttp", "numpy", "tenacity", "plotly", "ipywidgets", "accel_nb.client", "accel_nb.engine.core")

PROBE = f"""
import json, sys, time
ip = get_ipython()
start = time.perf_counter()
ip.run_line_magic("load_ext", "accel_nb")
elapsed = time.perf_counter() - start
print("@@" + json.dumps({{
    "seconds": elapsed,
    "heavy": [m for m in {HEAVY!r} if m in sys.modules],
    "magics": "accel" in ip.magics_manager.magics["cell"] and "accel" in ip.magics_manager.magics["line"],
}}))
"""


def ipython(tmp_path: Path, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "IPYTHONDIR": str(tmp_path / "ipython")}
    proc = subprocess.run(
        [sys.executable, "-m", "IPython", "--quick", "--no-banner", "--colors=nocolor", *args],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("@@"):
            return json.loads(line[2:])
    raise AssertionError(f"no result from IPython:\n{proc.stdout}\n{proc.stderr}")


def test_load_ext_imports_nothing_heavy(tmp_path):
    result = ipython(tmp_path, "-c", PROBE)
    assert result["magics"]
    assert result["heavy"] == []
    print(f"\n%load_ext accel_nb took {result['seconds'] * 1000:.1f} ms (not asserted: see benchmarks/import_time.py)")


def test_loadable_from_the_extensions_config(tmp_path):
    probe = (
        "import json, sys; ip = get_ipython(); "
        "print('@@' + json.dumps({'magics': 'accel' in ip.magics_manager.magics['cell'], "
        f"'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))"
    )
    result = ipython(tmp_path, "--InteractiveShellApp.extensions=['accel_nb']", "-c", probe)
    assert result == {"magics": True, "heavy": []}


def test_the_magics_module_alone_is_light(tmp_path):
    code = f"import sys, accel_nb.notebook.magics; print([m for m in {HEAVY!r} if m in sys.modules])"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, check=True
    )
    assert out.stdout.strip() == "[]"
