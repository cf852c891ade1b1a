"""Import time: ``import accel_nb`` and ``%load_ext accel_nb`` next to the SDKs, in one run.

Each case runs in a fresh subprocess (best of N, so disk cache and CPU frequency favour
nobody), and the time is measured inside it around the import alone — what a person waits
for in the cell — so interpreter and IPython start-up are not counted.

    python benchmarks/import_time.py            # best of 5
    python benchmarks/import_time.py -n 10 --json
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import Table, cpu_note, finish

REPO = Path(__file__).resolve().parents[1]
TIMED = "import time as _t; _s = _t.perf_counter(); {stmt}; print('@@', _t.perf_counter() - _s)"

# (label, how to run, the statement timed)
CASES = [
    ("import accel_nb", "python", "import accel_nb"),
    ("%load_ext accel_nb", "ipython", "get_ipython().run_line_magic('load_ext', 'accel_nb')"),
    ("import openai", "python", "import openai"),
    ("import anthropic", "python", "import anthropic"),
    ("import litellm", "python", "import litellm"),
]


def once(kind: str, stmt: str, env: dict[str, str]) -> float | None:
    code = TIMED.format(stmt=stmt)
    if kind == "ipython":
        cmd = [sys.executable, "-m", "IPython", "--quick", "--no-banner", "--colors=nocolor", "-c", code]
    else:
        cmd = [sys.executable, "-c", code]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    for line in proc.stdout.splitlines():
        if line.startswith("@@ "):
            return float(line.split()[1])
    if "ModuleNotFoundError" in proc.stdout + proc.stderr:
        return None
    raise RuntimeError(f"{stmt} failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", "--repeat", type=int, default=5, help="runs per case (best is reported)")
    p.add_argument("--json", action="store_true")
    return p


def table(results: dict[str, dict[str, float] | None], args: argparse.Namespace) -> Table:
    base = results["%load_ext accel_nb"]
    rows = []
    for label, _, _ in CASES:
        r = results[label]
        if r is None:
            rows.append([label, "not installed", "", ""])
            continue
        ratio = f"{r['best_s'] / base['best_s']:.1f}x" if base else "–"
        rows.append([label, f"{r['best_s'] * 1000:.1f} ms", f"{r['median_s'] * 1000:.1f} ms", ratio])
    t = Table(f"Import time, best and median of {args.repeat} fresh processes each. {cpu_note()}",
              ["what", "best", "median", "vs %load_ext accel_nb"], rows)
    if base:
        t.ratio("%load_ext accel_nb, best", base["best_s"] * 1000, fmt="{:.1f} ms")
        for label in ("import openai", "import litellm"):
            if results.get(label):
                t.ratio(f"{label} / %load_ext accel_nb", results[label]["best_s"] / base["best_s"], fmt="{:.1f}×")
    return t


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env["IPYTHONDIR"] = tempfile.mkdtemp(prefix="accel-nb-bench-ipython-")  # no user profile, no startup files
    results: dict[str, dict[str, float] | None] = {}
    for label, kind, stmt in CASES:
        times = [once(kind, stmt, env) for _ in range(args.repeat)]
        if any(t is None for t in times):
            results[label] = None
            continue
        results[label] = {"best_s": min(times), "median_s": statistics.median(times)}
    return finish(results, args, table)


if __name__ == "__main__":
    raise SystemExit(main())
