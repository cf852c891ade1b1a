"""The official SDKs, pointed at the simulator with their own retries off, must take it for the real API.

Each SDK parses our replies, streams, usage and errors with its own code: a field in the
wrong place, a missing SSE event or an error body in the wrong shape fails here.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import anthropic
import groq
import httpx2
import numpy as np
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from sim_helpers import KEY, MODELS, PROMPT

from accel_nb.sim.textgen import answer
from accel_nb.tokens import count_tokens, estimate_prompt_tokens

SYSTEM = "Be brief."
MESSAGES = [{"role": "user", "content": PROMPT}]
INPUT_TOKENS = estimate_prompt_tokens(MESSAGES, SYSTEM)
FULL_ANSWER = {provider: answer(0, model, PROMPT) for provider, model in MODELS.items()}
CLIENTS = {"openai": "openai_client", "groq": "groq_client", "claude": "anthropic_client", "gemini": "genai_client"}


@pytest.fixture
def openai_client(sim) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=sim.base_urls["openai"], max_retries=0)


@pytest.fixture
def groq_client(sim) -> groq.Groq:
    return groq.Groq(api_key=KEY, base_url=sim.base_urls["groq"], max_retries=0)


@pytest.fixture
def anthropic_client(sim) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=KEY, base_url=sim.base_urls["claude"], max_retries=0)


@pytest.fixture
def genai_client(sim) -> genai.Client:
    options = genai_types.HttpOptions(
        base_url=sim.base_urls["gemini"], retry_options=genai_types.HttpRetryOptions(attempts=1)
    )
    return genai.Client(api_key=KEY, http_options=options)


def openai_messages() -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, *MESSAGES]


def genai_config(**options: Any) -> genai_types.GenerateContentConfig:
    fault = options.pop("fault", None)
    http = genai_types.HttpOptions(headers={"x-sim-fault": fault}) if fault else None
    return genai_types.GenerateContentConfig(system_instruction=SYSTEM, http_options=http, **options)


# -- chat, plain and streamed -------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "groq"])
def test_openai_style_chat(request, provider: str) -> None:
    client = request.getfixturevalue(f"{provider}_client")
    raw = client.chat.completions.with_raw_response.create(model=MODELS[provider], messages=openai_messages())
    reply = raw.parse()
    text = reply.choices[0].message.content
    assert text == FULL_ANSWER[provider]
    assert reply.choices[0].finish_reason == "stop"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (INPUT_TOKENS, count_tokens(text))
    assert reply.usage.total_tokens == INPUT_TOKENS + count_tokens(text)
    assert raw.headers["x-request-id"].startswith("req_")
    assert int(raw.headers["x-ratelimit-remaining-requests"]) < int(raw.headers["x-ratelimit-limit-requests"])

    usage_please = {"stream_options": {"include_usage": True}}  # groq's SDK has no keyword for it
    chunks = list(
        client.chat.completions.create(
            model=MODELS[provider], messages=openai_messages(), stream=True, extra_body=usage_please
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []  # the include_usage chunk
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (INPUT_TOKENS, count_tokens(text))
    assert all(c.usage is None for c in chunks[:-1])


def test_groq_extras(groq_client: groq.Groq) -> None:
    reply = groq_client.chat.completions.create(model=MODELS["groq"], messages=openai_messages())
    assert reply.x_groq.id.startswith("req_")
    assert reply.usage.total_time == pytest.approx(reply.usage.prompt_time + reply.usage.completion_time)
    chunks = list(groq_client.chat.completions.create(model=MODELS["groq"], messages=openai_messages(), stream=True))
    assert chunks[0].x_groq.id == chunks[-1].x_groq.id
    assert chunks[-1].choices[0].finish_reason == "stop"  # without include_usage the finish chunk is last
    usage = chunks[-1].x_groq.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        INPUT_TOKENS,
        count_tokens(reply.choices[0].message.content),
    )
    assert all(c.x_groq is None for c in chunks[1:-1])


def test_anthropic_chat(anthropic_client: anthropic.Anthropic) -> None:
    message = anthropic_client.messages.create(
        model=MODELS["claude"], max_tokens=1024, system=SYSTEM, messages=MESSAGES
    )
    text = message.content[0].text
    assert text == FULL_ANSWER["claude"]
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (INPUT_TOKENS, count_tokens(text))
    assert message.id.startswith("msg_") and message._request_id.startswith("req_")

    with anthropic_client.messages.stream(
        model=MODELS["claude"], max_tokens=1024, system=SYSTEM, messages=MESSAGES
    ) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == text
    assert (final.usage.input_tokens, final.usage.output_tokens) == (INPUT_TOKENS, count_tokens(text))
    assert final.stop_reason == "end_turn"


def test_gemini_chat(genai_client: genai.Client) -> None:
    reply = genai_client.models.generate_content(model=MODELS["gemini"], contents=PROMPT, config=genai_config())
    assert reply.text == FULL_ANSWER["gemini"]
    assert reply.candidates[0].finish_reason == genai_types.FinishReason.STOP
    usage = reply.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count) == (INPUT_TOKENS, count_tokens(reply.text))
    assert usage.total_token_count == INPUT_TOKENS + count_tokens(reply.text)

    chunks = list(
        genai_client.models.generate_content_stream(model=MODELS["gemini"], contents=PROMPT, config=genai_config())
    )
    assert "".join(c.text or "" for c in chunks) == reply.text
    assert chunks[-1].candidates[0].finish_reason == genai_types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == count_tokens(reply.text)


def _capped(provider: str, client: Any, max_tokens: int) -> tuple[str, Any, int]:
    """(text, finish reason, output tokens) of a reply capped at ``max_tokens``, through the SDK."""
    if provider == "claude":
        m = client.messages.create(model=MODELS[provider], max_tokens=max_tokens, messages=MESSAGES)
        return m.content[0].text, m.stop_reason, m.usage.output_tokens
    if provider == "gemini":
        config = genai_config(max_output_tokens=max_tokens)
        r = client.models.generate_content(model=MODELS[provider], contents=PROMPT, config=config)
        return r.text, r.candidates[0].finish_reason, r.usage_metadata.candidates_token_count
    r = client.chat.completions.create(model=MODELS[provider], messages=MESSAGES, max_tokens=max_tokens)
    return r.choices[0].message.content, r.choices[0].finish_reason, r.usage.completion_tokens


@pytest.mark.parametrize(
    ("provider", "reason"),
    [
        ("openai", "length"),
        ("groq", "length"),
        ("claude", "max_tokens"),
        ("gemini", genai_types.FinishReason.MAX_TOKENS),
    ],
)
def test_max_tokens_caps_the_reply(request, provider: str, reason: Any) -> None:
    client = request.getfixturevalue(CLIENTS[provider])
    text, finish, output_tokens = _capped(provider, client, 7)
    assert (finish, output_tokens, count_tokens(text)) == (reason, 7, 7)
    assert FULL_ANSWER[provider].startswith(text)


def test_stop_sequences(openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic, genai_client) -> None:
    full = FULL_ANSWER["claude"]
    stop = full.split()[5]
    cut = full[: full.index(stop)].rstrip()
    m = anthropic_client.messages.create(
        model=MODELS["claude"], max_tokens=500, messages=MESSAGES, stop_sequences=[stop]
    )
    assert (m.content[0].text, m.stop_reason, m.stop_sequence) == (cut, "stop_sequence", stop)
    assert m.usage.output_tokens == count_tokens(cut)

    stop = FULL_ANSWER["openai"].split()[3]
    r = openai_client.chat.completions.create(model=MODELS["openai"], messages=MESSAGES, stop=[stop, "never seen"])
    assert stop not in r.choices[0].message.content and r.choices[0].finish_reason == "stop"

    stop = FULL_ANSWER["gemini"].split()[4]
    g = genai_client.models.generate_content(
        model=MODELS["gemini"], contents=PROMPT, config=genai_config(stop_sequences=[stop])
    )
    assert stop not in g.text and g.candidates[0].finish_reason == genai_types.FinishReason.STOP


# -- embeddings and model lists -----------------------------------------------------------


def test_openai_embeddings_float_and_base64(openai_client: openai.OpenAI) -> None:
    texts = ["the cat sat on the mat", "a cat sat on a mat", "stock prices fell"]
    default = openai_client.embeddings.create(model="text-embedding-3-small", input=texts)  # SDK asks for base64
    floats = openai_client.embeddings.create(model="text-embedding-3-small", input=texts, encoding_format="float")
    a, b = (np.array([row.embedding for row in reply.data]) for reply in (default, floats))
    assert a.shape == (3, 1536)
    assert np.allclose(a, b, atol=1e-6)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert a[0] @ a[1] > a[0] @ a[2]
    assert default.usage.prompt_tokens == sum(count_tokens(t) for t in texts)

    raw = openai_client.embeddings.with_raw_response.create(
        model="text-embedding-3-large", input="hello", dimensions=256, encoding_format="base64"
    )
    packed = raw.http_response.json()["data"][0]["embedding"]
    assert np.frombuffer(base64.b64decode(packed), "<f4").shape == (256,)
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        openai_client.embeddings.create(model="text-embedding-ada-002", input="x", dimensions=8)


def test_gemini_embeddings(genai_client: genai.Client) -> None:
    reply = genai_client.models.embed_content(
        model="gemini-embedding-001",
        contents=["the cat sat on the mat", "a cat sat on a mat", "stock prices fell"],
        config=genai_types.EmbedContentConfig(output_dimensionality=256),
    )
    vectors = np.array([e.values for e in reply.embeddings])
    assert vectors.shape == (3, 256)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    default = genai_client.models.embed_content(model="gemini-embedding-001", contents="hello")
    assert len(default.embeddings[0].values) == 3072


def test_model_lists(openai_client, groq_client, anthropic_client, genai_client) -> None:
    assert "gpt-4o-mini" in {m.id for m in openai_client.models.list()}
    assert "llama-3.3-70b-versatile" in {m.id for m in groq_client.models.list().data}  # not paginated
    claude = {m.id: m for m in anthropic_client.models.list()}
    assert claude["claude-sonnet-4-5"].display_name == "Claude Sonnet 4.5"
    assert "models/gemini-2.5-flash" in {m.name for m in genai_client.models.list()}


# -- each SDK's own typed errors ----------------------------------------------------------


def _call(provider: str, client: Any, fault: str, stream: bool = False) -> Callable[[], Any]:
    """A chat call through the provider's SDK with ``fault`` forced; streams are read to the end."""
    if provider == "claude":
        options = {
            "model": MODELS[provider],
            "max_tokens": 50,
            "messages": MESSAGES,
            "extra_headers": {"x-sim-fault": fault},
        }
        if not stream:
            return lambda: client.messages.create(**options)

        def read() -> list[str]:
            with client.messages.stream(**options) as events:
                return list(events.text_stream)

        return read
    if provider == "gemini":
        method = client.models.generate_content_stream if stream else client.models.generate_content
        return lambda: list(method(model=MODELS[provider], contents=PROMPT, config=genai_config(fault=fault)))
    headers = {"x-sim-fault": fault}
    return lambda: list(
        client.chat.completions.create(model=MODELS[provider], messages=MESSAGES, stream=stream, extra_headers=headers)
    )


TYPED_ERRORS = [
    ("openai", "401", openai.AuthenticationError, 401),
    ("openai", "429", openai.RateLimitError, 429),
    ("openai", "529", openai.InternalServerError, 503),
    ("openai", "400", openai.BadRequestError, 400),
    ("groq", "401", groq.AuthenticationError, 401),
    ("groq", "429", groq.RateLimitError, 429),
    ("groq", "529", groq.APIStatusError, 498),
    ("groq", "400", groq.BadRequestError, 400),
    ("claude", "401", anthropic.AuthenticationError, 401),
    ("claude", "429", anthropic.RateLimitError, 429),
    ("claude", "529", anthropic.OverloadedError, 529),
    ("claude", "400", anthropic.BadRequestError, 400),
    ("claude", "quota", anthropic.EnforcedSpendLimitReachedError, 429),
    ("gemini", "401", genai_errors.ClientError, 401),
    ("gemini", "429", genai_errors.ClientError, 429),
    ("gemini", "529", genai_errors.ServerError, 503),
    ("gemini", "400", genai_errors.ClientError, 400),
]


@pytest.mark.parametrize(("provider", "fault", "error", "status"), TYPED_ERRORS)
def test_each_sdk_raises_its_own_typed_error(request, provider: str, fault: str, error: type, status: int) -> None:
    client = request.getfixturevalue(CLIENTS[provider])
    with pytest.raises(error) as caught:
        _call(provider, client, fault)()
    assert getattr(caught.value, "status_code", getattr(caught.value, "code", None)) == status


def test_openai_quota_is_insufficient_quota(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        _call("openai", openai_client, "quota")()
    assert caught.value.code == "insufficient_quota"


@pytest.mark.parametrize(
    ("provider", "error"),
    [
        ("claude", anthropic.APIStatusError),
        ("openai", openai.APIError),
        ("groq", groq.APIError),
        ("gemini", genai_errors.ServerError),
    ],
)
def test_in_stream_errors_reach_the_sdk(request, provider: str, error: type) -> None:
    client = request.getfixturevalue(CLIENTS[provider])
    with pytest.raises(error) as caught:
        _call(provider, client, "stream_error=2", stream=True)()
    if provider == "claude":
        assert caught.value.body["error"]["type"] == "overloaded_error"


@pytest.mark.parametrize("fault", ["reset", "midstream"])
def test_dropped_connections_are_connection_errors(openai_client, anthropic_client, fault: str) -> None:
    with pytest.raises(openai.APIConnectionError):
        _call("openai", openai_client, fault, stream=True)()
    # the anthropic SDK lets its transport's error through once the stream has begun
    with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
        _call("claude", anthropic_client, fault, stream=True)()
