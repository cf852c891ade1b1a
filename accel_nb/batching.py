"""A list of inputs longer than a server takes at once: split it, send the parts, join the answers.

TEI refuses more than ``max_client_batch_size`` texts (from its ``/info``) or a body
over its payload limit in one request; a caller should not have to care.  ``split``
cuts the list into parts within the adapter's ``BatchLimits``; ``gather`` runs on the
engine loop and sends each part as an ordinary job — same queue, lanes, retries,
breaker, ledger (the parts' rows share a ``batch_id``) — and a part that still comes
back 413 (a server whose limit is lower than the default) is halved and sent again.
The answers come back in input order, with one ``Response`` summing their usage.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any

from . import errors
from .engine.sinks import Sink
from .providers import get_adapter
from .providers.base import BatchLimits
from .types import Response, Usage

if TYPE_CHECKING:
    from .client import Client
    from .results import Join, Pieces

__all__ = ["gather", "merge", "split"]

_BODY_OVERHEAD = 256  # the rest of a request body: keys, flags, brackets


def split(texts: Sequence[str], limits: BatchLimits, overhead: int = 0) -> list[tuple[int, int]]:
    """``[start, end)`` ranges covering ``texts`` in order, each within ``limits``: at most
    ``limits.items`` texts and ``limits.bytes`` of JSON (``overhead`` is the rest of the body).
    A text too big on its own still gets a part: the server's answer says why."""
    items = limits.items or len(texts) or 1
    budget = None if limits.bytes is None else limits.bytes - overhead
    ranges: list[tuple[int, int]] = []
    start = size = 0
    for index, text in enumerate(texts):
        cost = len(encode_basestring_ascii(text)) + 1 if budget is not None else 0  # as json.dumps sends it
        if index > start and (index - start >= items or (budget is not None and size + cost > budget)):
            ranges.append((start, index))
            start, size = index, 0
        size += cost
    ranges.append((start, len(texts)))
    return ranges


async def gather(
    client: Client,
    kind: str,
    target: str,
    texts: Sequence[str],
    options: dict[str, Any],
    payload: dict[str, Any],
    join: Join,
) -> tuple[Pieces, Response]:
    """(engine loop) Send ``texts`` in parts; each part's piece by its first index, and the
    ``Response`` of the whole call.  The first failure that splitting cannot cure cancels the
    other parts and is raised."""
    engine = client.engine
    started = time.monotonic()
    provider, _ = client.resolve(target, kind)
    try:
        info = await engine.discovered(provider)
    except errors.AccelError:
        info = None  # each part discovers (and retries) on its own; until then, the defaults
    limits = get_adapter(provider).batch_limits(info) or BatchLimits()
    ranges = split(texts, limits, _BODY_OVERHEAD + len(json.dumps(payload)))
    batch_id = str(uuid.uuid4())
    answers: asyncio.Queue[tuple[int, int, bool, Any]] = asyncio.Queue()
    pending: dict[int, Any] = {}  # first index -> its job, while it runs
    done: list[tuple[int, Any, Response]] = []

    def keep(reply: Any, response: Response) -> tuple[Any, Response]:
        return join.part(reply), response

    def submit(start: int, end: int) -> None:
        part_options = {**options, "_payload": payload}
        sink = _PartSink(answers, start, end)
        job, _ = client._job(kind, target, texts[start:end], part_options, sink, (batch_id, start), keep)
        pending[start] = job

    try:
        for start, end in ranges:
            submit(start, end)
        while pending:
            start, end, ok, value = await answers.get()
            del pending[start]
            if ok:
                piece, response = value
                done.append((start, piece, response))
            elif end - start > 1 and _too_big(value):
                middle = (start + end) // 2
                submit(start, middle)
                submit(middle, end)
            else:
                raise value
    finally:
        for job in pending.values():
            engine.cancel(job, errors.CancelledError("another part of the same call failed", provider=provider))
    done.sort(key=lambda part: part[0])
    responses = [response for *_, response in done]
    response = responses[0] if len(responses) == 1 else merge(responses, batch_id, time.monotonic() - started)
    return [(start, piece) for start, piece, _ in done], response


def merge(responses: Sequence[Response], request_id: str, latency_s: float) -> Response:
    """One ``Response`` for a call made of several requests: usage and cost summed, the most
    attempts any part needed; ``request_id`` is the parts' ``batch_id`` in the ledger."""
    first = responses[0]
    costs = [r.cost_usd for r in responses]
    usage = Usage(
        sum(r.usage.input_tokens for r in responses),
        sum(r.usage.output_tokens for r in responses),
        estimated=any(r.usage.estimated for r in responses),
    )
    return Response(
        text="",
        provider=first.provider,
        model=first.model,
        request_id=request_id,
        usage=usage,
        latency_s=latency_s,
        attempts=max(r.attempts for r in responses),
        cached=all(r.cached for r in responses),
        cost_usd=None if any(c is None for c in costs) else sum(costs),  # type: ignore[arg-type]
    )


class _PartSink(Sink):
    """A part's answer, queued on the engine loop itself, where ``gather`` waits for it."""

    __slots__ = ("answers", "end", "start")

    def __init__(self, answers: asyncio.Queue[tuple[int, int, bool, Any]], start: int, end: int) -> None:
        self.answers, self.start, self.end = answers, start, end

    def done(self, result: Any) -> None:
        self.answers.put_nowait((self.start, self.end, True, result))

    def fail(self, error: BaseException) -> None:
        self.answers.put_nowait((self.start, self.end, False, error))


def _too_big(error: BaseException) -> bool:
    """A 413 that a smaller part cures (too many inputs or bytes), not one too-long input."""
    return (
        isinstance(error, errors.BadRequestError)
        and not isinstance(error, errors.ContextLengthError)
        and error.status == 413
    )
