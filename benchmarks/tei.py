"""TEI embeddings: ``client.embed`` on 10,000 short texts vs the same batches sent with raw aiohttp.

The simulator (zero-latency mode) serves TEI in its own process pinned to one core;
each client runs in a fresh process pinned to the other.  ``accel_nb`` makes one
``client.embed("tei", texts)`` call: it reads ``max_client_batch_size`` from ``/info``,
splits the texts, sends the parts through its queue (retries, ledger and all) and
joins one float32 matrix.  ``aiohttp`` reads ``/info`` itself, posts the same batches
with the same concurrency and builds the same matrix.  Both are timed from the call
to the finished matrix, best of ``--runs`` after a warm-up, in ``--rounds`` fresh processes
per client taken in turns (one process can run steadily slower than the next, so no
client's figure rests on one process); the ratio is texts/s of accel_nb over raw
aiohttp (the bar: >= 0.8).

    python benchmarks/tei.py               # 10,000 texts, concurrency 32
    python benchmarks/tei.py -n 2000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time

from _common import Table, cpu_note, finish, pin, run_child, start_sim

CLIENTS = ["accel_nb", "aiohttp"]
TOPICS = ("cats", "tax filing", "rust compilers", "sourdough", "jazz chords", "orbital mechanics")


def texts(n: int) -> list[str]:
    return [f"short text number {i} about {TOPICS[i % len(TOPICS)]}" for i in range(n)]


async def embed_accel_nb(base: str, items: list[str], concurrency: int, runs: int) -> tuple[float, tuple]:
    import accel_nb

    home = tempfile.mkdtemp()
    client = accel_nb.Client({
        "providers": {"tei": {"base_url": base, "concurrency": concurrency}},
        "ledger": {"path": os.path.join(home, "ledger.sqlite3")},
    })
    try:
        await client.aembed("tei", items[:500])  # warm: discovery, connections
        best = float("inf")
        for _ in range(runs):
            start = time.perf_counter()
            vectors = await client.aembed("tei", items)
            best = min(best, time.perf_counter() - start)
        return best, vectors.shape
    finally:
        client.close()


async def embed_aiohttp(base: str, items: list[str], concurrency: int, runs: int) -> tuple[float, tuple]:
    import aiohttp
    import numpy as np

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def run(batch_size: int, subset: list[str]) -> np.ndarray:
            batches = [subset[i : i + batch_size] for i in range(0, len(subset), batch_size)]
            parts: list[np.ndarray | None] = [None] * len(batches)
            position = 0

            async def worker() -> None:
                nonlocal position
                while position < len(batches):
                    index, position = position, position + 1
                    data = json.dumps({"inputs": batches[index], "normalize": True}).encode()
                    headers = {"content-type": "application/json"}
                    async with session.post(base + "/embed", data=data, headers=headers) as resp:
                        resp.raise_for_status()
                        parts[index] = np.asarray(json.loads(await resp.read()), dtype=np.float32)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return np.concatenate(parts)

        async def timed_call(subset: list[str]) -> np.ndarray:
            async with session.get(base + "/info") as resp:  # as a careful hand-written client would
                batch_size = (await resp.json())["max_client_batch_size"]
            return await run(batch_size, subset)

        await timed_call(items[:500])
        best = float("inf")
        for _ in range(runs):
            start = time.perf_counter()
            vectors = await timed_call(items)
            best = min(best, time.perf_counter() - start)
        return best, vectors.shape


def child(args: argparse.Namespace) -> None:
    pin(0)
    items = texts(args.n)
    run = embed_accel_nb if args.child == "accel_nb" else embed_aiohttp
    seconds, shape = asyncio.run(run(args.base, items, args.concurrency, args.runs))
    print(json.dumps({"seconds": seconds, "shape": list(shape)}))


def measure(client: str, base: str, n: int, concurrency: int, runs: int) -> dict | None:
    return run_child([__file__, "--child", client, "--base", base, "-n", str(n), "-c", str(concurrency),
                      "--runs", str(runs)])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=10_000, help="texts to embed")
    p.add_argument("-c", "--concurrency", type=int, default=32, help="requests in flight (both clients)")
    p.add_argument("--runs", type=int, default=3, help="timed runs per process (best is kept)")
    p.add_argument("--rounds", type=int, default=3, help="fresh processes per client, clients in turns")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--base", help=argparse.SUPPRESS)
    return p


def table(result: dict, args: argparse.Namespace) -> Table:
    rate = result["texts_per_s"]
    rows = [[name, f"{args.n / rate[name]:.3f}", f"{rate[name]:,.0f}", f"{rate[name] / rate['aiohttp']:.2f}x"]
            for name in CLIENTS]
    t = Table(f"TEI embeddings: {args.n} texts, concurrency {args.concurrency}, best of {args.runs} runs in each of "
              f"{args.rounds} alternating processes per client. {cpu_note()}",
              ["client", "seconds", "texts/s", "vs aiohttp"], rows)
    t.ratio("accel_nb / raw aiohttp, texts embedded per second", result["ratio"], "≥ 0.80×", result["ratio"] >= 0.8)
    return t


def main() -> int:
    args = parser().parse_args()
    if args.child:
        child(args)
        return 0
    with start_sim(1) as url:
        base = url + "/tei"
        results: dict[str, dict] = {}
        for _ in range(args.rounds):
            for name in CLIENTS:
                found = measure(name, base, args.n, args.concurrency, args.runs)
                if found is None:
                    return 1
                if name not in results or found["seconds"] < results[name]["seconds"]:
                    results[name] = found
    rate = {name: args.n / r["seconds"] for name, r in results.items()}
    result = {"texts_per_s": rate, "ratio": rate["accel_nb"] / rate["aiohttp"], "shape": results["accel_nb"]["shape"]}
    return finish(result, args, table)


if __name__ == "__main__":
    sys.exit(main())
