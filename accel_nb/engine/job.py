"""A request's state inside the engine, from submission to its answer."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import errors
from ..providers import Adapter, get_adapter
from ..providers.base import Reply
from ..types import Priority, Request, Response
from .cache import cache_key, cacheable
from .sinks import Sink

if TYPE_CHECKING:
    from .lanes import Lane

__all__ = ["DONE", "NEW", "QUEUED", "RUNNING", "TEXT_KINDS", "Job", "request_id"]

NEW, QUEUED, RUNNING, DONE = range(4)
TEXT_KINDS = frozenset({"chat", "generate"})  # kinds whose answer is text: cached, stored in the ledger


def request_id() -> str:
    """A random version-4 UUID string; ``uuid.uuid4()`` reads ``os.urandom`` (a syscall) and
    costs several times more, and request ids need uniqueness, not secrecy."""
    h = f"{random.getrandbits(128) & _VARIANT_MASK | _VARIANT:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"


_VARIANT, _VARIANT_MASK = 0x8000 << 48, ~(0xC000 << 48)  # RFC 4122 variant: the top bits of clock_seq are 10


class Job:
    """One request's state inside the engine (small: 100,000 of them may be queued)."""

    __slots__ = (
        "id",
        "request",
        "adapter",
        "priority",
        "seq",
        "sink",
        "state",
        "in_queue",
        "task",
        "grant",
        "attempts",
        "created_at",
        "t_submit",
        "t_start",
        "t_first",
        "t_read",
        "stalled",
        "delivered",
        "cost_tokens",
        "cache_key",
        "batch",
        "finish",
        "timeout_s",
        "timer",
        "cancel_reason",
        "lane",
        "provider_request_id",
        "http_status",
        "members",
    )

    def __init__(
        self,
        request: Request,
        sink: Sink,
        priority: Priority = Priority.NORMAL,
        *,
        cache: bool | str = False,
        batch: tuple[str, int] | None = None,
        timeout_s: float | None = None,
        finish: Callable[[Reply, Response], Any] | None = None,
        members: list[Job] | None = None,
    ) -> None:
        self.id = request_id()
        self.request = request
        self.adapter: Adapter = get_adapter(request.provider)
        self.priority = int(priority)
        self.seq = 0
        self.sink = sink
        self.state = NEW
        self.in_queue = False
        self.task: asyncio.Task[None] | None = None
        self.grant: asyncio.Future[Lane] | None = None
        self.attempts = 0
        self.created_at = time.time()
        self.t_submit = self.t_start = 0.0
        self.t_first: float | None = None
        self.t_read = 0.0  # when the exchange in flight last made progress (see Watchdog)
        self.stalled = False  # the watchdog cancelled the exchange: silent past the read timeout
        self.delivered = False
        chars = len(request.system or "")
        for message in request.messages:  # (a loop, not sum() of a generator: one object fewer a request)
            chars += len(message.get("content") or "")
        self.cost_tokens = chars // 4 + (request.params.get("max_tokens") or 0)
        cached = cache and request.kind in TEXT_KINDS and cacheable(request, cache == "force")
        self.cache_key = cache_key(request) if cached else None
        self.batch = batch
        self.finish = finish  # builds the caller's result (embeddings, tensors…) from the reply
        self.timeout_s = timeout_s
        self.timer: asyncio.TimerHandle | None = None
        self.cancel_reason: errors.AccelError | None = None
        self.lane: Lane | None = None
        self.provider_request_id: str | None = None
        self.http_status: int | None = None
        self.members = members  # a coalesced batch: the requests it answers, each recorded as its own
