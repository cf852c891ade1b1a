"""Shared by the benchmarks: core pinning, a simulator in its own process, tables."""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence


def pin(core: int) -> None:
    """Run this process on one core, when the machine has it (both sides get one each)."""
    if hasattr(os, "sched_setaffinity") and core in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {core})


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
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=preexec)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the simulator did not start: {proc.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def cpu_note() -> str:
    return f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}."


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")
