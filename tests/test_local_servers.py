"""Ollama, LLVM, vLLM and OPEA through the engine, over real HTTP to the simulator: what they share.

Each server's own error shape must land in the right class of the taxonomy, its
overload status must be retried, its validation errors must not (exactly one request
reaches the server), and a failing server must trip the breaker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

import accel_nb
from accel_nb import errors

SERVERS = ["ollama", "llvm", "vllm", "opea"]

#: One ordinary, non-streaming call per server.
CALLS: dict[str, Callable[[accel_nb.Client], Any]] = {
    "ollama": lambda client: client.chat("ollama", "Hi"),
    "llvm": lambda client: client.infer("llvm:bert-base", "Hi"),
    "vllm": lambda client: client.chat("vllm", "Hi"),
    "opea": lambda client: client.chat("opea", "Hi"),
}
#: And a streaming one, where the server streams.
STREAMS: dict[str, Callable[[accel_nb.Client], Any]] = {
    "ollama": lambda client: client.stream("ollama", "Tell me about queues"),
    "vllm": lambda client: client.stream("vllm", "Tell me about queues"),
    "opea": lambda client: client.stream("opea", "Tell me about queues"),
}


def sent(sim, provider: str) -> int:
    return sim.stats()["requests"].get(provider, 0)


@pytest.mark.parametrize(
    "fault,cls",
    [
        ("400", errors.BadRequestError),
        ("401", errors.AuthenticationError),
        ("403", errors.PermissionDeniedError),
        ("404", errors.NotFoundError),
        ("422", errors.BadRequestError),
        ("quota", errors.QuotaExceededError),
    ],
)
@pytest.mark.parametrize("provider", SERVERS)
def test_permanent_errors_reach_the_server_once(client, sim, provider, fault, cls):
    sim.script(provider, [fault, "ok"])
    with pytest.raises(cls) as caught:
        CALLS[provider](client)
    assert sent(sim, provider) == 1
    err = caught.value
    assert err.provider == provider and not err.retryable and err.message and "HTTP" not in err.message


@pytest.mark.parametrize("provider", SERVERS)
def test_overload_status_and_server_errors_are_retried(make_client, sim, provider):
    client = make_client(retry={"max_attempts": 3, "backoff_base_s": 0.01})
    sim.script(provider, ["overloaded", "500", "ok"])
    result = CALLS[provider](client)
    assert getattr(result, "response", result).attempts == 3
    sim.script(provider, ["overloaded"] * 3)
    with pytest.raises(errors.OverloadedError) as caught:
        CALLS[provider](client)
    assert caught.value.status == 503 and sent(sim, provider) == 6


@pytest.mark.parametrize("provider", SERVERS)
def test_a_429_waits_for_its_hint(client, sim, provider):
    sim.script(provider, ["429=0.3", "ok"])
    start = time.monotonic()
    result = CALLS[provider](client)
    assert time.monotonic() - start >= 0.3 and getattr(result, "response", result).attempts == 2


@pytest.mark.parametrize("provider", SERVERS)
def test_resets_are_retried_and_broken_replies_are_protocol_errors(client, sim, provider):
    sim.script(provider, ["reset", "ok"])
    assert getattr(result := CALLS[provider](client), "response", result).attempts == 2
    for fault in ("malformed", "truncated"):
        sim.script(provider, [fault])
        with pytest.raises(errors.ProtocolError):
            CALLS[provider](client)


@pytest.mark.parametrize("provider", SERVERS)
def test_the_breaker_opens_on_a_failing_server(make_client, sim, provider):
    client = make_client(retry={"max_attempts": 1}, breaker={"failures": 3, "cooldown_s": 0.3})
    sim.script(provider, ["500"] * 3)
    for _ in range(3):
        with pytest.raises(errors.ServerError):
            CALLS[provider](client)
    with pytest.raises(errors.CircuitOpenError):
        CALLS[provider](client)
    assert sent(sim, provider) == 3
    time.sleep(0.35)
    assert CALLS[provider](client) is not None  # the probe gets through and closes it


@pytest.mark.parametrize("provider", SERVERS)
def test_an_optional_key_is_sent_as_bearer_when_the_server_wants_one(make_client, sim_factory, provider):
    guarded = sim_factory(require_key="sk-gateway-key-00001234")
    with pytest.raises(errors.AuthenticationError):
        CALLS[provider](make_client(sim_url=guarded.url))  # only the simulator's placeholder key
    assert CALLS[provider](make_client(sim_url=guarded.url, keys={provider: "sk-gateway-key-00001234"}))


@pytest.mark.parametrize("provider", sorted(STREAMS))
def test_a_failure_inside_the_stream_before_any_text_is_retried(client, sim, provider):
    sim.script(provider, ["stream_error=0", "ok"])
    stream = STREAMS[provider](client)
    text = "".join(chunk.text for chunk in stream)
    assert text and stream.response.attempts == 2


@pytest.mark.parametrize(
    "provider,cls", [("ollama", errors.ServerError), ("vllm", errors.ServerError), ("opea", errors.ConnectionError)]
)
def test_a_failure_inside_the_stream_after_text_is_surfaced(client, sim, provider, cls):
    sim.script(provider, ["stream_error=3"])
    stream = STREAMS[provider](client)
    received = []
    with pytest.raises(cls) as caught:
        for chunk in stream:
            received.append(chunk.text)
    assert len(received) == 3 and not caught.value.retryable and sent(sim, provider) == 1


@pytest.mark.parametrize("provider", sorted(STREAMS))
def test_a_stream_cut_midway_is_a_connection_error(client, sim, provider):
    sim.script(provider, ["midstream=2"])
    with pytest.raises(errors.ConnectionError):
        "".join(chunk.text for chunk in STREAMS[provider](client))
