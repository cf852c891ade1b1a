"""The garbage collector's share of each client's work per request, side by side.

A single-threaded aiohttp client frees what a request allocated within the same loop turn, so
CPython's young-generation counter (allocations minus frees, never below zero) hardly moves
and a run triggers almost no collection.  A thread hop allocates on one thread and frees on
the other in bursts; the counter ratchets up and collections run every few dozen requests,
each walking the young objects of every request in flight.  That cost does not show in an
instruction count of the engine's own code (``instructions.py``) and hides in the noise of a
rate (``overhead.py``): this measures it directly.  Each client of ``overhead.py`` runs at two
request counts after the same warm-up with a ``gc.callbacks`` hook summing the collections
and the CPU time (``time.thread_time``) they take; per request = the difference / the extra
requests, so start-up and warm-up cancel out.

    python benchmarks/gc_share.py               # about a minute
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from typing import Any

import overhead
from _common import Table, client_parser, cpu_note, finish, pin, run_child, start_sim

CLIENTS = ("aiohttp", "aiohttp-thread", "accel_nb")
SIZES = {"chat": (2000, 10000), "stream": (1000, 5000)}
CONCURRENCY = 64


class GcMeter:
    """Collections and the CPU they took, summed over every thread that ran one."""

    def __init__(self) -> None:
        self.collections = 0
        self.cpu_s = 0.0
        self._started: dict[int, float] = {}
        gc.callbacks.append(self._hear)

    def _hear(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started[info["generation"]] = time.thread_time()
        elif (began := self._started.pop(info["generation"], None)) is not None:
            self.collections += 1
            self.cpu_s += time.thread_time() - began


def child(args: argparse.Namespace) -> None:
    pin(0)
    meter = GcMeter()
    asyncio.run(overhead.run_client(args.child, args.base, args.stream, args.n, CONCURRENCY, verify=False))
    print(json.dumps({"collections": meter.collections, "cpu_s": meter.cpu_s}))


def per_request(client: str, base: str, mode: str) -> dict[str, float] | None:
    found = []
    for n in SIZES[mode]:
        args = [__file__, "--child", client, "--base", base, "-n", str(n)]
        run = run_child([*args, "--stream"] if mode == "stream" else args)
        if run is None:
            return None
        found.append(run)
    extra = SIZES[mode][1] - SIZES[mode][0]
    return {"per_1000": (found[1]["collections"] - found[0]["collections"]) * 1000 / extra,
            "us": (found[1]["cpu_s"] - found[0]["cpu_s"]) * 1e6 / extra}


def table(result: dict[str, Any], args: argparse.Namespace) -> Table:
    rows = []
    for client, by_mode in result["gc"].items():
        row = [client]
        for mode in overhead.MODES:
            found = by_mode.get(mode)
            row += ["failed", "–"] if found is None else [f"{found['per_1000']:.1f}", f"{found['us']:.1f}"]
        rows.append(row)
    t = Table(f"Garbage collections during a run, concurrency {CONCURRENCY}, per 1,000 requests and their CPU "
              f"per request (µs), from the difference of two run lengths. {cpu_note()}",
              ["client", "chat: per 1k", "chat: µs", "stream: per 1k", "stream: µs"], rows)
    t.notes.append("A difference of two runs: a client that collects nothing shows ± one start-up collection.  "
                   "Counts repeat to ~20 %; the µs follow the threads' interleaving and move more.")
    return t


def main() -> int:
    args = client_parser(__doc__, CLIENTS).parse_args()
    if args.child:
        child(args)
        return 0
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    result: dict[str, dict[str, Any]] = {client: {} for client in clients}
    with start_sim(1) as sim_url:
        for client in clients:
            for mode in overhead.MODES:
                result[client][mode] = per_request(client, sim_url + "/openai/v1", mode)
                print(f"  {client} {mode}: {result[client][mode]}", file=sys.stderr)
    return finish({"gc": result}, args, table)


if __name__ == "__main__":
    raise SystemExit(main())
