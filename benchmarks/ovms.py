"""OVMS coalescing: many concurrent one-row infer calls, with and without batching, in one run.

The simulator runs in its own process pinned to one core with its OVMS cost model (a model
runs one inference at a time, ~1 ms + 20 us a row: as on a server with one inference
stream); each client run is a fresh process pinned to the other core.  Two measures:

* throughput: N concurrent one-row ``ainfer`` calls (default 2,000) — calls per second,
  caller-side p50/p95 latency, and how many HTTP requests reached the server;
* the window's cost: the same calls one at a time on an idle server, where a held request
  can only wait out ``delay_ms`` — the p50/p95 latency it adds.

    python benchmarks/ovms.py                 # 2,000 calls, batch max_size 64, delay 5 ms
    python benchmarks/ovms.py --latency zero  # no server cost: HTTP and JSON overhead only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import Table, cpu_note, finish, pin, run_child, start_sim

ROOT = Path(__file__).resolve().parent.parent  # measure this checkout, not an installed copy
MODEL = "ovms:affine"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def server_infers(base: str) -> int:
    from accel_nb.sim import fetch_stats

    return fetch_stats(base)["routes"].get("POST /ovms/v2/models/{model}/infer", 0)


def make_client(base: str, delay_ms: float, max_size: int):
    import accel_nb

    home = tempfile.mkdtemp()
    return accel_nb.Client({"sim_url": base, "ledger": {"path": os.path.join(home, "ledger.sqlite3")},
                            "providers": {"ovms": {"batch": {"max_size": max_size, "delay_ms": delay_ms}}}})


async def timed(client, x) -> float:
    start = time.perf_counter()
    result = await client.ainfer(MODEL, {"x": x})
    assert result["y"][0, 0] == 2 * x[0, 0] + 1  # each caller gets its own row back
    return time.perf_counter() - start


async def throughput(base: str, delay_ms: float, max_size: int, n: int) -> dict[str, float]:
    """``n`` concurrent one-row calls: calls per second, p50/p95 latency, HTTP requests sent."""
    import numpy as np

    client = make_client(base, delay_ms, max_size)
    rows = [np.full((1, 4), i, np.float32) for i in range(n)]
    try:
        await asyncio.gather(*(timed(client, x) for x in rows[:200]))  # warm: metadata, connections, imports
        client.engine.ledger.flush()
        sent = server_infers(base)
        start = time.perf_counter()
        latencies = await asyncio.gather(*(timed(client, x) for x in rows))
        wall = time.perf_counter() - start
        sent = server_infers(base) - sent
        recorded = len(client.logs(n + 1000))
    finally:
        client.close()
    assert recorded >= n, f"the ledger holds {recorded} rows, expected at least {n}"
    return {"rate": n / wall, "p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "requests": sent}


async def window(base: str, delay_ms: float, max_size: int, calls: int) -> dict[str, float]:
    """One call at a time on an idle server, alternating a coalescing client and a plain one
    (so both see the same machine): a held call can only wait out the window."""
    import numpy as np

    on, off = make_client(base, delay_ms, max_size), make_client(base, 0, max_size)
    x = np.ones((1, 4), np.float32)
    try:
        for client in (on, off):
            for _ in range(20):
                await timed(client, x)
        pairs = [(await timed(on, x), await timed(off, x)) for _ in range(calls)]
    finally:
        on.close()
        off.close()
    held, plain = [p[0] for p in pairs], [p[1] for p in pairs]
    return {"on_p50": percentile(held, 50), "on_p95": percentile(held, 95),
            "off_p50": percentile(plain, 50), "off_p95": percentile(plain, 95)}


def child(args: argparse.Namespace) -> dict[str, float]:
    pin(0)
    if args.child == "window":
        return asyncio.run(window(args.base, args.delay_ms, args.max_size, args.sequential))
    return asyncio.run(throughput(args.base, float(args.child), args.max_size, args.n))


def measure(base: str, what: str, args: argparse.Namespace) -> dict[str, float] | None:
    return run_child([__file__, "--child", what, "--base", base, "--delay-ms", str(args.delay_ms),
                      "--max-size", str(args.max_size), "-n", str(args.n), "--sequential", str(args.sequential)])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=2000, help="concurrent one-row calls (default 2000)")
    p.add_argument("--max-size", type=int, default=64, help="batch.max_size (default 64)")
    p.add_argument("--delay-ms", type=float, default=5.0, help="batch.delay_ms when coalescing (default 5)")
    p.add_argument("--sequential", type=int, default=200, help="one-at-a-time calls for the window's cost")
    p.add_argument("--latency", choices=("realistic", "zero"), default="realistic",
                   help="the simulator's latency model (zero: no inference cost)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--base", help=argparse.SUPPRESS)
    return p


def table(result: dict[str, Any], args: argparse.Namespace) -> Table:
    on, off, alone = result["coalesced"], result["one call each"], result["window"]
    rows = [[name, f"{r['rate']:,.0f}", f"{r['p50'] * 1000:.1f}", f"{r['p95'] * 1000:.1f}", f"{r['requests']:,}"]
            for name, r in result.items() if name != "window" and r]
    t = Table(f"OVMS: {args.n:,} concurrent one-row infer calls to {MODEL}, simulator latency {args.latency}; "
              f"batch max_size {args.max_size}, delay {args.delay_ms:g} ms. {cpu_note()}",
              ["mode", "calls/s", "p50 ms", "p95 ms", "HTTP requests"], rows)
    if on and off:
        t.ratio("coalesced / one call each, calls per second", on["rate"] / off["rate"])
        t.ratio("HTTP requests, one call each / coalesced", off["requests"] / max(on["requests"], 1), fmt="{:.0f}×")
        t.notes.append(f"p95 under load {on['p95'] * 1000:.0f} ms coalesced, "
                       f"{off['p95'] * 1000:.0f} ms one call each")
    if alone:
        t.ratio(f"the window's cost, p50 of {args.sequential} calls one at a time",
                (alone["on_p50"] - alone["off_p50"]) * 1000, f"≈ delay_ms = {args.delay_ms:g}", fmt="+{:.1f} ms")
        t.notes.append(f"one call at a time (alternating): p50 {alone['off_p50'] * 1000:.1f} -> "
                       f"{alone['on_p50'] * 1000:.1f} ms, p95 {alone['off_p95'] * 1000:.1f} -> "
                       f"{alone['on_p95'] * 1000:.1f} ms")
    return t


def main() -> int:
    args = parser().parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return 0

    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    with start_sim(1, "--latency", args.latency) as sim_url:
        result = {"coalesced": measure(sim_url, str(args.delay_ms), args),
                  "one call each": measure(sim_url, "0", args),
                  "window": measure(sim_url, "window", args)}
    return finish(result, args, table)


if __name__ == "__main__":
    raise SystemExit(main())
