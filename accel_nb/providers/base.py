"""The adapter contract and the helpers every adapter shares.

An adapter is a data transformer, never a client: it turns a normalized
``Request`` into an ``HttpCall``, a reply body into a ``Reply``, a stream frame
into a ``Delta`` and an error reply into a classified ``AccelError``.  It never
sleeps, retries, logs or owns a connection; the engine does all of that, once.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from .. import errors
from ..secret import Secret
from ..types import Request, Usage

__all__ = [
    "Adapter",
    "BatchLimits",
    "Delta",
    "HttpCall",
    "RateLimitHeaders",
    "RateLimits",
    "Reply",
    "SdkCall",
    "classify_status",
    "parse_duration",
    "parse_json",
    "protocol_error",
    "rate_limits_from",
    "retry_hint",
    "running_low",
    "snippet",
]


@dataclass(slots=True)
class HttpCall:
    method: str
    url: str
    headers: dict[str, str]
    json: Any = None
    empty_ok: bool = False  # the reply may have no body (Ollama's DELETE): ``parse`` then gets ``None``


@dataclass(slots=True)
class SdkCall:
    """One call of a blocking SDK (for an adapter with a ``transport``): a method and its arguments."""

    method: str
    params: dict[str, Any]
    progress: Any = None  # told of bytes moved, for a progress bar


@dataclass(slots=True)
class Reply:
    """A parsed non-streaming reply."""

    text: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    model: str | None = None
    raw: Any = None
    vectors: list[list[float]] | None = None
    data: Any = None  # a result that is neither text nor vectors: rerank rows, sparse dicts, an inference output…


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """How many inputs, and how many bytes of JSON, one request may carry (``None``: no limit)."""

    items: int | None = None
    bytes: int | None = None


@dataclass(slots=True)
class Delta:
    """What one stream frame adds: text, token counts (latest wins), an end, or an error."""

    text: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None
    error: errors.AccelError | None = None
    raw: Any = None
    progress: Any = None  # a frame that reports progress, not text (Ollama's pull): goes to the sink


@dataclass(slots=True)
class RateLimits:
    """What a reply's headers say about the lane's remaining budget (``None``: not said)."""

    requests_limit: float | None = None
    requests_remaining: float | None = None
    requests_reset_s: float | None = None
    tokens_limit: float | None = None
    tokens_remaining: float | None = None
    tokens_reset_s: float | None = None


class Adapter:
    """One API's wire format.  Subclasses declare what they are as class attributes."""

    id: ClassVar[str]
    title: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    key_env: ClassVar[tuple[str, ...]] = ()
    base_url_env: ClassVar[tuple[str, ...]] = ()
    default_base_url: ClassVar[str]
    sim_path: ClassVar[str | None]  # None: the simulator does not speak this API (S3 is tested on moto)
    default_model: ClassVar[str]
    default_embed_model: ClassVar[str | None] = None
    models: ClassVar[tuple[str, ...]] = ()
    needs_key: ClassVar[bool] = True
    kinds: ClassVar[frozenset[str]] = frozenset({"chat"})
    stream_format: ClassVar[str] = "sse"  # or "ndjson": how a stream body is cut into frames (see framing.py)
    default_concurrency: ClassVar[int] = 16
    request_id_header: ClassVar[str] = "x-request-id"
    #: A request header that carries our request id on every call, so server logs and the ledger
    #: name the same request (LLVM's ``X-Request-ID``); ``None``: not sent.
    trace_header: ClassVar[str | None] = None
    #: Further servers of one API, by name -> (env var, default port on the base URL's host):
    #: OPEA's microservices.  ``service`` says which one a request goes to.
    services: ClassVar[dict[str, tuple[str, int]]] = {}
    #: How calls are sent: ``None`` is HTTP through the engine's aiohttp pool; otherwise the
    #: ``"module:Class"`` of an SDK binding (``accel_nb.sdk``) whose blocking calls the engine
    #: runs in a thread pool — imported on first use, so e.g. boto3 loads only when S3 is used.
    transport: ClassVar[str | None] = None
    #: Extra settings this API takes in ``[providers.<id>]``, with their defaults.
    options: ClassVar[Mapping[str, Any]] = {}
    #: ``infer`` takes named tensors (KServe v2) rather than one JSON value.
    tensors: ClassVar[bool] = False
    #: Kinds whose requests need their model described first (see ``describe``).
    described_kinds: ClassVar[frozenset[str]] = frozenset()
    #: ``(max_size, delay_ms)`` defaults when requests can be coalesced (see ``merge_key``).
    batch: ClassVar[tuple[int, float] | None] = None

    # -- requests -----------------------------------------------------------------
    def build(self, req: Request, base_url: str, key: str | None, info: Any = None) -> HttpCall:
        """The HTTP call for ``req``.  ``info`` is what ``learn`` made of the ``discover``
        reply (e.g. a server's limits), so a request can be refused before it is sent."""
        raise NotImplementedError

    def service(self, req: Request) -> str | None:
        """The name (in ``services``) of the server that takes ``req``; ``None``: the base URL."""
        return None

    def normalize_url(self, url: str) -> str:
        """A base URL as users write it (``OLLAMA_HOST=host:port``) made absolute."""
        return url

    def headers(self, key: str | None) -> dict[str, str]:
        """Content type and authentication, shared by every call the adapter builds."""
        headers = {"content-type": "application/json"}
        if key:
            headers["authorization"] = f"Bearer {key}"
        return headers

    def discover(self, base_url: str, key: str | None) -> HttpCall | None:
        """A call to make once per lane before its first request (a self-hosted server's
        ``/info``); ``None`` when the API needs none."""
        return None

    def learn(self, body: Any) -> Any:
        """What to keep from the ``discover`` reply; passed to ``build`` as ``info``."""
        return body

    def batch_limits(self, info: Any) -> BatchLimits | None:
        """Per-request limits on a list of inputs (embeddings, rerank texts), given what ``learn``
        kept (``None`` before discovery).  ``None``: the API takes any list in one request.  The
        client splits a longer list into several requests and joins the answers in order."""
        return None

    def models_call(self, base_url: str, key: str | None) -> HttpCall | None:
        """The cheapest authenticated call: list the models (also verifies a key)."""
        return None

    def parse_models(self, body: Any) -> list[str]:
        return []

    # -- replies ------------------------------------------------------------------
    def parse(self, req: Request, body: Any) -> Reply:
        """Turn a decoded JSON body into a ``Reply``; raise ``ProtocolError`` on a wrong shape."""
        raise NotImplementedError

    def parse_frame(self, req: Request, event: str | None, data: str) -> Delta | None:
        """One stream frame (SSE ``event``/``data`` or one NDJSON line); ``None`` to skip it."""
        raise NotImplementedError

    def classify(self, status: int, headers: Mapping[str, str], body: bytes) -> errors.AccelError:
        """An error reply as an ``AccelError``.  The default reads a few common body shapes."""
        data = parse_json(body)
        message = _first_message(data) or snippet(body) or f"HTTP {status}"
        return classify_status(status, message, headers=headers)

    def rate_limits(self, headers: Mapping[str, str]) -> RateLimits | None:
        return None

    def header_usage(self, headers: Mapping[str, str]) -> Usage | None:
        """Token counts a server reports in headers rather than the body (TGI's
        ``x-prompt-tokens``); asked only when ``parse`` found no usage."""
        return None

    def timings(self, raw: Any) -> dict[str, float] | None:
        """Server-reported durations in seconds, read from a reply's last JSON (``Response.timings``)."""
        return None
    # -- models that must be described before use ------------------------------------
    def describe(self, req: Request, base_url: str, key: str | None) -> list[HttpCall]:
        """Calls that describe ``req``'s model, tried in order until one is not a 404 (a current
        route first, a legacy one after).  The engine makes them once per model, before the
        model's first request, and hands what ``learn_model`` kept to ``prepare``."""
        return []

    def learn_model(self, index: int, body: Any) -> Any:
        """What to keep from the reply to ``describe(...)[index]``."""
        return body

    def prepare(self, req: Request, description: Any) -> None:
        """Check ``req`` against its model before it is queued or batched: raise a
        ``BadRequestError`` that names what is wrong and what the model expects.  May complete
        the request's payload with what ``build`` needs."""

    # -- coalescing: several small requests sent as one call ---------------------------
    def merge_key(self, req: Request) -> Hashable | None:
        """Requests with equal keys can be sent as one call; ``None``: this one cannot."""
        return None

    def rows(self, req: Request) -> int:
        """How much of a batch ``req`` fills (its tensors' first dimension)."""
        return 1

    def merge(self, reqs: list[Request]) -> Request:
        """One request doing the work of ``reqs`` (all with the same ``merge_key``)."""
        raise NotImplementedError

    def split(self, req: Request, reply: Reply, parts: list[Request]) -> list[Reply]:
        """The reply to a merged ``req`` cut back into one reply per part, in order."""
        raise NotImplementedError

    # -- keys and records ---------------------------------------------------------------
    def secret_parts(self, key: Secret) -> list[Secret]:
        """Every string of ``key`` that must be redacted (a compound key's secret half, too)."""
        return [key]

    def summary(self, req: Request) -> Any:
        """What the ledger keeps as the request, for kinds other than chat and embed."""
        return req.params or None

    # -- helpers for subclasses -----------------------------------------------------
    def frame_json(self, data: str) -> Any:
        """One stream frame's JSON; a ``ProtocolError`` showing its first bytes when it is not."""
        try:
            return orjson.loads(data)
        except ValueError:
            raise protocol_error(f"{self.id} stream frame is not JSON", data) from None

    def check_kind(self, req: Request) -> None:
        if req.kind not in self.kinds:
            supported = ", ".join(sorted(self.kinds))
            raise errors.BadRequestError(
                f"{self.id} does not support {req.kind!r} requests (it supports: {supported})",
                provider=self.id,
            )

    def __repr__(self) -> str:
        return f"<adapter {self.id}>"


# -- shared helpers -------------------------------------------------------------------

_CONTEXT_PATTERNS = re.compile(
    r"context.{0,20}(length|window)|maximum context|prompt is too long|too many tokens|"
    r"exceeds the maximum number of tokens|input is too long|max_input_tokens",
    re.IGNORECASE,
)

_SPENT_PATTERNS = re.compile(r"usage limit|quota.{0,20}(spent|exhausted|reached)", re.IGNORECASE)

_STATUS_CLASSES: dict[int, type[errors.AccelError]] = {
    400: errors.BadRequestError,
    401: errors.AuthenticationError,
    402: errors.QuotaExceededError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
    408: errors.TimeoutError,
    409: errors.ServerError,
    413: errors.BadRequestError,
    422: errors.BadRequestError,
    429: errors.RateLimitError,
    503: errors.OverloadedError,
    504: errors.TimeoutError,
    529: errors.OverloadedError,
}

_HINTS: dict[type[errors.AccelError], str] = {
    errors.AuthenticationError: "check the key (`%accel keys` shows which one is in use)",
    errors.PermissionDeniedError: "this key may not use this model or route",
    errors.NotFoundError: "check the model name (`%accel list` shows the known ones)",
    errors.QuotaExceededError: "the account's quota or budget is spent: add credit or use another key",
    errors.ContextLengthError: "shorten the prompt or lower max_tokens",
}


def classify_status(
    status: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    cls: type[errors.AccelError] | None = None,
    retry_after_s: float | None = None,
) -> errors.AccelError:
    """The status-based decision the official SDKs make, refined by the body's message.

    ``x-should-retry`` overrides retryability, as in the SDKs; the wait hint is read
    from the headers or the message unless the caller already found one.
    """
    headers = headers or {}
    if cls is None:
        cls = _STATUS_CLASSES.get(status)
        if cls is None:
            cls = errors.ServerError if status >= 500 else errors.BadRequestError
        if cls is errors.BadRequestError and _CONTEXT_PATTERNS.search(message):
            cls = errors.ContextLengthError
        elif cls is errors.RateLimitError and _SPENT_PATTERNS.search(message):
            cls = errors.QuotaExceededError  # waiting will not help
    retryable = None
    should_retry = headers.get("x-should-retry")
    if should_retry in ("true", "false"):
        retryable = should_retry == "true"
    if retry_after_s is None:
        retry_after_s = retry_hint(headers, message)
    return cls(message, status=status, retryable=retryable, retry_after_s=retry_after_s, hint=_HINTS.get(cls))


def running_low(limit: float | None, remaining: float | None) -> bool:
    """Whether a budget is worth pacing: half of it spent.  Until then a reply's reset time
    (a duration or a date to parse, on every reply) tells the limiter nothing it needs."""
    return remaining is not None and (not limit or remaining < limit / 2)


class RateLimitHeaders:
    """The names of a provider's budget headers, spelled out once: every reply is read with
    them, thousands a second under load."""

    __slots__ = ("requests", "tokens")

    def __init__(self, name: Callable[[str, str], str]) -> None:
        """``name(kind, field)``: kind ``requests`` or ``tokens``; field ``limit``, ``remaining``
        or ``reset``."""
        self.requests, self.tokens = (
            tuple(name(kind, field) for field in ("limit", "remaining", "reset")) for kind in ("requests", "tokens")
        )


def rate_limits_from(
    headers: Mapping[str, str], names: RateLimitHeaders, seconds: Callable[[str], float | None]
) -> RateLimits | None:
    """Request and token budgets from the headers ``names`` names.  A reset (a duration or a
    date: ``seconds`` turns it into seconds) is read only once its budget is running low."""
    requests, tokens = _budget(headers, names.requests, seconds), _budget(headers, names.tokens, seconds)
    if requests is None and tokens is None:
        return None
    return RateLimits(*(requests or _UNSAID), *(tokens or _UNSAID))


_UNSAID = (None, None, None)


def _budget(
    headers: Mapping[str, str], names: tuple[str, str, str], seconds: Callable[[str], float | None]
) -> tuple[float | None, float, float | None] | None:
    """``(limit, remaining, reset_s)`` of one budget; ``None`` when the reply does not say what
    is left.  (Read on every reply: the common case, a budget far from spent, stays short.)"""
    limit_name, remaining_name, reset_name = names
    left, limit = headers.get(remaining_name), headers.get(limit_name)
    if left is None:  # (a lookup, not KeyError: most servers send no such headers at all)
        return None
    try:
        remaining = float(left)
    except ValueError:  # a header that is not a number says nothing
        return None
    try:
        limit = None if limit is None else float(limit)
    except ValueError:
        limit = None
    if not running_low(limit, remaining):
        return limit, remaining, None
    reset = headers.get(reset_name)
    return limit, remaining, seconds(reset) if reset else None


_TRY_AGAIN = re.compile(r"try again in ((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)", re.IGNORECASE)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float | None:
    """``6m0s``, ``2m59.56s``, ``12ms``, ``37s``, ``1.5`` (seconds) -> seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def retry_hint(headers: Mapping[str, str], message: str = "") -> float | None:
    """The server's wait hint in seconds: ``retry-after-ms``, ``retry-after`` (seconds or an
    HTTP date), or "Please try again in 6.596s" in the message."""
    if value := headers.get("retry-after-ms"):
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    if value := headers.get("retry-after"):
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(0.0, when.timestamp() - time.time())
    if message and (match := _TRY_AGAIN.search(message)):
        return parse_duration(match.group(1))
    return None


def parse_json(body: bytes | str) -> Any:
    """Decoded JSON, or ``None`` when the body is not JSON."""
    try:
        return orjson.loads(body)
    except (ValueError, TypeError):
        return None


def snippet(body: bytes | str, limit: int = 200) -> str:
    """The first bytes of a body, for an error message a person can read."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _first_message(data: Any) -> str | None:
    """``{error: {message}}``, ``{error: "msg"}``, ``{detail}``, ``{message}``."""
    if not isinstance(data, dict):
        return None
    err = data.get("error")
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return err["message"]
    for field in ("error", "detail", "message"):
        if isinstance(data.get(field), str):
            return data[field]
    return None


def protocol_error(what: str, body: Any) -> errors.ProtocolError:
    """A reply that parsed but has the wrong shape."""
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)[:400]
    return errors.ProtocolError(f"{what}; the reply began: {snippet(raw)!r}")
