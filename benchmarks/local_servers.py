"""Engine overhead on the self-hosted servers' own protocols, against raw aiohttp, side by side in one run.

The same set-up as ``overhead.py`` (simulator in its own process on one core, each
client in a fresh process on the other, N requests at concurrency C) for each new wire
format: Ollama's NDJSON chat stream, vLLM's SSE completions stream, OPEA's ``b'…'``
frames and an LLVM inference, with OpenAI's chat stream (the hot path) as a reference.
Ratios are accel_nb (tracking and ledger on) over raw aiohttp parsing the same frames:
of requests per second, and of the client process's CPU time per request (which a
machine busy with other work disturbs far less).

    python benchmarks/local_servers.py              # 2000 requests each, concurrency 64
    python benchmarks/local_servers.py -n 300 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from typing import Any

from _common import Table, cpu_note, finish, pin, run_child, start_sim
from overhead import drive

from accel_nb.providers.opea import bytes_literal

TOKENS = 20
VLLM_MODEL = "meta-llama/Llama-3.2-1B-Instruct"
PROMPT = "Say something short about queues."
#: case -> (provider, path under its prefix, JSON body)
CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "openai stream (reference)": ("openai", "/chat/completions", {
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": TOKENS,
        "stream": True, "stream_options": {"include_usage": True}}),
    "ollama stream": ("ollama", "/api/chat", {"model": "llama3.2", "messages": [{"role": "user", "content": PROMPT}],
                                              "options": {"num_predict": TOKENS}}),
    "vllm generate stream": ("vllm", "/completions", {"model": VLLM_MODEL, "prompt": PROMPT, "max_tokens": TOKENS,
                                                      "stream": True, "stream_options": {"include_usage": True}}),
    "opea chatqna stream": ("opea", "/v1/chatqna", {"messages": PROMPT, "max_tokens": TOKENS}),
    "llvm infer": ("llvm", "/models/bert-base/infer", {"input": PROMPT}),
}


def _raw_frame(provider: str, line: bytes) -> None:
    """What a hand-written client must do with one line of each server's stream."""
    if provider == "ollama":
        json.loads(line)
    elif line.startswith(b"data: ") and line[6:12] != b"[DONE]":
        payload = line[6:].strip()
        if provider == "opea":
            bytes_literal(payload.decode())  # the adapter's own decoder: only the engine's cost differs
        else:
            json.loads(payload)


async def run(client: str, case: str, sim_url: str, n: int, concurrency: int) -> float:
    """Requests per second of ``client`` on ``case``."""
    provider, path, body = CASES[case]
    if client == "aiohttp":
        import aiohttp

        prefix = {"openai": "/openai/v1", "ollama": "/ollama", "vllm": "/vllm/v1", "opea": "/opea", "llvm": "/llvm"}
        url = sim_url + prefix[provider] + path
        data = json.dumps(body).encode()
        headers = {"content-type": "application/json", "authorization": "Bearer bench"}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def send() -> None:
                async with session.post(url, data=data, headers=headers) as resp:
                    if provider == "llvm":
                        json.loads(await resp.read())
                        return
                    async for line in resp.content:
                        if line.strip():
                            _raw_frame(provider, line)

            return await drive(send, n, concurrency)

    import accel_nb

    home = tempfile.mkdtemp()
    settings = {"sim_url": sim_url, "ledger": {"path": os.path.join(home, "ledger.sqlite3")},
                "providers": {provider: {"concurrency": concurrency}}}
    accel = accel_nb.Client(settings)

    async def send() -> None:
        if provider == "llvm":
            await accel.ainfer("llvm:bert-base", PROMPT)
        else:
            kind = "generate" if provider == "vllm" else "chat"
            async for _ in accel.astream(provider, PROMPT, kind=kind, max_tokens=TOKENS):
                pass

    try:
        return await drive(send, n, concurrency)
    finally:
        accel.close()


def child(args: argparse.Namespace) -> dict[str, float]:
    """Rate, and CPU microseconds per request over every request sent (warm-up included)."""
    pin(0)
    cpu = time.process_time()
    rate = asyncio.run(run(args.child, args.case, args.sim, args.n, args.concurrency))
    sent = args.n + 2 * min(200, args.n)  # overhead.drive warms up twice
    return {"rate": rate, "cpu_us": (time.process_time() - cpu) / sent * 1e6}


def measure(client: str, case: str, sim_url: str, n: int, concurrency: int) -> dict[str, float] | None:
    return run_child([__file__, "--child", client, "--case", case, "--sim", sim_url, "-n", str(n),
                      "-c", str(concurrency)])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=2000, help="requests per client and case")
    p.add_argument("-c", "--concurrency", type=int, default=64)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--sim", help=argparse.SUPPRESS)
    return p


def table(results: dict[str, dict[str, dict[str, float] | None]], args: argparse.Namespace) -> Table:
    rows = []
    t = Table(f"Self-hosted protocols: {args.n} requests at concurrency {args.concurrency}, ~{TOKENS} frames a "
              f"stream. {cpu_note()}", ["case", "accel_nb req/s", "aiohttp req/s", "ratio", "accel_nb CPU µs/req",
                                        "aiohttp CPU µs/req", "ratio"], rows)
    for case, found in results.items():
        ours, raw = found["accel_nb"], found["aiohttp"]
        if ours is None or raw is None:
            rows.append([case, "failed", "", "", "", "", ""])
            continue
        rows.append([case, f"{ours['rate']:,.0f}", f"{raw['rate']:,.0f}", f"{ours['rate'] / raw['rate']:.2f}x",
                     f"{ours['cpu_us']:,.0f}", f"{raw['cpu_us']:,.0f}", f"{raw['cpu_us'] / ours['cpu_us']:.2f}x"])
        t.ratio(f"{case}: CPU per request, aiohttp / accel_nb", raw["cpu_us"] / ours["cpu_us"])
    return t


def main() -> int:
    args = parser().parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return 0

    results: dict[str, dict[str, dict[str, float] | None]] = {}
    with start_sim(core=1) as sim_url:
        for case in CASES:
            results[case] = {c: measure(c, case, sim_url, args.n, args.concurrency) for c in ("accel_nb", "aiohttp")}
            print(f"  measured {case}: {results[case]}", file=sys.stderr)
    return finish(results, args, table)


if __name__ == "__main__":
    raise SystemExit(main())
