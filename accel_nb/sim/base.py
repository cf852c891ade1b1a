"""What every simulated protocol shares: the request pipeline, stream framing, pacing and fault actions.

A protocol module only describes its wire format: how a request is read and how a
reply, a stream frame or an error looks.  ``Protocol.handler`` runs every request
through the same steps, so auth, rate limits, latency and faults behave alike for
every API::

    count -> auth -> parse -> rate limit -> fault -> JSON reply or paced stream
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, NoReturn

from aiohttp import web

from ..providers.base import Adapter
from ..tokens import estimate_prompt_tokens
from . import textgen
from .faults import Fault

if TYPE_CHECKING:
    from .server import Pace, SimState, Window

__all__ = [
    "ANONYMOUS",
    "NDJSON",
    "SIM",
    "SSE",
    "BadRequest",
    "Call",
    "Chat",
    "Failure",
    "Frame",
    "Frames",
    "JSONArray",
    "Limit",
    "MessageErrors",
    "Protocol",
    "Reply",
    "Route",
    "bearer",
    "bearer_or_anonymous",
    "display_name",
    "go_duration",
    "seconds_text",
    "text_of",
]

SIM: web.AppKey[SimState] = web.AppKey("sim")

#: One stream frame: an SSE event name (``None`` for data-only) and a JSON value, or raw text.
Frame = tuple[str | None, Any]

_PATTERN = re.compile(r"\{(\w+):[^}]*\}")  # `{version:v1beta|v1}` -> `{version}` in route names
_SLOT = "\x00accel-nb-token\x00"  # stands in for a token's text in a pre-encoded frame
_MALFORMED_BODY = b"upstream connect error or disconnect/reset before headers. reset reason: connection termination"
_MALFORMED_FRAME = '{"choices": [{"delta": {"content": "this frame is not valid JSON'
#: What a keyless server's requests count as, for rate limits and ``require_key``.
ANONYMOUS = "anonymous"


class BadRequest(Exception):
    """A request the API would refuse; the protocol renders it as its own error body."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class Failure:
    """An error reply: status, body (JSON; a string for plain text; ``None`` for none) and any
    extra headers (``retry-after``…)."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class Limit(NamedTuple):
    """Which per-minute limit a request hit, for the provider's 429 wording."""

    what: str  # "requests" or "tokens"
    limit: int
    used: int
    requested: int


@dataclass(slots=True)
class Chat:
    """A chat completion to serve: what the model "says" and what it costs."""

    model: str
    gen: textgen.Generation
    input_tokens: int
    stream: bool = False
    include_usage: bool = False

    @property
    def output_tokens(self) -> int:
        return len(self.gen.tokens)


@dataclass(slots=True)
class Reply:
    """Any other JSON reply (embeddings, model lists), computed up front."""

    body: Any
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(slots=True)
class Frames:
    """A stream that is not token by token (Ollama's pull progress): ``frames`` one after another,
    ``gap_s`` apart at realistic latency and at once at zero latency."""

    frames: list[Frame]
    gap_s: float = 0.05
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    done: Callable[[], None] | None = None  # what the server does once every frame was sent


Job = Chat | Reply | Frames


class Route(NamedTuple):
    method: str
    path: str  # under the protocol's prefix
    endpoint: Callable[[Call, Any], Job]  # (call, JSON body or None) -> what to serve
    meta: bool = False  # a server's description of itself (`/info`, `/health`): no rate limit, no faults


class Call:
    """One request in flight: who sent it, its ids, and the headers every reply to it carries."""

    __slots__ = (
        "created",
        "dropped",
        "headers",
        "key",
        "model",
        "request",
        "request_id",
        "sim",
        "started",
        "streaming",
        "uid",
    )

    def __init__(self, request: web.Request, sim: SimState, protocol: Protocol) -> None:
        self.request = request
        self.sim = sim
        self.key = protocol.api_key(request)
        self.uid = sim.new_uid()
        self.request_id = "req_" + self.uid
        self.created = int(time.time())
        self.started = time.monotonic()
        self.model = ""
        self.dropped = False
        self.streaming = False  # set by an endpoint that will answer with a stream
        header = protocol.request_id_header
        self.headers: dict[str, str] = {header: self.request_id} if header else {}

    def drop(self, *, reset: bool) -> NoReturn:
        """End the connection on purpose: a TCP reset, or a close after what was written so far."""
        self.dropped = True
        transport = self.request.transport
        if transport is not None:
            if reset:
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()
            else:
                transport.close()
        raise asyncio.CancelledError

    def gone(self) -> None:
        """The client went away before the reply was complete (not a drop of our own)."""
        if not self.dropped:
            self.sim.stats.disconnects += 1


class SSE:
    """Server-sent events: an ``event:`` line when the frame names one, then ``data:``."""

    content_type = "text/event-stream; charset=utf-8"

    def start(self) -> bytes:
        return b""

    def frame(self, frame: Frame) -> bytes:
        event, data = frame
        payload = data if isinstance(data, str) else json.dumps(data)
        return (f"event: {event}\ndata: {payload}\n\n" if event else f"data: {payload}\n\n").encode()

    def end(self) -> bytes:
        return b""


class JSONArray:
    """One JSON array written element by element (Gemini's stream without ``alt=sse``)."""

    content_type = "application/json; charset=UTF-8"

    def __init__(self) -> None:
        self._written = 0

    def start(self) -> bytes:
        return b"["

    def frame(self, frame: Frame) -> bytes:
        data = frame[1]
        payload = data if isinstance(data, str) else json.dumps(data)
        self._written += 1
        return (",\r\n" + payload if self._written > 1 else payload).encode()

    def end(self) -> bytes:
        return b"]"


class NDJSON:
    """Newline-delimited JSON: one frame a line (Ollama's streams)."""

    content_type = "application/x-ndjson"

    def start(self) -> bytes:
        return b""

    def frame(self, frame: Frame) -> bytes:
        data = frame[1]
        return ((data if isinstance(data, str) else json.dumps(data)) + "\n").encode()

    def end(self) -> bytes:
        return b""


class Protocol:
    """One API's wire format.  Subclasses fill in identity, routes, replies, frames and errors."""

    adapter: ClassVar[Adapter]  # our client's adapter: the simulator serves where it points
    overload_status: ClassVar[int] = 503  # what `overloaded` (and `529`) means for this API
    request_id_header: ClassVar[str | None] = "x-request-id"
    invalid_json_message: ClassVar[str] = "The request body is not valid JSON."
    token_frames_vary: ClassVar[bool] = False  # True when a token frame holds more than its text
    errors_in_stream: ClassVar[bool] = False  # True: a streaming call gets its JSON error as a frame of a 200

    @property
    def id(self) -> str:
        return self.adapter.id

    @property
    def prefix(self) -> str:
        return self.adapter.sim_path

    # -- what a protocol describes ---------------------------------------------------
    def routes(self) -> list[Route]:
        raise NotImplementedError

    def api_key(self, request: web.Request) -> str | None:
        raise NotImplementedError

    def unauthorized(self, call: Call, missing: bool) -> Failure:
        """The reply to a missing (or, when ``require_key`` is set, wrong) key."""
        raise NotImplementedError

    def error(self, call: Call, status: int, message: str | None = None) -> Failure:
        """The API's own error reply for ``status`` (its default message unless one is given)."""
        raise NotImplementedError

    def rate_limited(self, call: Call, hint_s: float, limit: Limit, *, ms: bool = False) -> Failure:
        """A 429 with the API's own wait hint; ``ms`` asks for ``retry-after-ms`` where the API has it."""
        raise NotImplementedError

    def quota(self, call: Call) -> Failure:
        """The "quota or budget is spent" error, which must not be retried."""
        raise NotImplementedError

    def rate_headers(self, window: Window) -> dict[str, str]:
        return {}

    def reply_headers(self, call: Call) -> dict[str, str]:
        """Headers known only when the reply starts (e.g. processing time)."""
        return {}

    def reply(self, call: Call, chat: Chat) -> Any:
        raise NotImplementedError

    def head(self, call: Call, chat: Chat) -> list[Frame]:
        """Frames before the first token."""
        return []

    def token(self, call: Call, chat: Chat, index: int, text: str) -> Frame:
        raise NotImplementedError

    def tail(self, call: Call, chat: Chat) -> list[Frame]:
        """Frames after the last token: finish reason, usage, end marker."""
        raise NotImplementedError

    def stream_error(self, call: Call) -> Frame | None:
        """A failure reported inside a 200 stream (``None``: the server just closes the connection)."""
        raise NotImplementedError

    def encoder(self, call: Call) -> SSE | JSONArray | NDJSON:
        return SSE()

    # -- helpers for protocol modules ------------------------------------------------
    def new_chat(
        self,
        call: Call,
        model: str,
        messages: list[dict[str, str]],
        *,
        system: str | None = None,
        max_tokens: Any = None,
        stop: Any = None,
        stream: bool = False,
        include_usage: bool = False,
    ) -> Chat:
        """The answer to ``messages`` (``{role, content: str}``), with prompt tokens counted the way
        the engine estimates them (``accel_nb.tokens.estimate_prompt_tokens``)."""
        if max_tokens is not None and (type(max_tokens) is not int or max_tokens < 1):
            raise BadRequest(f"max_tokens must be a positive integer, not {max_tokens!r}")
        stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
        if not all(isinstance(s, str) for s in stops):
            raise BadRequest("stop sequences must be strings")
        prompt = messages[-1]["content"] if messages else ""
        gen = textgen.generate(call.sim.seed, model, prompt, max_tokens, stops)
        return Chat(model, gen, estimate_prompt_tokens(messages, system), stream, include_usage)

    # -- the pipeline ---------------------------------------------------------------
    def handler(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """The aiohttp handler for one of this protocol's routes."""
        name = f"{route.method} {self.prefix}" + _PATTERN.sub(r"{\1}", route.path)

        async def handle(request: web.Request) -> web.StreamResponse:
            sim = request.app[SIM]
            sim.stats.count(self.id, name)
            call = Call(request, sim, self)
            try:
                return await self._serve(call, route)
            except asyncio.CancelledError:
                call.gone()
                raise
            except ConnectionResetError:
                call.gone()
                raise asyncio.CancelledError from None

        return handle

    async def _serve(self, call: Call, route: Route) -> web.StreamResponse:
        sim, request = call.sim, call.request
        problem = sim.check_key(call.key, required=self.adapter.needs_key)
        if problem is not None:
            return self._fail(call, self.unauthorized(call, missing=problem == "missing"))
        try:
            job = route.endpoint(call, await self._body(request) if route.method in ("POST", "DELETE") else None)
        except BadRequest as exc:
            return self._fail(call, self.error(call, exc.status, str(exc)))
        if route.meta:
            return web.Response(headers=call.headers) if job.body is None else await self._send(call, job.body, None)
        call.model = job.model
        window = sim.book.admit(self.id, call.key or "", job.input_tokens, job.output_tokens)
        call.headers.update(self.rate_headers(window))
        if window.exhausted is not None:
            sim.stats.rate_limited += 1
            return self._fail(call, self.rate_limited(call, window.reset_s, window.exhausted))
        try:
            fault = sim.faults.decide(self.id, request.headers.get("x-sim-fault"))
            pace = sim.latency.pace(request.headers, slow=fault is not None and fault.name == "slow")
        except ValueError as exc:  # a bad x-sim-* header: the simulator's own usage error
            return web.json_response({"error": f"accel_nb simulator: {exc}"}, status=400, headers=call.headers)
        streaming = isinstance(job, Frames) or (isinstance(job, Chat) and job.stream)
        if fault is not None:
            sim.stats.faults[fault.name] += 1
            failure = await self._act(call, fault, streaming=streaming)
            if failure is not None:
                return self._fail(call, failure)
        if isinstance(job, Frames):
            return await self._stream_frames(call, job, fault, pace)
        if streaming:
            return await self._stream(call, job, fault, pace)
        await self.work(call, job, pace)
        body = self.reply(call, job) if isinstance(job, Chat) else job.body
        return await self._send(call, body, fault)

    async def work(self, call: Call, job: Job, pace: Pace | None) -> None:
        """The time the server spends before a whole (not streamed) reply: the time to the first
        token, then the rest at the pace.  A protocol with another cost model overrides it."""
        if pace is not None:
            await asyncio.sleep(pace.ttft_s + job.output_tokens / pace.tokens_per_s)

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.read())
        except ValueError:
            raise BadRequest(self.invalid_json_message) from None
        if not isinstance(body, dict):
            raise BadRequest(self.invalid_json_message)
        return body

    async def _act(self, call: Call, fault: Fault, streaming: bool) -> Failure | None:
        """Apply a fault that strikes before any reply; return the error reply it calls for, if any."""
        name = fault.name
        if name == "reset":
            call.drop(reset=True)
        if name == "stall":
            await asyncio.sleep(fault.amount)
            return None
        if name in ("429", "retry-after-ms"):
            hint_s = fault.amount / 1000 if name == "retry-after-ms" else fault.amount
            return self.rate_limited(call, hint_s, call.sim.book.nominal(), ms=name == "retry-after-ms")
        if name == "quota":
            return self.quota(call)
        if name in ("overloaded", "529") or (name == "stream_error" and not streaming):
            return self.error(call, self.overload_status)
        if name.isdigit():
            return self.error(call, int(name))
        return None  # it acts on the reply itself (or, for `slow`, on its pace)

    def _headers(self, call: Call, content_type: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**call.headers, **self.reply_headers(call), **(extra or {}), "Content-Type": content_type}

    def _fail(self, call: Call, failure: Failure) -> web.Response:
        """The error reply: JSON; plain text when the body is a string; empty when it is ``None``;
        one SSE frame under 200 for a streaming call to an API that reports errors that way."""
        body = failure.body
        if isinstance(body, dict) and call.streaming and self.errors_in_stream:
            headers = self._headers(call, SSE.content_type, {"Cache-Control": "no-cache", **failure.headers})
            return web.Response(body=SSE().frame((None, body)), headers=headers)
        if body is None or isinstance(body, str):
            headers = self._headers(call, "text/plain; charset=utf-8", failure.headers)
            return web.Response(status=failure.status, body=(body or "").encode(), headers=headers)
        headers = self._headers(call, "application/json", failure.headers)
        return web.Response(status=failure.status, body=json.dumps(body).encode(), headers=headers)

    async def _send(self, call: Call, body: Any, fault: Fault | None) -> web.StreamResponse:
        data = b"" if body is None else json.dumps(body).encode()  # None: an empty 200 (a delete, a health check)
        headers = self._headers(call, "application/json")
        name = fault.name if fault is not None else None
        if name == "malformed":
            data = _MALFORMED_BODY
        elif name == "truncated":
            data = data[: len(data) // 2]
        elif name == "midstream":
            response = web.StreamResponse(headers=headers)
            response.content_length = len(data)
            await response.prepare(call.request)
            await response.write(data[: len(data) // 2])
            call.drop(reset=False)
        return web.Response(body=data, headers=headers)

    async def _stream(self, call: Call, chat: Chat, fault: Fault | None, pace: Pace | None) -> web.StreamResponse:
        """Head frames at once, the first token after TTFT, then one token per 1/tps; faults cut in."""
        encoder = self.encoder(call)
        response = web.StreamResponse(headers=self._headers(call, encoder.content_type, {"Cache-Control": "no-cache"}))
        await response.prepare(call.request)
        out = bytearray(encoder.start())
        for frame in self.head(call, chat):
            out += encoder.frame(frame)
        name = fault.name if fault is not None else None
        tokens = chat.gen.tokens
        count = len(tokens)
        if fault is not None and name in ("midstream", "stream_error"):
            count = min(count, int(fault.amount))
        elif name == "malformed":
            count = min(count, 3)
        loop = asyncio.get_running_loop()
        start = gap = 0.0
        if pace is not None:
            await response.write(bytes(out))
            out.clear()
            await asyncio.sleep(pace.ttft_s)
            start, gap = loop.time(), 1.0 / pace.tokens_per_s
        token = self._token_frames(call, chat)
        for index in range(count):
            if gap and index and (delay := start + index * gap - loop.time()) > 0:
                await response.write(bytes(out))
                out.clear()
                await asyncio.sleep(delay)
            out += encoder.frame(token(index, tokens[index]))
        if name == "midstream":
            await response.write(bytes(out))
            call.drop(reset=False)
        if name == "stream_error":
            error = self.stream_error(call)
            if error is None:  # this server reports a failure mid-stream by closing the connection
                await response.write(bytes(out))
                call.drop(reset=False)
            out += encoder.frame(error)
        elif name == "malformed":
            out += encoder.frame((self.token(call, chat, 0, "")[0], _MALFORMED_FRAME))
        elif name != "truncated":
            for frame in self.tail(call, chat):
                out += encoder.frame(frame)
            out += encoder.end()
        await response.write(bytes(out))
        await response.write_eof()
        return response

    async def _stream_frames(
        self, call: Call, job: Frames, fault: Fault | None, pace: Pace | None
    ) -> web.StreamResponse:
        """``job.frames`` in order, paced; ``midstream`` drops and ``stream_error`` reports a failure
        after that many frames, ``truncated`` ends early and ``malformed`` sends a broken frame."""
        encoder = self.encoder(call)
        response = web.StreamResponse(headers=self._headers(call, encoder.content_type, {"Cache-Control": "no-cache"}))
        await response.prepare(call.request)
        frames = job.frames
        name = fault.name if fault is not None else None
        count = len(frames)
        if fault is not None and name in ("midstream", "stream_error"):
            count = min(count, int(fault.amount))
        elif name in ("truncated", "malformed"):
            count = min(count, 2)
        await response.write(encoder.start())
        for index in range(count):
            if pace is not None and index:
                await asyncio.sleep(job.gap_s)
            await response.write(encoder.frame(frames[index]))
        if name == "midstream":
            call.drop(reset=False)
        if name == "stream_error":
            error = self.stream_error(call)
            if error is None:
                call.drop(reset=False)
            await response.write(encoder.frame(error))
        elif name == "malformed":
            await response.write(encoder.frame((None, _MALFORMED_FRAME)))
        elif name != "truncated":
            await response.write(encoder.end())
            if job.done is not None:
                job.done()
        await response.write_eof()
        return response

    def _token_frames(self, call: Call, chat: Chat) -> Callable[[int, str], Frame]:
        """Token frames made by splicing each token into one frame encoded up front: a stream
        is mostly token frames, and one ``json.dumps`` of a string is far cheaper than of a frame."""
        if self.token_frames_vary:
            return lambda index, text: self.token(call, chat, index, text)
        event, data = self.token(call, chat, 0, _SLOT)
        head, _, tail = json.dumps(data).partition(json.dumps(_SLOT))
        return lambda index, text: (event, head + json.dumps(text) + tail)


# -- small shared helpers -------------------------------------------------------------


def bearer(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer …`` header."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def bearer_or_anonymous(request: web.Request) -> str:
    """A keyless server's caller: its Bearer key when it sends one (a gateway may check it), else anonymous."""
    return bearer(request) or ANONYMOUS


class MessageErrors:
    """Errors as one message under one key: ``{"error": msg}`` (Ollama, LLVM) or FastAPI's
    ``{"detail": msg}`` (OPEA).  Mixed in before ``Protocol`` (or a protocol it refines)."""

    error_key: ClassVar[str] = "error"
    #: status -> default message (``{model}`` is filled in)
    messages: ClassVar[dict[int, str]] = {}
    quota_message: ClassVar[str] = "usage limit reached for this key: upgrade the plan or wait for the next period"

    def message_body(self, message: str) -> dict[str, Any]:
        return {self.error_key: message}

    def error(self, call: Call, status: int, message: str | None = None) -> Failure:
        default = self.messages.get(status, "Internal Server Error" if status >= 500 else f"HTTP {status}")
        return Failure(status, self.message_body(message or default.format(model=call.model)))

    def unauthorized(self, call: Call, missing: bool) -> Failure:
        return self.error(call, 401)

    def rate_limited(self, call: Call, hint_s: float, limit: Limit, *, ms: bool = False) -> Failure:
        return Failure(429, self.error(call, 429).body, {"retry-after": seconds_text(hint_s)})

    def quota(self, call: Call) -> Failure:
        return Failure(429, self.message_body(self.quota_message))

    def stream_error(self, call: Call) -> Frame | None:
        return None, self.error(call, 500).body


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or a list of blocks/parts with ``text``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


def display_name(model: str) -> str:
    """``claude-sonnet-4-5`` -> ``Claude Sonnet 4.5``; ``gemini-2.5-flash`` -> ``Gemini 2.5 Flash``."""
    words: list[str] = []
    for part in model.split("-"):
        if part.isdigit() and words and words[-1][-1:].isdigit():
            words[-1] += "." + part
        else:
            words.append(part.capitalize())
    return " ".join(words)


def seconds_text(seconds: float) -> str:
    """A wait as short as it can be written: ``1``, ``0.3``, ``6.596``."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def go_duration(seconds: float) -> str:
    """A duration the way Go prints one (OpenAI's and Groq's reset headers): ``12ms``, ``6.596s``, ``6m0s``."""
    millis = round(seconds * 1000)
    if millis < 1000:
        return f"{millis}ms" if millis else "0s"
    minutes, rest = divmod(millis, 60_000)
    text = seconds_text(rest / 1000) + "s"
    return f"{minutes}m{text}" if minutes else text
