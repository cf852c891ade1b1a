"""Where accel_nb's own Python spends a request: bytecodes executed per request, by function.

``instructions.py`` counts a whole client process under callgrind (aiohttp, the interpreter and
the collector included) and takes minutes; this counts only the bytecodes of accel_nb's own
frames, every thread, with ``sys.settrace`` opcode events, and takes seconds.  Like the
instruction count it is the same from run to run, so it shows what a change to the engine's
hot path removed, function by function, before a timed benchmark could tell.  As there, each
figure is the difference of two run lengths over the difference in requests: start-up,
imports and warm-up cancel out.  A bytecode is not a unit of time (one may call into C that
takes a microsecond), so read it as a map of the Python work, not a cost.

    python benchmarks/bytecodes.py                 # chat, the top 30 functions
    python benchmarks/bytecodes.py --stream --top 50
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import threading
from pathlib import Path
from typing import Any

import overhead
from _common import Table, cpu_note, finish, pin, run_child, start_sim

import accel_nb

PACKAGE = str(Path(accel_nb.__file__).parent) + "/"
SIZES = (200, 600)  # requests of the two runs (after overhead.drive's own warm-up)
CONCURRENCY = 64


def child(args: argparse.Namespace) -> None:
    """One traced run: bytecodes and calls per accel_nb function, as JSON on the last line."""
    pin(0)
    ops: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        code = frame.f_code
        if not code.co_filename.startswith(PACKAGE):
            return None
        name = f"{code.co_filename[len(PACKAGE):]}:{getattr(code, 'co_qualname', code.co_name)}"
        calls[name] += 1  # (a coroutine or generator counts once per resumption)
        frame.f_trace_opcodes = True

        def opcode(frame: Any, event: str, arg: Any) -> Any:
            if event == "opcode":
                ops[name] += 1
            return opcode

        return opcode

    threading.settrace(tracer)
    sys.settrace(tracer)
    asyncio.run(overhead.run_client("accel_nb", args.base, args.stream, args.n, CONCURRENCY, verify=False))
    sys.settrace(None)
    print(json.dumps({"ops": ops, "calls": calls}))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stream", action="store_true", help="streaming requests (~20 frames) instead of plain ones")
    p.add_argument("--top", type=int, default=30, help="functions to list")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--base", help=argparse.SUPPRESS)
    p.add_argument("-n", type=int, help=argparse.SUPPRESS)
    return p


def table(result: dict[str, Any], args: argparse.Namespace) -> Table:
    rows = [[name, f"{ops:,.1f}", f"{result['calls'].get(name, 0):.2f}"]
            for name, ops in list(result["ops"].items())[: args.top]]
    mode = f"streams of ~{overhead.STREAM_TOKENS} frames" if args.stream else "plain requests"
    t = Table(f"accel_nb's own bytecodes per request ({mode}, concurrency {CONCURRENCY}), every thread: "
              f"{result['total']:,.0f} in all. {cpu_note()}", ["function", "bytecodes", "calls"], rows)
    t.notes.append("calls: entries into the function's frame per request; a coroutine counts each resumption.")
    return t


def main() -> int:
    args = parser().parse_args()
    if args.child:
        child(args)
        return 0
    with start_sim(core=1) as sim_url:
        runs = []
        for n in SIZES:
            argv = [__file__, "--child", "--base", sim_url + "/openai/v1", "-n", str(n)]
            found = run_child([*argv, "--stream"] if args.stream else argv)
            if found is None:
                return 1
            runs.append(found)
    extra = SIZES[1] - SIZES[0]
    few, many = runs
    ops = {name: (count - few["ops"].get(name, 0)) / extra for name, count in many["ops"].items()}
    ops = dict(sorted(((k, v) for k, v in ops.items() if v >= 0.5), key=lambda item: -item[1]))
    calls = {name: (many["calls"].get(name, 0) - few["calls"].get(name, 0)) / extra for name in ops}
    return finish({"total": sum(ops.values()), "ops": ops, "calls": calls}, args, table)


if __name__ == "__main__":
    raise SystemExit(main())
