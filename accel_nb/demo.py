"""``accel-nb demo``: the same prompts to every chat provider, side by side, with no keys.

It starts the simulator in-process (realistic latency, a few injected faults so the
retries are visible), streams every prompt to every provider through one engine,
and prints the comparison a notebook user would make.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path
from typing import Any

from .cli import format_rows
from .tables import text_table

__all__ = ["PROMPTS", "run_comparison"]

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


async def _one(client: Any, provider: str, prompt: str) -> Any:
    stream = client.astream(provider, prompt, max_tokens=200)
    try:
        async for _ in stream:
            pass
        return stream.response
    except Exception as exc:  # an error is a result of the comparison, not a crash
        return exc


async def run_comparison(client: Any, providers: list[str], prompts: list[str]) -> dict[str, list[Any]]:
    """Every prompt to every provider at once; results per provider, in prompt order."""
    tasks = {p: [asyncio.ensure_future(_one(client, p, q)) for q in prompts] for p in providers}
    return {p: list(await asyncio.gather(*ts)) for p, ts in tasks.items()}


def summary_rows(results: dict[str, list[Any]]) -> list[list[str]]:
    rows = []
    for provider, items in results.items():
        ok = [r for r in items if not isinstance(r, Exception)]
        latency = statistics.median(r.latency_s for r in ok) if ok else None
        ttft = statistics.median(r.ttft_s for r in ok if r.ttft_s is not None) if ok else None
        tokens_in = sum(r.usage.input_tokens for r in ok)
        tokens_out = sum(r.usage.output_tokens for r in ok)
        speed = [r.usage.output_tokens / (r.latency_s - r.ttft_s) for r in ok if r.ttft_s and r.latency_s > r.ttft_s]
        costs = [r.cost_usd for r in ok if r.cost_usd is not None]
        rows.append([
            provider,
            ok[0].model if ok else "–",
            f"{len(ok)}/{len(items)}",
            str(sum(r.attempts - 1 for r in ok)),
            f"{latency:.2f}s" if latency is not None else "–",
            f"{ttft:.2f}s" if ttft is not None else "–",
            f"{statistics.median(speed):.0f}" if speed else "–",
            f"{tokens_in}/{tokens_out}",
            f"{sum(costs):.5f}" if costs else "–",
        ])
    return rows


HEADER = ["provider", "model", "ok", "retries", "p50 latency", "p50 TTFT", "tok/s", "tokens in/out", "cost $"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="accel-nb demo", description=__doc__)
    parser.add_argument("--faults", default="429:0.06,overloaded:0.04", help="simulator fault spec")
    parser.add_argument("--out", type=Path, help="keep the demo's ledger in this directory")
    args = parser.parse_args(argv)

    from . import sim
    from .client import Client

    out = args.out or Path(tempfile.mkdtemp(prefix="accel-nb-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    with sim.serve(faults=args.faults, seed=7) as server:
        config = {"sim_url": server.url, "ledger": {"path": str(out / "ledger.sqlite3")},
                  "retry": {"backoff_base_s": 0.2}}
        with Client(config, keys={}) as client:
            print(f"accel_nb demo: {len(PROMPTS)} prompts × {len(PROVIDERS)} providers, streamed at once "
                  f"through one engine, against the built-in simulator (no keys, no network).")
            print(f"Injected faults: {args.faults}\n")
            results = asyncio.run(run_comparison(client, PROVIDERS, PROMPTS))
            print(text_table(HEADER, summary_rows(results)))
            print(f"\n“{PROMPTS[0]}”")
            for provider, items in results.items():
                first = items[0]
                text = first.text if not isinstance(first, Exception) else f"[{type(first).__name__}] {first}"
                print(f"  {provider:>7}: {' '.join(text.split())[:110]}…")
            print("\nNewest ledger rows (accel-nb logs shows the same from any terminal):")
            print(format_rows(client.logs(5)))
            print(f"\nLedger: {out / 'ledger.sqlite3'}")
    return 0
