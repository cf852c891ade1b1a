"""Running one ``%%accel`` cell: fill in references, send to every target, render, remember."""

from __future__ import annotations

import json
from typing import Any

from IPython.core.error import UsageError

from .magics import CellOptions, cell_help, parse_cell_options
from .runner import Call, Outcome, Run
from .session import Session

__all__ = ["Interrupted", "run"]

_POLL_S = 0.05
_SECRET_HEADER_WORDS = ("authorization", "key", "token", "secret", "cookie", "password")


class Interrupted(KeyboardInterrupt):
    """A kernel interrupt during a cell: the cell stops (so "Run all" stops too), with one line
    instead of a traceback; the partial answer is already on screen."""

    def _render_traceback_(self) -> list[str]:
        return ["KeyboardInterrupt: stopped — the text received so far is kept above; the request was cancelled."]


def run(shell: Any, session: Session, line: str, body: str) -> None:
    opts = parse_cell_options(line)
    if opts.help:
        from IPython.display import display

        display({"text/plain": cell_help()}, raw=True)
        return
    client = session.client()
    if not opts.targets:  # the one chosen in the provider picker (`%accel panel`), if any
        if not client.settings.default_target:
            raise UsageError("%%accel needs a target, e.g. `%%accel claude` or `%%accel openai:gpt-4o-mini` "
                             "(`%accel list` shows the providers; `%accel panel` sets a default)")
        opts.targets = [client.settings.default_target]
    prompt = _fill(body.strip("\n").rstrip(), shell.user_ns, "the prompt")
    if not prompt.strip():
        raise UsageError("%%accel: the cell is empty — write the prompt on the lines below `%%accel TARGET`")
    system = _fill(opts.system, shell.user_ns, "--system") if opts.system else None
    calls = [_call(client, session, target, prompt, system, opts) for target in opts.targets]
    if opts.dry_run:
        _dry_run(client, session, calls)
        return
    outcomes = _run(shell, session, client, calls, opts)
    _after(shell, session, client, line, prompt, opts, outcomes)


# -- building the calls ----------------------------------------------------------------------------


def _fill(text: str, namespace: dict[str, Any], where: str) -> str:
    from .interpolate import InterpolationError, interpolate

    try:
        return interpolate(text, namespace)
    except InterpolationError as exc:
        hint = f" — did you mean {' or '.join(f'{{{s}}}' for s in exc.suggestions)}?" if exc.suggestions else ""
        raise UsageError(
            f"%%accel: {exc.message} (in {where}){hint}\n"
            f"To send the braces as written, double them ({{{{{exc.ref}}}}}) or put the text in a ``` code fence."
        ) from None


def _call(client: Any, session: Session, target: str, prompt: str, system: str | None, opts: CellOptions) -> Call:
    from ..errors import AccelError

    try:
        provider, model = client.resolve(target)
    except AccelError as exc:
        raise UsageError(f"%%accel: {exc.message}" + (f"\n→ {exc.hint}" if exc.hint else "")) from None
    label = f"{provider}:{model}"
    options: dict[str, Any] = {
        "system": system,
        "max_tokens": opts.max_tokens,
        "temperature": opts.temperature,
        "top_p": opts.top_p,
        "stop": (opts.stop[0] if len(opts.stop) == 1 else opts.stop) or None,
        "params": dict(opts.params) or None,
        "headers": dict(opts.headers) or None,
        "priority": opts.priority,
        "timeout": opts.timeout,
        "cache": opts.cache,
    }
    options = {k: v for k, v in options.items() if v is not None}
    # an alias names a target: send the resolved provider:model, so the model is pinned
    messages: Any = session.conversations.messages(label, prompt) if opts.chat else prompt
    return Call(target=label, label=label, provider=provider, prompt=messages, options=options, stream=opts.stream)


# -- running ------------------------------------------------------------------------------------------


def _run(shell: Any, session: Session, client: Any, calls: list[Call], opts: CellOptions) -> list[Outcome]:
    from .display import LiveView, Surface

    run_ = Run(client, calls)
    view = LiveView(
        Surface.for_shell(shell),
        run_.outcomes,
        opts.format,
        simulated=session.simulated(client),
        describe_error=lambda exc: session.error_card(exc, client),
    )
    interrupted = False
    try:
        view.start()
        run_.start()
        while not run_.done:
            run_.poll(_POLL_S)
            view.refresh()
    except KeyboardInterrupt:
        interrupted = True
        run_.cancel()
    view.finish()
    if interrupted:
        _store(shell, opts, run_.outcomes)
        raise Interrupted()
    return run_.outcomes


def _after(
    shell: Any, session: Session, client: Any, line: str, prompt: str, opts: CellOptions, outcomes: list[Outcome]
) -> None:
    for o in outcomes:
        if o.error is not None and o.response is None:
            session.remember(o.error, f"%%accel {line.strip()}", client)
            break
    if opts.chat:
        for o in outcomes:
            if o.response is not None:
                session.conversations.record(o.call.label, prompt, o.response.text)
    _store(shell, opts, outcomes)
    if opts.insert:
        from .display import extract_code

        for o in outcomes:
            if o.response is not None:
                shell.set_next_input(extract_code(o.response.text)[1], replace=False)
                break


def _store(shell: Any, opts: CellOptions, outcomes: list[Outcome]) -> None:
    """``-o NAME``: the Response (a partial one, ``finish_reason="interrupted"``, if the cell was
    interrupted), or the error in place of a failed answer — never a stale value from an
    earlier run; with several targets a dict keyed by target as written."""
    if not opts.out:
        return
    values = {target: _result(o) for target, o in zip(opts.targets, outcomes, strict=True)}
    values = {target: value for target, value in values.items() if value is not None}
    if len(outcomes) == 1:
        if values:
            shell.user_ns[opts.out] = values[opts.targets[0]]
        else:
            shell.user_ns.pop(opts.out, None)  # interrupted before any text: nothing to keep
        return
    shell.user_ns[opts.out] = values


def _result(o: Outcome) -> Any:
    if o.response is not None:
        return o.response
    if o.interrupted and o.parts:
        from ..types import Response

        return Response(
            text=o.text, provider=o.call.provider, model=o.call.label.partition(":")[2], request_id="",
            latency_s=o.elapsed(), finish_reason="interrupted",
        )
    return o.error


# -- dry run --------------------------------------------------------------------------------------------


def _dry_run(client: Any, session: Session, calls: list[Call]) -> None:
    from IPython.display import display

    from ..errors import AccelError

    for call in calls:
        try:
            display(_dry_run_bundle(client, call), raw=True)
        except AccelError as exc:
            session.remember(exc, f"%%accel {call.target} --dry-run", client)
            display(session.error_card(exc, client), raw=True)


def _dry_run_bundle(client: Any, call: Call) -> dict[str, str]:
    from ..providers import get_adapter
    from .display import markdown

    options = dict(call.options)
    meta = {name: options.pop(name, None) for name in ("priority", "timeout", "cache")}
    request = client._request("chat", call.target, call.prompt, {**options, "stream": call.stream})
    settings = client.settings.providers[request.provider]
    key = settings.keys[0] if settings.keys else None
    # the adapter builds with the key's masked label in its place: the real key is never read
    http = get_adapter(request.provider).build(request, settings.base_url, f"<{key.label}>" if key else None)
    http.headers.update(request.headers)  # as the engine does
    headers = {name: _mask_header(name, value, key) for name, value in http.headers.items()}
    cache = {None: "default" if not client.settings.cache else "on (client default)", True: "on", False: "off"}
    facts = [
        f"`{call.label}`",
        f"priority {meta['priority'] or 'normal'}",
        "streaming" if call.stream else "not streaming",
        f"timeout {meta['timeout']:g} s" if meta["timeout"] else "no timeout",
        f"cache {cache[meta['cache']]}",
    ]
    if len(settings.keys) > 1:
        facts.append(f"{len(settings.keys)} keys in the pool (the first is shown)")
    head = "\n".join(f"{name}: {value}" for name, value in headers.items())
    body = json.dumps(http.json, indent=2, ensure_ascii=False)
    summary = " · ".join(f.strip("`") for f in facts)
    text = f"Dry run — nothing was sent. {summary}\n{http.method} {http.url}\n{head}\n\n{body}"
    md = (
        f"**Dry run** — nothing was sent · {' · '.join(facts)}\n\n"
        f"````http\n{http.method} {http.url}\n{head}\n````\n\n````json\n{body}\n````"
    )
    return markdown(md, text)


def _mask_header(name: str, value: str, key: Any) -> str:
    if key is not None and f"<{key.label}>" in value:
        return value
    if any(word in name.lower() for word in _SECRET_HEADER_WORDS):
        from ..secret import mask

        return f"<hidden {mask(value)}>"
    return value
