"""Instructions per request under callgrind: the overhead comparison without the machine's noise.

On a shared virtual machine a client's requests per second move by ±20 % from one minute to
the next, so ``overhead.py`` needs paired rounds and still scatters.  The number of
instructions a client executes per request does not move: this runs each client of
``overhead.py`` under valgrind's callgrind at two request counts after the same warm-up
(``SIZES``) and reports the difference in instructions over the difference in requests.
Start-up, imports and warm-up cancel out; what is left is the cost of one more request, every
thread of the client process included (the ledger's writer too).  The ratio column is
aiohttp's count over the client's: higher is better, as in ``overhead.py``.

It counts user-space instructions, not time, and time can differ either way: the kernel's
share of a request (socket reads and writes, epoll; much the same for every client) is not
counted, which pulls time ratios towards 1; cache misses, the garbage collector's traversals
(a thread hop makes collections run that a single-threaded client never triggers) and thread
switches cost more time than their count, which pushes them down.  Use it to see whether a
change to the engine removed work, not to decide the throughput bar.  Streams run against a
paced simulator (one frame every half second) so that each frame arrives in its own read, as
it does at full speed; against an unpaced one a slowed client would find whole streams in one read.

    python benchmarks/instructions.py                  # chat and paced streams, ~15 minutes
    python benchmarks/instructions.py --modes chat     # ~5 minutes

The same runs count the objects each request allocates that CPython's garbage collector counts
(calls of ``_PyObject_GC_Link``): a collection runs whenever that count, net of frees, passes 700,
so fewer such objects is fewer collections, whichever thread they are made on.

Needs valgrind (``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any

import overhead
from _common import Table, client_parser, cpu_note, finish, pin, start_sim

CLIENTS = ("aiohttp", "aiohttp-thread", "accel_nb")
#: requests of the two runs per client and mode (after the same warm-up), and that warm-up
SIZES = {"chat": (300, 900, 200), "stream": (64, 192, 64)}
#: a simulator slow enough that a client under callgrind (~50x slower) still reads frame by frame
PACED = ("--latency", "realistic", "--ttft", "0.05", "--tps", "2")
CONCURRENCY = 64
_COLLECTED = re.compile(r"Collected : (\d+)")


def child(args: argparse.Namespace) -> None:
    pin(0)
    main = overhead.run_client(args.child, args.base, args.stream, args.n, CONCURRENCY, warmup=args.warmup,
                               verify=False)  # (reading the ledger back is not a request's cost)
    asyncio.run(main)  # (its rate is of no interest here: the count is)


def instructions(client: str, base: str, stream: bool, n: int, warmup: int) -> tuple[int, int | None]:
    """The client's instructions in a run of ``n`` requests, and the objects it made that the garbage
    collector counts (``None`` when this Python's symbols do not show them)."""
    with tempfile.NamedTemporaryFile(suffix=".callgrind") as out:
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}", sys.executable, __file__,
               "--child", client, "--base", base, "-n", str(n), "--warmup", str(warmup)]
        done = subprocess.run([*cmd, "--stream"] if stream else cmd, capture_output=True, text=True, timeout=1800)
        found = _COLLECTED.search(done.stderr)
        if done.returncode != 0 or found is None:
            raise RuntimeError(f"{client} under callgrind failed:\n{done.stderr[-2000:]}")
        return int(found.group(1)), calls_to(out.name, "_PyObject_GC_Link")


def calls_to(profile: str, function: str) -> int | None:
    """How many times ``function`` was called, from a callgrind profile (whose ``cfn=`` lines name
    a callee in full once, as ``(id) name``, and by ``(id)`` alone after that)."""
    names: dict[str, str] = {}
    total, callee = None, ""
    with open(profile, errors="replace") as lines:
        for line in lines:
            if line.startswith(("fn=(", "cfn=(")):
                ident, _, name = line.partition("=")[2].rstrip("\n").partition(" ")
                if name:
                    names[ident] = name
                if line.startswith("cfn="):
                    callee = names.get(ident, "")
            elif line.startswith("calls=") and callee.startswith(function):
                total = (total or 0) + int(line[6:].split()[0])
    return total


def per_request(client: str, base: str, mode: str) -> tuple[float, float | None]:
    """Instructions and garbage-collected objects per request: the difference of two run lengths."""
    small, large, warmup = SIZES[mode]
    (few, few_objects), (many, many_objects) = (
        instructions(client, base, mode == "stream", n, warmup) for n in (small, large)
    )
    objects = None if few_objects is None or many_objects is None else (many_objects - few_objects) / (large - small)
    return (many - few) / (large - small), objects


def parser() -> argparse.ArgumentParser:
    p = client_parser(__doc__, CLIENTS)
    p.add_argument("--modes", default=",".join(overhead.MODES), help="chat, stream or both")
    p.add_argument("--warmup", type=int, help=argparse.SUPPRESS)
    return p


def table(result: dict[str, Any], args: argparse.Namespace) -> Table:
    counts, objects = result["instructions"], result["objects"]
    base = counts.get("aiohttp", {})
    rows = []
    for client, by_mode in counts.items():
        row = [client]
        for mode in overhead.MODES:
            count, reference, made = by_mode.get(mode), base.get(mode), objects[client].get(mode)
            row += ["–" if count is None else f"{count / 1000:,.0f}k",
                    f"{reference / count:.2f}×" if count and reference else "–",
                    "–" if made is None else f"{made:,.0f}"]
        rows.append(row)
    t = Table(f"Instructions per request under callgrind (the client process, every thread), concurrency "
              f"{CONCURRENCY}; streams of ~{overhead.STREAM_TOKENS} frames from a paced simulator. {cpu_note()}",
              ["client", "chat", "aiohttp / client", "chat: GC objects", "stream", "aiohttp / client",
               "stream: GC objects"], rows)
    t.notes.append("Deterministic: the same code gives the same count to within ~1 %.  User-space "
                   "instructions only: the kernel's socket work and the cost of cache misses are not in it.  "
                   "GC objects: those a request allocates that the garbage collector counts towards its "
                   "next collection.")
    return t


def main() -> int:
    args = parser().parse_args()
    if args.child:
        child(args)
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip() in overhead.MODES]
    counts: dict[str, dict[str, float]] = {client: {} for client in clients}
    objects: dict[str, dict[str, float | None]] = {client: {} for client in clients}
    for mode in modes:
        with start_sim(1, *(PACED if mode == "stream" else ())) as sim_url:
            for client in clients:
                counts[client][mode], objects[client][mode] = per_request(client, sim_url + "/openai/v1", mode)
                print(f"  {client} {mode}: {counts[client][mode] / 1000:,.0f}k instructions", file=sys.stderr)
    return finish({"instructions": counts, "objects": objects}, args, table)


if __name__ == "__main__":
    raise SystemExit(main())
