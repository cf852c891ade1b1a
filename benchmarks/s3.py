"""S3 puts through the engine vs plain boto3 in a thread pool of the same width, in one run.

A moto S3 server (``python -m moto.server``) runs in its own process pinned to one core;
each client run is a fresh process pinned to the other core and sends N puts of SIZE bytes
with W in flight: ``client.s3.aput`` gathered (the S3 lane's concurrency is W), ``client.s3.put``
from a thread pool of W, and boto3's ``put_object`` from a thread pool of W with the same
client configuration (retries off, W pooled connections).  Each round runs every client
once, in an order that rotates from round to round; the ratio to boto3 is taken within each
round (neighbours in time share the machine's mood) and the median over the rounds decides
the bar (15 rounds by default: single rounds swing by ±25 %, more than the bar's 10 %).

    python benchmarks/s3.py                    # 200 puts of 64 KiB, width 16, 15 rounds
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _common import Table, cpu_note, finish, free_port, pin, rotated, round_ratios, run_child

ROOT = Path(__file__).resolve().parent.parent  # measure this checkout, not an installed copy
BUCKET = "bench"
CLIENTS = ["accel_nb aput", "accel_nb put", "boto3"]


@contextmanager
def start_moto(core: int) -> Iterator[str]:
    """moto's S3 server in its own process; yields its URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=lambda: pin(core))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def boto3_client(url: str, width: int) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1, "mode": "standard"},
                    request_checksum_calculation="when_required", response_checksum_validation="when_required",
                    max_pool_connections=width)
    return boto3.client("s3", endpoint_url=url, config=config)


def run(name: str, url: str, n: int, size: int, width: int) -> float:
    """Puts per second for ``n`` puts of ``size`` bytes with ``width`` in flight (after a warm-up)."""
    data = os.urandom(size)
    if name == "boto3":
        client = boto3_client(url, width)
        with concurrent.futures.ThreadPoolExecutor(width) as pool:
            def send(count: int, tag: str) -> None:
                list(pool.map(lambda i: client.put_object(Bucket=BUCKET, Key=f"{tag}/{i}", Body=data), range(count)))

            send(40, "warm")
            start = time.perf_counter()
            send(n, "run")
            return n / (time.perf_counter() - start)

    sys.path.insert(0, str(ROOT))
    import accel_nb

    home = tempfile.mkdtemp()
    client = accel_nb.Client({"providers": {"s3": {"endpoint_url": url, "concurrency": width}},
                              "ledger": {"path": os.path.join(home, "ledger.sqlite3")}})
    try:
        if name == "accel_nb aput":
            async def gathered(count: int, tag: str) -> None:
                await asyncio.gather(*(client.s3.aput(BUCKET, f"{tag}/{i}", data) for i in range(count)))

            def send(count: int, tag: str) -> None:
                asyncio.run(gathered(count, tag))
        else:
            pool = concurrent.futures.ThreadPoolExecutor(width)

            def send(count: int, tag: str) -> None:
                list(pool.map(lambda i: client.s3.put(BUCKET, f"{tag}/{i}", data), range(count)))

        send(40, "warm")
        start = time.perf_counter()
        send(n, "run")
        rate = n / (time.perf_counter() - start)
        rows = len(client.logs(n + 100))
    finally:
        client.close()
    assert rows >= n, f"the ledger holds {rows} rows, expected at least {n}"
    return rate


def measure(name: str, url: str, args: argparse.Namespace) -> float | None:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1"}
    found = run_child([__file__, "--child", name, "--url", url, "-n", str(args.n), "--size", str(args.size),
                       "--width", str(args.width)], env=env)
    return None if found is None else found["rate"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=200, help="puts per client and round (default 200)")
    p.add_argument("--size", type=int, default=64 * 1024, help="bytes per object (default 64 KiB)")
    p.add_argument("--width", type=int, default=16, help="puts in flight (default 16)")
    p.add_argument("--rounds", type=int, default=15,
                   help="rounds, clients alternating (default 15: single rounds swing by ±25 %%)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    return p


def table(result: dict[str, Any], args: argparse.Namespace) -> Table:
    rates, ratios = result["rates"], result["ratios"]
    rows = [[name, f"{statistics.median(rates[name]):,.0f}",
             f"{statistics.median(ratios[name]):.2f}×" if name in ratios else "1.00×",
             " ".join(f"{r:,.0f}" for r in rates[name])] for name in CLIENTS if rates[name]]
    t = Table(f"S3: {args.n} puts of {args.size // 1024} KiB, {args.width} in flight, against moto's server; "
              f"{args.rounds} rounds, the clients' order rotating; medians of the rounds' puts/s and of each round's "
              f"ratio to boto3. {cpu_note()}",
              ["client", "puts/s", "vs boto3", "each round"], rows)
    ours = [statistics.median(ratios[name]) for name in ("accel_nb aput", "accel_nb put") if ratios.get(name)]
    if ours:
        worst = min(ours)
        t.ratio("accel_nb / plain boto3, puts per second, worse of aput and put (median of rounds)", worst,
                "≥ 0.90×", worst >= 0.9)
    return t


def main() -> int:
    args = parser().parse_args()
    if args.child:
        pin(0)
        print(json.dumps({"rate": run(args.child, args.url, args.n, args.size, args.width)}))
        return 0

    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    rates: dict[str, list[float]] = {name: [] for name in CLIENTS}
    with start_moto(core=1) as url:
        os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
        boto3_client(url, 1).create_bucket(Bucket=BUCKET)
        for round_ in range(args.rounds):
            found = {name: measure(name, url, args) for name in rotated(CLIENTS, round_)}
            if None in found.values():
                return 1
            for name in CLIENTS:
                rates[name].append(found[name])
    ratios = {name: round_ratios(rates[name], rates["boto3"]) for name in CLIENTS[:2]}
    return finish({"rates": rates, "ratios": ratios}, args, table)


if __name__ == "__main__":
    raise SystemExit(main())
