"""Streaming fan-out: 1,000 concurrent streams at 50 tokens/s each, in one client process.

The simulator runs in its own process pinned to one core, with realistic pacing (``--tps 50``,
a short TTFT) and its rate limits lifted; each client runs in a fresh process pinned to the
other core and opens every stream at once: ``accel_nb``'s ``astream`` (engine, lanes, tracker,
ledger) and raw aiohttp reading the same SSE (one ``json.loads`` a frame).  Reported: how many
streams completed, the chunks received, the client process's CPU seconds per 1,000 chunks
(the cost a kernel pays to keep up; wall time is set by the pace), and the ratio of the two.

The simulator has to write N * 50 frames a second.  Each stream's pace (tokens per second from
its first token to its last) says whether it did: when the median stream ran below 90 % of 50
tokens/s, the simulator set the pace, not the client, and sent tokens in bunches; N * that
median is the frame rate it kept up.  Then raw aiohttp (the cheaper client, so not the one
falling behind) probes smaller counts until the simulator keeps pace, and both clients run
again at that count: the table has the requested count and the largest one this simulator
sustains on one core.  (The simulator's answers run 30 to 150 tokens: --tokens stays below.)

    python benchmarks/stream_fanout.py                 # 1,000 streams of 100 tokens
    python benchmarks/stream_fanout.py --streams 200 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import Table, cpu_note, finish, pin, run_child, start_sim

ROOT = Path(__file__).resolve().parent.parent  # measure this checkout, not an installed copy
MODEL = "gpt-4o-mini"
CLIENTS = ("accel_nb", "aiohttp")
WARM = 20  # streams opened once before measuring: connections, imports, the engine's start
KEEPS_PACE = 0.9  # the simulator keeps pace when the median stream runs at >= 90 % of --tps
LADDER = (0.75, 0.5, 0.35, 0.25, 0.15, 0.1, 0.05)  # fractions of --streams tried when the simulator falls behind


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=int, default=1000, help="concurrent streams (default 1000)")
    p.add_argument("--tokens", type=int, default=100, help="tokens a stream (default 100: 2 s at 50/s)")
    p.add_argument("--tps", type=float, default=50.0, help="tokens per second of each stream (default 50)")
    p.add_argument("--ttft", type=float, default=0.1, help="seconds to the first token (default 0.1)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--child", choices=CLIENTS, help=argparse.SUPPRESS)
    p.add_argument("--sim", help=argparse.SUPPRESS)
    return p


class Stream:
    """What one stream delivered: chunks, and when the first and the last arrived."""

    __slots__ = ("chunks", "failed", "first", "last")

    def __init__(self) -> None:
        self.chunks, self.first, self.last = 0, 0.0, 0.0
        self.failed: str | None = None  # the error, when the stream failed

    def chunk(self) -> None:
        self.last = time.perf_counter()
        if not self.chunks:
            self.first = self.last
        self.chunks += 1

    @property
    def tokens_per_s(self) -> float | None:
        """The pace this stream ran at after its first token."""
        return (self.chunks - 1) / (self.last - self.first) if self.chunks > 1 and self.last > self.first else None


async def accel_nb_streams(sim_url: str, n: int, tokens: int) -> list[Stream]:
    """Every stream through ``client.astream``."""
    sys.path.insert(0, str(ROOT))
    import accel_nb

    home = tempfile.mkdtemp()
    client = accel_nb.Client({"sim_url": sim_url, "ledger": {"path": os.path.join(home, "ledger.sqlite3")},
                              "providers": {"openai": {"concurrency": n + WARM}}})

    async def one() -> Stream:
        got = Stream()
        try:
            async for _ in client.astream("openai:" + MODEL, "Tell me about queues.", max_tokens=tokens):
                got.chunk()
        except accel_nb.errors.AccelError as exc:
            got.failed = f"{type(exc).__name__}: {exc}"
        return got

    try:
        await asyncio.gather(*(one() for _ in range(WARM)))
        return await measured(lambda: asyncio.gather(*(one() for _ in range(n))))
    finally:
        client.close()


async def aiohttp_streams(sim_url: str, n: int, tokens: int) -> list[Stream]:
    """The same streams read by hand: every SSE line parsed, content deltas counted."""
    import aiohttp

    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Tell me about queues."}],
                       "max_tokens": tokens, "stream": True, "stream_options": {"include_usage": True}}).encode()
    headers = {"authorization": "Bearer bench", "content-type": "application/json"}
    url = sim_url + "/openai/v1/chat/completions"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=None)) as session:

        async def one() -> Stream:
            got = Stream()
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    resp.raise_for_status()
                    async for line in resp.content:
                        if line.startswith(b"data: ") and line[6:12] != b"[DONE]":
                            frame = json.loads(line[6:])
                            if frame["choices"] and frame["choices"][0]["delta"].get("content"):
                                got.chunk()
            except aiohttp.ClientError as exc:
                got.failed = f"{type(exc).__name__}: {exc}"
            return got

        await asyncio.gather(*(one() for _ in range(WARM)))
        return await measured(lambda: asyncio.gather(*(one() for _ in range(n))))


_clock: dict[str, float] = {}


async def measured(run: Any) -> list[Stream]:
    """Run the fan-out, noting the process CPU time and the wall time it took."""
    cpu, wall = time.process_time(), time.perf_counter()
    streams = await run()
    _clock.update(cpu_s=time.process_time() - cpu, wall_s=time.perf_counter() - wall)
    return streams


def child(args: argparse.Namespace) -> dict[str, Any]:
    pin(0)
    run = accel_nb_streams if args.child == "accel_nb" else aiohttp_streams
    streams = asyncio.run(run(args.sim, args.streams, args.tokens))
    chunks = sum(s.chunks for s in streams)
    paces = [p for s in streams if (p := s.tokens_per_s) is not None]
    return {"completed": sum(not s.failed and s.chunks > 0 for s in streams), "chunks": chunks, **_clock,
            "cpu_s_per_1k_chunks": _clock["cpu_s"] / chunks * 1000 if chunks else None,
            "median_pace": statistics.median(paces) if paces else 0.0,
            "errors": dict(Counter(s.failed[:120] for s in streams if s.failed).most_common(3))}


# -- the driver ------------------------------------------------------------------------------------
def measure(client: str, sim_url: str, streams: int, args: argparse.Namespace) -> dict[str, Any] | None:
    found = run_child([__file__, "--child", client, "--sim", sim_url, "--streams", str(streams),
                       "--tokens", str(args.tokens)])
    print(f"  {client}, {streams} streams: {found}", file=sys.stderr)
    return found


def kept_pace(found: dict[str, Any] | None, args: argparse.Namespace) -> bool:
    """Whether the median stream ran at >= 90 % of its pace."""
    return found is not None and found["median_pace"] >= KEEPS_PACE * args.tps


def run(sim_url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Both clients at ``--streams``; when the simulator cannot keep that pace, the largest count
    it keeps (raw aiohttp probes a descending ladder, the cheaper client), both clients again."""
    counts = {args.streams: {name: measure(name, sim_url, args.streams, args) for name in CLIENTS}}
    sustained = args.streams
    if not kept_pace(counts[args.streams]["aiohttp"], args):
        sustained = 0
        for n in sorted({max(1, int(args.streams * f)) for f in LADDER}, reverse=True):
            probe = measure("aiohttp", sim_url, n, args)
            if kept_pace(probe, args):
                counts[n] = {"accel_nb": measure("accel_nb", sim_url, n, args), "aiohttp": probe}
                sustained = n
                break
    return {"runs": {str(n): found for n, found in counts.items()}, "sustained_streams": sustained}


def table(result: dict[str, Any], args: argparse.Namespace) -> Table:
    rows = []
    for n, found in result["runs"].items():
        for name in CLIENTS:
            r = found[name]
            if r is None or not r["chunks"]:
                rows.append([n, name, "failed", "", "", "", "", "", ""])
                continue
            rows.append([f"{int(n):,}", name, f"{r['completed']:,}", f"{r['chunks']:,}", f"{r['wall_s']:.2f}",
                         f"{r['cpu_s']:.2f}", f"{r['cpu_s_per_1k_chunks'] * 1000:.1f}", f"{r['median_pace']:.1f}",
                         f"{int(n) * r['median_pace']:,.0f} of {int(n) * args.tps:,.0f}"])
    t = Table(f"Streaming fan-out: concurrent streams of {args.tokens} tokens at {args.tps:g} tokens/s each "
              f"(TTFT {args.ttft:g} s), all opened at once by one client process. {cpu_note()}",
              ["streams", "client", "completed", "chunks", "wall s", "client CPU s", "CPU ms / 1k chunks",
               "median tokens/s a stream", "frames/s kept"], rows)
    for n, found in result["runs"].items():
        ours, raw = found["accel_nb"], found["aiohttp"]
        for name, r in found.items():
            if r and r["errors"]:
                t.notes.append(f"{int(n):,} streams, {name}: failures {r['errors']}")
        if ours and raw and ours["chunks"] and raw["chunks"]:
            t.ratio(f"{int(n):,} streams: client CPU per chunk, aiohttp / accel_nb",
                    raw["cpu_s_per_1k_chunks"] / ours["cpu_s_per_1k_chunks"])
            t.ratio(f"{int(n):,} streams: completed by each client", min(ours["completed"], raw["completed"]),
                    f"= {int(n):,}", ours["completed"] == raw["completed"] == int(n), fmt="{:,.0f}")
    sustained = result["sustained_streams"]
    t.ratio(f"streams the simulator keeps at ≥ {KEEPS_PACE:.0%} of {args.tps:g} tokens/s (median, one process)",
            sustained, f"≥ {args.streams:,} ({args.streams * args.tps:,.0f} frames/s)", sustained >= args.streams,
            fmt="{:,.0f}")
    if sustained < args.streams:
        t.notes.append(f"The simulator (one process, one core) did not write {args.streams * args.tps:,.0f} frames/s: "
                       f"at {args.streams:,} streams it fell behind and sent tokens in bunches, so that run "
                       f"measures the clients on bunched frames. It kept pace with {sustained:,} streams "
                       f"({sustained * args.tps:,.0f} frames/s), where both clients ran again.")
    return t


def main() -> int:
    args = parser().parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return 0
    with start_sim(1, "--latency", "realistic", "--tps", str(args.tps), "--ttft", str(args.ttft)) as sim_url:
        result = run(sim_url, args)
    return finish(result, args, table)


if __name__ == "__main__":
    raise SystemExit(main())
