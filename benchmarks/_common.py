"""Shared by the benchmarks: core pinning, a simulator in its own process, tables."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


def pin(core: int) -> None:
    """Run this process on one core, when the machine has it (both sides get one each)."""
    if hasattr(os, "sched_setaffinity") and core in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {core})


def rotated(items: Sequence[T], round_: int) -> list[T]:
    """The clients' order in paired round ``round_``: each round starts one further along, so
    no client always runs right after the same other one."""
    turn = round_ % len(items) if items else 0
    return [*items[turn:], *items[:turn]]


def round_ratios(ours: Sequence[float | None], base: Sequence[float | None]) -> list[float]:
    """``ours / base`` within each paired round (neighbours in time share the machine's mood);
    a round in which either side failed (``None``) is left out."""
    return [a / b for a, b in zip(ours, base) if a and b]


def client_parser(doc: str | None, clients: Sequence[str]) -> argparse.ArgumentParser:
    """The command line of a benchmark that runs each client in child processes: ``--clients``,
    ``--json``, and the flags its parent passes a child (hidden)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", default=",".join(clients), help="comma-separated subset of " + ",".join(clients))
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--base", help=argparse.SUPPRESS)
    p.add_argument("-n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--stream", action="store_true", help=argparse.SUPPRESS)
    return p


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def start_sim(core: int | None = None, *extra: str) -> Iterator[str]:
    """``accel-nb sim`` in zero-latency mode in its own process; yields its URL.

    Its per-key rate limits are lifted: a throughput run must measure the client, not
    the client politely slowing down for the simulator's 10,000 requests a minute."""
    port = free_port()
    cmd = [sys.executable, "-m", "accel_nb.sim", "--port", str(port), "--latency", "zero",
           "--rpm", "1000000000", "--tpm", "1000000000000", *extra]
    preexec = (lambda: pin(core)) if core is not None else None
    # its stderr goes to a file: a pipe nobody reads would block the simulator once it filled
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, preexec_fn=preexec)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the simulator did not start: {_tail(log)}") from None
                time.sleep(0.05)
        yield url
        if proc.poll() is not None:
            raise RuntimeError(f"the simulator died during the run (exit {proc.returncode}): {_tail(log)}")
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def _tail(log: Any, size: int = 2000) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-size:]


def cpu_note() -> str:
    python, day = platform.python_version(), time.strftime("%Y-%m-%d")
    return f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {python}, {day}."


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, aligned so it reads as well in a terminal."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    return "\n".join(lines)


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    print(markdown_table(header, rows))


@dataclass
class Check:
    """One headline figure of a benchmark and the bar it is held to (``ok`` None: no bar set)."""

    measure: str
    value: float
    bar: str
    ok: bool | None
    fmt: str = "{:.2f}×"

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "–"}[self.ok]

    def row(self) -> list[str]:
        return [self.measure, self.fmt.format(self.value), self.bar, self.verdict]


@dataclass
class Table:
    """A benchmark's results as printed and as written to BENCHMARKS.md: title, table, notes and
    the headline checks that run_all.py gathers into one summary."""

    title: str
    header: Sequence[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict) -> Table:
        """A table back from its JSON form (``dataclasses.asdict``)."""
        return cls(**{**data, "checks": [Check(**c) for c in data["checks"]]})

    def ratio(self, measure: str, value: float, bar: str = "–", ok: bool | None = None, fmt: str = "{:.2f}×") -> None:
        self.checks.append(Check(measure, value, bar, ok, fmt))

    def markdown(self) -> str:
        parts = [self.title, "", markdown_table(self.header, self.rows)]
        if self.notes:
            parts += ["", *self.notes]
        if self.checks:
            parts += ["", *(f"- {c.measure}: **{c.row()[1]}** (bar: {c.bar}) {c.verdict}" for c in self.checks)]
        return "\n".join(parts)

    def print(self) -> None:
        print("\n" + self.markdown())


def finish(result: Any, args: Any, table: Any) -> int:
    """A benchmark's last step: its result as one line of JSON (``--json``, what run_all.py reads)
    or as its table."""
    if args.json:
        print(json.dumps(result))
    else:
        table(result, args).print()
    return 0


def run_child(args: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 900) -> dict | None:
    """``python ARGS`` in a fresh process; the JSON object on its last line of output, or None
    (with the end of its stderr shown) when it failed."""
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        print(f"  {' '.join(map(str, args[:3]))} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])
