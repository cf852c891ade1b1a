"""Incremental Server-Sent Events decoding (the subset LLM APIs use)."""

from __future__ import annotations

__all__ = ["SSEDecoder"]


class SSEDecoder:
    """Feed it lines; it returns ``(event, data)`` when a blank line ends an event.

    Follows the WHATWG rules that matter here: ``data`` lines join with ``\\n``,
    one leading space after the colon is dropped, ``:`` lines are comments, and
    an event with no data is not dispatched.
    """

    __slots__ = ("_event", "_data")

    def __init__(self) -> None:
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, line: str) -> tuple[str | None, str] | None:
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None
        name, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None

    def close(self) -> tuple[str | None, str] | None:
        """The last event of a stream that ended without a blank line."""
        return self._dispatch()

    def _dispatch(self) -> tuple[str | None, str] | None:
        event, data = self._event, self._data
        self._event, self._data = None, []
        return (event, "\n".join(data)) if data else None
