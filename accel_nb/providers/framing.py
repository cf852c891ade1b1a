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
    an event with no data is not dispatched.
    """

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, chunk: bytes) -> list[Frame]:
        buffer = self._rest + chunk if self._rest else chunk
        held = b""
        if b"\r" in buffer:
            if buffer.endswith(b"\r"):  # perhaps the first half of a CRLF: decide with the next read
                buffer, held = buffer[:-1], b"\r"
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        blocks = buffer.split(b"\n\n")
        self._rest = blocks.pop() + held
        frames = []
        for block in blocks:
            if block.startswith(b"data: ") and b"\n" not in block:  # the usual frame: one data line
                frames.append((None, block[6:].decode("utf-8", "replace")))
            elif (frame := _event(block)) is not None:
                frames.append(frame)
        return frames

    def close(self) -> list[Frame]:
        """The last event of a stream that ended without a blank line."""
        rest, self._rest = self._rest.replace(b"\r", b"\n"), b""
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

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, chunk: bytes) -> list[Frame]:
        lines = (self._rest + chunk if self._rest else chunk).split(b"\n")
        self._rest = lines.pop()
        return [(None, text) for line in lines if (text := line.decode("utf-8", "replace").strip())]

    def close(self) -> list[Frame]:
        rest, self._rest = self._rest, b""
        text = rest.decode("utf-8", "replace").strip()
        return [(None, text)] if text else []


def decoder_for(stream_format: str) -> SSEDecoder | LineDecoder:
    """A fresh decoder for an adapter's ``stream_format`` (``"sse"`` or ``"ndjson"``)."""
    return SSEDecoder() if stream_format == "sse" else LineDecoder()
