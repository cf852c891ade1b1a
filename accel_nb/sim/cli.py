"""``accel-nb sim`` / ``python -m accel_nb.sim``: run the simulator in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
import threading

from .server import DEFAULT_RPM, DEFAULT_TPM, serve

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The simulator's options, for any parser (the main ``accel-nb`` CLI reuses them)."""
    parser.add_argument("--port", type=_port, default=8750, help="port to listen on, 0 for any free one (default 8750)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--faults", default=None, metavar="SPEC", help='random faults, e.g. "429:0.1,529:0.05,reset:0.02"'
    )
    parser.add_argument("--latency", choices=("realistic", "zero"), default="realistic", help="zero: never sleep")
    parser.add_argument("--ttft", type=float, default=0.25, metavar="S", help="seconds to the first token (0.25)")
    parser.add_argument("--tps", type=float, default=80.0, metavar="N", help="tokens per second after it (80)")
    parser.add_argument("--seed", type=int, default=0, help="seed for answers and fault draws (0)")
    parser.add_argument("--require-key", default=None, metavar="KEY", help="accept only this API key")
    parser.add_argument("--rpm", type=int, default=None, help=f"requests per minute per key ({DEFAULT_RPM})")
    parser.add_argument("--tpm", type=int, default=None, help=f"tokens per minute per key ({DEFAULT_TPM})")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (0-65535; 0 picks a free one)")
    return port


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Serve until Ctrl-C (or until ``stop`` is set); 0 on a clean stop, 2 when it cannot start."""
    try:
        sim = serve(
            args.port,
            host=args.host,
            faults=args.faults,
            latency=args.latency,
            ttft_s=args.ttft,
            tokens_per_s=args.tps,
            seed=args.seed,
            require_key=args.require_key,
            rpm=args.rpm,
            tpm=args.tpm,
        )
    except (OSError, ValueError) as exc:
        print(f"accel-nb sim: cannot start: {exc}", file=sys.stderr)
        return 2
    try:
        urls = sim.base_urls
        width = max(map(len, urls))
        print(f"accel_nb simulator on {sim.url} (latency {args.latency}, faults: {args.faults or 'none'})")
        for provider, url in urls.items():
            print(f"  {provider:<{width}}  {url}")
        print(f"export ACCEL_NB_SIM_URL={sim.url}", flush=True)
        (stop or threading.Event()).wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0
