"""Every benchmark in one session: one summary of ratios and bars, and BENCHMARKS.md written from the run.

Each benchmark runs as its own process with ``--json``, one after another (its core pinning,
child processes and simulator are its own); its result becomes its table through the module's
own ``table()``, the one it prints when run alone.  The summary gathers every benchmark's
headline checks.  A full run writes BENCHMARKS.md: the machine, the date, the command, the
summary and each table, all from this run, never typed by hand.

    python benchmarks/run_all.py                    # everything, full size (make bench)
    python benchmarks/run_all.py --quick --only tei,ovms --json --out /tmp/B.md   # a smoke test
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from _common import Table, markdown_table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent  # measure this checkout, not an installed copy
#: name -> (arguments of a full run, of a --quick run); each runs as ``benchmarks/NAME.py``
BENCHMARKS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "overhead": ((), ("-n", "200", "--clients", "accel_nb,aiohttp", "--repeat", "1")),
    "stream_fanout": ((), ("--streams", "50", "--tokens", "50")),
    "queue_scale": ((), ("-n", "2000")),
    "import_time": ((), ("-n", "1")),
    "tei": ((), ("-n", "500", "--runs", "1", "--rounds", "1")),
    "ovms": ((), ("-n", "200", "--sequential", "20")),
    "s3": ((), ("-n", "20", "--rounds", "1")),
    "local_servers": ((), ("-n", "100")),
    "dashboard": ((), ("-n", "200", "--rounds", "1")),
}


def machine() -> dict[str, Any]:
    """What the numbers were measured on (load averages too: a busy machine moves them)."""
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or platform.machine())
    mem_kb = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal:")), 0)
    os_name = next((line.split("=", 1)[1].strip().strip('"') for line in _read("/etc/os-release").splitlines()
                    if line.startswith("PRETTY_NAME=")), platform.system())
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "os": f"{os_name}, kernel {platform.release()}",
            "load_average": [round(x, 2) for x in os.getloadavg()], "commit": _commit()}


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _commit() -> str | None:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or None


def run_one(name: str, argv: tuple[str, ...], timeout: float) -> dict[str, Any]:
    """One benchmark, its JSON result and its table; ``status`` says whether it ran."""
    script = HERE / f"{name}.py"
    command = shlex.join(["python", f"benchmarks/{name}.py", *argv])
    if not script.exists():
        return {"name": name, "command": command, "status": "skipped: not in this checkout"}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, str(script), *argv, "--json"], capture_output=True, text=True,
                              timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"name": name, "command": command, "status": f"failed: no result within {timeout:.0f} s"}
    seconds = time.perf_counter() - started
    if done.returncode != 0 or not done.stdout.strip():
        return {"name": name, "command": command, "seconds": seconds,
                "status": f"failed (exit {done.returncode}): {done.stderr.strip()[-1500:]}"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"name": name, "command": command, "seconds": seconds, "status": "ok", "result": result,
            "table": asdict(table_of(name, result, argv))}


def table_of(name: str, result: Any, argv: tuple[str, ...]) -> Table:
    """The benchmark's own ``table()``; for one without it, its JSON as measure / value rows."""
    module = importlib.import_module(name)
    if hasattr(module, "table") and hasattr(module, "parser"):
        return module.table(result, module.parser().parse_args(list(argv)))
    return Table(f"{name} (its JSON, as it has no table of its own)", ["measure", "value"],
                 [[key, json.dumps(value)] for key, value in _flatten(result)])


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [pair for key, inner in value.items() for pair in _flatten(inner, f"{prefix}{key} / ")]
    return [(prefix.removesuffix(" / "), value)]


def summary_rows(runs: list[dict[str, Any]]) -> list[list[str]]:
    """One row per headline check of every benchmark, and one per benchmark that did not run."""
    rows = []
    for run in runs:
        if run["status"] != "ok":
            rows.append([run["name"], run["status"].split(":")[0], "", "", ""])
            continue
        rows += [[run["name"], *check.row()] for check in Table.from_dict(run["table"]).checks]
    return rows


SUMMARY_HEADER = ["benchmark", "measure", "value", "bar", "verdict"]


def markdown(report: dict[str, Any]) -> str:
    """BENCHMARKS.md: everything in it comes from ``report``."""
    m = report["machine"]
    what = " (what `make bench` runs)" if report["full"] else " (a partial or quick run, not a measurement)"
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{report['command']}`{what} on {report['date']}, "
        f"in {report['seconds'] / 60:.1f} minutes; written by the run itself, not by hand.",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM",
        f"- OS: {m['os']}; Python {m['python']}; accel_nb at commit {m['commit'] or 'unknown'}",
        f"- Load average at the start: {' '.join(map(str, m['load_average']))} "
        f"(at the end: {' '.join(map(str, report['load_average_end']))})",
        "",
        "## Summary: ratios and bars",
        "",
        markdown_table(SUMMARY_HEADER, summary_rows(report["runs"])),
    ]
    for run in report["runs"]:
        lines += ["", f"## {run['name']}", "", f"`{run['command']}`" + (
            f" ({run['seconds']:.0f} s)" if "seconds" in run else ""), ""]
        lines.append(Table.from_dict(run["table"]).markdown() if run["status"] == "ok" else run["status"])
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke test, not a measurement")
    p.add_argument("--only", help="comma-separated subset of " + ",".join(BENCHMARKS))
    p.add_argument("--out", type=Path, help="where to write the report (default: BENCHMARKS.md at the repository "
                                            "root, for a full run of everything; nothing otherwise)")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON (tables go to stderr)")
    return p


def main() -> int:
    args = parser().parse_args()
    names = [n.strip() for n in args.only.split(",")] if args.only else list(BENCHMARKS)
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser().error(f"unknown benchmark {sorted(unknown)[0]!r}; known: {', '.join(BENCHMARKS)}")
    full = not args.quick and not args.only
    out = args.out or (ROOT / "BENCHMARKS.md" if full else None)
    show = sys.stderr if args.json else sys.stdout
    report: dict[str, Any] = {"command": shlex.join(["python", "benchmarks/run_all.py", *sys.argv[1:]]),
                              "date": time.strftime("%Y-%m-%d %H:%M %Z"), "full": full, "machine": machine(),
                              "runs": []}
    started = time.perf_counter()
    for name in names:
        argv = BENCHMARKS[name][1 if args.quick else 0]
        print(f"\n== {name}: {shlex.join(['python', f'benchmarks/{name}.py', *argv])}", file=show, flush=True)
        run = run_one(name, argv, timeout=600 if args.quick else 3600)
        report["runs"].append(run)
        shown = Table.from_dict(run["table"]).markdown() if run["status"] == "ok" else run["status"]
        print(shown, file=show, flush=True)
    report["seconds"] = time.perf_counter() - started
    report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print("\n== Summary: ratios and bars\n" + markdown_table(SUMMARY_HEADER, summary_rows(report["runs"])), file=show)
    if out is not None:
        out.write_text(markdown(report), encoding="utf-8")
        print(f"\nwrote {out}", file=show)
    if args.json:
        print(json.dumps(report))
    return 0 if all(run["status"] == "ok" or run["status"].startswith("skipped") for run in report["runs"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
