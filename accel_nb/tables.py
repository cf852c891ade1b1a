"""Plain-text tables for terminals and logs (the one place columns get aligned)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["text_table"]


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, right: bool = False) -> str:
    table = [list(map(str, header)), *[list(map(str, r)) for r in rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    pad = str.rjust if right else str.ljust
    return "\n".join("  ".join(pad(c, w) for c, w in zip(r, widths)).rstrip() for r in table)
