"""``benchmarks/run_all.py --quick`` runs a few fast benchmarks end to end and reports them in the
shape BENCHMARKS.md is written from.  No timing is asserted: this machine's speed is not the point."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from accel_nb.headless import SOURCE_ROOT

FAST = ("tei", "ovms", "stream_fanout")


@pytest.mark.timeout(300)
def test_run_all_quick(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    env = {**os.environ, "PYTHONPATH": str(SOURCE_ROOT)}
    done = subprocess.run([sys.executable, "benchmarks/run_all.py", "--quick", "--only", ",".join(FAST), "--json",
                           "--out", str(out)], capture_output=True, text=True, cwd=SOURCE_ROOT, env=env, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(report["machine"]) >= {"cpu", "cores", "ram_gib", "python", "os", "load_average"}
    assert report["full"] is False and report["command"].startswith("python benchmarks/run_all.py --quick")
    assert [run["name"] for run in report["runs"]] == list(FAST)
    for run in report["runs"]:
        assert run["status"] == "ok" and run["result"]
        assert run["command"].startswith(f"python benchmarks/{run['name']}.py")
        table = run["table"]
        assert table["title"] and table["header"] and table["rows"] and table["checks"]
        assert all(len(row) == len(table["header"]) for row in table["rows"])
        assert all({"measure", "value", "bar", "ok", "fmt"} <= set(check) for check in table["checks"])
    fanout = report["runs"][2]["result"]
    assert fanout["runs"]["50"]["accel_nb"]["completed"] == fanout["runs"]["50"]["aiohttp"]["completed"] == 50
    page = out.read_text()
    assert page.startswith("# Benchmarks") and "## Summary: ratios and bars" in page
    assert all(f"## {name}" in page for name in FAST) and report["machine"]["cpu"] in page
    assert "a partial or quick run, not a measurement" in page


def test_unknown_benchmark_is_refused():
    done = subprocess.run([sys.executable, "benchmarks/run_all.py", "--only", "nope"], capture_output=True, text=True,
                          cwd=SOURCE_ROOT)
    assert done.returncode == 2 and "unknown benchmark 'nope'" in done.stderr


@pytest.mark.timeout(120)
def test_bytecodes_counts_accel_nb_frames_per_request():
    env = {**os.environ, "PYTHONPATH": str(SOURCE_ROOT)}
    done = subprocess.run([sys.executable, "benchmarks/bytecodes.py", "--json"], capture_output=True, text=True,
                          cwd=SOURCE_ROOT, env=env, timeout=110)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["total"] == pytest.approx(sum(result["ops"].values())) and result["total"] > 1000
    # every plain request is admitted once and leaves one ledger row, counted in accel_nb's own frames
    assert result["calls"]["engine/core.py:Engine._admit"] == pytest.approx(1.0)
    assert result["calls"]["engine/ledger.py:SqliteLedger.record"] == pytest.approx(1.0)
    assert all(".py:" in name and not name.startswith("/") for name in result["ops"])  # package-relative
