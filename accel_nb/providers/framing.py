"""Stream bodies cut into frames: Server-Sent Events (most APIs) and newline-delimited JSON (Ollama).

Both decoders take the body's bytes as the network delivers them and return the frames those
bytes complete, so a stream costs one Python step per read, not one per line: the lines are
found by ``bytes.split`` in C, and the usual SSE frame (a single ``data:`` line) skips the
field parser.  Text is decoded per frame, after the split, so a character cut in two by a read
boundary arrives whole.
"""

from __future__ import annotations

__all__ = ["Frame", "LineDecoder", "SSEDecoder", "decoder_for"]

Frame = tuple[str | None, str]  # (event name, data)


class SSEDecoder:
    """Feed it bytes; it returns the ``(event, data)`` of each event a blank line ended.

    Follows the WHATWG rules that matter here: lines end in LF, CRLF or CR; ``data`` lines
    join with ``\\n``; one leading space after the colon is dropped; ``:`` lines are comments;
    an event with no data is not dispatched.  A read that ends no event is only scanned and
    kept, so an event spread over many reads costs one join, not one per read.
    """

    __slots__ = ("_pending", "_cr")

    def __init__(self) -> None:
        self._pending: list[bytes] = []  # the reads since the last event ended, line ends made LF
        self._cr = False  # the last read ended in CR: perhaps the first half of a CRLF

    def feed(self, chunk: bytes) -> list[Frame]:
        if self._cr:
            chunk, self._cr = b"\r" + chunk, False
        if b"\r" in chunk:
            if chunk.endswith(b"\r"):
                chunk, self._cr = chunk[:-1], True
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        pending = self._pending
        if b"\n\n" not in chunk and not (pending and chunk[:1] == b"\n" and pending[-1].endswith(b"\n")):
            if chunk:
                pending.append(chunk)
            return []
        blocks = (b"".join(pending) + chunk if pending else chunk).split(b"\n\n")
        rest = blocks.pop()
        self._pending = [rest] if rest else []
        frames = []
        for block in blocks:
            if block.startswith(b"data: ") and b"\n" not in block:  # the usual frame: one data line
                frames.append((None, block[6:].decode("utf-8", "replace")))
            elif (frame := _event(block)) is not None:
                frames.append(frame)
        return frames

    def close(self) -> list[Frame]:
        """The last event of a stream that ended without a blank line."""
        rest = b"".join(self._pending) + (b"\n" if self._cr else b"")
        self._pending, self._cr = [], False
        return [frame for block in rest.split(b"\n\n") if (frame := _event(block)) is not None]


def _event(block: bytes) -> Frame | None:
    event, data = None, []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace")
    return (event, b"\n".join(data).decode("utf-8", "replace")) if data else None


class LineDecoder:
    """Feed it bytes; it returns each non-blank line they completed, as ``(None, line)``."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: list[bytes] = []  # the reads since the last line ended

    def feed(self, chunk: bytes) -> list[Frame]:
        if b"\n" not in chunk:
            if chunk:
                self._pending.append(chunk)
            return []
        lines = (b"".join(self._pending) + chunk if self._pending else chunk).split(b"\n")
        rest = lines.pop()
        self._pending = [rest] if rest else []
        return [(None, text) for line in lines if (text := line.decode("utf-8", "replace").strip())]

    def close(self) -> list[Frame]:
        text = b"".join(self._pending).decode("utf-8", "replace").strip()
        self._pending = []
        return [(None, text)] if text else []


def decoder_for(stream_format: str) -> SSEDecoder | LineDecoder:
    """A fresh decoder for an adapter's ``stream_format`` (``"sse"`` or ``"ndjson"``)."""
    return SSEDecoder() if stream_format == "sse" else LineDecoder()
