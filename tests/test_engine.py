"""The engine over real HTTP: the client against the simulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import pickle
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import accel_nb
from accel_nb import errors
from accel_nb.engine.state import MemoryLaneState

CHAT_PROVIDERS = ["claude", "openai", "groq", "gemini"]
KEY = "sk-test-DISTINCTIVE-key-9f3k"


def requests_to(sim, provider):
    return sim.stats()["requests"].get(provider, 0)


# -- the four providers, both modes ----------------------------------------------------------
@pytest.mark.parametrize("provider", CHAT_PROVIDERS)
def test_chat_and_stream(client, provider):
    response = client.chat(provider, "Explain backpressure in two sentences.", max_tokens=64)
    assert response.text and response.provider == provider and response.finish_reason
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0 and not response.usage.estimated
    assert response.latency_s > 0 and response.attempts == 1 and len(response.request_id) == 36

    stream = client.stream(provider, "Explain backpressure in two sentences.", max_tokens=64)
    chunks = [chunk.text for chunk in stream]
    assert len(chunks) > 1 and "".join(chunks) == stream.response.text == response.text
    assert stream.response.usage.output_tokens == response.usage.output_tokens
    assert stream.response.ttft_s is not None and stream.response.ttft_s <= stream.response.latency_s


RAW_TEXT = {
    "claude": lambda raw: raw["content"][0]["text"],
    "openai": lambda raw: raw["choices"][0]["message"]["content"],
    "groq": lambda raw: raw["choices"][0]["message"]["content"],
    "gemini": lambda raw: raw["candidates"][0]["content"]["parts"][0]["text"],
}


@pytest.mark.parametrize("provider", CHAT_PROVIDERS)
def test_raw_is_the_providers_reply_as_json_however_the_response_is_handled(client, provider):
    # the engine hands `raw` over undecoded; every way of reading the Response must see the JSON
    response = client.chat(provider, "Name a colour.", max_tokens=16)
    revived = pickle.loads(pickle.dumps(response))
    assert dataclasses.replace(response, text="x").raw == revived.raw  # (both decode their own copy)
    assert revived == response and RAW_TEXT[provider](response.raw) == response.text
    assert dataclasses.asdict(response)["raw"] == response.raw
    assert "raw={" in repr(response)


@pytest.mark.parametrize("provider", CHAT_PROVIDERS)
def test_async_twins(client, provider):
    async def main():
        response = await client.achat(provider, "Hello there")
        stream = client.astream(provider, "Hello there")
        parts = [chunk.text async for chunk in stream]
        return response, stream, parts

    response, stream, parts = asyncio.run(main())
    assert "".join(parts) == stream.response.text == response.text


def test_the_engine_runs_on_uvloop_unless_told_otherwise(make_client, monkeypatch):
    import uvloop  # a dependency wherever it builds (Linux, macOS)

    fast = make_client()
    assert isinstance(fast.engine.loop, uvloop.Loop)
    monkeypatch.setenv("ACCEL_NB_LOOP", "asyncio")
    plain = make_client()
    assert not isinstance(plain.engine.loop, uvloop.Loop)
    assert isinstance(plain.engine.loop, asyncio.BaseEventLoop)
    assert plain.chat("openai", "Hello there").text == fast.chat("openai", "Hello there").text


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_embeddings(client, provider):
    vectors = client.embed(provider, ["the cat sat on the mat", "a cat sat on a mat", "quarterly tax filing"])
    assert vectors.shape[0] == 3 and vectors.dtype.name == "float32"
    norms = (vectors**2).sum(axis=1)
    assert norms == pytest.approx([1, 1, 1], abs=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert vectors.response.provider == provider
    raw = client.embed(provider, "one text", normalize=False)
    assert raw.shape[0] == 1


class DribblingServer:
    """An OpenAI-compatible server on 127.0.0.1 that writes its SSE reply a few bytes at a time
    (CRLF line ends), so frames, line ends and characters arrive cut across many reads."""

    FRAMES = [
        {"choices": [{"delta": {"content": "héllo "}, "finish_reason": None}]},
        {"choices": [{"delta": {"content": "wörld ✓"}, "finish_reason": None}]},
        {"choices": [{"delta": {}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 5, "completion_tokens": 3}},
    ]

    def __init__(self, piece: int) -> None:
        self.piece = piece
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._reply, "127.0.0.1", 0),
                                                       self.loop).result()
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1"

    async def _reply(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).lower()
        await reader.readexactly(int(head.split(b"content-length:")[1].split(b"\r\n")[0]))
        frames = [json.dumps(frame, ensure_ascii=False).encode() for frame in self.FRAMES] + [b"[DONE]"]
        body = b"".join(b"data: " + frame + b"\r\n\r\n" for frame in frames)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
        for start in range(0, len(body), self.piece):
            writer.write(body[start:start + self.piece])
            await writer.drain()
            await asyncio.sleep(0.001)  # its own read on the client's side
        writer.close()

    def stop(self) -> None:
        self.server.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.mark.parametrize("piece", [1, 5, 64])
def test_a_stream_arrives_whole_however_the_network_cuts_it(piece):
    server = DribblingServer(piece)
    try:
        with accel_nb.Client({"providers": {"openai": {"base_url": server.url}}}, keys={"openai": ["sk-x"]}) as client:
            stream = client.stream("openai", "Say hello", max_tokens=8)
            chunks = [chunk.text for chunk in stream]
    finally:
        server.stop()
    assert chunks == ["héllo ", "wörld ✓"]
    assert stream.response.text == "héllo wörld ✓" and stream.response.finish_reason == "stop"
    assert (stream.response.usage.input_tokens, stream.response.usage.output_tokens) == (5, 3)


def test_cost_and_estimated_usage(client):
    response = client.chat("openai:gpt-4o-mini", "Hi")
    expected = (response.usage.input_tokens * 0.15 + response.usage.output_tokens * 0.6) / 1e6
    assert response.cost_usd == pytest.approx(expected)
    assert client.chat("openai:my-own-model", "Hi").cost_usd is None


# -- retries ---------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", CHAT_PROVIDERS)
def test_rate_limit_waits_at_least_the_hint(client, sim, provider):
    sim.script(provider, ["429=0.4", "ok"])
    start = time.monotonic()
    response = client.chat(provider, "Hi")
    assert time.monotonic() - start >= 0.4
    assert response.attempts == 2 and requests_to(sim, provider) == 2


def test_retry_after_ms_is_honoured(client, sim):
    sim.script("openai", ["retry-after-ms=300", "ok"])
    start = time.monotonic()
    assert client.chat("openai", "Hi").attempts == 2
    assert time.monotonic() - start >= 0.3


@pytest.mark.parametrize("fault,cls", [
    ("400", errors.BadRequestError),
    ("401", errors.AuthenticationError),
    ("403", errors.PermissionDeniedError),
    ("404", errors.NotFoundError),
    ("quota", errors.QuotaExceededError),
])
@pytest.mark.parametrize("provider", CHAT_PROVIDERS)
def test_permanent_errors_are_raised_after_exactly_one_request(client, sim, provider, fault, cls):
    sim.script(provider, [fault, "ok"])
    with pytest.raises(cls) as caught:
        client.chat(provider, "Hi")
    assert requests_to(sim, provider) == 1
    err = caught.value
    assert err.provider == provider and err.request_id and not err.retryable
    assert err.status in (400, 401, 402, 403, 404, 429)


@pytest.mark.parametrize("provider", CHAT_PROVIDERS)
def test_overload_and_server_errors_are_retried_with_backoff(make_client, sim, provider):
    client = make_client(retry={"max_attempts": 3, "backoff_base_s": 0.01})
    sim.script(provider, ["overloaded", "500", "ok"])
    assert client.chat(provider, "Hi").attempts == 3
    sim.script(provider, ["overloaded"] * 3)
    with pytest.raises((errors.OverloadedError, errors.ServerError)):
        client.chat(provider, "Hi")
    assert requests_to(sim, provider) == 6


def test_total_retry_time_is_bounded(make_client, sim):
    client = make_client(retry={"max_attempts": 10, "max_time_s": 0.5})
    sim.script("openai", ["429=5", "ok"])
    start = time.monotonic()
    with pytest.raises(errors.RateLimitError) as caught:
        client.chat("openai", "Hi")
    assert time.monotonic() - start < 1.0 and caught.value.retry_after_s == pytest.approx(5, abs=0.5)


def test_anthropic_overloaded_in_stream_is_retried_before_any_text(client, sim):
    sim.script("claude", ["stream_error=0", "ok"])
    stream = client.stream("claude", "Hi")
    text = "".join(c.text for c in stream)
    assert text == stream.response.text and stream.response.attempts == 2


def test_anthropic_overloaded_in_stream_after_text_is_surfaced(client, sim):
    sim.script("claude", ["stream_error=3", "ok"])
    stream = client.stream("claude", "Hi")
    received = []
    with pytest.raises(errors.OverloadedError) as caught:
        for chunk in stream:
            received.append(chunk.text)
    assert received and stream.text == "".join(received)
    assert not caught.value.retryable and "part of the answer" in caught.value.message
    assert requests_to(sim, "claude") == 1


def test_connection_reset_midstream_before_and_after_text(client, sim):
    sim.script("openai", ["reset", "ok"])
    assert client.chat("openai", "Hi").attempts == 2
    sim.script("openai", ["midstream=2"])
    with pytest.raises(errors.ConnectionError):
        "".join(c.text for c in client.stream("openai", "Hi"))


# -- priorities, overflow, concurrency ------------------------------------------------------
def test_priority_order_and_fifo_within_a_priority(make_client):
    client = make_client(providers={"openai": {"concurrency": 1}})
    order: list[str] = []

    async def send(name, priority, **kw):
        await client.achat("openai", name, priority=priority, **kw)
        order.append(name)

    async def main():
        # submitted in this order from one loop, so they reach the engine in this order
        blocker = asyncio.ensure_future(send("blocker", "low", headers={"x-sim-ttft": "0.3"}))
        await asyncio.sleep(0)
        rest = [send(name, priority) for name, priority in
                [("low1", "low"), ("normal1", "normal"), ("high1", "high"), ("low2", "low"), ("high2", "high")]]
        await asyncio.gather(blocker, *rest)

    asyncio.run(main())
    assert order == ["blocker", "high1", "high2", "normal1", "low1", "low2"]


def test_concurrency_limit_per_lane(make_client):
    client = make_client(providers={"groq": {"concurrency": 2}})
    in_flight, peak = 0, 0

    def watch(event):
        nonlocal in_flight, peak
        if event.kind == "started":
            in_flight += 1
            peak = max(peak, in_flight)
        elif event.kind in ("done", "failed"):
            in_flight -= 1

    client.engine.tracker.subscribe(watch)

    async def main():
        await asyncio.gather(*[client.achat("groq", f"q{i}", headers={"x-sim-ttft": "0.05"}) for i in range(8)])

    asyncio.run(main())
    assert peak == 2


def test_queue_overflow_reject_and_wait(make_client):
    client = make_client(queue={"max_size": 2, "overflow": "reject"}, providers={"openai": {"concurrency": 1}})

    async def main():
        calls = [client.achat("openai", f"q{i}", headers={"x-sim-ttft": "0.2"}) for i in range(4)]
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(main())
    full = [r for r in results if isinstance(r, errors.QueueFullError)]
    assert len(full) == 1 and "queue.max_size" in str(full[0])
    assert sum(isinstance(r, accel_nb.Response) for r in results) == 3

    waiting = make_client(queue={"max_size": 2, "overflow": "wait"}, providers={"openai": {"concurrency": 1}})

    async def main_wait():
        return await asyncio.gather(*[waiting.achat("openai", f"q{i}") for i in range(10)])

    assert len(asyncio.run(main_wait())) == 10


# -- breaker ---------------------------------------------------------------------------------
def test_circuit_breaker_opens_fails_fast_and_recovers(make_client, sim):
    client = make_client(retry={"max_attempts": 1}, breaker={"failures": 3, "cooldown_s": 0.4})
    sim.script("gemini", ["500", "500", "500"])
    for _ in range(3):
        with pytest.raises(errors.ServerError):
            client.chat("gemini", "Hi")
    with pytest.raises(errors.CircuitOpenError) as caught:
        client.chat("gemini", "Hi")
    assert 0 < caught.value.retry_after_s <= 0.4 and "probe" in str(caught.value)
    assert requests_to(sim, "gemini") == 3  # failing fast: nothing sent
    lanes = client.stats()["providers"]["gemini"]["lanes"]
    assert lanes[0]["breaker"] == "open"
    time.sleep(0.45)
    assert client.chat("gemini", "Hi").text  # the probe
    assert client.stats()["providers"]["gemini"]["lanes"][0]["breaker"] == "closed"


# -- keys --------------------------------------------------------------------------------------
def test_round_robin_over_keys(make_client):
    client = make_client(keys={"openai": ["sk-key-A-0000000000aaaa", "sk-key-B-0000000000bbbb"]})
    for i in range(4):
        client.chat("openai", f"q{i}")
    used = [row["key"] for row in reversed(client.logs(4))]
    assert used == ["runtime …aaaa", "runtime …bbbb", "runtime …aaaa", "runtime …bbbb"]


def test_429_cools_one_key_while_the_other_works(make_client, sim):
    client = make_client(keys={"openai": ["sk-key-A-0000000000aaaa", "sk-key-B-0000000000bbbb"]})
    sim.script("openai", ["429=30", "ok", "ok", "ok"])
    start = time.monotonic()
    response = client.chat("openai", "Hi")
    assert response.attempts == 2 and time.monotonic() - start < 2  # retried at once on the other key
    client.chat("openai", "again")
    keys = [row["key"] for row in reversed(client.logs(2))]
    assert keys == ["runtime …bbbb", "runtime …bbbb"]
    lanes = {lane["key"]: lane["state"] for lane in client.stats()["providers"]["openai"]["lanes"]}
    assert lanes == {"runtime …aaaa": "cooling", "runtime …bbbb": "active"}


class SharedLaneState(MemoryLaneState):
    """What a shared store gives every kernel: one state object per (provider, key)."""

    def __init__(self) -> None:
        super().__init__()
        self.made: dict[tuple[str, str, str], Any] = {}

    def _one(self, what: str, provider: str, key: str, make: Callable[[], Any]) -> Any:
        return self.made.setdefault((what, provider, key), make())

    def limiter(self, provider, key, rpm, tpm):
        make = super().limiter
        return self._one("limiter", provider, key, lambda: make(provider, key, rpm, tpm))

    def breaker(self, provider, key, policy):
        make = super().breaker
        return self._one("breaker", provider, key, lambda: make(provider, key, policy))

    def cooldown(self, provider, key):
        make = super().cooldown
        return self._one("cooldown", provider, key, lambda: make(provider, key))


def test_clients_sharing_lane_state_share_a_keys_cooldown(sim):
    """The lane-state interface is what lets many kernels honour one key's 429 together."""
    shared = SharedLaneState()
    config = {"sim_url": sim.url, "retry": {"max_attempts": 1}}
    keys = {"openai": "sk-shared-key-000000aaaa"}
    with accel_nb.Client(config, keys=keys, lane_state=shared) as first, \
            accel_nb.Client(config, keys=keys, lane_state=shared) as second:
        sim.script("openai", ["429=1.5"])
        with pytest.raises(errors.RateLimitError):
            first.chat("openai", "Hi")
        start = time.monotonic()
        response = second.chat("openai", "Hi")  # never got a 429 itself, yet waits out the key's rest
        assert response.attempts == 1 and time.monotonic() - start >= 1.0
        assert [k for k in shared.made if k[0] == "cooldown"] == [("cooldown", "openai", "runtime …aaaa")]


def test_401_retires_only_that_key(make_client, sim_factory):
    sim = sim_factory(require_key="sk-good-key-0000000bbbb")
    client = make_client(sim_url=sim.url, keys={"claude": ["sk-bad-key-00000000aaaa", "sk-good-key-0000000bbbb"]})
    assert client.chat("claude", "Hi").attempts == 2
    assert client.chat("claude", "Hi again").attempts == 1
    lanes = {lane["key"]: lane["state"] for lane in client.stats()["providers"]["claude"]["lanes"]}
    assert lanes == {"runtime …aaaa": "retired", "runtime …bbbb": "active"}

    only_bad = make_client(sim_url=sim.url, keys={"claude": ["sk-bad-key-00000000aaaa"]})
    with pytest.raises(errors.AuthenticationError) as caught:
        only_bad.chat("claude", "Hi")
    message = str(caught.value)
    assert "runtime …aaaa" in message and "sk-bad-key" not in message and "%accel keys" in message


# -- cancellation and timeouts --------------------------------------------------------------
def test_closing_a_stream_cancels_the_request_and_the_engine_stays_healthy(client, sim):
    stream = client.stream("openai", "Tell me a long story", headers={"x-sim-tps": "20"})
    first = next(iter(stream))
    assert first.text
    stream.close()
    deadline = time.monotonic() + 3
    while sim.stats().get("disconnects", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sim.stats()["disconnects"] >= 1
    assert client.chat("openai", "still there?").text
    row = client.logs(2)[1]
    assert row["status"] == "error" and row["error_class"] == "CancelledError"


def test_keyboard_interrupt_cancels_the_request(client, sim):
    import os
    import signal

    # a process-directed SIGINT, as a kernel interrupt sends: it may land on any thread
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        client.chat("claude", "Hi", headers={"x-sim-fault": "stall"})
    assert time.monotonic() - start < 2
    deadline = time.monotonic() + 3
    while sim.stats().get("disconnects", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sim.stats()["disconnects"] >= 1
    assert client.chat("claude", "Hi").text


def test_timeouts(make_client, sim):
    client = make_client(timeouts={"read": 0.3}, retry={"max_attempts": 2, "backoff_base_s": 0.01})
    sim.script("openai", ["stall", "ok"])
    assert client.chat("openai", "Hi").attempts == 2  # a stalled read is retried
    with pytest.raises(errors.TimeoutError, match="timeout"):
        client.chat("openai", "Hi", headers={"x-sim-fault": "stall"}, timeout=0.4)
    assert client.chat("openai", "Hi").text


def test_the_read_timeout_is_the_longest_silence_not_the_length(make_client, sim):
    client = make_client(timeouts={"read": 0.3}, retry={"max_attempts": 3, "backoff_base_s": 0.01})
    # a token every 50 ms for 0.6 s: longer than the read timeout, never silent that long
    steady = client.stream("openai", "Hi", max_tokens=12, headers={"x-sim-tps": "20"})
    assert len(list(steady)) == 12 and steady.response.attempts == 1
    # a token every 0.5 s: the first arrives, then the silence outlasts the read timeout
    slow = client.stream("openai", "Hi", max_tokens=12, headers={"x-sim-tps": "2"})
    started = time.monotonic()
    with pytest.raises(errors.TimeoutError, match=r"sent nothing for 0\.3 s.*not retried") as caught:
        list(slow)
    assert 0.3 <= time.monotonic() - started < 1.5  # the watchdog's tick is a tenth of the timeout
    assert caught.value.request_id == slow.request_id
    row = client.logs(1)[0]
    assert (row["status"], row["error_class"], row["attempts"]) == ("error", "TimeoutError", 1)
    assert client.chat("openai", "Hi").text  # the engine goes on serving


# -- rate limits learned from headers -------------------------------------------------------
def test_client_slows_down_before_the_server_says_429(make_client, sim_factory):
    sim = sim_factory(rpm=3)
    client = make_client(sim_url=sim.url)
    for i in range(3):
        client.chat("openai", f"q{i}")
    job_stream = client.stream("openai", "the fourth")
    time.sleep(0.3)
    assert sim.stats()["requests"]["openai"] == 3  # held back, not sent into a 429
    assert client.stats()["providers"]["openai"]["queued"] == 1
    job_stream.close()


# -- bad input -------------------------------------------------------------------------------
def test_bad_input_is_a_clear_error_and_the_engine_keeps_serving(client, sim):
    with pytest.raises(errors.BadRequestError, match="did you mean 'claude'"):
        client.chat("cluade", "Hi")
    with pytest.raises(errors.BadRequestError, match="prompt is empty"):
        client.chat("openai", "   ")
    with pytest.raises(errors.BadRequestError, match="temperature must be a number from 0 to 2"):
        client.chat("openai", "Hi", temperature=7)
    with pytest.raises(errors.BadRequestError, match="max_tokens must be a positive integer"):
        client.chat("openai", "Hi", max_tokens=-1)
    with pytest.raises(errors.BadRequestError, match="unknown option 'temprature'"):
        client.chat("openai", "Hi", temprature=0.1)
    with pytest.raises(errors.BadRequestError, match="no embed API"):
        client.embed("claude", ["x"])
    for fault, cls in [("malformed", errors.ProtocolError), ("truncated", errors.ProtocolError)]:
        sim.script("openai", [fault])
        with pytest.raises(cls, match="began"):
            client.chat("openai", "Hi")
    assert client.chat("openai", "Hi").text


def test_bad_options_and_prompts_are_refused_before_anything_is_queued(client, sim, make_client):
    for timeout in (0, -1, "5", True):
        with pytest.raises(errors.BadRequestError, match="timeout must be a number above 0"):
            client.chat("openai", "Hi", timeout=timeout)
    with pytest.raises(errors.BadRequestError, match="priority must be 'high', 'normal' or 'low', not 'urgent'"):
        client.chat("openai", "Hi", priority="urgent")
    with pytest.raises(errors.BadRequestError, match="cache must be True, False or 'force', not 'sometimes'"):
        client.chat("openai", "Hi", cache="sometimes")
    for prompt in (42, {"role": "user", "content": "Hi"}):
        with pytest.raises(errors.BadRequestError, match="a prompt is a string or a list of messages"):
            client.chat("openai", prompt)
    with pytest.raises(errors.BadRequestError, match="embed needs a non-empty text"):
        client.embed("openai", 3)
    with pytest.raises(errors.BadRequestError, match=r"timeouts\.total must be a number above 0"):
        make_client(timeouts={"total": -1})
    with pytest.raises(errors.BadRequestError, match="timeout must be a number above 0"):
        accel_nb.Client({"sim_url": sim.url}, timeout=0)
    assert sim.stats()["requests"].get("openai", 0) == 0 and client.stats()["queued"] == 0
    with pytest.raises(errors.BadRequestError, match="map takes a list of prompts, not a str"):
        client.map("openai", "one prompt", progress=False)  # not a batch of its characters
    with pytest.raises(errors.BadRequestError, match="priority must be"):
        client.map("openai", ["Hi"], priority="asap", progress=False)
    with pytest.raises(errors.BadRequestError, match="add_key takes the key as a non-empty string, not int"):
        client.add_key("openai", 1234)
    with pytest.raises(errors.BadRequestError, match="openai has no key labelled 'nope'; its keys: simulator"):
        client.remove_key("openai", "nope")
    with pytest.raises(errors.BadRequestError, match=r"logs\(limit=\.\.\.\) must be a whole number at least 0"):
        client.logs(-1)
    # in a batch, a bad item is that item's error; the others are answered
    answers = client.map("openai", ["Hi", 42, "there"], progress=False)
    assert isinstance(answers[1], errors.BadRequestError)
    assert answers[0].text and answers[2].text


def test_a_request_stopped_before_its_first_step_is_answered_and_gives_its_lane_back(make_client):
    # a timer due in the same loop turn as the lane's grant cancels the request's task before it
    # ever runs: the engine must answer it and free the slot itself (one slot: a leak would hang)
    client = make_client(providers={"openai": {"concurrency": 1}})
    for _ in range(20):
        with pytest.raises(errors.TimeoutError, match="timeout"):
            client.chat("openai", "Hi", timeout=1e-9)
    lanes = client.stats()["providers"]["openai"]["lanes"]
    assert [lane["in_flight"] for lane in lanes] == [0]
    assert client.chat("openai", "Hi", timeout=30).text
    rows = client.logs(21)
    assert [row["error_class"] for row in rows[1:]] == ["TimeoutError"] * 20  # each one recorded


def test_missing_key_says_which_variable_and_never_suggests_env(monkeypatch):
    client = accel_nb.Client()
    with pytest.raises(errors.AuthenticationError) as caught:
        client.chat("claude", "Hi")
    text = str(caught.value)
    assert "ANTHROPIC_API_KEY" in text and "%accel keys" in text and "%env KEY" not in text
    client.close()


def test_unreachable_server_is_a_connection_error(make_client):
    client = make_client(sim_url="http://127.0.0.1:9", retry={"max_attempts": 2, "backoff_base_s": 0.01})
    with pytest.raises(errors.ConnectionError, match="could not connect"):
        client.chat("openai", "Hi")


# -- tracking, ledger, cache ----------------------------------------------------------------
def test_events_stats_and_ledger_rows(client, sim):
    events, endings = [], []
    client.engine.tracker.subscribe(lambda e: events.append((e.kind, e.request_id)))
    client.engine.tracker.subscribe(lambda e: endings.append((e.kind, e.request_id)), ("retry", "done"))
    with pytest.raises(ValueError, match=r"unknown event kinds.*choose from queued"):
        client.engine.tracker.subscribe(endings.append, ("finished",))
    sim.script("groq", ["429=0.05", "ok"])
    stream = client.stream("groq", "Hi")
    list(stream)
    rid = stream.request_id
    kinds = [kind for kind, request in events if request == rid]
    assert kinds == ["queued", "started", "retry", "first_token", "done"]
    assert endings == [("retry", rid), ("done", rid)]  # a listener hears only the kinds it asked for
    stats = client.stats()["providers"]["groq"]
    assert stats["requests"] == 1 and stats["retries"] == 1 and stats["latency_p50_s"] > 0
    row = client.logs(1)[0]
    assert row["id"] == rid and row["status"] == "ok" and row["attempts"] == 2
    assert row["input_tokens"] == stream.response.usage.input_tokens and row["response"] == stream.response.text
    assert "Hi" in row["prompt"] and row["key"] == "simulator …ator"


def test_no_key_reaches_errors_logs_or_the_ledger(make_client, sim, tmp_path):
    client = make_client(keys={"openai": [KEY], "claude": [KEY]})
    for fault in ["401", "400", "malformed", "500"]:
        sim.script("openai", [fault] * 6)
        with pytest.raises(errors.AccelError) as caught:
            client.chat("openai", "Hi", params={"echo": KEY})
        import traceback

        rendered = "".join(traceback.format_exception(caught.value)) + repr(caught.value) + str(caught.value.__dict__)
        assert KEY not in rendered
    client.chat("claude", "Hi")
    client.engine.ledger.flush()
    for path in tmp_path.rglob("*.sqlite3*"):
        assert KEY.encode() not in path.read_bytes()
    assert KEY not in repr(client.logs(20)) and KEY not in str(client.stats()) and KEY not in repr(client.settings)


def test_ledger_survives_clients_and_logs_filters(make_client, sim):
    first = make_client()
    first.chat("openai", "one")
    sim.script("gemini", ["400"])
    with pytest.raises(errors.BadRequestError):
        first.chat("gemini", "two")
    first.close()
    second = make_client()
    rows = second.logs(10)
    assert [r["provider"] for r in rows] == ["gemini", "openai"]
    assert [r["provider"] for r in second.logs(10, errors=True)] == ["gemini"]
    assert [r["provider"] for r in second.logs(10, provider="google")] == ["gemini"]


def test_cache_hits_skip_the_network(make_client, sim):
    client = make_client(cache=True)
    first = client.chat("claude", "Same question", temperature=0)
    second = client.chat("claude", "Same question", temperature=0)
    assert second.cached and not first.cached and second.text == first.text
    assert second.cost_usd == 0.0 and requests_to(sim, "claude") == 1
    client.chat("claude", "Same question", temperature=0.9)
    client.chat("claude", "Same question", temperature=0.9)
    assert requests_to(sim, "claude") == 3  # temperature > 0: not cached
    client.chat("claude", "Same question", temperature=0.9, cache="force")
    assert client.chat("claude", "Same question", temperature=0.9, cache="force").cached
    assert client.stats()["providers"]["claude"]["cached"] == 2


# -- batches -----------------------------------------------------------------------------------
def test_map_keeps_order_and_returns_errors_as_values(client, sim):
    sim.script("openai", ["ok", "400", "ok"])
    prompts = [f"question {i}" for i in range(6)] + [""]
    results = client.map("openai", prompts, progress=False)
    assert len(results) == 7
    assert sum(isinstance(r, errors.BadRequestError) for r in results) == 2  # the scripted 400 and the empty prompt
    assert isinstance(results[-1], errors.BadRequestError)
    ok = [r for r in results if isinstance(r, accel_nb.Response)]
    assert all("question" in client.logs(20)[0]["prompt"] for _ in ok)
    with pytest.raises(errors.BadRequestError):
        client.map("openai", ["a", ""], raise_on_error=True, progress=False)


def test_map_runs_at_low_priority_and_resumes(client, sim):
    sim.script("groq", ["ok", "ok", "400", "ok"])
    prompts = [f"p{i}" for i in range(4)]
    first = client.map("groq", prompts, batch_id="nightly", progress=False)
    assert sum(isinstance(r, errors.AccelError) for r in first) == 1
    sent_before = requests_to(sim, "groq")
    second = client.map("groq", prompts, batch_id="nightly", progress=False)
    assert requests_to(sim, "groq") == sent_before + 1  # only the failed item went out again
    assert all(isinstance(r, accel_nb.Response) for r in second)
    assert [r.text for r in second if not r.cached] and all(r.text for r in second)
    assert {row["priority"] for row in client.logs(10, batch_id="nightly")} == {"low"}


def test_amap(client):
    async def main():
        return await client.amap("gemini", ["a", "b", "c"], progress=False)

    results = asyncio.run(main())
    assert [r.provider for r in results] == ["gemini"] * 3


# -- keys at run time, model lists, discovery ---------------------------------------------------
def test_keys_added_at_run_time_models_and_verification(make_client, sim_factory):
    sim = sim_factory(require_key="sk-typed-in-key-00000zzzz")
    client = make_client(sim_url=sim.url)
    with pytest.raises(errors.AuthenticationError):
        client.chat("openai", "Hi")  # the simulator placeholder key is refused here
    assert client.verify_key("openai")["ok"] is False
    label = client.add_key("openai", "sk-typed-in-key-00000zzzz")
    assert label == "session …zzzz"
    assert client.chat("openai", "Hi").text
    assert [k["key"] for k in client.key_status("openai")] == ["session …zzzz"]
    verified = client.verify_key("openai")
    assert verified["key"] == "session …zzzz" and verified["ok"] and verified["error"] is None and verified["models"]
    models = client.models("openai")
    assert "gpt-4o-mini" in models
    assert "gemini-2.5-flash" in make_client().models("gemini")
    client.remove_key("openai", label)
    assert client.key_status("openai") == []
