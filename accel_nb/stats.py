"""``Stats``: the engine's live metrics as a plain dict that also renders as a table."""

from __future__ import annotations

import html
from typing import Any

from .tables import text_table

__all__ = ["Stats"]

_COLUMNS = (
    ("provider", "provider", "{}"),
    ("requests", "requests", "{}"),
    ("ok", "succeeded", "{}"),
    ("errors", "failed", "{}"),
    ("retries", "retries", "{}"),
    ("queued", "queued", "{}"),
    ("in flight", "in_flight", "{}"),
    ("p50 s", "latency_p50_s", "{:.3f}"),
    ("p95 s", "latency_p95_s", "{:.3f}"),
    ("TTFT p50 s", "ttft_p50_s", "{:.3f}"),
    ("tok/s", "tokens_per_s", "{:.0f}"),
    ("tokens in", "input_tokens", "{:,}"),
    ("tokens out", "output_tokens", "{:,}"),
    ("cost $", "cost_usd", "{:.4f}"),
)


class Stats(dict):
    """``{"providers": {id: {...}}, "queued": n, "waiting": n, "in_flight": n}``."""

    def rows(self) -> list[list[str]]:
        rows = []
        for pid, entry in self.get("providers", {}).items():
            row = []
            for _, key, fmt in _COLUMNS:
                value = pid if key == "provider" else entry.get(key)
                row.append("–" if value is None else fmt.format(value))
            rows.append(row)
        return rows

    def __str__(self) -> str:
        rows = self.rows()
        return text_table([title for title, _, _ in _COLUMNS], rows, right=True) if rows else "no requests yet"

    def _repr_html_(self) -> str:
        rows = self.rows()
        if not rows:
            return "<p>no requests yet</p>"
        head = "".join(f"<th>{html.escape(t)}</th>" for t, _, _ in _COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
        return f"<table class='accel-stats'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))
