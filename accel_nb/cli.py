"""``accel-nb``: the simulator, the ledger, and what is configured — from a terminal."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from .tables import text_table

__all__ = ["format_rows", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="accel-nb", description="accel_nb from the command line.")
    commands = parser.add_subparsers(dest="command", required=True)

    from .sim import cli as sim_cli

    sim = commands.add_parser("sim", help="serve the local simulator of every supported API")
    sim_cli.add_arguments(sim)
    sim.set_defaults(run=sim_cli.run)

    logs = commands.add_parser("logs", help="show the newest requests from the ledger")
    logs.add_argument("-n", "--limit", type=int, default=20, help="how many rows (default 20)")
    logs.add_argument("--provider", help="only this provider")
    logs.add_argument("--errors", action="store_true", help="only failed requests")
    logs.add_argument("--batch", help="only this map() batch id")
    logs.add_argument("--json", action="store_true", help="one JSON object per line, every column")
    logs.set_defaults(run=_logs)

    providers = commands.add_parser("providers", help="list providers, base URLs and where their keys come from")
    providers.set_defaults(run=_providers)

    commands.add_parser("demo", help="compare every chat provider against the built-in simulator",
                        description="options: see accel-nb demo --help")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["demo"]:  # the demo parses its own options
        from .demo import main as demo

        return demo(argv[1:])

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from .errors import AccelError

        if isinstance(exc, AccelError):
            print(f"accel-nb: {exc}", file=sys.stderr)
            return 2
        raise


def _logs(args: argparse.Namespace) -> int:
    from .checks import number
    from .config import load_settings
    from .engine.ledger import SqliteLedger
    from .providers import parse_target

    number(args.limit, "-n/--limit", whole=True)  # (SQLite reads LIMIT -1 as no limit at all)
    settings = load_settings()
    if settings.ledger_path is None:
        print("accel-nb: the ledger is turned off in the config ([ledger] enabled = false)", file=sys.stderr)
        return 1
    provider = parse_target(args.provider)[0] if args.provider else None
    ledger = SqliteLedger(settings.ledger_path)
    try:
        rows = ledger.query(args.limit, provider=provider, errors=args.errors, batch_id=args.batch)
    finally:
        ledger.close()
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return 0
    if not rows:
        print(f"no requests recorded yet in {settings.ledger_path}")
        return 0
    print(format_rows(rows))
    return 0


def format_rows(rows: list[dict[str, Any]]) -> str:
    """A compact table of ledger rows, newest first (shared with ``%accel logs``)."""
    header = ["time", "target", "status", "latency", "ttft", "in", "out", "cost $", "tries"]
    table = []
    for row in rows:
        status = row["status"] if row["status"] == "ok" else (row["error_class"] or "error")
        table.append([
            time.strftime("%H:%M:%S", time.localtime(row["created_at"])),
            f"{row['provider']}:{row['model']}",
            ("cached" if row["cached"] else status),
            _fmt(row["latency_s"], "{:.2f}s"),
            _fmt(row["ttft_s"], "{:.2f}s"),
            _fmt(row["input_tokens"], "{}"),
            _fmt(row["output_tokens"], "{}"),
            _fmt(row["cost_usd"], "{:.5f}"),
            _fmt(row["attempts"], "{}"),
        ])
    return text_table(header, table)


def _fmt(value: Any, pattern: str) -> str:
    return "–" if value is None else pattern.format(value)


def _providers(args: argparse.Namespace) -> int:
    from .config import load_settings
    from .providers import adapters

    settings = load_settings()
    for pid, adapter in adapters().items():
        cfg = settings.providers[pid]
        if adapter.needs_key:
            keys = ", ".join(k.label for k in cfg.keys) or f"none (set {adapter.key_env[0]})"
        else:
            keys = "not needed"
        mark = "✅" if cfg.keys or not adapter.needs_key else "❌"
        print(f"{mark} {pid:<8} {cfg.base_url:<48} default {adapter.default_model:<26} keys: {keys}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
