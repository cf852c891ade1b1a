"""``%%accel`` (the cell body is the prompt) and ``%accel SUBCOMMAND``.

This module is what ``%load_ext accel_nb`` imports, so it imports only the standard library
and IPython; the engine (aiohttp, tenacity), the simulator and the renderers load on first use.
The ``Magics`` class is thin: it parses, then hands over to ``cell.run`` or ``commands.run``.
"""

from __future__ import annotations

import argparse
import json
import keyword
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand

__all__ = ["AccelMagics", "CellOptions", "load", "parse_cell_options", "parse_value", "unload"]

FORMATS = ("markdown", "text", "code", "json", "html", "math")
PRIORITIES = ("high", "normal", "low")


@dataclass
class CellOptions:
    """The parsed ``%%accel`` line."""

    targets: list[str] = field(default_factory=list)
    format: str = "markdown"
    insert: bool = False
    out: str | None = None
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    priority: str = "high"
    stream: bool = True
    cache: bool | None = None
    timeout: float | None = None
    chat: bool = False
    dry_run: bool = False
    help: bool = False


class _Parser(argparse.ArgumentParser):
    """argparse that reports a mistake as an IPython ``UsageError`` (one red line, no traceback)."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{self.prog}: {message}  (see `%accel help`)")

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        raise UsageError(message or f"{self.prog}: invalid arguments")


def parse_value(text: str) -> Any:
    """A ``-p key=value`` value, typed: ``true``/``false``, ``null``, int, float, JSON
    (``[…]``, ``{…}``, ``"…"``), else the string itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none"):
        return None
    if re.fullmatch(r"[-+]?\d+", text.strip()):
        return int(text)
    if re.fullmatch(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?|[-+]?(inf|nan)", text.strip()):
        return float(text)
    if text.strip()[:1] in ("[", "{", '"'):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} looks like JSON but is not valid: {exc}") from None
    return text


def _pair(kind: str, value_type: Any = parse_value):
    def parse(text: str) -> tuple[str, Any]:
        sep = "=" if "=" in text else ":" if kind == "header" and ":" in text else None
        if sep is None:
            raise argparse.ArgumentTypeError(f"a {kind} is written NAME=VALUE, not {text!r}")
        name, _, value = text.partition(sep)
        if not name.strip():
            raise argparse.ArgumentTypeError(f"a {kind} needs a name: {text!r}")
        return name.strip(), value_type(value.strip() if kind == "header" else value)

    parse.__name__ = kind
    return parse


def _number(kind: type, low: float | None = None, high: float | None = None, *, open_low: bool = False):
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            expected = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {expected}, not {text!r}") from None
        if low is not None and (value <= low if open_low else value < low):
            raise argparse.ArgumentTypeError(f"must be {'>' if open_low else '>='} {low:g}, not {text}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be <= {high:g}, not {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _build_cell_parser() -> _Parser:
    p = _Parser(prog="%%accel", usage="%(prog)s TARGET[,TARGET…] [options]", add_help=False, allow_abbrev=False,
                description=(
        "The cell body is the prompt, sent to each TARGET (provider or provider:model or an alias; "
        "several separated by commas) and streamed into the output."))
    p.add_argument("targets", nargs="*", metavar="TARGET[,TARGET…]",
                   help="e.g. claude, openai:gpt-4o-mini, an alias")
    p.add_argument("-f", "--format", choices=FORMATS, default=None,
                   help="how to show the answer (default markdown); code keeps the fence's language")
    p.add_argument("--insert", action="store_true",
                   help="put the answer's code into a new cell below (implies -f code)")
    p.add_argument("-o", "--out", metavar="NAME",
                   help="store the Response (or the error) in NAME; several targets: a dict")
    p.add_argument("--system", metavar="TEXT", help="system prompt ({name} references are filled in)")
    p.add_argument("--max-tokens", type=_number(int, 0, open_low=True), metavar="N", help="most tokens to generate")
    p.add_argument("--temperature", type=_number(float, 0.0, 2.0), metavar="T", help="sampling temperature, 0 to 2")
    p.add_argument("--top-p", type=_number(float, 0.0, 1.0), metavar="P", help="nucleus sampling, 0 to 1")
    p.add_argument("--stop", action="append", default=[], metavar="TEXT", help="stop sequence (repeatable)")
    p.add_argument("-p", "--param", action="append", default=[], type=_pair("param"), metavar="KEY=VALUE",
                   help="provider-specific field, typed: 3, 0.5, true, null, JSON, else text (repeatable)")
    p.add_argument("-H", "--header", action="append", default=[], type=_pair("header", str), metavar="NAME=VALUE",
                   help="extra HTTP header (repeatable)")
    p.add_argument("--priority", choices=PRIORITIES, default="high", help="queue priority (default high)")
    p.add_argument("--no-stream", dest="stream", action="store_false", help="wait for the whole answer")
    cache = p.add_mutually_exclusive_group()
    cache.add_argument("--cache", dest="cache", action="store_true", default=None, help="use the response cache")
    cache.add_argument("--no-cache", dest="cache", action="store_false", help="bypass the response cache")
    p.add_argument("--timeout", type=_number(float, 0.0, open_low=True), metavar="S",
                   help="give up after S seconds, queueing included")
    p.add_argument("-c", "--chat", action="store_true",
                   help="continue this target's conversation (`%%accel reset TARGET` forgets it)")
    p.add_argument("--dry-run", action="store_true", help="show the exact request (keys masked); send nothing")
    p.add_argument("-h", "--help", action="store_true", help="show this help")
    return p


_CELL_PARSER = _build_cell_parser()


def cell_help() -> str:
    return _CELL_PARSER.format_help().replace("%%accel reset", "%accel reset")


def split_line(line: str, prog: str = "%accel") -> list[str]:
    """Shell-like words; an unquoted ``#`` that starts a word begins a comment."""
    try:
        return shlex.split(_strip_comment(line), posix=True)
    except ValueError as exc:
        raise UsageError(f"{prog}: {exc} (check the quotes)") from None


def _strip_comment(line: str) -> str:
    quote, escaped = None, False
    for i, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def parse_cell_options(line: str) -> CellOptions:
    """The ``%%accel`` line as ``CellOptions``; ``UsageError`` for any mistake."""
    args = _CELL_PARSER.parse_intermixed_args(split_line(line, "%%accel"))
    opts = CellOptions(
        targets=_targets(args.targets),
        format=args.format or ("code" if args.insert else "markdown"),
        insert=args.insert,
        out=args.out,
        system=args.system,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        stop=args.stop,
        params=dict(args.param),
        headers=dict(args.header),
        priority=args.priority,
        stream=args.stream,
        cache=args.cache,
        timeout=args.timeout,
        chat=args.chat,
        dry_run=args.dry_run,
        help=args.help,
    )
    if opts.help:
        return opts
    if opts.insert and opts.format != "code":
        raise UsageError(f"%%accel: --insert puts code into a new cell, so it needs -f code, not -f {opts.format}")
    if opts.out is not None and (not opts.out.isidentifier() or keyword.iskeyword(opts.out)):
        raise UsageError(f"%%accel: -o needs a Python variable name, not {opts.out!r}")
    return opts


def _targets(tokens: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for token in ",".join(tokens).split(","):
        if token.strip():
            seen.setdefault(token.strip(), None)
    return list(seen)


@magics_class
class AccelMagics(Magics):
    """``%%accel TARGET[,TARGET…] [options]`` and ``%accel SUBCOMMAND`` (``%accel help``)."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        from .session import Session

        self.session = Session()

    @no_var_expand  # braces and $ in the line are ours to read, not IPython's to expand
    @line_cell_magic
    def accel(self, line: str, cell: str | None = None) -> None:
        from ..errors import AccelError

        try:
            if cell is None:
                from . import commands

                commands.run(self.shell, self.session, line)
            else:
                from . import cell as cell_runner

                cell_runner.run(self.shell, self.session, line, cell)
        except AccelError as exc:  # e.g. a config file that is not valid TOML: a card, not a traceback
            from IPython.display import display

            self.session.remember(exc, f"%{'%' if cell is not None else ''}accel {line.strip()}")
            display(self.session.error_card(exc), raw=True)


AccelMagics.accel.__doc__ = f"""Call AI APIs from a cell; `%accel help` for everything.

%%accel TARGET[,TARGET…] [options]   the cell body is the prompt

{cell_help()}
%accel help | list | keys | stats | logs | panel | dashboard | sim start|stop|status
       alias NAME TARGET | config [key [value]] | reset [TARGET] | error
"""


def load(ipython: Any) -> None:
    """Register the magics (``%load_ext accel_nb``); a reload replaces the old instance."""
    unload(ipython)
    ipython.register_magics(AccelMagics(ipython))


def unload(ipython: Any) -> None:
    manager = ipython.magics_manager
    old = manager.registry.pop(AccelMagics.__name__, None)
    for kind in ("line", "cell"):
        manager.magics[kind].pop("accel", None)
    if old is not None:
        from . import commands

        commands.shutdown(old.session)
