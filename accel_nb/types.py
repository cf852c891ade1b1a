"""Value types shared by the client, the engine and the adapters."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import orjson

__all__ = ["Chunk", "Priority", "Request", "Response", "Usage"]


class Priority(enum.IntEnum):
    """Lower value runs first; FIFO within one priority."""

    HIGH = 0
    NORMAL = 1
    LOW = 2

    @classmethod
    def parse(cls, value: Priority | str | int) -> Priority:
        if isinstance(value, Priority):
            return value
        if isinstance(value, str):
            try:
                return _PRIORITY_NAMES[value] if value in _PRIORITY_NAMES else cls[value.strip().upper()]
            except KeyError:
                raise ValueError(f"priority must be high, normal or low, not {value!r}") from None
        return cls(value)


_PRIORITY_NAMES = {p.name.lower(): p for p in Priority}


@dataclass(slots=True)
class Usage:
    """Token counts; ``estimated`` is True when the provider reported none and we counted."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int | None = None
    estimated: bool = False

    def __post_init__(self) -> None:
        if self.total_tokens is None:
            self.total_tokens = self.input_tokens + self.output_tokens


class _JsonOnRead:
    """``Response.raw``: the engine may hand a reply's JSON over as the bytes it arrived in
    (a JSON value is never ``bytes``), decoded on first read and kept.

    Few callers read ``raw``, and a ``map`` keeps thousands of answers: an OpenAI chat reply
    is ~0.7 KB as bytes and ~1.9 KB decoded, a tree of dicts and lists the garbage collector
    would track for as long as the answer lives.
    """

    def __get__(self, response: Response | None, owner: type | None = None) -> Any:
        if response is None:
            return None  # the field's default
        raw = response._raw
        if type(raw) is bytes:
            raw = response._raw = orjson.loads(raw)
        return raw

    def __set__(self, response: Response, value: Any) -> None:
        response._raw = value


@dataclass
class Response:
    """One finished request, whatever the provider."""

    text: str
    provider: str
    model: str
    request_id: str
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    ttft_s: float | None = None
    attempts: int = 1
    cached: bool = False
    cost_usd: float | None = None
    finish_reason: str | None = None
    raw: Any = _JsonOnRead()

    @property
    def target(self) -> str:
        return f"{self.provider}:{self.model}"

    @property
    def timings(self) -> dict[str, float] | None:
        """Durations the server reported, in seconds (Ollama: ``total_s``, ``load_s``,
        ``prompt_eval_s``, ``eval_s``, ``tokens_per_s``); ``None`` when it reports none."""
        from .providers import get_adapter  # read from ``raw`` on demand: nothing on the hot path

        return get_adapter(self.provider).timings(self.raw)

    def __str__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:
        return self.text


@dataclass(slots=True)
class Chunk:
    """A piece of a streamed answer."""

    text: str
    request_id: str = ""


_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


@dataclass(slots=True, eq=False)
class Request:
    """A normalized request: what the caller asked, before any provider shape.

    ``params`` holds the common generation options under neutral names
    (``max_tokens``, ``temperature``, ``top_p``, ``stop``) plus any
    provider-specific extras the caller passed through.
    """

    kind: str  # "chat" | "embed" | "generate" | "infer" | "admin" | … (each adapter lists its ``kinds``)
    provider: str
    model: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    system: str | None = None
    inputs: Sequence[str] = ()
    params: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    headers: Mapping[str, str] = field(default_factory=lambda: _NO_HEADERS)  # shared, read-only: most add none
    payload: Any = None  # kind-specific input that is not text (tensors, a rerank query, …)
