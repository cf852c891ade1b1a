"""The one HTTP connection pool of an engine loop, and its errors mapped into the taxonomy.

aiohttp, chosen by measurement (``benchmarks/overhead.py``): on one core it moves
about ten times the requests per second of httpx's default transport, and the
engine's overhead bar is set against raw aiohttp.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson

from .. import errors
from ..providers.base import HttpCall, snippet

__all__ = ["Transport", "decode_json", "transport_error"]


class Transport:
    """A lazily created ``aiohttp.ClientSession`` bound to the engine loop."""

    def __init__(self, connect_timeout_s: float, read_timeout_s: float) -> None:
        # sock_connect, not connect: aiohttp arms a `connect` timer on every request, even on a
        # reused connection; sock_connect only when it opens a socket.  No sock_read on the
        # session: the engine's Watchdog times the reads of queued requests, and only calls
        # outside the queue have aiohttp time theirs.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s)
        self._read_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s
        )
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    def send(self, call: HttpCall, *, read_timeout: bool = False) -> Any:
        """An ``async with`` context giving the ``aiohttp.ClientResponse``.  aiohttp times its
        reads only with ``read_timeout``; the engine's Watchdog times those of queued requests."""
        body = None if call.json is None else orjson.dumps(call.json, option=orjson.OPT_NON_STR_KEYS)
        timeout = self._read_timeout if read_timeout else self._timeout
        return self.session.request(call.method, call.url, data=body, headers=call.headers, timeout=timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def decode_json(body: bytes, provider: str, status: int) -> Any:
    try:
        return orjson.loads(body)
    except ValueError:
        what = "an empty body" if not body.strip() else "something that is not JSON"
        raise errors.ProtocolError(
            f"{provider} replied with {what} (HTTP {status}); it began: {snippet(body)!r}",
            status=status,
        ) from None


def transport_error(exc: BaseException, provider: str, url: str, read_timeout_s: float) -> errors.AccelError:
    """An aiohttp / OS failure as a retryable ``TimeoutError`` or ``ConnectionError``."""
    origin = url.split("/", 3)[:3]
    where = "/".join(origin)
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return errors.TimeoutError(
            f"{provider} at {where} sent nothing for {read_timeout_s:g} s",
            hint="the server may be stalled; raise timeouts.read in the config if it is just slow",
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return errors.ConnectionError(
            f"could not connect to {provider} at {where}: {exc.os_error.strerror or exc.os_error}",
            hint="check the base URL and that the server is running",
        )
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        return errors.ConnectionError(f"{provider} at {where} closed the connection mid-reply")
    return errors.ConnectionError(f"connection to {provider} at {where} failed: {type(exc).__name__}: {exc}")
