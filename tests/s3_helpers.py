"""A real S3 server for the tests: moto's ``ThreadedMotoServer``, with a thin WSGI layer in
front of its app that counts what reaches the server, tracks how many requests are in flight
at once, and can answer the next requests with a real S3 error (SlowDown, InternalError…)."""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

_ERROR = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>{code}</Code><Message>{message}</Message><RequestId>TESTREQUEST</RequestId></Error>"
)
_REASONS = {500: "Internal Server Error", 503: "Slow Down"}


class ServerLog:
    """WSGI middleware: the requests that reached the server, and scripted S3 errors."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests: list[tuple[str, str, str]] = []
            self.faults: collections.deque[tuple[str, int]] = collections.deque()
            self.delay_s = 0.0
            self.in_flight = self.peak = 0

    def fail_next(self, code: str, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests with S3 error ``code`` (``SlowDown``, 503 …)."""
        with self._lock:
            self.faults.extend([(code, status)] * times)

    def count(self, method: str, path: str, query: str | None = None) -> int:
        """Requests with this method and path (and, if given, containing ``query``)."""
        with self._lock:
            return sum(1 for m, p, q in self.requests if m == method and p == path and (query is None or query in q))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._lock:
            self.requests.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("QUERY_STRING", "")))
            fault = self.faults.popleft() if self.faults else None
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            delay = self.delay_s
        try:
            if delay:
                time.sleep(delay)
            if fault is not None:
                code, status = fault
                body = _ERROR.format(code=code, message="Please reduce your request rate.").encode()
                start_response(f"{status} {_REASONS.get(status, 'Error')}",
                               [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
                return [body]
            return list(self.app(environ, start_response))
        finally:
            with self._lock:
                self.in_flight -= 1


class LoggedMotoServer(ThreadedMotoServer):
    """``ThreadedMotoServer`` whose app sits behind a ``ServerLog``."""

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.log = ServerLog(DomainDispatcherApplication(create_backend_app))

    def _server_entry(self) -> None:  # moto's own, with the log in front of its app
        self._server = make_server(self._ip_address, self._port, self.log, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"


def start_moto() -> LoggedMotoServer:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on the test output
    server = LoggedMotoServer()
    server.start()
    return server
