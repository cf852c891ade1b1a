"""The simulated TGI and TEI on the wire: each server's own error shapes, streams and self-description."""

from __future__ import annotations

import json

import pytest
from sim_helpers import http, sse_frames

from accel_nb.sim import serve
from accel_nb.sim.tei import TEI

GENERATE = {"inputs": "Explain backpressure.", "parameters": {"max_new_tokens": 8, "details": True}}
EMBED = {"inputs": ["a cat", "a dog"]}


def call(sim, provider: str, fault: str | None = None, stream: bool = False, key: str | None = "hf_k", **kw):
    base = sim.base_urls[provider]
    url = base + ("/generate_stream" if stream else "/generate") if provider == "tgi" else base + "/embed"
    headers = {"x-sim-fault": fault} if fault else {}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return http.post(url, json=kw.pop("json", GENERATE if provider == "tgi" else EMBED), headers=headers, **kw)


@pytest.mark.parametrize(
    ("provider", "fault", "status", "error_type"),
    [
        ("tgi", "overloaded", 429, "overloaded"),
        ("tgi", "429", 429, "overloaded"),  # TGI limits concurrency, not rates
        ("tgi", "422", 422, "validation"),
        ("tgi", "424", 424, "generation"),
        ("tgi", "500", 500, "incomplete_generation"),
        ("tei", "overloaded", 429, "Overloaded"),  # TEI spells the Rust variant
        ("tei", "529", 429, "Overloaded"),
        ("tei", "422", 422, "Tokenizer"),
        ("tei", "424", 424, "Backend"),
        ("tei", "503", 503, "Unhealthy"),
    ],
)
def test_json_errors_in_each_servers_spelling(sim, provider, fault, status, error_type) -> None:
    reply = call(sim, provider, fault)
    assert reply.status_code == status and reply.json()["error_type"] == error_type
    assert set(reply.json()) == {"error", "error_type"} and "retry-after" not in reply.headers
    assert "x-request-id" not in reply.headers and not any(h.startswith("x-ratelimit") for h in reply.headers)


@pytest.mark.parametrize("provider", ["tgi", "tei"])
def test_framework_rejections_are_plain_text_or_empty(sim, provider) -> None:
    for fault, status in (("400", 400), ("413", 413)):
        reply = call(sim, provider, fault)
        assert reply.status_code == status and reply.headers["content-type"].startswith("text/plain")
        assert reply.text.startswith("Failed to")
    for fault in ("401", "404"):
        reply = call(sim, provider, fault)
        assert reply.status_code == int(fault) and reply.content == b""
    quota = call(sim, provider, "quota")
    assert quota.status_code == 402 and "credits" in quota.json()["error"]
    not_json = http.post(sim.base_urls[provider] + ("/generate" if provider == "tgi" else "/embed"), content=b"{")
    assert not_json.status_code == 400 and not_json.text.startswith("Failed to parse the request body as JSON")


def test_tgi_streaming_calls_get_their_errors_inside_a_200_stream(sim) -> None:
    for fault, error_type in (("overloaded", "overloaded"), ("422", "validation")):
        reply = call(sim, "tgi", fault, stream=True)
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
        assert [json.loads(data)["error_type"] for _, data in sse_frames(reply.text.splitlines())] == [error_type]
    too_long = call(sim, "tgi", stream=True, json={"inputs": "word " * 9000})
    assert too_long.status_code == 200 and "less than 8191 tokens. Given: 9000" in too_long.text
    chat = http.post(sim.base_urls["tgi"] + "/v1/chat/completions", headers={"x-sim-fault": "overloaded"},
                     json={"model": "tgi", "messages": [{"role": "user", "content": "Hi"}], "stream": True})
    assert chat.status_code == 200
    assert json.loads(sse_frames(chat.text.splitlines())[0][1])["error_type"] == "overloaded"
    assert call(sim, "tgi", "401", stream=True).status_code == 401  # the key middleware answers before any stream


def test_tgi_stream_ends_with_details_and_no_done_marker(sim) -> None:
    frames = [json.loads(data) for _, data in sse_frames(call(sim, "tgi", stream=True).text.splitlines())]
    assert [f["index"] for f in frames] == list(range(1, 9)) and all(f["details"] is None for f in frames[:-1])
    details = {"finish_reason": "length", "generated_tokens": 8, "seed": None, "input_length": 6}
    assert frames[-1]["details"] == details
    assert frames[-1]["generated_text"] == "".join(f["token"]["text"] for f in frames)
    plain = call(sim, "tgi")
    assert plain.headers["x-prompt-tokens"] == "6" and plain.headers["x-generated-tokens"] == "8"
    compat = http.post(sim.base_urls["tgi"], json=GENERATE)
    assert compat.json()[0]["generated_text"] == plain.json()["generated_text"]  # POST / wraps it in a list


def test_tei_validates_batches_and_lengths_like_tei(sim) -> None:
    too_many = call(sim, "tei", json={"inputs": ["x"] * (TEI.max_client_batch_size + 1)})
    assert too_many.status_code == 413 and too_many.json() == {
        "error": "batch size 33 > maximum allowed batch size 32", "error_type": "Validation"}
    empty = call(sim, "tei", json={"inputs": []})
    assert empty.status_code == 413 and "`inputs` cannot be empty" in empty.json()["error"]
    too_long = call(sim, "tei", json={"inputs": "word " * 600})
    assert too_long.json()["error"] == "Input validation error: `inputs` must have less than 512 tokens. Given: 600"
    assert call(sim, "tei", json={"inputs": "word " * 600, "truncate": True}).status_code == 200
    big = call(sim, "tei", json={"inputs": ["x" * 1_000_000] * 3})
    assert big.status_code == 413 and big.text == "Failed to buffer the request body: length limit exceeded"
    ok = call(sim, "tei")
    assert ok.headers["x-compute-tokens"] == "4" and len(ok.json()[0]) == TEI.dims


def test_self_description_is_outside_faults_and_rate_limits(sim_factory) -> None:
    sim = sim_factory(rpm=1)
    sim.script("tgi", ["500"])
    for _ in range(3):
        assert http.get(sim.base_urls["tgi"] + "/info").json()["max_total_tokens"] == 8192
        assert http.get(sim.base_urls["tei"] + "/health").status_code == 200
    assert call(sim, "tgi").status_code == 500  # the script was left for the first real request
    assert call(sim, "tgi").status_code == 429  # and the minute's one request is spent


def test_keys_are_optional_unless_the_server_requires_one(sim) -> None:
    assert call(sim, "tgi", key=None).status_code == 200 and call(sim, "tei", key=None).status_code == 200
    with serve(latency="zero", require_key="hf_right") as guarded:
        secret = "hf_Distinctive-wrong-token-0123"
        for provider in ("tgi", "tei"):
            assert call(guarded, provider, key=None).status_code == 401
            wrong = call(guarded, provider, key=secret)
            assert wrong.status_code == 401 and secret not in wrong.text
            assert call(guarded, provider, key="hf_right").status_code == 200
