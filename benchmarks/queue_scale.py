"""Queue scale: 100,000 requests waiting in the engine at once.

Measures, in one run: the memory each queued request costs (submitted by
``client.amap``: the request, its job, the caller's future and the heap entry, measured with tracemalloc while every
slot is held by a stalled request), how fast requests are admitted, and how fast
the engine dispatches and completes them once the slots free (against the
zero-latency simulator in its own process).

    python benchmarks/queue_scale.py            # 100,000 requests
    python benchmarks/queue_scale.py -n 20000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from _common import Table, cpu_note, finish, pin, start_sim

BAR_BYTES = 2048


def measure(sim_url: str, n: int, concurrency: int) -> dict[str, float]:
    import accel_nb

    ledger = Path(tempfile.mkdtemp()) / "ledger.sqlite3"
    client = accel_nb.Client({
        "sim_url": sim_url,
        "ledger": {"path": str(ledger)},
        "providers": {"openai": {"concurrency": concurrency}},
        "queue": {"max_size": n + 10},
    })
    client.chat("openai", "warm up")
    # every slot held by a request the simulator never answers: everything else queues
    blockers = [client.stream("openai", "hold", headers={"x-sim-fault": "stall"}) for _ in range(concurrency)]
    prompts = [f"question number {i}" for i in range(n)]

    async def main() -> dict[str, float]:
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        batch = asyncio.ensure_future(client.amap("openai", prompts, progress=False))
        while client.stats()["queued"] < n:
            await asyncio.sleep(0.05)
        admitted = time.perf_counter() - start
        gc.collect()
        per_request = (tracemalloc.get_traced_memory()[0] - base - sum(map(sys.getsizeof, prompts))) / n
        tracemalloc.stop()
        for blocker in blockers:  # free the slots: the queue drains through them
            blocker.close()
        start = time.perf_counter()
        results = await batch
        drained = time.perf_counter() - start
        failures = sum(not isinstance(r, accel_nb.Response) for r in results)
        return {"bytes_per_request": per_request, "admit_per_s": n / admitted,
                "complete_per_s": n / drained, "failures": failures}

    try:
        return asyncio.run(main())
    finally:
        client.close()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=100_000)
    p.add_argument("-c", "--concurrency", type=int, default=64, help="slots of the lane")
    p.add_argument("--json", action="store_true")
    return p


def table(result: dict[str, float], args: argparse.Namespace) -> Table:
    t = Table(f"Queue scale: {args.n:,} requests queued behind {args.concurrency} held slots. {cpu_note()}",
              ["measure", "value", "bar"], [
                  ["memory per queued request", f"{result['bytes_per_request']:,.0f} B", f"< {BAR_BYTES:,} B"],
                  ["admitted", f"{result['admit_per_s']:,.0f} req/s", ""],
                  ["dispatched and completed", f"{result['complete_per_s']:,.0f} req/s", ""],
                  ["failed", f"{result['failures']:,}", "0"],
              ])
    t.ratio("memory per queued request", result["bytes_per_request"], f"< {BAR_BYTES:,} B",
            result["bytes_per_request"] < BAR_BYTES, fmt="{:,.0f} B")
    t.ratio("queued requests that failed", result["failures"], "0", result["failures"] == 0, fmt="{:,.0f}")
    return t


def main() -> int:
    args = parser().parse_args()
    with start_sim(core=1) as url:
        pin(0)
        result = measure(url, args.n, args.concurrency)
    return finish(result, args, table)


if __name__ == "__main__":
    raise SystemExit(main())
