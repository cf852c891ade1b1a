"""Fixtures every test shares: an isolated environment, and a fast simulator."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from accel_nb.sim import SimServer, serve

_ISOLATED = ("*_API_KEY*", "*_URL", "OLLAMA_HOST", "ACCEL_NB_*", "GOOGLE_*", "HF_TOKEN*", "AWS_*")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """No real keys, base URLs or accel_nb settings leak in; accel_nb's home is the test's tmp dir."""
    for name in list(os.environ):
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in _ISOLATED):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ACCEL_NB_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # nor a .env file from the checkout


@pytest.fixture
def sim() -> Iterator[SimServer]:
    """A zero-latency simulator on a free port, stopped after the test."""
    with serve(latency="zero") as server:
        yield server


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., SimServer]]:
    """Zero-latency simulators with options (``require_key=``, ``rpm=`` …), all stopped after the test."""
    servers: list[SimServer] = []

    def make(**options) -> SimServer:
        servers.append(serve(latency="zero", **options))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Any]:
    """A real S3 server (moto's server mode) on a free port, for the whole session; its
    ``.log`` counts the requests that reach it and can inject S3 errors (see s3_helpers)."""
    from s3_helpers import start_moto

    server = start_moto()
    yield server
    server.stop()


@pytest.fixture
def make_client(sim: SimServer) -> Iterator[Callable[..., Any]]:
    """Clients talking to the test's simulator (``sim_url`` unless given), closed after the test.
    Keyword arguments are the config dict; ``keys=`` is passed as the run-time keys."""
    import accel_nb

    clients: list[Any] = []

    def make(**config: Any) -> Any:
        keys = config.pop("keys", None)
        config.setdefault("sim_url", sim.url)
        clients.append(accel_nb.Client(config, keys=keys))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., Any]) -> Any:
    """A client of the test's simulator."""
    return make_client()
