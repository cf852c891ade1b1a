"""Fault injection, latency, statistics, rate limits and auth of the simulator, over real HTTP."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time

import httpx
import pytest
from sim_helpers import KEY, PROVIDERS, chat_request, http, post, sse_frames, token_text, wait_for

from accel_nb.providers.base import parse_duration
from accel_nb.sim import serve
from accel_nb.sim.base import go_duration, seconds_text
from accel_nb.sim.faults import FAULTS, Fault, FaultPlan, parse_fault, parse_spec
from accel_nb.sim.server import Latency, Pace, RateBook

OVERLOAD = {"openai": 503, "claude": 529, "groq": 498, "gemini": 503}


# -- parsing and deciding (pure) ----------------------------------------------------------


def test_parse_fault_reads_names_and_values() -> None:
    assert parse_fault("429") == Fault("429")
    assert parse_fault(" 429=0.3 ") == Fault("429", 0.3)
    assert parse_fault("midstream=5") == Fault("midstream", 5.0)
    assert parse_fault("retry-after-ms=250") == Fault("retry-after-ms", 250.0)
    assert parse_fault("ok") is None
    assert str(Fault("stall", 0.5)) == "stall=0.5"
    assert set(FAULTS) >= {"429", "quota", "529", "overloaded", "reset", "midstream", "stream_error", "stall"}


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("teapot", "unknown fault"),
        ("quota=3", "takes no value"),
        ("429=soon", "needs a number"),
        ("429=-1", ">= 0"),
        ("midstream=1.5", "whole number"),
        ("retry-after-ms", "needs a value"),
    ],
)
def test_parse_fault_refuses_bad_input(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_fault(text)


def test_parse_spec_reads_probabilities() -> None:
    spec = parse_spec("429:0.1,529:0.05,reset:0.02,midstream:0.02,stall:0.01")
    assert spec == (
        (Fault("429"), 0.1),
        (Fault("529"), 0.05),
        (Fault("reset"), 0.02),
        (Fault("midstream"), 0.02),
        (Fault("stall"), 0.01),
    )
    assert parse_spec("429=2:0.5, midstream=1:0.5") == ((Fault("429", 2.0), 0.5), (Fault("midstream", 1.0), 0.5))
    assert parse_spec(None) == parse_spec("") == ()


@pytest.mark.parametrize(
    ("spec", "complaint"), [("429", "needs a probability"), ("429:2", "between 0 and 1"), ("429:0.6,500:0.6", "add up")]
)
def test_parse_spec_refuses_bad_input(spec: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_spec(spec)


def test_random_faults_are_reproducible_from_the_seed() -> None:
    def draws(seed: int) -> list[Fault | None]:
        plan = FaultPlan("429:0.3,reset:0.2", seed=seed)
        return [plan.decide("openai") for _ in range(2000)]

    first = draws(7)
    assert first == draws(7)
    assert first != draws(8)
    assert first.count(Fault("429")) / 2000 == pytest.approx(0.3, abs=0.04)
    assert first.count(Fault("reset")) / 2000 == pytest.approx(0.2, abs=0.04)
    assert first.count(None) / 2000 == pytest.approx(0.5, abs=0.04)


def test_reset_restarts_the_draws_and_forgets_scripts() -> None:
    plan = FaultPlan("500:0.5", seed=3)
    before = [plan.decide("groq") for _ in range(20)]
    plan.script("groq", ["429"])
    plan.reset()
    assert [plan.decide("groq") for _ in range(20)] == before


def test_scripts_run_in_order_per_provider_and_the_header_wins() -> None:
    plan = FaultPlan("500:1", seed=0)
    plan.script("openai", ["429=0.3", "ok", "reset"])
    assert plan.decide("claude") == Fault("500")  # other providers: the spec
    assert plan.decide("openai") == Fault("429", 0.3)
    assert plan.decide("openai") is None  # "ok"
    assert plan.decide("openai", forced="overloaded") == Fault("overloaded")  # consumes "reset"
    assert plan.decide("openai") == Fault("500")  # script used up: back to the spec
    with pytest.raises(ValueError):
        plan.script("openai", ["429", "nonsense"])
    assert plan.decide("openai") == Fault("500")  # nothing of the bad script was queued


def test_latency_model() -> None:
    zero = Latency("zero", 0.25, 80.0)
    assert zero.pace({}) is None
    assert zero.pace({"x-sim-ttft": "0.05"}) == Pace(0.05, math.inf)
    assert zero.pace({}, slow=True) == Pace(2.0, math.inf)
    real = Latency("realistic", 0.25, 80.0)
    assert real.pace({}) == Pace(0.25, 80.0)
    assert real.pace({"x-sim-tps": "200"}) == Pace(0.25, 200.0)
    with pytest.raises(ValueError, match="x-sim-tps"):
        real.pace({"x-sim-tps": "0"})
    with pytest.raises(ValueError):
        Latency("fast", 0.25, 80.0)


def test_rate_book_counts_per_key_in_one_minute_windows() -> None:
    now = [100.0]
    book = RateBook(rpm=2, tpm=100, clock=lambda: now[0])
    first = book.admit("openai", "a", 10, 20)
    assert (first.requests_remaining, first.tokens_remaining, first.reset_s) == (1, 70, 60.0)
    now[0] = 110.0
    assert book.admit("openai", "b", 10, 20).requests_remaining == 1  # another key, its own window
    assert book.admit("openai", "a", 10, 20).requests_remaining == 0
    refused = book.admit("openai", "a", 1, 1)
    assert refused.exhausted is not None and refused.exhausted.what == "requests"
    assert refused.reset_s == pytest.approx(50.0)
    assert book.admit("openai", "c", 90, 20).exhausted.what == "tokens"  # type: ignore[union-attr]
    now[0] = 160.0  # the window is over
    assert book.admit("openai", "a", 1, 1).exhausted is None


def test_wait_hints_are_written_the_providers_way() -> None:
    assert [go_duration(s) for s in (0.012, 0.3, 1, 6.596, 60, 179.56, 0)] == [
        "12ms",
        "300ms",
        "1s",
        "6.596s",
        "1m0s",
        "2m59.56s",
        "0s",
    ]
    assert [seconds_text(s) for s in (1, 0.3, 6.5961, 0, 10)] == ["1", "0.3", "6.596", "0", "10"]


# -- faults over HTTP ---------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("fault", "status"),
    [("429", 429), ("quota", 429), ("400", 400), ("404", 404), ("413", 413), ("500", 500), ("overloaded", None)],
)
def test_the_header_forces_a_fault_with_the_providers_body(sim, provider: str, fault: str, status: int | None) -> None:
    reply = post(chat_request(sim, provider, fault=fault))
    assert reply.status_code == (status or OVERLOAD[provider])
    body = reply.json()
    if provider == "claude":
        assert body["type"] == "error" and body["error"]["type"] and body["request_id"] == reply.headers["request-id"]
    elif provider == "gemini":
        assert body["error"]["code"] == reply.status_code and body["error"]["status"].isupper()
    else:
        assert set(body["error"]) == {"message", "type", "param", "code"}
    assert sim.stats()["faults"] == {fault: 1}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_529_means_each_providers_overload(sim, provider: str) -> None:
    assert post(chat_request(sim, provider, fault="529")).status_code == OVERLOAD[provider]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_429_carries_the_providers_own_wait_hint(sim, provider: str) -> None:
    reply = post(chat_request(sim, provider, fault="429=2.5"))
    error = reply.json()["error"]
    if provider == "gemini":
        assert "retry-after" not in reply.headers
        retry = [d for d in error["details"] if d["@type"] == "type.googleapis.com/google.rpc.RetryInfo"]
        assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.5s"}]
    else:
        assert reply.headers["retry-after"] == "2.5"
    if provider in ("openai", "groq"):
        assert error["code"] == "rate_limit_exceeded"
        assert "Please try again in 2.5s." in error["message"]


def test_default_hint_is_a_second_and_openai_can_say_it_in_ms(sim) -> None:
    assert post(chat_request(sim, "openai", fault="429")).headers["retry-after"] == "1"
    reply = post(chat_request(sim, "openai", fault="retry-after-ms=250"))
    assert reply.status_code == 429
    assert reply.headers["retry-after-ms"] == "250" and "retry-after" not in reply.headers
    assert "try again in 250ms" in reply.json()["error"]["message"]
    assert post(chat_request(sim, "claude", fault="retry-after-ms=250")).headers["retry-after"] == "0.25"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_quota_is_a_429_without_a_wait_hint(sim, provider: str) -> None:
    reply = post(chat_request(sim, provider, fault="quota"))
    assert reply.status_code == 429 and "retry-after" not in reply.headers
    error = reply.json()["error"]
    if provider == "claude":
        assert error["details"] == {"error_code": "enforced_spend_limit_reached"}
    elif provider == "gemini":
        assert not any("RetryInfo" in d["@type"] for d in error["details"])
    else:
        assert error["code"] == "insufficient_quota"


def test_scripted_faults_over_http_and_in_process(sim) -> None:
    reply = http.post(sim.url + "/_sim/script", json={"provider": "openai", "faults": ["429=0.3", "ok", "500"]})
    assert reply.status_code == 200
    statuses = [post(chat_request(sim, "openai")).status_code for _ in range(4)]
    assert statuses == [429, 200, 500, 200]
    sim.script("anthropic", ["529", "ok"])  # aliases work
    assert [post(chat_request(sim, "claude")).status_code for _ in range(3)] == [529, 200, 200]


def test_bad_fault_requests_are_refused_with_a_reason(sim) -> None:
    reply = post(chat_request(sim, "openai", fault="teapot"))
    assert reply.status_code == 400 and "unknown fault" in reply.json()["error"]
    assert http.post(sim.url + "/_sim/script", json={"provider": "openai", "faults": ["x"]}).status_code == 400
    assert http.post(sim.url + "/_sim/script", json={"provider": "nobody", "faults": []}).status_code == 400
    assert http.post(sim.url + "/_sim/script", json=["openai"]).status_code == 400
    assert http.post(sim.url + "/_sim/faults", json={"spec": "429:7"}).status_code == 400
    with pytest.raises(ValueError, match="unknown provider"):
        sim.script("nobody", ["429"])


def test_server_wide_spec_is_seeded_and_replaceable(sim) -> None:
    reply = http.post(sim.url + "/_sim/faults", json={"spec": "500:0.5"})
    assert reply.json() == {"spec": "500:0.5"}
    first = [post(chat_request(sim, "groq")).status_code for _ in range(30)]
    assert set(first) == {200, 500}
    assert http.post(sim.url + "/_sim/reset").status_code == 200
    assert [post(chat_request(sim, "groq")).status_code for _ in range(30)] == first
    with serve(latency="zero", faults="500:0.5") as twin:
        assert [post(chat_request(twin, "groq")).status_code for _ in range(30)] == first
    sim.set_faults(None)
    assert {post(chat_request(sim, "groq")).status_code for _ in range(10)} == {200}


def test_stall_holds_the_headers_until_the_client_leaves(sim) -> None:
    with pytest.raises(httpx.ReadTimeout):
        post(chat_request(sim, "openai", fault="stall"), timeout=0.2)
    wait_for(lambda: sim.stats()["disconnects"] == 1)
    started = time.monotonic()
    assert post(chat_request(sim, "openai", fault="stall=0.05")).status_code == 200
    assert time.monotonic() - started >= 0.05


@pytest.mark.parametrize("stream", [False, True])
def test_reset_drops_the_connection_without_a_reply(sim, stream: bool) -> None:
    with pytest.raises(httpx.TransportError):
        post(chat_request(sim, "claude", fault="reset", stream=stream))
    stats = sim.stats()
    assert stats["faults"] == {"reset": 1} and stats["disconnects"] == 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_midstream_sends_n_tokens_then_drops(sim, provider: str) -> None:
    full = [t for _, d in sse_frames(_stream_lines(sim, provider)) if (t := token_text(provider, d))]
    texts: list[str] = []
    with pytest.raises(httpx.TransportError):
        with http.stream(**chat_request(sim, provider, stream=True, fault="midstream=2")) as reply:
            for line in reply.iter_lines():
                if line.startswith("data:") and (text := token_text(provider, line[5:].strip())):
                    texts.append(text)
    assert texts == full[:2]
    assert sim.stats()["disconnects"] == 0


def test_midstream_on_a_plain_reply_cuts_the_body(sim) -> None:
    with pytest.raises(httpx.TransportError):
        post(chat_request(sim, "openai", fault="midstream"))


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("after", [0, 2])
def test_stream_error_arrives_inside_the_200_stream(sim, provider: str, after: int) -> None:
    with http.stream(**chat_request(sim, provider, stream=True, fault=f"stream_error={after}")) as reply:
        assert reply.status_code == 200
        frames = sse_frames(reply.iter_lines())
    texts = [t for event, data in frames[:-1] if (t := token_text(provider, data))]
    assert len(texts) == after
    event, data = frames[-1]
    error = json.loads(data)["error"]
    if provider == "claude":
        assert event == "error" and error["type"] == "overloaded_error"
    elif provider == "gemini":
        assert error["status"] == "UNAVAILABLE" and error["code"] == 503
    else:
        assert error["type"] and error["message"]


def test_stream_error_on_a_plain_reply_is_the_overload_status(sim) -> None:
    assert post(chat_request(sim, "claude", fault="stream_error")).status_code == 529


def test_malformed_replies_are_not_json(sim) -> None:
    reply = post(chat_request(sim, "openai", fault="malformed"))
    assert reply.status_code == 200
    with pytest.raises(ValueError):
        reply.json()
    frames = sse_frames(_stream_lines(sim, "claude", fault="malformed"))
    bad = [data for _, data in frames if not _is_json(data)]
    assert len(bad) == 1 and frames[-1][1] == bad[0]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_truncated_replies_lose_their_ending(sim, provider: str) -> None:
    reply = post(chat_request(sim, provider, fault="truncated"))
    assert reply.status_code == 200
    with pytest.raises(ValueError):
        reply.json()
    frames = sse_frames(_stream_lines(sim, provider, fault="truncated"))
    whole = sse_frames(_stream_lines(sim, provider))
    assert frames and len(frames) < len(whole)
    assert [d for _, d in frames if token_text(provider, d)] != []
    text = "\n".join(d for _, d in frames)
    for ending in ("[DONE]", 'finish_reason": "length', "message_stop", "finishReason"):
        assert ending not in text


def test_ttft_and_tps_headers_pace_a_zero_latency_server(sim) -> None:
    started = time.monotonic()
    assert post(chat_request(sim, "openai", headers={"x-sim-ttft": "0.05"})).status_code == 200
    assert time.monotonic() - started >= 0.05
    started = time.monotonic()
    request = chat_request(sim, "gemini", stream=True, max_tokens=6, headers={"x-sim-ttft": "0.03", "x-sim-tps": "100"})
    with http.stream(**request) as reply:
        arrivals = [time.monotonic() - started for line in reply.iter_lines() if line.startswith("data:")]
    assert arrivals[0] >= 0.03  # the first token waits for the TTFT
    assert arrivals[-1] >= 0.03 + 5 / 100  # then one token per 1/tps
    assert post(chat_request(sim, "openai", headers={"x-sim-tps": "fast"})).status_code == 400


def test_stats_count_requests_routes_faults_and_disconnects(sim) -> None:
    post(chat_request(sim, "openai"))
    post(chat_request(sim, "openai", fault="500"))
    post(chat_request(sim, "gemini", stream=True))
    http.get(sim.base_urls["openai"] + "/models", headers={"Authorization": f"Bearer {KEY}"})
    request = chat_request(sim, "claude", stream=True, headers={"x-sim-tps": "20"})
    with http.stream(**request) as reply:
        next(reply.iter_lines())  # read a little, then hang up
    wait_for(lambda: sim.stats()["disconnects"] == 1)
    stats = http.get(sim.url + "/_sim/stats").json()
    assert stats == {
        "requests": {"openai": 3, "gemini": 1, "claude": 1},
        "routes": {
            "POST /openai/v1/chat/completions": 2,
            "GET /openai/v1/models": 1,
            "POST /gemini/{version}/models/{model}:streamGenerateContent": 1,
            "POST /anthropic/v1/messages": 1,
        },
        "faults": {"500": 1},
        "disconnects": 1,
        "rate_limited": 0,
    }
    http.post(sim.url + "/_sim/reset")
    assert sim.stats() == {"requests": {}, "routes": {}, "faults": {}, "disconnects": 0, "rate_limited": 0}


# -- rate limits and keys -----------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "groq"])
def test_openai_style_rate_limit_headers_count_down_per_key(provider: str) -> None:
    with serve(latency="zero", rpm=3) as sim:
        remaining = [post(chat_request(sim, provider)).headers["x-ratelimit-remaining-requests"] for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        other = post(chat_request(sim, provider, key="sk-other"))
        assert other.headers["x-ratelimit-remaining-requests"] == "2"
        assert other.headers["x-ratelimit-limit-requests"] == "3"
        reset = parse_duration(other.headers["x-ratelimit-reset-requests"])
        assert reset is not None and 59 <= reset <= 60
        refused = post(chat_request(sim, provider))
        assert refused.status_code == 429
        hint = float(refused.headers["retry-after"])
        assert 0 < hint <= 60
        assert re.search(r"try again in (\d+m)?[\d.]+s", refused.json()["error"]["message"])
        assert sim.stats()["rate_limited"] == 1


def test_anthropic_rate_limit_headers_reset_in_rfc3339() -> None:
    with serve(latency="zero", rpm=2, tpm=1_000) as sim:
        reply = post(chat_request(sim, "claude"))
        headers = reply.headers
        assert headers["anthropic-ratelimit-requests-limit"] == "2"
        assert headers["anthropic-ratelimit-requests-remaining"] == "1"
        usage = reply.json()["usage"]
        left = 1_000 - usage["input_tokens"] - usage["output_tokens"]
        assert headers["anthropic-ratelimit-tokens-remaining"] == str(left)
        assert headers["anthropic-ratelimit-input-tokens-remaining"] == str(1_000 - usage["input_tokens"])
        reset = dt.datetime.fromisoformat(headers["anthropic-ratelimit-requests-reset"].replace("Z", "+00:00"))
        assert 0 < reset.timestamp() - time.time() <= 61
        post(chat_request(sim, "claude"))
        refused = post(chat_request(sim, "claude"))
        assert refused.status_code == 429 and refused.json()["error"]["type"] == "rate_limit_error"
        assert 0 < float(refused.headers["retry-after"]) <= 60


def test_token_limit_and_gemini_hint_in_the_body() -> None:
    with serve(latency="zero", tpm=40) as sim:
        first = post(chat_request(sim, "gemini", max_tokens=20))
        assert first.status_code == 200 and not any(h.startswith("x-ratelimit") for h in first.headers)
        refused = post(chat_request(sim, "gemini", max_tokens=20))
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert error["status"] == "RESOURCE_EXHAUSTED"
        delay = next(d["retryDelay"] for d in error["details"] if d["@type"].endswith("RetryInfo"))
        assert 0 < float(delay.removesuffix("s")) <= 60
        tokens = post(chat_request(sim, "openai", max_tokens=30))
        assert tokens.status_code == 429 and tokens.json()["error"]["type"] == "tokens"


@pytest.mark.parametrize(
    ("provider", "wrong", "missing"),
    [
        ("openai", (401, "invalid_api_key"), (401, None)),
        ("groq", (401, "invalid_api_key"), (401, "invalid_api_key")),
        ("claude", (401, "authentication_error"), (401, "authentication_error")),
        ("gemini", (400, "INVALID_ARGUMENT"), (403, "PERMISSION_DENIED")),
    ],
)
def test_require_key_accepts_only_that_key(provider: str, wrong: tuple, missing: tuple) -> None:
    def kind(reply: httpx.Response) -> tuple[int, str | None]:
        error = reply.json()["error"]
        return reply.status_code, error.get("code") if provider in ("openai", "groq") else error.get(
            "type", error.get("status")
        )

    with serve(latency="zero", require_key="the-key") as sim:
        assert post(chat_request(sim, provider, key="the-key")).status_code == 200
        assert kind(post(chat_request(sim, provider, key="not-the-key"))) == wrong
        assert kind(post(chat_request(sim, provider, key=None))) == missing
    if provider == "gemini":
        with serve(latency="zero", require_key="the-key") as sim:
            details = post(chat_request(sim, provider, key="nope")).json()["error"]["details"]
            assert details[0]["reason"] == "API_KEY_INVALID"
            assert "API key not valid. Please pass a valid API key." in details[1]["message"]


def test_no_reply_ever_contains_the_key(sim) -> None:
    secret = "sk-Distinctive-3xAmple-KEY-0123456789"
    replies = []
    with serve(latency="zero", require_key="another-key") as strict:
        replies += [post(chat_request(strict, p, key=secret)) for p in PROVIDERS]
    reply_faults = ["429", "quota", "400", "401", "403", "404", "413", "422", "500", "503", "529", "retry-after-ms=9"]
    for provider in PROVIDERS:
        for fault in (*reply_faults, "malformed", "truncated", None):
            replies.append(post(chat_request(sim, provider, key=secret, fault=fault)))
            replies.append(post(chat_request(sim, provider, key=secret, fault=fault, stream=True)))
        replies.append(post(chat_request(sim, provider, key=secret, fault="stream_error", stream=True)))
    replies.append(post(chat_request(sim, "openai", key=secret, fault="teapot")))
    assert len(replies) > 100
    for reply in replies:
        assert secret not in reply.text
        assert all(secret not in value for value in reply.headers.values())


def _stream_lines(sim, provider: str, **options) -> list[str]:
    with http.stream(**chat_request(sim, provider, stream=True, **options)) as reply:
        return list(reply.iter_lines())


def _is_json(data: str) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True
