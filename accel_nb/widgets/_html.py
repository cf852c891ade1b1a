"""Tiny HTML builders for the widgets' tables: everything that came from outside is escaped."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

__all__ = ["STYLE", "dot", "esc", "table"]

# One stylesheet for every panel; ipywidgets' HTML widget renders it in place.
STYLE = """<style>
.accel-table{border-collapse:collapse;font-size:12px;font-family:var(--jp-ui-font-family,sans-serif)}
.accel-table th{text-align:left;font-weight:600;padding:2px 8px;border-bottom:1px solid #ccc}
.accel-table td{padding:2px 8px;vertical-align:top}
.accel-table td.num{text-align:right;font-variant-numeric:tabular-nums}
.accel-dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:4px}
.accel-muted{color:#777}
.accel-answer{white-space:pre-wrap;font-size:12px;margin:0;max-height:24em;overflow:auto}
</style>"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def dot(colour: str, title: str) -> str:
    """A coloured health dot with its meaning as a tooltip (and for screen readers)."""
    return (
        f"<span class='accel-dot' style='background:{esc(colour)}' title='{esc(title)}' "
        f"role='img' aria-label='{esc(title)}' data-colour='{esc(colour)}'></span>"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "", numeric: Sequence[int] = ()) -> str:
    """Rows of already-escaped cell HTML under escaped headers; ``numeric`` columns align right."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    cell = "<td class='num'>{}</td>", "<td>{}</td>"
    body = "".join(
        "<tr>" + "".join(cell[i not in numeric].format(c) for i, c in enumerate(r)) + "</tr>" for r in rows
    )
    return f"<table class='accel-table {esc(cls)}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
