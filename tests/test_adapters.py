"""Adapters are pure transforms: tested on recorded-shape payloads, no network."""

from __future__ import annotations

import json

import pytest

from accel_nb import errors
from accel_nb.providers import get_adapter, parse_target, resolve_provider
from accel_nb.providers.base import classify_status, parse_duration, retry_hint
from accel_nb.providers.framing import LineDecoder, SSEDecoder
from accel_nb.types import Request


def chat(provider: str, **kw) -> Request:
    return Request("chat", provider, kw.pop("model", "m"), [{"role": "user", "content": "Hi"}], **kw)


def frames(adapter, req, sse_text: str):
    decoder = SSEDecoder()
    found = decoder.feed(sse_text.encode()) + decoder.close()
    deltas = (adapter.parse_frame(req, event, data) for event, data in found)
    return [delta for delta in deltas if delta is not None]


# -- targets -------------------------------------------------------------------------------
def test_targets_and_aliases():
    assert parse_target("claude") == ("claude", None)
    assert parse_target("anthropic:claude-haiku-4-5") == ("claude", "claude-haiku-4-5")
    assert parse_target("google:gemini-2.5-pro") == ("gemini", "gemini-2.5-pro")
    assert parse_target("openai:ft:gpt-4o:org") == ("openai", "ft:gpt-4o:org")


def test_unknown_provider_suggests_the_closest():
    with pytest.raises(errors.BadRequestError, match="did you mean 'openai'"):
        resolve_provider("opnai")
    with pytest.raises(errors.BadRequestError, match="non-empty string"):
        parse_target("")


# -- wait hints ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,seconds",
    [("6m0s", 360.0), ("2m59.56s", 179.56), ("12ms", 0.012), ("37s", 37.0), ("1.5", 1.5), ("1h", 3600.0), ("x", None)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_retry_hint_sources_in_order():
    assert retry_hint({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_hint({"retry-after": "3"}) == 3.0
    assert retry_hint({}, "Rate limit reached. Please try again in 6.596s. Visit ...") == pytest.approx(6.596)
    assert retry_hint({}, "Please try again in 1m2.5s.") == pytest.approx(62.5)
    assert retry_hint({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # a date in the past
    assert retry_hint({}) is None


def test_should_retry_header_overrides_status():
    assert classify_status(400, "x", headers={"x-should-retry": "true"}).retryable is True
    assert classify_status(503, "x", headers={"x-should-retry": "false"}).retryable is False


@pytest.mark.parametrize(
    "status,cls,retryable",
    [
        (400, errors.BadRequestError, False),
        (401, errors.AuthenticationError, False),
        (403, errors.PermissionDeniedError, False),
        (404, errors.NotFoundError, False),
        (408, errors.TimeoutError, True),
        (409, errors.ServerError, True),
        (422, errors.BadRequestError, False),
        (429, errors.RateLimitError, True),
        (500, errors.ServerError, True),
        (503, errors.OverloadedError, True),
        (529, errors.OverloadedError, True),
    ],
)
def test_status_classes(status, cls, retryable):
    err = classify_status(status, "boom")
    assert type(err) is cls and err.retryable is retryable and err.status == status


def test_context_length_is_recognised_from_the_message():
    err = classify_status(400, "This model's maximum context length is 128000 tokens.")
    assert isinstance(err, errors.ContextLengthError) and not err.retryable


# -- OpenAI ----------------------------------------------------------------------------------
def test_openai_build():
    req = chat("openai", model="gpt-4o-mini", system="Be brief", params={"max_tokens": 5, "temperature": 0.2}, stream=True)
    call = get_adapter("openai").build(req, "https://api.openai.com/v1", "sk-x")
    assert call.url == "https://api.openai.com/v1/chat/completions"
    assert call.headers["authorization"] == "Bearer sk-x"
    assert call.json["messages"][0] == {"role": "system", "content": "Be brief"}
    assert call.json["max_completion_tokens"] == 5 and "max_tokens" not in call.json
    assert call.json["stream_options"] == {"include_usage": True}


def test_openai_parse_reply_and_stream():
    adapter, req = get_adapter("openai"), chat("openai")
    body = {
        "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    }
    reply = adapter.parse(req, body)
    assert (reply.text, reply.finish_reason, reply.usage.input_tokens, reply.usage.output_tokens) == ("Hello!", "stop", 9, 3)
    sse = (
        'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}],"usage":null}\n\n'
        'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}],"usage":null}\n\n'
        'data: {"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}],"usage":null}\n\n'
        'data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}\n\n'
        "data: [DONE]\n\n"
    )
    deltas = frames(adapter, req, sse)
    assert "".join(d.text for d in deltas) == "Hello"
    assert deltas[-1].input_tokens == 9 and deltas[-1].output_tokens == 2
    assert any(d.finish_reason == "stop" for d in deltas)


def test_openai_errors():
    adapter = get_adapter("openai")
    quota = json.dumps({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota",
                                  "param": None, "code": "insufficient_quota"}}).encode()
    err = adapter.classify(429, {}, quota)
    assert isinstance(err, errors.QuotaExceededError) and not err.retryable
    limited = json.dumps({"error": {"message": "Rate limit reached for gpt-4o-mini. Please try again in 6.596s.",
                                    "type": "requests", "code": "rate_limit_exceeded"}}).encode()
    err = adapter.classify(429, {}, limited)
    assert type(err) is errors.RateLimitError and err.retry_after_s == pytest.approx(6.596)
    err = adapter.classify(401, {}, b'{"error": {"message": "Incorrect API key", "code": "invalid_api_key"}}')
    assert isinstance(err, errors.AuthenticationError)
    err = adapter.classify(502, {}, b"<html>Bad gateway</html>")
    assert isinstance(err, errors.ServerError) and "Bad gateway" in err.message
    mid = adapter.parse_frame(chat("openai"), None, '{"error": {"message": "server had an error"}}')
    assert isinstance(mid.error, errors.ServerError)


def test_openai_rate_limit_headers():
    limits = get_adapter("openai").rate_limits({
        "x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "20",
        "x-ratelimit-reset-requests": "120ms", "x-ratelimit-limit-tokens": "200000",
        "x-ratelimit-remaining-tokens": "40000", "x-ratelimit-reset-tokens": "6m0s",
    })
    assert limits.requests_remaining == 20 and limits.requests_reset_s == pytest.approx(0.12)
    assert limits.tokens_reset_s == 360.0
    plenty = get_adapter("openai").rate_limits({
        "x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "499",
        "x-ratelimit-reset-requests": "120ms",
    })
    assert plenty.requests_remaining == 499 and plenty.requests_reset_s is None  # nothing to pace yet
    assert plenty.tokens_remaining is None and plenty.tokens_limit is None  # not said
    odd = get_adapter("openai").rate_limits({
        "x-ratelimit-limit-requests": "lots", "x-ratelimit-remaining-requests": "7",
        "x-ratelimit-reset-requests": "2s", "x-ratelimit-remaining-tokens": "n/a",
    })
    assert (odd.requests_limit, odd.requests_remaining, odd.requests_reset_s) == (None, 7, 2.0)
    assert odd.tokens_remaining is None
    assert get_adapter("openai").rate_limits({"content-type": "application/json"}) is None


def test_openai_embeddings():
    adapter = get_adapter("openai")
    req = Request("embed", "openai", "text-embedding-3-small", inputs=["a", "b"])
    call = adapter.build(req, "http://x/v1", "k")
    assert call.url == "http://x/v1/embeddings" and call.json["input"] == ["a", "b"]
    reply = adapter.parse(req, {"data": [{"index": 1, "embedding": [0, 1]}, {"index": 0, "embedding": [1, 0]}],
                                "usage": {"prompt_tokens": 2, "total_tokens": 2}})
    assert reply.vectors == [[1, 0], [0, 1]]


def test_protocol_error_on_wrong_shape():
    with pytest.raises(errors.ProtocolError, match="choices"):
        get_adapter("openai").parse(chat("openai"), {"nothing": True})
    with pytest.raises(errors.ProtocolError, match="not JSON"):
        get_adapter("openai").parse_frame(chat("openai"), None, "{oops")


# -- Groq ------------------------------------------------------------------------------------
def test_groq_usage_from_x_groq_and_capacity():
    adapter = get_adapter("groq")
    call = adapter.build(chat("groq"), "https://api.groq.com", "gsk_x")
    assert call.url == "https://api.groq.com/openai/v1/chat/completions"
    delta = adapter.parse_frame(chat("groq"), None, json.dumps({
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "x_groq": {"id": "req_1", "usage": {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}},
    }))
    assert (delta.input_tokens, delta.output_tokens, delta.finish_reason) == (7, 4, "stop")
    err = adapter.classify(498, {}, b'{"error": {"message": "capacity exceeded", "code": "capacity_exceeded"}}')
    assert isinstance(err, errors.OverloadedError) and err.retryable


# -- Anthropic -------------------------------------------------------------------------------
def test_anthropic_build():
    req = chat("claude", system="sys", params={"stop": "END", "temperature": 0})
    call = get_adapter("claude").build(req, "https://api.anthropic.com", "sk-ant")
    assert call.url == "https://api.anthropic.com/v1/messages"
    assert call.headers["x-api-key"] == "sk-ant" and call.headers["anthropic-version"] == "2023-06-01"
    assert call.json["system"] == "sys" and call.json["max_tokens"] == 1024
    assert call.json["stop_sequences"] == ["END"] and "stop" not in call.json


def test_anthropic_stream_and_midstream_error():
    adapter, req = get_adapter("claude"), chat("claude")
    sse = (
        'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":12,"output_tokens":1}}}\n\n'
        'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
        'event: ping\ndata: {"type": "ping"}\n\n'
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}\n\n'
        'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
        'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}\n\n'
        'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    deltas = frames(adapter, req, sse)
    assert "".join(d.text for d in deltas) == "Hi"
    assert deltas[0].input_tokens == 12 and deltas[-1].output_tokens == 5 and deltas[-1].finish_reason == "end_turn"
    err = frames(adapter, req, 'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n')
    assert isinstance(err[0].error, errors.OverloadedError) and err[0].error.retryable


def test_anthropic_errors():
    adapter = get_adapter("claude")

    def body(kind, message="m"):
        return json.dumps({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_9"}).encode()

    assert isinstance(adapter.classify(529, {}, body("overloaded_error")), errors.OverloadedError)
    limited = adapter.classify(429, {"retry-after": "2"}, body("rate_limit_error"))
    assert type(limited) is errors.RateLimitError and limited.retry_after_s == 2.0 and limited.request_id == "req_9"
    capped = adapter.classify(429, {}, body("rate_limit_error", "You have reached your specified API usage limits"))
    assert isinstance(capped, errors.QuotaExceededError) and not capped.retryable
    too_long = adapter.classify(400, {}, body("invalid_request_error", "prompt is too long: 210000 tokens > 200000"))
    assert isinstance(too_long, errors.ContextLengthError)
    assert isinstance(adapter.classify(401, {}, body("authentication_error")), errors.AuthenticationError)


def test_anthropic_rate_limit_headers():
    limits = get_adapter("claude").rate_limits({
        "anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "4",
        "anthropic-ratelimit-requests-reset": "2099-01-01T00:00:00Z",
    })
    assert limits.requests_remaining == 4 and limits.requests_reset_s > 1e6


# -- Gemini ----------------------------------------------------------------------------------
def test_gemini_build():
    req = Request("chat", "gemini", "gemini-2.5-flash",
                  [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}],
                  system="sys", params={"max_tokens": 10, "stop": "X"}, stream=True)
    call = get_adapter("gemini").build(req, "https://generativelanguage.googleapis.com", "AIza")
    assert call.url.endswith("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    assert call.headers["x-goog-api-key"] == "AIza" and "key=" not in call.url
    assert [c["role"] for c in call.json["contents"]] == ["user", "model", "user"]
    assert call.json["generationConfig"] == {"maxOutputTokens": 10, "stopSequences": ["X"]}
    assert call.json["systemInstruction"] == {"parts": [{"text": "sys"}]}


def test_gemini_parse_and_errors():
    adapter, req = get_adapter("gemini"), chat("gemini")
    body = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2, "thoughtsTokenCount": 3}}
    reply = adapter.parse(req, body)
    assert reply.text == "Hi" and reply.usage.input_tokens == 4 and reply.usage.output_tokens == 5
    exhausted = json.dumps({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37.5s"}]}}).encode()
    err = adapter.classify(429, {}, exhausted)
    assert type(err) is errors.RateLimitError and err.retry_after_s == 37.5
    bad_key = json.dumps({"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT", "details": [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}}).encode()
    assert isinstance(adapter.classify(400, {}, bad_key), errors.AuthenticationError)
    overloaded = b'{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}'
    assert isinstance(adapter.classify(503, {}, overloaded), errors.OverloadedError)


def test_kind_not_supported():
    with pytest.raises(errors.BadRequestError, match="does not support 'embed'"):
        get_adapter("claude").build(Request("embed", "claude", "m", inputs=["x"]), "http://x", "k")


# -- SSE -------------------------------------------------------------------------------------
def test_sse_decoder_rules():
    decoder = SSEDecoder()
    body = b": comment\nevent: a\ndata: 1\ndata:2\n\r\n\ndata: tail"
    assert decoder.feed(body) == [("a", "1\n2")]
    assert decoder.close() == [(None, "tail")]


def _fed_in_pieces(decoder, body: bytes, size: int) -> list:
    found = []
    for start in range(0, len(body), size):
        found += decoder.feed(body[start:start + size])
    return found + decoder.close()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_sse_frames_are_the_same_however_the_reads_cut_the_body(size):
    """A CRLF, a multi-byte character or a field name cut by a read boundary arrives whole."""
    body = ("data: {\"t\": \"héllo ✓\"}\r\n\r\n"  # CRLF line ends
            "event: delta\rdata: a\rdata:b\r\r"  # lone CR line ends, two data lines, no space
            ": keep-alive\n\n"  # a comment alone: no event
            "event: ping\n\n"  # an event without data: not dispatched
            "data\n\n"  # a field with no colon: an empty data line
            "data: [DONE]\n\n").encode()
    assert _fed_in_pieces(SSEDecoder(), body, size) == [
        (None, '{"t": "héllo ✓"}'), ("delta", "a\nb"), (None, ""), (None, "[DONE]")]


@pytest.mark.parametrize("size", [1, 4, 1000])
def test_ndjson_lines_skip_blanks_and_keep_a_last_line_without_newline(size):
    body = '{"a": "é"}\n\n  \r\n{"b": 2}\r\n{"c": 3}'.encode()
    assert _fed_in_pieces(LineDecoder(), body, size) == [(None, '{"a": "é"}'), (None, '{"b": 2}'), (None, '{"c": 3}')]
