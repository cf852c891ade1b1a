"""Engine throughput with the dashboard open and updating vs without it, side by side in one run.

Two headless IPython kernels (jupyter_client) run the overhead benchmark's workload (N
requests at concurrency C, plain or streaming) against the simulator (zero latency, on
the other core) at the same time, with all their threads on the same core: one with
``accel_nb.dashboard()`` displayed and updating (opened and settled first, so that both
measurements start together and share the core from end to end), one without.  Sharing one
core at the same moment, both meet the same interference from whatever else runs on the machine, so
the ratio of their costs is the dashboard's, not the machine's mood; the kernels take turns
showing it, so neither one's own speed decides the ratio.  The figure is the
ratio of kernel CPU time per request (what bounds a kernel's throughput on a core of its
own); each kernel's request rate while sharing is shown beside it.  The driver reads both
kernels' iopub like a front end would, so every widget message is serialized and sent (the
renders and messages columns count those made while measuring).

    python benchmarks/dashboard.py                  # 3000 requests, concurrency 64, 16 rounds per mode
    python benchmarks/dashboard.py -n 1000 --rounds 2 --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
from pathlib import Path

from _common import Table, cpu_note, finish, start_sim

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

SETUP = """
import os, sys, json, time
if 0 in os.sched_getaffinity(0):  # every thread of both kernels on core 0 (new ones inherit it)
    for tid in os.listdir("/proc/self/task"):
        os.sched_setaffinity(int(tid), {{0}})
sys.path.insert(0, {bench!r})
from overhead import drive, MODEL, PROMPT, STREAM_TOKENS
from IPython.display import display
import accel_nb
client = accel_nb.Client({{"providers": {{"openai": {{"base_url": {base!r}, "concurrency": {c}}}}}}},
                         keys={{"openai": "bench-key-0000"}})
accel_nb.set_default_client(client)
board = None

async def send():
    if {stream}:
        async for _ in client.astream("openai:" + MODEL, PROMPT, max_tokens=STREAM_TOKENS):
            pass
    else:
        await client.achat("openai:" + MODEL, PROMPT, max_tokens=16)
"""
# opened, shown a few requests (a provider's first answers add its traces to the charts) and given
# time to settle (first draws, the model-list call): what is measured is the dashboard's steady state
OPEN = """
board = accel_nb.dashboard(client)
display(board)
import asyncio
for _ in range(4):
    await asyncio.gather(*(send() for _ in range(8)))
    await asyncio.sleep(0.5)
"""
MEASURE = """
import gc
gc.collect()  # both kernels start from a collected heap: building the dashboard's widgets is not its upkeep
feed = board.queue.feed if board is not None else None
start = (feed.renders, feed.render_cpu_s) if feed else (0, 0.0)  # renders are counted while measuring
cpu = time.process_time()
rate = await drive(send, {n}, {c})
cpu_per_request = (time.process_time() - cpu) / ({n} + 2 * min(200, {n}))  # drive() warms up with up to 400
renders, render_cpu = (feed.renders - start[0], feed.render_cpu_s - start[1]) if feed else (0, 0.0)
if board is not None:
    board.close()  # the last panel closed: the feed unsubscribes from the tracker
    board = None
print("RESULT " + json.dumps({{"rate": rate, "cpu": cpu_per_request, "renders": renders, "render_cpu": render_cpu}}))
"""


class Kernel:
    """A headless kernel running this checkout's accel_nb; ``run`` returns one RESULT."""

    def __init__(self, setup: str) -> None:
        from jupyter_client.manager import start_new_kernel

        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "ACCEL_NB_HOME": tempfile.mkdtemp(prefix="accel-bench-"), "PYTHONPATH": path}
        self.manager, self.client = start_new_kernel(kernel_name="python3", env=env)
        self.run(setup)

    def run(self, code: str) -> dict:
        found: dict = {"comm_msgs": 0}

        def on_output(msg: dict) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "comm_msg":
                found["comm_msgs"] += 1
            elif kind == "stream" and "RESULT " in content["text"]:
                found.update(json.loads(content["text"].split("RESULT ", 1)[1]))
            elif kind == "error":
                raise RuntimeError("the kernel run failed:\n" + "\n".join(content["traceback"])[-3000:])

        self.client.execute_interactive(code, output_hook=on_output, timeout=900)
        return found

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def measure_mode(base: str, stream: bool, n: int, concurrency: int, rounds: int) -> list[tuple[dict, dict]]:
    """``rounds`` (without, with dashboard) pairs, each pair measured at the same time.  The two
    kernels swap roles every round: one process can run a steady 10-20 % slower than its twin
    (where its memory landed, which core cache it shares), and that must not read as the
    dashboard's cost."""
    setup = SETUP.format(bench=str(HERE), base=base, c=concurrency, stream=stream)
    kernels = Kernel(setup), Kernel(setup)
    measure = MEASURE.format(n=n, c=concurrency)
    pairs = []
    try:
        for round_ in range(rounds):
            plain, shown = kernels if round_ % 2 == 0 else kernels[::-1]
            shown.run(OPEN)  # first, so that both measurements start together and share the core throughout
            result: dict[str, dict] = {}
            sides = [threading.Thread(target=lambda r=result, k=plain: r.update(off=k.run(measure))),
                     threading.Thread(target=lambda r=result, k=shown: r.update(on=k.run(measure)))]
            for side in sides:
                side.start()
            for side in sides:
                side.join()
            if set(result) != {"off", "on"}:
                raise RuntimeError("a kernel run failed (see above)")
            off, on = result["off"], result["on"]
            pairs.append((off, on))
            print(f"  {'stream' if stream else 'chat'} round {round_ + 1}: {off['cpu'] * 1e6:.0f} µs/request "
                  f"without, {on['cpu'] * 1e6:.0f} with the dashboard ({on['renders']} renders, {on['comm_msgs']} "
                  f"widget messages): {off['cpu'] / on['cpu']:.3f}×", file=sys.stderr)
    finally:
        for kernel in kernels:
            kernel.close()
    return pairs


def _summary(pairs: list[tuple[dict, dict]]) -> dict[str, float]:
    """Medians over the rounds: the CPU-per-request ratio (the figure), rates, renders."""
    med = statistics.median
    return {
        "ratio": med(off["cpu"] / on["cpu"] for off, on in pairs),
        "cpu_us_off": med(off["cpu"] for off, _ in pairs) * 1e6,
        "cpu_us_on": med(on["cpu"] for _, on in pairs) * 1e6,
        "off": med(off["rate"] for off, _ in pairs),
        "on": med(on["rate"] for _, on in pairs),
        "renders": med(on["renders"] for _, on in pairs),
        "render_ms": med(on["render_cpu"] for _, on in pairs) * 1000,
        "widget_messages": med(on["comm_msgs"] for _, on in pairs),
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=3000, help="requests per measurement")
    p.add_argument("-c", "--concurrency", type=int, default=64)
    p.add_argument("--rounds", type=int, default=16, help="side-by-side rounds per mode (even: each kernel "
                   "shows the dashboard as often as the other)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    return p


def table(summary: dict[str, dict[str, float]], args: argparse.Namespace) -> Table:
    rows = [[mode, f"{s['cpu_us_off']:.0f} / {s['cpu_us_on']:.0f}", f"{s['ratio']:.3f}×",
             f"{s['off']:,.0f} / {s['on']:,.0f}", f"{s['renders']:.0f} ({s['render_ms']:.0f} ms CPU)",
             f"{s['widget_messages']:.0f}"] for mode, s in summary.items()]
    t = Table(f"Dashboard overhead: {args.n} requests at concurrency {args.concurrency}, two headless kernels "
              f"side by side on one core, medians of {args.rounds} rounds. {cpu_note()}",
              ["mode", "kernel CPU µs/request without / with", "throughput ratio", "req/s sharing the core",
               "renders", "widget messages"], rows)
    worst = min(s["ratio"] for s in summary.values())
    t.ratio("throughput with the dashboard open / without, worse of chat and stream", worst, "≥ 0.95×",
            worst >= 0.95, "{:.3f}×")
    return t


def main() -> int:
    args = parser().parse_args()
    # no simulated rate limit: thousands of requests a run, many runs a minute, one key
    with start_sim(1, "--rpm", "1000000000", "--tpm", "1000000000000") as sim_url:
        base = sim_url + "/openai/v1"
        runs = {mode: measure_mode(base, mode == "stream", args.n, args.concurrency, args.rounds)
                for mode in ("chat", "stream")}
    return finish({mode: _summary(pairs) for mode, pairs in runs.items()}, args, table)


if __name__ == "__main__":
    raise SystemExit(main())
