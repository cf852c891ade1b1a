"""``accel-nb demo``: the same prompts to every chat provider, side by side, with no keys.

It starts the simulator in-process (realistic latency, a few injected faults so the
retries are visible) and compares the providers through one engine, in one of two ways:

* ``accel-nb demo``: in this process, printing the comparison a notebook user would make;
* ``accel-nb demo --notebook notebooks/02_compare_providers.ipynb --out demo`` (``make demo``):
  the comparison notebook runs headlessly in a fresh kernel pointed at the simulator; the
  executed copy, its HTML report and its results land in ``--out``, and the summary is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from .cli import format_rows

__all__ = ["PROMPTS", "PROVIDERS", "main"]

PROMPTS = [
    "Explain backpressure in two sentences.",
    "What is a circuit breaker in distributed systems?",
    "Give three tips for writing readable Python.",
    "Summarise the CAP theorem for a new engineer.",
    "Why do APIs return HTTP 429, and what should a client do?",
    "Compare SQLite and PostgreSQL for a notebook workflow.",
    "What does exponential backoff with jitter solve?",
    "Write a haiku about rate limits.",
]
PROVIDERS = ["claude", "openai", "groq", "gemini"]
#: the columns a terminal has room for
SUMMARY = ["target", "ok", "retries", "errors", "p50 latency", "p50 TTFT", "tok/s", "cost", "$ / 1k tokens"]
FAULTS = "429:0.06,overloaded:0.04"


def in_process(sim_url: str, faults: str, out: Path) -> None:
    """The comparison in this process, printed with the first answers and the newest ledger rows."""
    from .client import Client
    from .report import compare

    config = {"sim_url": sim_url, "ledger": {"path": str(out / "ledger.sqlite3")}, "retry": {"backoff_base_s": 0.2}}
    with Client(config, keys={}) as client:
        print(f"accel_nb demo: {len(PROMPTS)} prompts × {len(PROVIDERS)} providers, streamed at once "
              f"through one engine, against the built-in simulator (no keys, no network).")
        print(f"Injected faults: {faults}\n")
        comparison = asyncio.run(compare(client, PROVIDERS, PROMPTS, max_tokens=200))
        print(comparison.text(SUMMARY))
        print(f"\n“{PROMPTS[0]}”")
        for outcome in (o for o in comparison.outcomes if o.prompt == 0):
            text = outcome.text if outcome.ok else f"[{outcome.error}] {outcome.text}"
            print(f"  {outcome.target:>7}: {' '.join(text.split())[:110]}…")
        print("\nNewest ledger rows (accel-nb logs shows the same from any terminal):")
        print(format_rows(client.logs(5)))
        print(f"\nLedger: {out / 'ledger.sqlite3'}")


def with_notebook(notebook: Path, sim_url: str, faults: str, out: Path) -> None:
    """The notebook, run headlessly against the simulator with ``out`` as its working directory."""
    import nbformat

    from .headless import NotebookError, execute, kernel_env
    from .report import Comparison

    home = out / "home"  # the kernel's own ledger and config, away from the user's
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    print(f"accel_nb demo: running {notebook} in a fresh kernel against the built-in simulator "
          f"(realistic latency; injected faults {faults}; no keys, no network)…", flush=True)
    started = time.perf_counter()
    executed = out / notebook.name
    try:
        nb = execute(notebook, out, kernel_env(home, sim_url=sim_url))
    except NotebookError as exc:
        nbformat.write(exc.notebook, executed)
        raise SystemExit(f"accel-nb demo: {exc}\n(the executed notebook is in {executed})") from None
    nbformat.write(nb, executed)
    comparison = Comparison.from_json((out / "comparison.json").read_text(encoding="utf-8"))
    print(f"done in {time.perf_counter() - started:.0f} s: {len(comparison.prompts)} prompts × "
          f"{len(comparison.targets)} providers\n")
    print(comparison.text(SUMMARY))
    print(f"\nReport:            {out / 'report.html'}  (tables and charts; opens offline)")
    print(f"Executed notebook: {executed}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="accel-nb demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faults", default=FAULTS, help=f"simulator fault spec (default {FAULTS})")
    parser.add_argument("--notebook", type=Path, help="run this notebook headlessly instead (needs nbclient)")
    parser.add_argument("--out", type=Path, help="where the ledger (and the notebook's files) go")
    parser.add_argument("--latency", choices=("realistic", "zero"), default="realistic", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.notebook is not None and not args.notebook.is_file():
        parser.error(f"no notebook at {args.notebook}")

    from . import sim

    out = (args.out or Path(tempfile.mkdtemp(prefix="accel-nb-demo-"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with sim.serve(faults=args.faults, latency=args.latency, seed=7) as server:
        if args.notebook is None:
            in_process(server.url, args.faults, out)
        else:
            with_notebook(args.notebook.resolve(), server.url, args.faults, out)
    return 0
