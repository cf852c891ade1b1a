"""Rendering for the magics: live answers, footers, columns, comparison tables and error cards.

Every output is a MIME bundle with a ``text/plain`` member, so a front end without a
renderer (a terminal, a plain-text log) still reads it.  Two surfaces:

* ``rich`` (a Jupyter front end, or anything capturing display data): a display handle per
  output, updated at a bounded rate while an answer streams, Markdown rendered by the
  front end;
* ``text`` (IPython in a terminal): the answer is written to stdout as it arrives.

Nothing here knows about keys: callers pass labels (``env:OPENAI_API_KEY …WXYZ``), never values.
"""

from __future__ import annotations

import html
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from .runner import Outcome

__all__ = [
    "FORMATS",
    "LiveView",
    "Surface",
    "card",
    "close_open_fence",
    "comparison",
    "extract_code",
    "final_bundle",
    "footer",
    "html_table",
    "markdown",
    "plain",
]

FORMATS = ("markdown", "text", "code", "json", "html", "math")
CURSOR = "▍"
DASH = "\u2013"  # shown for a value that is not known

_FENCE_LINE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)$")
_FENCE_BLOCK = re.compile(
    r"^ {0,3}(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[^\s`]*)[^\n]*\n(?P<code>.*?)^ {0,3}(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_MATH_DELIMS = ((r"$$", r"$$"), (r"\[", r"\]"), (r"\(", r"\)"), ("$", "$"))
_MUTED = "opacity:0.72;font-size:0.86em;margin-top:4px"


# -- bundles --------------------------------------------------------------------------------


def plain(text: str) -> dict[str, str]:
    return {"text/plain": text}


def markdown(text: str, plain_text: str | None = None) -> dict[str, str]:
    return {"text/markdown": text, "text/plain": text if plain_text is None else plain_text}


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, cls: str = "accel-nb-table") -> str:
    head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td style='text-align:left'>{html.escape(str(c))}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def table_bundle(header: Sequence[str], rows: Sequence[Sequence[str]], *, title: str = "", cls: str = "") -> dict:
    from ..tables import text_table

    text = text_table(header, rows)
    caption = f"<div style='{_MUTED}'>{html.escape(title)}</div>" if title else ""
    return {
        "text/html": caption + html_table(header, rows, cls=cls or "accel-nb-table"),
        "text/plain": f"{title}\n{text}" if title else text,
    }


def card(
    title: str,
    message: str,
    *,
    facts: Sequence[str] = (),
    hint: str | None = None,
    more: str | None = None,
    tone: str = "error",
) -> dict[str, str]:
    """A compact styled message: what happened, where, what to do next (not a traceback)."""
    color = {"error": "#d73a49", "warning": "#e36209", "info": "#0366d6"}[tone]
    icon = {"error": "✖", "warning": "⚠", "info": "\u2139"}[tone]
    head = " · ".join([f"<b>{html.escape(title)}</b>", *map(html.escape, facts)])
    parts = [f"<div>{icon} {head}</div>", f"<div style='margin-top:2px'>{_inline_code(message)}</div>"]
    if hint:
        parts.append(f"<div style='margin-top:2px'>→ {_inline_code(hint)}</div>")
    if more:
        parts.append(f"<div style='{_MUTED}'>{_inline_code(more)}</div>")
    style = (
        f"border-left:4px solid {color};padding:6px 12px;margin:4px 0;"
        f"background:color-mix(in srgb, {color} 8%, transparent);border-radius:2px"
    )
    text = [f"{icon} {' · '.join([title, *facts])}", f"  {message}"]
    if hint:
        text.append(f"  → {hint}")
    if more:
        text.append(f"  {more}")
    return {
        "text/html": f"<div class='accel-nb-{tone}' style='{style}'>{''.join(parts)}</div>",
        "text/plain": "\n".join(text),
    }


def _inline_code(text: str) -> str:
    """Escape, then render `backticked` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


# -- the answer's formats ---------------------------------------------------------------------


def close_open_fence(text: str) -> str:
    """Close a code fence left open mid-stream so the partial Markdown renders (and stays
    inside its column)."""
    fence = None
    for line in text.splitlines():
        if fence is None:
            if m := _FENCE_LINE.match(line):
                if not (m.group("fence")[0] == "`" and "`" in m.group("info")):
                    fence = m.group("fence")
        else:
            stripped = line.strip()
            if len(stripped) >= len(fence) and set(stripped) == {fence[0]}:
                fence = None
    if fence is None:
        return text
    return text + ("" if text.endswith("\n") else "\n") + fence


def extract_code(text: str) -> tuple[str, str]:
    """``(language, code)`` from an answer: its fenced blocks in the first block's language,
    joined; the whole text when there is no fence."""
    blocks = list(_FENCE_BLOCK.finditer(text))
    if not blocks:
        return "", text.strip("\n")
    lang = blocks[0].group("lang")
    code = "\n\n".join(b.group("code").rstrip("\n") for b in blocks if b.group("lang") == lang)
    return lang, code


def _unfence(text: str) -> str:
    """The content of the first fenced block, or the text itself."""
    blocks = list(_FENCE_BLOCK.finditer(text))
    return blocks[0].group("code").rstrip("\n") if blocks else text.strip()


def _unmath(text: str) -> str:
    body = _unfence(text).strip()
    for start, end in _MATH_DELIMS:
        if body.startswith(start) and body.endswith(end) and len(body) > len(start) + len(end):
            return body[len(start) : -len(end)].strip()
    return body


def final_bundle(text: str, fmt: str) -> tuple[dict[str, Any], str | None]:
    """The finished answer in ``fmt``, and a note when it could not be shown as asked."""
    if fmt == "text":
        return plain(text), None
    if fmt == "code":
        lang, code = extract_code(text)
        return markdown(f"```{lang}\n{code}\n```", code), None
    if fmt == "json":
        body = _unfence(text)
        try:
            value = json.loads(body)
        except ValueError as exc:
            return markdown(f"```json\n{body}\n```", body), f"not valid JSON ({exc}); shown as text"
        pretty = json.dumps(value, indent=2, ensure_ascii=False)
        if isinstance(value, (dict, list)):
            return {"application/json": value, "text/plain": pretty}, None
        return markdown(f"```json\n{pretty}\n```", pretty), None
    if fmt == "html":
        body = _unfence(text) if text.lstrip().startswith(("```", "~~~")) else text
        return {"text/html": body, "text/plain": body}, None
    if fmt == "math":
        body = _unmath(text)
        return {"text/latex": f"$$\n{body}\n$$", "text/plain": body}, None
    return markdown(text), None


def column_markdown(text: str, fmt: str, *, live: bool) -> str:
    """One target's answer as Markdown for a column (every format has a Markdown form)."""
    if live:
        shown = close_open_fence(text + CURSOR) if fmt in ("markdown", "code") else f"```\n{text}{CURSOR}\n```"
        return shown if text else f"_waiting…_ {CURSOR}"
    if fmt == "code":
        lang, code = extract_code(text)
        return f"```{lang}\n{code}\n```"
    if fmt == "json":
        body = _unfence(text)
        try:
            body = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        except ValueError:
            pass
        return f"```json\n{body}\n```"
    if fmt == "math":
        return f"$$\n{_unmath(text)}\n$$"
    if fmt == "text":
        return f"```text\n{text}\n```"
    return close_open_fence(text)  # markdown and html (raw HTML passes through Markdown)


def columns(cells: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Answers side by side: an HTML table whose cells hold Markdown (separated by blank
    lines, so CommonMark renders it), with a plain-text version stacked."""
    width = f"{100 // max(1, len(cells))}%"
    cell_style = "text-align:left;vertical-align:top"
    head = "".join(f"<th style='text-align:left'>{html.escape(label)}</th>" for label, _ in cells)
    lines = [
        "<table class='accel-nb-columns' style='width:100%;table-layout:fixed'>",
        f"<tr>{head}</tr>",
        "<tr>",
    ]
    for _, body in cells:
        lines += [f"<td valign='top' width='{width}' style='{cell_style}'>", "", body.strip("\n") or "…", "", "</td>"]
    lines += ["</tr>", "</table>"]
    text = "\n\n".join(f"── {label} ──\n{body.strip()}" for label, body in cells)
    return markdown("\n".join(lines), text)


# -- footers and tables --------------------------------------------------------------------------


def seconds(value: float | None) -> str:
    if value is None:
        return DASH
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def money(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == 0:
        return "$0"
    return f"${value:.5f}" if value < 0.01 else f"${value:.4f}" if value < 1 else f"${value:.2f}"


def footer_fields(outcome: Outcome, *, simulated: bool = False) -> list[str]:
    """``provider:model · latency · TTFT · tokens in/out · cost · retries · cached``."""
    r = outcome.response
    label = r.target if r is not None else outcome.call.label
    if r is None:
        fields = [label, f"interrupted after {seconds(outcome.elapsed())}"]
        if outcome.parts:
            fields.append(f"kept {len(outcome.text):,} characters received so far")
        fields.append("request cancelled")
    else:
        approx = "≈" if r.usage.estimated else ""
        fields = [
            label,
            seconds(r.latency_s),
            f"TTFT {seconds(r.ttft_s)}",
            f"{approx}{r.usage.input_tokens:,} in / {approx}{r.usage.output_tokens:,} out tokens",
            money(r.cost_usd) if r.cost_usd is not None else "cost n/a",
        ]
        retries = max(0, (r.attempts or 1) - 1)
        if retries:
            fields.append(f"{retries} {'retry' if retries == 1 else 'retries'}")
        if r.cached:
            fields.append("cached")
    if simulated:
        fields.append("simulator")
    return fields


def footer(outcome: Outcome, *, simulated: bool = False, note: str | None = None) -> dict[str, str]:
    fields = footer_fields(outcome, simulated=simulated)
    if note:
        fields.append(note)
    text = " · ".join(fields)
    return {"text/html": f"<div class='accel-nb-footer' style='{_MUTED}'>{html.escape(text)}</div>", "text/plain": text}


_COMPARE = ("target", "status", "latency", "TTFT", "tokens in", "tokens out", "tok/s", "cost", "finish", "retries")


def comparison(outcomes: Sequence[Outcome], *, simulated: set[str] = frozenset()) -> dict[str, str]:
    """One row per target: latency, TTFT, tokens, cost, finish reason."""
    rows = []
    for o in outcomes:
        r = o.response
        label = r.target if r is not None else o.call.label
        if o.call.provider in simulated:
            label += " (sim)"
        if r is None:
            status = "interrupted" if o.interrupted else type(o.error).__name__ if o.error else DASH
            rows.append([label, status, seconds(o.elapsed()), DASH, DASH, DASH, DASH, DASH, DASH, DASH])
            continue
        tps = DASH
        if r.ttft_s is not None and r.latency_s > r.ttft_s and r.usage.output_tokens:
            tps = f"{r.usage.output_tokens / (r.latency_s - r.ttft_s):.0f}"
        approx = "≈" if r.usage.estimated else ""
        rows.append([
            label,
            "cached" if r.cached else "ok",
            seconds(r.latency_s),
            seconds(r.ttft_s),
            f"{approx}{r.usage.input_tokens:,}",
            f"{approx}{r.usage.output_tokens:,}",
            tps,
            money(r.cost_usd),
            r.finish_reason or DASH,
            str(max(0, r.attempts - 1)),
        ])
    return table_bundle(_COMPARE, rows, cls="accel-nb-compare")


def status(outcomes: Sequence[Outcome], now: float) -> dict[str, str]:
    """The live line under a streaming answer."""
    marks = {"waiting": "○", "streaming": "●", "done": "✓", "error": "✖", "interrupted": "■"}
    fields = []
    for o in outcomes:
        state = o.state
        waiting = o.note or ("waiting for the first token" if o.call.stream else "waiting for the answer")
        what = {"waiting": waiting, "streaming": f"streaming, {len(o.text):,} chars"}.get(state, state)
        fields.append(f"{marks[state]} {o.call.label} · {what} · {seconds(o.elapsed(now))}")
    text = "   ".join(fields)
    return {"text/html": f"<div class='accel-nb-status' style='{_MUTED}'>{html.escape(text)}</div>", "text/plain": text}


# -- surfaces ------------------------------------------------------------------------------------


class Surface:
    """Where output goes: display handles (``rich``) or stdout (``text``)."""

    def __init__(self, rich: bool) -> None:
        self.rich = rich

    @classmethod
    def for_shell(cls, shell: Any) -> Surface:
        """Rich unless the shell's display publisher is IPython's plain one (a terminal)."""
        from IPython.core.displaypub import DisplayPublisher

        pub = getattr(shell, "display_pub", None)
        return cls(rich=pub is not None and type(pub) is not DisplayPublisher)

    def show(self, bundle: dict[str, Any]) -> Any:
        from IPython.display import display

        if self.rich:
            return display(bundle, raw=True, display_id=True)
        display(bundle, raw=True)
        return None

    def update(self, handle: Any, bundle: dict[str, Any]) -> None:
        if handle is not None:
            handle.update(bundle, raw=True)

    def write(self, text: str) -> None:
        stream = sys.stdout
        stream.write(text)
        stream.flush()


def refresh_interval(chars: int) -> float:
    """Seconds between redraws: 10 per second, fewer for long answers (each redraw resends it)."""
    return 0.1 if chars < 20_000 else 0.25 if chars < 100_000 else 0.5


class LiveView:
    """The outputs of one ``%%accel`` cell while it runs, and when it ends."""

    def __init__(
        self,
        surface: Surface,
        outcomes: list[Outcome],
        fmt: str,
        *,
        simulated: set[str],
        describe_error: Callable[[BaseException], dict[str, str]],
    ) -> None:
        self.surface = surface
        self.outcomes = outcomes
        self.fmt = fmt
        self.simulated = simulated
        self.describe_error = describe_error
        self.single = len(outcomes) == 1
        self._body: Any = None
        self._status: Any = None
        self._last_draw = 0.0
        self._drawn_chars = -1
        self._notes: tuple[Any, ...] = ()
        self._written = 0  # text mode: characters of the single answer already printed
        self._printed: set[int] = set()  # text mode, several targets: answers already printed

    # -- while running ------------------------------------------------------------------------
    def start(self) -> None:
        if self.surface.rich:
            self._body = self.surface.show(self._live_body())
            self._status = self.surface.show(status(self.outcomes, time.monotonic()))
        elif not self.single:
            self.surface.write("asking " + ", ".join(o.call.label for o in self.outcomes) + " …\n")

    def refresh(self) -> None:
        """Redraw if enough time has passed (text mode: print what is new, at once)."""
        if not self.surface.rich:
            self._write_text()
            return
        now = time.monotonic()
        chars = sum(len(o.text) for o in self.outcomes)
        notes = tuple((o.note, o.state) for o in self.outcomes)
        changed = chars != self._drawn_chars
        due = now - self._last_draw >= (refresh_interval(chars) if changed or notes != self._notes else 0.5)
        if not due:
            return
        if changed:
            self.surface.update(self._body, self._live_body())
            self._drawn_chars = chars
        self.surface.update(self._status, status(self.outcomes, now))
        self._last_draw, self._notes = now, notes

    def _live_body(self) -> dict[str, str]:
        if self.single:
            o = self.outcomes[0]
            if not o.text:
                return plain("")
            if self.fmt in ("markdown", "code"):
                return markdown(close_open_fence(o.text + CURSOR), o.text)
            return markdown(f"```\n{o.text}{CURSOR}\n```", o.text)
        return columns([(o.call.label, self._column(o, live=not o.finished)) for o in self.outcomes])

    def _column(self, o: Outcome, *, live: bool) -> str:
        if o.response is not None or (o.text and not live):
            return column_markdown(o.text, self.fmt, live=False) + ("\n\n_(interrupted)_" if o.interrupted else "")
        if o.error is not None:
            return f"**✖ {type(o.error).__name__}**: {getattr(o.error, 'message', str(o.error))}"
        if o.interrupted:
            return "_(interrupted before the first token)_"
        return column_markdown(o.text, self.fmt, live=True)

    def _write_text(self) -> None:
        if self.single:
            text = self.outcomes[0].text
            if len(text) > self._written:
                self.surface.write(text[self._written :])
                self._written = len(text)
            return
        for i, o in enumerate(self.outcomes):
            if o.finished and i not in self._printed and (o.text or o.response is not None):
                self._printed.add(i)
                suffix = " (interrupted)" if o.interrupted else ""
                self.surface.write(f"\n── {o.call.label}{suffix} ──\n{o.text}\n")

    # -- at the end --------------------------------------------------------------------------
    def finish(self) -> str | None:
        """Final rendering; returns a note about the format (e.g. invalid JSON) if any."""
        return self._finish_rich() if self.surface.rich else self._finish_text()

    def _finish_rich(self) -> str | None:
        note = None
        if self.single:
            o = self.outcomes[0]
            if o.response is not None:
                body, note = final_bundle(o.text, self.fmt)
            else:
                body = markdown(close_open_fence(o.text), o.text) if o.text else plain("")
            self.surface.update(self._body, body)
            if o.error is not None and o.response is None:
                self.surface.update(self._status, self.describe_error(o.error))
            else:
                self.surface.update(self._status, footer(o, simulated=o.call.provider in self.simulated, note=note))
            return note
        self.surface.update(self._body, columns([(o.call.label, self._column(o, live=False)) for o in self.outcomes]))
        self.surface.update(self._status, comparison(self.outcomes, simulated=self.simulated))
        for o in self.outcomes:
            if o.error is not None and o.response is None and not o.interrupted:
                self.surface.show(self.describe_error(o.error))
        return None

    def _finish_text(self) -> str | None:
        self._write_text()
        if self.single:
            o = self.outcomes[0]
            if o.text and not o.text.endswith("\n"):
                self.surface.write("\n")
            if o.error is not None and o.response is None:
                self.surface.show(self.describe_error(o.error))
            else:
                self.surface.write(footer(o, simulated=o.call.provider in self.simulated)["text/plain"] + "\n")
            return None
        for o in self.outcomes:
            if o.error is not None and o.response is None and not o.interrupted:
                self.surface.show(self.describe_error(o.error))
        self.surface.write("\n")
        self.surface.show(comparison(self.outcomes, simulated=self.simulated))
        return None
