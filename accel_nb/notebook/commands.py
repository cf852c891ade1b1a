"""``%accel SUBCOMMAND``: help, list, keys, stats, logs, panel, dashboard, sim, alias, config,
reset, error.  Each subcommand is one function taking the parsed words; output goes through
``show`` as MIME bundles with a plain-text member.  No key value is ever rendered: only a
key's source and last four characters (``env:OPENAI_API_KEY …WXYZ``).
"""

from __future__ import annotations

import argparse
import difflib
import html
import json
import re
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError

from .magics import _Parser, parse_value, split_line
from .session import Session, key_labels, redact

__all__ = ["COMMANDS", "run", "shutdown"]

_SECRET_WORDS = ("key", "token", "secret", "password")
_ALIAS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def run(shell: Any, session: Session, line: str) -> None:
    words = split_line(line)
    if not words:
        return _help(shell, session, [])
    name, argv = words[0], words[1:]
    command = COMMANDS.get("help" if name in ("-h", "--help") else name)
    if command is None:
        raise UsageError(_unknown(name, session))
    command(shell, session, argv)


def shutdown(session: Session) -> None:
    """The extension is unloading: stop the simulator it started (and restore the client)."""
    if session.sim is not None:
        _sim_stop(session, quiet=True)


def show(bundle: dict[str, Any]) -> None:
    from IPython.display import display

    display(bundle, raw=True)


def _unknown(name: str, session: Session) -> str:
    close = difflib.get_close_matches(name, list(COMMANDS), n=1, cutoff=0.6)
    message = f"%accel: unknown subcommand {name!r}"
    if close:
        message += f" — did you mean `%accel {close[0]}`?"
    else:
        from ..errors import AccelError

        try:
            session.client().resolve(name)
            message += f" — to ask {name}, use the cell magic: `%%accel {name}` with the prompt below it"
        except AccelError:
            pass
    return message + f"\nsubcommands: {', '.join(COMMANDS)}"


def _parser(prog: str) -> _Parser:
    return _Parser(prog=f"%accel {prog}", add_help=False, allow_abbrev=False)


def _info(title: str, message: str, *, hint: str | None = None, tone: str = "info", facts: list[str] = ()) -> None:
    from .display import card

    show(card(title, message, hint=hint, tone=tone, facts=list(facts)))


# -- help -------------------------------------------------------------------------------------------

_HELP = """\
**accel_nb** — `%%accel TARGET[,TARGET…] [options]`: the cell body is the prompt; the answer streams in.

| | |
|---|---|
| `%%accel claude` | one target (`provider` or `provider:model` or an alias) |
| `%%accel claude,openai,gemini` | the same prompt to each, side by side, then a comparison table |
| `-f markdown\\|text\\|code\\|json\\|html\\|math` | how to show the answer; `--insert` puts code in a new cell |
| `-o NAME` | keep the `Response` (several targets: a dict) |
| `--system TEXT` `--max-tokens N` `--temperature T` `--top-p P` `--stop TEXT` | generation options |
| `-p key=value` | provider-specific field, typed (`3`, `0.5`, `true`, `null`, JSON, text); repeatable |
| `-H name=value` | extra HTTP header; repeatable |
| `--priority high\\|normal\\|low` | queue priority (default high: a cell never waits behind a batch) |
| `--no-stream` `--cache` `--no-cache` `--timeout S` | |
| `-c` / `--chat` | continue this target's conversation (kept in the kernel only) |
| `--dry-run` | show the exact request (keys masked), send nothing |

In the prompt, `{name}`, `{name.attr}`, `{name[0]}`, `{In[3]}`, `{Out[3]}` are filled in from
your variables; other braces (code, JSON, LaTeX) stay as written; `{{name}}` gives `{name}`.

| subcommand | |
|---|---|
| `%accel list` | providers, models, key status and where each key comes from |
| `%accel keys` | the key manager |
| `%accel stats` | live metrics per provider |
| `%accel logs [-n N] [--provider P] [--errors] [--json]` | recent requests from the ledger |
| `%accel panel` / `%accel dashboard` | the provider picker / every live panel |
| `%accel sim start\\|stop\\|status` | the local simulator for providers without a key |
| `%accel alias NAME TARGET` / `--delete NAME` | saved names for targets |
| `%accel config [key [value]]` / `--unset key` / `--reload` | the config file |
| `%accel reset [TARGET]` | forget conversations |
| `%accel error` | full detail of the last error |
"""


def _help(shell: Any, session: Session, argv: list[str]) -> None:
    from .display import markdown

    text = re.sub(r"\\\|", "|", _HELP)
    show(markdown(_HELP, text))


# -- providers and keys -----------------------------------------------------------------------------


def _key_status(client: Any, pid: str, adapter: Any) -> tuple[str, str]:
    keys = client.settings.providers[pid].keys
    if keys and all(k.source == "simulator" for k in keys):
        return "🧪", "simulator (no key needed)"
    if keys:
        return "✅", ", ".join(k.label for k in keys)
    if not adapter.needs_key:
        return "✅", "not needed"
    return "❌", f"none — set {' or '.join(adapter.key_env)}"


def _provider_rows(client: Any) -> list[list[str]]:
    from ..providers import adapters

    rows = []
    for pid, adapter in adapters().items():
        ps = client.settings.providers[pid]
        mark, source = _key_status(client, pid, adapter)
        default = ps.default_model or adapter.default_model
        models = ", ".join(m for m in ps.models if m != default)
        rows.append([f"{mark} {pid}", adapter.title, source, default, models, ps.base_url])
    return rows


def _list(shell: Any, session: Session, argv: list[str]) -> None:
    from .display import table_bundle

    _parser("list").parse_args(argv)
    client = session.client()
    header = ["provider", "API", "key (source)", "default model", "other models", "base URL"]
    show(table_bundle(header, _provider_rows(client), title="Providers — a target is provider or provider:model"))
    aliases = client.settings.aliases
    if aliases:
        show(table_bundle(["alias", "target"], sorted(aliases.items()), title="Aliases"))


def _keys(shell: Any, session: Session, argv: list[str]) -> None:
    _widget(session, "key_manager", "keys", "the key manager")


def _panel(shell: Any, session: Session, argv: list[str]) -> None:
    _widget(session, "panel", "panel", "the provider panel")


def _dashboard(shell: Any, session: Session, argv: list[str]) -> None:
    _widget(session, "dashboard", "dashboard", "the live dashboard")


def _widget(session: Session, factory: str, name: str, what: str) -> None:
    """Show one of ``accel_nb.widgets``' panels for the session's client; say what to install
    when ipywidgets is missing (plain nbclient / terminal IPython)."""
    from IPython.display import display

    try:
        from .. import widgets
    except ImportError:
        widgets = None
    try:
        panel = getattr(widgets, factory)(session.client()) if widgets else None
    except ImportError:
        panel = None
    if panel is None:
        _info(
            f"%accel {name}",
            f"{what} needs ipywidgets and plotly: pip install 'accel_nb[widgets]'",
            hint="meanwhile `%accel list` shows each key's source and `%accel stats` the metrics",
            tone="warning",
        )
        return
    display(panel)


# -- metrics and the ledger -------------------------------------------------------------------------


def _stats(shell: Any, session: Session, argv: list[str]) -> None:
    from IPython.display import display

    _parser("stats").parse_args(argv)
    display(session.client().stats())


def _logs(shell: Any, session: Session, argv: list[str]) -> None:
    from ..cli import format_rows

    p = _parser("logs")
    p.add_argument("-n", "--limit", type=int, default=20)
    p.add_argument("--provider")
    p.add_argument("--errors", action="store_true")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    client = session.client()
    try:
        rows = client.logs(args.limit, provider=args.provider, errors=args.errors)
    except Exception as exc:  # an unknown provider name, a locked ledger
        raise UsageError(f"%accel logs: {getattr(exc, 'message', exc)}") from None
    if args.json:
        text = "\n".join(json.dumps(row, ensure_ascii=False, default=str) for row in rows)
    else:
        text = format_rows(rows) if rows else "no requests recorded yet"
    text = redact(text, client)
    show({"text/html": f"<pre class='accel-nb-logs'>{html.escape(text)}</pre>", "text/plain": text})


# -- the simulator ------------------------------------------------------------------------------------


def _sim(shell: Any, session: Session, argv: list[str]) -> None:
    p = _parser("sim")
    p.add_argument("action", choices=("start", "stop", "status"), nargs="?", default="status")
    p.add_argument("--latency", choices=("realistic", "zero"), default="realistic")
    p.add_argument("--faults", help='e.g. "429:0.1,529:0.05"')
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args(argv)
    if args.action == "start":
        _sim_start(session, args)
    elif args.action == "stop":
        _sim_stop(session)
    else:
        _sim_status(session)


def _client_with(settings: Any) -> Any:
    from ..client import Client

    client = Client()
    client.settings = settings  # the engine starts on first use, from these settings
    return client


def _sim_start(session: Session, args: argparse.Namespace) -> None:
    from ..client import set_default_client
    from ..config import with_simulator
    from ..sim import serve

    if session.sim is not None or session.client().settings.sim_url:
        return _sim_status(session)  # already on a simulator: a second one would serve nobody
    try:
        server = serve(args.port, latency=args.latency, faults=args.faults)
    except (ValueError, OSError) as exc:
        raise UsageError(f"%accel sim start: {exc}") from None
    before = session.client().settings
    after = with_simulator(before, server.url)
    set_default_client(_client_with(after))
    session.sim, session.settings_before_sim = server, before
    simulated = [pid for pid in after.providers if after.providers[pid] is not before.providers[pid]]
    real = [pid for pid in after.providers if pid not in simulated]
    message = (
        f"SIMULATOR ON at {server.url} — {', '.join(simulated) or 'no provider'} now answer"
        " from the local simulator, not the real APIs (every footer says “simulator”)."
    )
    if real:
        message += f" Still real (a key, or a server you configured): {', '.join(real)}."
    _info("🧪 simulator started", message, hint="`%accel sim stop` restores the real APIs", tone="warning")


def _sim_stop(session: Session, *, quiet: bool = False) -> None:
    from ..client import set_default_client

    if session.sim is None:
        if not quiet:
            _info("simulator", "the simulator is not running (`%accel sim start` starts it)")
        return
    server, before = session.sim, session.settings_before_sim
    session.sim = session.settings_before_sim = None
    set_default_client(_client_with(before))
    server.stop()
    if not quiet:
        _info("simulator stopped", "every provider uses its real API again", tone="info")


def _sim_status(session: Session) -> None:
    from ..sim import fetch_stats

    client = session.client()
    simulated = sorted(session.simulated(client))
    if session.sim is None and not client.settings.sim_url:
        return _info("simulator", "no provider is simulated", hint="`%accel sim start` starts one")
    if session.sim is None:
        url, hint = client.settings.sim_url, "ACCEL_NB_SIM_URL points here; unset it to use the real APIs"
        try:
            stats = fetch_stats(url)
        except (OSError, ValueError) as exc:
            return _info("simulator", f"ACCEL_NB_SIM_URL is {url}, which does not answer: {exc}", tone="error")
    else:
        url, hint, stats = session.sim.url, "`%accel sim stop` restores the real APIs", session.sim.stats()
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(stats.get("requests", {}).items())) or "none yet"
    _info(
        "🧪 simulator running",
        f"{url} answers for {', '.join(simulated) or 'no provider'}; requests so far: {counts}",
        hint=hint,
        tone="warning",
    )


# -- aliases and the config file ----------------------------------------------------------------------


def _alias(shell: Any, session: Session, argv: list[str]) -> None:
    from ..config import config_path, read_config_file, write_config_file
    from ..errors import AccelError
    from ..providers import parse_target, resolve_provider
    from .display import table_bundle

    p = _parser("alias")
    p.add_argument("name", nargs="?")
    p.add_argument("target", nargs="?")
    p.add_argument("--delete", metavar="NAME")
    args = p.parse_args(argv)
    client = session.client()
    if args.delete:
        data = read_config_file()
        if args.delete not in data.get("aliases", {}) and args.delete not in client.settings.aliases:
            raise UsageError(f"%accel alias: there is no alias {args.delete!r}")
        data.get("aliases", {}).pop(args.delete, None)
        path = write_config_file(data)
        client.settings.aliases.pop(args.delete, None)
        return _info("alias deleted", f"{args.delete} (saved in {path})")
    if args.name is None:
        aliases = sorted(client.settings.aliases.items())
        if not aliases:
            return _info("aliases", "no aliases yet", hint="`%accel alias fast groq:llama-3.1-8b-instant` makes one")
        return show(table_bundle(["alias", "target"], aliases, title=f"Aliases (saved in {config_path()})"))
    if args.target is None:
        target = client.settings.aliases.get(args.name)
        return _info("alias", f"{args.name} → {target}" if target else f"there is no alias {args.name!r}")
    if not _ALIAS_NAME.fullmatch(args.name) or ":" in args.name or "," in args.name:
        raise UsageError(f"%accel alias: {args.name!r} is not a usable name (letters, digits, _ . - only)")
    try:
        resolve_provider(args.name)
        raise UsageError(f"%accel alias: {args.name!r} is already a provider name; pick another")
    except AccelError:
        pass
    try:
        parse_target(args.target)
    except AccelError as exc:
        raise UsageError(f"%accel alias: {exc.message}") from None
    data = read_config_file()
    data.setdefault("aliases", {})[args.name] = args.target
    path = write_config_file(data)
    client.settings.aliases[args.name] = args.target
    _info("alias saved", f"{args.name} → {args.target} (saved in {path}); use it as `%%accel {args.name}`")


def _config(shell: Any, session: Session, argv: list[str]) -> None:
    from ..config import config_path, read_config_file

    p = _parser("config")
    p.add_argument("key", nargs="?")
    p.add_argument("value", nargs="?")
    p.add_argument("--unset", action="store_true", help="remove KEY from the file")
    p.add_argument("--reload", action="store_true", help="apply the file (and the environment) now")
    args = p.parse_args(argv)
    if args.reload:
        return _reload(session)
    path = config_path()
    data = read_config_file(path)
    if args.key is None:
        return _show_config(path, data)
    parts = args.key.split(".")
    if not all(parts):
        raise UsageError(f"%accel config: {args.key!r} is not a setting name (e.g. retry.max_attempts)")
    if args.unset:
        return _set_config(session, path, data, parts, None, unset=True)
    if args.value is None:
        value = _lookup(data, parts)
        shown = "(not set in the file)" if value is _MISSING else _toml_value(_masked(parts[-1], value))
        return show({"text/plain": f"{args.key} = {shown}"})
    _set_config(session, path, data, parts, parse_value(args.value))


_MISSING = object()


def _lookup(data: Any, parts: list[str]) -> Any:
    for part in parts:
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


def _is_secret(name: str) -> bool:
    return any(word in name.lower() for word in _SECRET_WORDS)


def _masked(name: str, value: Any) -> Any:
    """``value`` with every string under a secret-looking name replaced by its mask."""
    from ..secret import mask

    if isinstance(value, dict):
        return {k: _masked(k, v) for k, v in value.items()}
    if _is_secret(name):
        if isinstance(value, str):
            return f"<{mask(value)}>"
        if isinstance(value, list):
            return [f"<{mask(v)}>" if isinstance(v, str) else v for v in value]
    if isinstance(value, list):
        return [_masked(name, v) for v in value]
    return value


def _toml_value(value: Any) -> str:
    import tomli_w

    if isinstance(value, dict):
        return "\n" + tomli_w.dumps(value)
    return tomli_w.dumps({"v": value})[4:].strip()


def _show_config(path: Any, data: dict[str, Any]) -> None:
    import tomli_w

    from .display import markdown

    if not data:
        return _info("config", f"no config file yet at {path}", hint="`%accel config retry.max_attempts 8` creates one")
    text = tomli_w.dumps(_masked("", data))
    show(markdown(f"`{path}` (keys masked)\n\n```toml\n{text}```", f"{path} (keys masked)\n{text}"))


def _set_config(
    session: Session, path: Any, data: dict[str, Any], parts: list[str], value: Any, *, unset: bool = False
) -> None:
    import copy

    from ..config import load_settings, write_config_file
    from ..errors import AccelError

    dotted = ".".join(parts)
    if any(_is_secret(p) for p in parts) and not unset:
        raise UsageError(
            f"%accel config: {dotted} holds a key, and a value typed here would be saved in the notebook. "
            "Put keys in the environment or a .env file, or use `%accel keys`."
        )
    new = copy.deepcopy(data)
    node = new
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UsageError(f"%accel config: {part} is a value, not a section")
        node = child
    if unset:
        if parts[-1] not in node:
            raise UsageError(f"%accel config: {dotted} is not set in {path}")
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    try:
        load_settings(file_config=new, environ={}, dotenv={})
    except AccelError as exc:
        raise UsageError(f"%accel config: {exc.message}") from None
    except (TypeError, ValueError) as exc:
        raise UsageError(f"%accel config: {dotted} = {value!r} is not valid: {exc}") from None
    write_config_file(new, path)
    if parts[0] == "aliases" and len(parts) == 2:
        aliases = session.client().settings.aliases
        aliases.pop(parts[1], None) if unset else aliases.__setitem__(parts[1], value)
    what = f"removed {dotted}" if unset else f"saved {dotted} = {_toml_value(value)}"
    _info("config", f"{what} in {path}", hint="`%accel config --reload` applies it now (or restart the kernel)")


def _reload(session: Session) -> None:
    """A fresh default client from the config file, environment and .env (the simulator stays on)."""
    from ..client import Client, set_default_client
    from ..config import with_simulator

    fresh = Client()
    if session.sim is not None:
        session.settings_before_sim = fresh.settings
        fresh.settings = with_simulator(fresh.settings, session.sim.url)
    set_default_client(fresh)
    _info("config", "reloaded the config file, environment and .env; the next request uses them")


# -- conversations and errors -----------------------------------------------------------------------


def _reset(shell: Any, session: Session, argv: list[str]) -> None:
    from ..errors import AccelError

    p = _parser("reset")
    p.add_argument("target", nargs="?")
    args = p.parse_args(argv)
    key = None
    if args.target:
        try:
            key = "{}:{}".format(*session.client().resolve(args.target))
        except AccelError as exc:
            raise UsageError(f"%accel reset: {exc.message}") from None
    forgotten = session.conversations.reset(key)
    if not forgotten:
        return _info("reset", f"there was no conversation with {key}" if key else "there were no conversations")
    listed = ", ".join(f"{k} ({n} {'turn' if n == 1 else 'turns'})" for k, n in forgotten.items())
    _info("reset", f"forgot the conversation with {listed}")


def _error(shell: Any, session: Session, argv: list[str]) -> None:
    from ..errors import AccelError
    from .display import markdown

    last = session.last_error
    if last is None:
        return _info("error", "no error so far in this kernel")
    client = session.client()
    exc = last.error
    fields = [("in", last.where), ("class", type(exc).__name__), ("message", getattr(exc, "message", str(exc)))]
    if isinstance(exc, AccelError):
        fields += [
            ("provider", exc.provider),
            ("HTTP status", exc.status),
            ("request id", exc.request_id),
            ("retryable", exc.retryable),
            ("retry after (s)", exc.retry_after_s),
            ("what to do", exc.hint),
        ]
        if exc.provider in client.settings.providers:
            fields.append(("keys", key_labels(client, exc.provider)))
    lines = [f"{name}: {redact(str(value), client)}" for name, value in fields if value is not None]
    text = "\n".join(lines) + "\n\n" + last.traceback
    md_rows = "\n".join(
        f"| {name} | {_cell(redact(str(value), client))} |" for name, value in fields if value is not None
    )
    show(markdown(f"| | |\n|---|---|\n{md_rows}\n\n```text\n{last.traceback}```", text))


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


COMMANDS: dict[str, Callable[[Any, Session, list[str]], None]] = {
    "help": _help,
    "list": _list,
    "keys": _keys,
    "stats": _stats,
    "logs": _logs,
    "panel": _panel,
    "dashboard": _dashboard,
    "sim": _sim,
    "alias": _alias,
    "config": _config,
    "reset": _reset,
    "error": _error,
}
