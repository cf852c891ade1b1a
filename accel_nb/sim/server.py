"""The simulator's app and its running handle: protocol registry, admin routes, latency model,
rate-limit bookkeeping and statistics.

``build_app`` gives a plain ``aiohttp.web.Application``; ``serve`` runs one on its own
event loop in a daemon thread and returns a ``SimServer`` to script, inspect and stop it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import itertools
import json
import math
import secrets
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from aiohttp import web

from .anthropic import Anthropic
from .base import SIM, Limit, Protocol
from .faults import FaultPlan
from .gemini import Gemini
from .groq import Groq
from .llvm import Llvm
from .ollama import Ollama
from .opea import OPEA
from .openai import OpenAI
from .ovms import OVMS
from .tei import TEI
from .tgi import TGI
from .vllm import VLLM

__all__ = [
    "PROTOCOLS",
    "Latency",
    "Pace",
    "RateBook",
    "SimServer",
    "SimState",
    "Stats",
    "Window",
    "build_app",
    "fetch_stats",
    "serve",
]

#: Every simulated API.  Adding one is a module with a ``Protocol`` subclass and an entry here.
PROTOCOLS: tuple[type[Protocol], ...] = (Anthropic, OpenAI, Groq, Gemini, TGI, TEI, Ollama, Llvm, VLLM, OPEA, OVMS)

DEFAULT_RPM = 10_000
DEFAULT_TPM = 10_000_000
SLOW_TTFT_S = 2.0

_T = TypeVar("_T")


class Pace(NamedTuple):
    """How fast one reply comes: seconds to the first token, then tokens per second."""

    ttft_s: float
    tokens_per_s: float  # math.inf: no pause between tokens


class Latency:
    """The server-wide latency model; ``x-sim-ttft`` / ``x-sim-tps`` override it per request.

    ``"zero"`` means no sleeps at all (``pace`` returns ``None``) unless a request asks
    for them, so throughput benchmarks measure the client, not the simulator.
    """

    def __init__(self, mode: str, ttft_s: float, tokens_per_s: float) -> None:
        if mode not in ("realistic", "zero"):
            raise ValueError(f"latency must be 'realistic' or 'zero', not {mode!r}")
        if ttft_s < 0 or tokens_per_s <= 0:
            raise ValueError("ttft_s must be >= 0 and tokens_per_s > 0")
        self.default = Pace(ttft_s, tokens_per_s) if mode == "realistic" else None

    def pace(self, headers: Mapping[str, str], slow: bool = False) -> Pace | None:
        ttft, tps = headers.get("x-sim-ttft"), headers.get("x-sim-tps")
        if ttft is None and tps is None and not slow:
            return self.default
        base = self.default or Pace(0.0, math.inf)
        return Pace(
            SLOW_TTFT_S if slow else _number("x-sim-ttft", ttft, base.ttft_s, minimum=0.0),
            _number("x-sim-tps", tps, base.tokens_per_s, minimum=1e-9),
        )


def _number(name: str, text: str | None, default: float, minimum: float) -> float:
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {text!r}") from None
    if not value >= minimum:
        raise ValueError(f"{name} must be at least {minimum:g}, not {text!r}")
    return value


@dataclass(slots=True)
class Window:
    """One key's per-minute budget after a request, as rate-limit headers report it."""

    requests_limit: int
    requests_remaining: int
    tokens_limit: int
    tokens_remaining: int
    input_tokens_remaining: int
    output_tokens_remaining: int
    reset_s: float
    exhausted: Limit | None = None


class _Slot:
    __slots__ = ("input_tokens", "output_tokens", "requests", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.requests = self.input_tokens = self.output_tokens = 0


class RateBook:
    """Requests and tokens per (provider, key) in fixed one-minute windows, against rpm and tpm.

    A request that fits is counted; one that does not is refused (a real 429) and not
    counted, and the wait hint is the time left in the window.
    """

    window_s = 60.0

    def __init__(self, rpm: int, tpm: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rpm, self.tpm, self._clock = rpm, tpm, clock
        self._slots: dict[tuple[str, str], _Slot] = {}

    def admit(self, provider: str, key: str, input_tokens: int, output_tokens: int) -> Window:
        now = self._clock()
        slot = self._slots.get((provider, key))
        if slot is None or now >= slot.start + self.window_s:
            slot = self._slots[provider, key] = _Slot(now)
        used = slot.input_tokens + slot.output_tokens
        cost = input_tokens + output_tokens
        exhausted = None
        if slot.requests >= self.rpm:
            exhausted = Limit("requests", self.rpm, slot.requests, 1)
        elif used + cost > self.tpm:
            exhausted = Limit("tokens", self.tpm, used, cost)
        else:
            slot.requests += 1
            slot.input_tokens += input_tokens
            slot.output_tokens += output_tokens
            used += cost
        return Window(
            requests_limit=self.rpm,
            requests_remaining=self.rpm - slot.requests,
            tokens_limit=self.tpm,
            tokens_remaining=self.tpm - used,
            input_tokens_remaining=self.tpm - slot.input_tokens,
            output_tokens_remaining=self.tpm - slot.output_tokens,
            reset_s=max(0.0, slot.start + self.window_s - now),
            exhausted=exhausted,
        )

    def nominal(self) -> Limit:
        """What an injected 429 claims was hit."""
        return Limit("requests", self.rpm, self.rpm, 1)

    def reset(self) -> None:
        self._slots.clear()


class Stats:
    """What the simulator saw: requests per provider and route, faults, disconnects, real 429s."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests: Counter[str] = Counter()
        self.routes: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.disconnects = 0
        self.rate_limited = 0

    def count(self, provider: str, route: str) -> None:
        self.requests[provider] += 1
        self.routes[route] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "routes": dict(self.routes),
            "faults": dict(self.faults),
            "disconnects": self.disconnects,
            "rate_limited": self.rate_limited,
        }


class SimState:
    """One simulator's settings and mutable state, shared by every route of its app."""

    def __init__(
        self,
        *,
        faults: str | None = None,
        latency: str = "realistic",
        ttft_s: float = 0.25,
        tokens_per_s: float = 80.0,
        seed: int = 0,
        require_key: str | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
    ) -> None:
        self.seed = seed
        self.require_key = require_key
        self.faults = FaultPlan(faults, seed)
        self.latency = Latency(latency, ttft_s, tokens_per_s)
        self.book = RateBook(DEFAULT_RPM if rpm is None else rpm, DEFAULT_TPM if tpm is None else tpm)
        self.stats = Stats()
        self.protocols: dict[str, Protocol] = {p.id: p for p in (cls() for cls in PROTOCOLS)}
        self._aliases = {alias: p.id for p in self.protocols.values() for alias in p.adapter.aliases}
        self._uid_prefix = secrets.token_hex(4)
        self._uids = itertools.count(1)

    def check_key(self, key: str | None, required: bool = True) -> str | None:
        """``None`` when the key is accepted, else ``"missing"`` or ``"invalid"``.  A server that
        needs no key (``required=False``) takes any, or none, unless ``require_key`` is set."""
        if not key:
            return "missing" if required or self.require_key is not None else None
        if self.require_key is not None and not hmac.compare_digest(key.encode(), self.require_key.encode()):
            return "invalid"
        return None

    def new_uid(self) -> str:
        """A fresh id (28 hex digits) for request ids, message ids and the like."""
        return f"{self._uid_prefix}{next(self._uids):020x}"

    def provider(self, name: str) -> str:
        """A provider id from an id or alias (``anthropic`` -> ``claude``)."""
        key = name.strip().lower()
        key = self._aliases.get(key, key)
        if key not in self.protocols:
            raise ValueError(f"unknown provider {name!r}; known: {', '.join(self.protocols)}")
        return key

    def script(self, provider: str, faults: list[str]) -> None:
        self.faults.script(self.provider(provider), faults)

    def base_urls(self, origin: str) -> dict[str, str]:
        """Each provider id -> the base URL its official SDK (and our client) takes."""
        return {p.id: origin + p.prefix for p in self.protocols.values()}

    def reset(self) -> None:
        """Clear statistics, scripts and rate-limit windows; restart the fault draws."""
        self.stats.reset()
        self.faults.reset()
        self.book.reset()


def build_app(
    *,
    faults: str | None = None,
    latency: str = "realistic",
    ttft_s: float = 0.25,
    tokens_per_s: float = 80.0,
    seed: int = 0,
    require_key: str | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
) -> web.Application:
    """The simulator as an aiohttp app.  Run it with ``handler_cancellation=True`` (as ``serve``
    does) so a stalled request notices its client leaving."""
    state = SimState(
        faults=faults,
        latency=latency,
        ttft_s=ttft_s,
        tokens_per_s=tokens_per_s,
        seed=seed,
        require_key=require_key,
        rpm=rpm,
        tpm=tpm,
    )
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[SIM] = state
    for protocol in state.protocols.values():
        for route in protocol.routes():
            app.router.add_route(route.method, protocol.prefix + route.path, protocol.handler(route))
    app.router.add_get("/", _index)
    app.router.add_get("/_sim/stats", _stats)
    app.router.add_post("/_sim/reset", _reset)
    app.router.add_post("/_sim/faults", _set_faults)
    app.router.add_post("/_sim/script", _script)
    return app


# -- admin routes -----------------------------------------------------------------------


async def _index(request: web.Request) -> web.Response:
    return web.json_response(request.app[SIM].base_urls(f"{request.scheme}://{request.host}"))


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[SIM].stats.snapshot())


async def _reset(request: web.Request) -> web.Response:
    request.app[SIM].reset()
    return web.json_response({"ok": True})


async def _set_faults(request: web.Request) -> web.Response:
    body = await _admin_body(request)
    try:
        request.app[SIM].faults.set_spec(body.get("spec"))
    except (ValueError, TypeError, AttributeError) as exc:
        raise _admin_error(f"bad fault spec: {exc}") from None
    return web.json_response({"spec": request.app[SIM].faults.spec})


async def _script(request: web.Request) -> web.Response:
    body = await _admin_body(request)
    faults = body.get("faults")
    if not isinstance(body.get("provider"), str) or not isinstance(faults, list):
        raise _admin_error('expected {"provider": "openai", "faults": ["429=0.3", "ok"]}')
    try:
        request.app[SIM].script(body["provider"], [str(f) for f in faults])
    except ValueError as exc:
        raise _admin_error(str(exc)) from None
    return web.json_response({"ok": True})


async def _admin_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _admin_error("expected a JSON object")
    return body


def _admin_error(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


# -- running in a thread ----------------------------------------------------------------


class SimServer:
    """A simulator running on its own event loop in a daemon thread.

    >>> with serve(latency="zero") as sim:                    # doctest: +SKIP
    ...     os.environ.update(sim.env())
    """

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self._state = app[SIM]
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.25)
        started: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(started, port), name="accel-nb-sim", daemon=True)
        self._thread.start()
        self.port: int = started.result()
        url_host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        url_host = f"[{url_host}]" if ":" in url_host else url_host
        self.url = f"http://{url_host}:{self.port}"

    def _run(self, started: concurrent.futures.Future[int], port: int) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self.host, port, reuse_address=True)
            self._loop.run_until_complete(site.start())
            started.set_result(self._runner.addresses[0][1])
        except BaseException as exc:
            started.set_exception(exc)
            self._loop.close()
            return
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

    @property
    def base_urls(self) -> dict[str, str]:
        """Each provider id -> the base URL its official SDK takes (same as ``GET /``)."""
        return self._state.base_urls(self.url)

    def env(self) -> dict[str, str]:
        """Environment variables that point ``accel_nb`` at this simulator."""
        return {"ACCEL_NB_SIM_URL": self.url}

    def script(self, provider: str, faults: list[str]) -> None:
        """Queue faults for the provider's next requests, one each, in order (``"ok"``: none)."""
        self._on_loop(self._state.script, provider, list(faults))

    def set_faults(self, spec: str | None) -> None:
        """Replace the server-wide fault spec, e.g. ``"429:0.1,reset:0.02"`` (``None``: no faults)."""
        self._on_loop(self._state.faults.set_spec, spec)

    def stats(self) -> dict[str, Any]:
        return self._on_loop(self._state.stats.snapshot)

    def reset(self) -> None:
        self._on_loop(self._state.reset)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()

    def _on_loop(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn`` on the server's loop, so state is only ever touched from one thread."""

        async def call() -> _T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result()

    def __enter__(self) -> SimServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<SimServer {self.url}>"


def serve(
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    faults: str | None = None,
    latency: str = "realistic",
    ttft_s: float = 0.25,
    tokens_per_s: float = 80.0,
    seed: int = 0,
    require_key: str | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
) -> SimServer:
    """Start a simulator on ``host:port`` (0: a free port) and return its handle."""
    app = build_app(
        faults=faults,
        latency=latency,
        ttft_s=ttft_s,
        tokens_per_s=tokens_per_s,
        seed=seed,
        require_key=require_key,
        rpm=rpm,
        tpm=tpm,
    )
    return SimServer(app, host, port)


def fetch_stats(url: str, timeout: float = 10.0) -> dict[str, Any]:
    """What a simulator running anywhere (another process, ``ACCEL_NB_SIM_URL``) has served, as
    ``SimServer.stats()`` gives it; ``url`` is its root or any provider base URL on it."""
    parts = urllib.parse.urlsplit(url)
    with urllib.request.urlopen(f"{parts.scheme}://{parts.netloc}/_sim/stats", timeout=timeout) as reply:
        return json.loads(reply.read())
