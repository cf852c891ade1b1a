"""TGI and TEI through the engine, over real HTTP to the simulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

import accel_nb
from accel_nb import errors
from accel_nb.sim.tei import TEI as SimTEI
from accel_nb.sim.tgi import TGI as SimTGI

PROMPT = "Explain backpressure in two sentences."


def sent(sim, route: str) -> int:
    """Requests that reached one route (discovery's GET /info is counted apart)."""
    return sim.stats()["routes"].get(route, 0)


# -- TGI: chat, generate, streams, usage --------------------------------------------------------
def test_tgi_chat_and_stream_use_the_openai_route(client, sim):
    response = client.chat("tgi", PROMPT, max_tokens=40)
    assert response.text and response.model == SimTGI.model_id and response.finish_reason == "length"
    assert response.usage.output_tokens == 40 and response.usage.input_tokens > 0 and not response.usage.estimated
    stream = client.stream("hf_tgi", PROMPT, max_tokens=40)
    assert "".join(chunk.text for chunk in stream) == stream.response.text == response.text
    assert stream.response.usage == response.usage
    assert sent(sim, "POST /tgi/v1/chat/completions") == 2 and sent(sim, "GET /tgi/info") == 1


def test_tgi_generate_plain_and_streamed(client, sim):
    response = client.generate("tgi", PROMPT)
    assert response.finish_reason == "eos_token" and not response.usage.estimated
    assert response.usage.input_tokens == accel_nb.tokens.count_tokens(PROMPT)
    assert response.usage.output_tokens > 1  # from x-generated-tokens, the end-of-sequence token included
    stream = client.stream("tgi", PROMPT, kind="generate")
    chunks = [chunk.text for chunk in stream]
    assert len(chunks) > 1 and "".join(chunks) == stream.response.text == response.text  # no special tokens
    assert stream.response.usage == response.usage and stream.response.ttft_s is not None
    short = client.generate("tgi", PROMPT, max_tokens=5, temperature=0, top_p=1.0, stop=["zzz"])
    assert short.finish_reason == "length" and short.usage.output_tokens == 5
    assert (sent(sim, "POST /tgi/generate"), sent(sim, "POST /tgi/generate_stream")) == (2, 1)


def test_tgi_async_twins(client):
    async def main():
        response = await client.agenerate("tgi", PROMPT, max_tokens=12)
        stream = client.astream("tgi", PROMPT, kind="generate", max_tokens=12)
        parts = [chunk.text async for chunk in stream]
        chat = await client.achat("tgi", PROMPT, max_tokens=12)
        return response, stream, parts, chat

    response, stream, parts, chat = asyncio.run(main())
    assert "".join(parts) == stream.response.text == response.text and chat.usage.output_tokens == 12


def test_tgi_refuses_a_prompt_over_its_limits_before_sending(client, sim):
    long_prompt = "word " * (SimTGI.max_input_tokens + 9)
    for call in (client.generate, client.chat):
        with pytest.raises(errors.ContextLengthError) as caught:
            call("tgi", long_prompt)
        message = str(caught.value)
        assert f"takes at most {SimTGI.max_input_tokens}" in message and "max_input_tokens" in message
        assert not caught.value.retryable and caught.value.provider == "tgi"
    with pytest.raises(errors.ContextLengthError, match=r"max_tokens=8000 makes 8\d{3};.* 8192") as caught:
        client.generate("tgi", "word " * 500, max_tokens=8000)
    assert "lower max_tokens to at most 7692" in caught.value.hint
    assert sent(sim, "POST /tgi/generate") == sent(sim, "POST /tgi/v1/chat/completions") == 0  # nothing was sent
    assert sent(sim, "GET /tgi/info") == 1  # the limits were read once


@pytest.mark.parametrize("stream", [False, True])
def test_tgi_validation_error_is_not_retried(client, sim, stream):
    """top_p=0 passes our checks; TGI refuses it (a 422, or an error frame in a 200 stream)."""
    with pytest.raises(errors.BadRequestError, match="top_p") as caught:
        if stream:
            "".join(c.text for c in client.stream("tgi", PROMPT, kind="generate", top_p=0.0))
        else:
            client.generate("tgi", PROMPT, top_p=0.0)
    assert not caught.value.retryable
    assert sent(sim, "POST /tgi/generate_stream" if stream else "POST /tgi/generate") == 1


@pytest.mark.parametrize("kind", ["generate", "chat"])
@pytest.mark.parametrize("stream", [False, True])
def test_tgi_overload_is_retried_with_backoff(make_client, sim, kind, stream):
    client = make_client(retry={"backoff_base_s": 0.01})
    sim.script("tgi", ["overloaded", "429", "ok"])
    call = client.generate if kind == "generate" else client.chat
    if stream:
        result = client.stream("tgi", PROMPT, kind=kind, max_tokens=8)
        assert "".join(c.text for c in result) and result.response.attempts == 3
    else:
        assert call("tgi", PROMPT, max_tokens=8).attempts == 3
    assert sim.stats()["requests"]["tgi"] == 3 + 1  # three tries and one /info


@pytest.mark.parametrize(
    ("fault", "cls", "retried"),
    [
        ("400", errors.BadRequestError, False),  # axum's plain-text JSON rejection
        ("401", errors.AuthenticationError, False),  # the --api-key middleware: an empty body
        ("404", errors.NotFoundError, False),
        ("413", errors.BadRequestError, False),  # the payload limit, plain text
        ("422", errors.BadRequestError, False),  # validation
        ("quota", errors.QuotaExceededError, False),  # 402 from Hugging Face's router
        ("424", errors.ServerError, True),  # generation failed
        ("500", errors.ServerError, True),  # incomplete generation
        ("503", errors.OverloadedError, True),
        ("overloaded", errors.OverloadedError, True),
    ],
)
@pytest.mark.parametrize("provider", ["tgi", "tei"])
def test_every_error_shape_is_classified(make_client, sim, provider, fault, cls, retried):
    client = make_client(retry={"max_attempts": 2, "backoff_base_s": 0.01}, keys={provider: "hf_test_token"})
    sim.script(provider, [fault, fault])
    with pytest.raises(cls) as caught:
        if provider == "tgi":
            client.generate("tgi", PROMPT)
        else:
            client.embed("tei", "one text")
    assert type(caught.value) is cls
    route = "POST /tgi/generate" if provider == "tgi" else "POST /tei/embed"
    assert sent(sim, route) == (2 if retried else 1)
    assert caught.value.retryable is retried and "hf_test_token" not in str(caught.value)


def test_circuit_breaker_opens_for_each_server(make_client, sim):
    client = make_client(retry={"max_attempts": 1}, breaker={"failures": 2, "cooldown_s": 0.3})
    for provider, call in (("tgi", lambda: client.generate("tgi", "Hi")), ("tei", lambda: client.embed("tei", "Hi"))):
        sim.script(provider, ["500", "500"])
        for _ in range(2):
            with pytest.raises(errors.ServerError):
                call()
        with pytest.raises(errors.CircuitOpenError):
            call()
        assert sim.stats()["requests"][provider] == 2 + 1  # failing fast: nothing more sent (+ /info)
    time.sleep(0.35)
    assert client.generate("tgi", "Hi").text and client.embed("tei", "Hi").shape == (1, SimTEI.dims)


# -- TEI: embeddings, splitting, rerank, sparse ---------------------------------------------------
def test_tei_embeddings_are_normalized_unless_asked_not_to(client):
    texts = ["the cat sat on the mat", "a cat sat on a mat", "quarterly tax filing"]
    vectors = client.embed("tei", texts)
    assert vectors.shape == (3, SimTEI.dims) and vectors.dtype == np.float32
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1, 1, 1], abs=1e-5)
    assert vectors[0] @ vectors[1] > 0.5 > vectors[0] @ vectors[2]
    assert vectors.response.usage.input_tokens == sum(accel_nb.tokens.count_tokens(t) for t in texts)
    assert not vectors.response.usage.estimated
    raw = client.embed("hf_tei", texts, normalize=False)
    norms = np.linalg.norm(raw, axis=1)
    assert (norms > 1.5).all()  # the server kept each vector's length
    assert raw / norms[:, None] == pytest.approx(vectors, abs=1e-5)  # and its direction


def test_tei_batch_over_the_client_batch_size_is_split_and_joined_in_order(client, sim, tmp_path):
    texts = [f"sentence {i} about {'cats' if i % 2 else 'taxes'}" for i in range(100)]
    vectors = client.embed("tei", texts)
    assert vectors.shape == (100, SimTEI.dims)
    assert sent(sim, "POST /tei/embed") == 4  # 32 + 32 + 32 + 4
    one_by_one = np.vstack([client.embed("tei", text) for text in (texts[0], texts[57], texts[99])])
    assert vectors[[0, 57, 99]] == pytest.approx(one_by_one, abs=1e-6)
    response = vectors.response
    assert response.usage.input_tokens == sum(accel_nb.tokens.count_tokens(t) for t in texts)
    rows = client.logs(20, batch_id=response.request_id)
    assert sorted(row["batch_index"] for row in rows) == [0, 32, 64, 96]


def test_tei_batch_over_the_payload_limit_is_split_not_failed(client, sim):
    """40 texts of 100 kB: 4 MB in one body, twice TEI's 2 MB limit — sent in parts under it."""
    texts = [f"document {i} " + "lorem ipsum " * 8_500 for i in range(40)]
    vectors = client.embed("tei", texts, params={"truncate": True})
    assert vectors.shape == (40, SimTEI.dims)
    assert sent(sim, "POST /tei/embed") >= 3  # split by bytes (the count alone would allow 2 parts)
    assert sim.stats()["faults"] == {} and np.isfinite(vectors).all()


def test_tei_part_refused_as_too_large_is_halved_and_resent(client, sim):
    """A server with a lower --payload-limit than the default: the 413 part is halved."""
    sim.script("tei", ["413"])
    texts = [f"text {i}" for i in range(20)]
    vectors = client.embed("tei", texts)
    assert vectors.shape == (20, SimTEI.dims) and sent(sim, "POST /tei/embed") == 3
    assert vectors[7] == pytest.approx(client.embed("tei", texts[7])[0], abs=1e-6)


def test_tei_input_over_max_input_length_is_a_context_length_error(client, sim):
    with pytest.raises(errors.ContextLengthError, match="less than 512 tokens") as caught:
        client.embed("tei", ["short", "word " * 600])
    assert "truncate" in caught.value.hint and sent(sim, "POST /tei/embed") == 1  # not halved, not retried
    assert client.embed("tei", ["short", "word " * 600], params={"truncate": True}).shape == (2, SimTEI.dims)


def test_tei_rerank_best_first_across_parts(client, sim):
    texts = [f"note {i} on tax filing deadlines" for i in range(69)]
    texts.insert(41, "the cat sat on the mat")
    ranking = client.rerank("tei", "where did the cat sit?", texts, return_text=True)
    assert sent(sim, "POST /tei/rerank") == 3  # 70 texts in parts of 32
    assert ranking[0].index == 41 and ranking[0].text == texts[41]
    assert sorted(ranking.indices) == list(range(70))
    scores = [row.score for row in ranking]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    assert ranking.response.usage.input_tokens > 0
    raw = client.rerank("tei", "cat", ["the cat", "taxes"], raw_scores=True)
    assert raw[0].text is None and raw[0].index == 0 and raw[1].score < 0  # logits, not probabilities


def test_tei_sparse_embeddings(client):
    rows = client.embed_sparse("tei", ["the cat sat", "the cat ran", "quarterly taxes"])
    assert len(rows) == 3 and all(isinstance(k, int) and v > 0 for row in rows for k, v in row.items())
    assert len(rows[0].keys() & rows[1].keys()) > len(rows[0].keys() & rows[2].keys())
    assert rows.response.usage.input_tokens > 0


def test_tei_async_twins_split_too(client, sim):
    texts = [f"t{i}" for i in range(40)]

    async def main():
        return await asyncio.gather(
            client.aembed("tei", texts), client.arerank("tei", "t3", texts), client.aembed_sparse("tei", texts)
        )

    vectors, ranking, rows = asyncio.run(main())
    assert vectors.shape == (40, SimTEI.dims) and len(ranking) == 40 and len(rows) == 40
    assert sent(sim, "POST /tei/embed") == sent(sim, "POST /tei/rerank") == sent(sim, "POST /tei/embed_sparse") == 2


def test_cancelling_a_split_call_cancels_its_parts(make_client, sim):
    client = make_client(providers={"tei": {"concurrency": 2}})
    texts = [f"t{i}" for i in range(32 * 6)]

    async def main():
        task = asyncio.ensure_future(client.aembed("tei", texts, headers={"x-sim-ttft": "5"}))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    deadline = time.monotonic() + 3
    while client.stats()["in_flight"] or client.stats()["queued"]:
        assert time.monotonic() < deadline, "the parts were not cancelled"
        time.sleep(0.02)
    assert client.embed("tei", ["still", "serving"]).shape == (2, SimTEI.dims)
    assert all(row["error_class"] == "CancelledError" for row in client.logs(10, provider="tei")[1:])


# -- keys, base URLs, bad input -------------------------------------------------------------------
def test_no_key_is_needed_and_hf_token_is_sent_as_bearer(sim_factory, monkeypatch):
    open_server = sim_factory()
    monkeypatch.setenv("TGI_BASE_URL", open_server.base_urls["tgi"])
    monkeypatch.setenv("TEI_BASE_URL", open_server.base_urls["tei"])
    with accel_nb.Client() as client:  # no key anywhere: the servers run without --api-key
        assert client.generate("tgi", "Hi").text and client.embed("tei", "Hi").shape == (1, SimTEI.dims)

    guarded = sim_factory(require_key="hf_secret_token_1234")
    monkeypatch.setenv("HF_TGI_BASE_URL", guarded.base_urls["tgi"])
    monkeypatch.delenv("TGI_BASE_URL")
    monkeypatch.setenv("TEI_BASE_URL", guarded.base_urls["tei"])
    with accel_nb.Client() as client:
        with pytest.raises(errors.AuthenticationError, match="--api-key") as caught:
            client.generate("tgi", "Hi")
        assert "HF_TOKEN" in caught.value.hint
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_1234")
    with accel_nb.Client() as client:
        assert client.generate("tgi", "Hi").text and client.embed("tei", ["a", "b"]).shape == (2, SimTEI.dims)
        assert client.key_status("tei")[0]["source"] == "env:HF_TOKEN"


def test_bad_input_is_refused_before_anything_is_sent(client, sim):
    cases = [
        (lambda: client.generate("tgi", "Hi", system="Be brief."), "raw prompt"),
        (lambda: client.generate("tgi", [{"role": "user", "content": "Hi"}]), "raw prompt"),
        (lambda: client.stream("tgi", "Hi", kind="embed"), "stream kind"),
        (lambda: client.embed("tei", []), "non-empty"),
        (lambda: client.embed("tei", ["ok", "  "]), "non-empty"),
        (lambda: client.rerank("tei", "", ["a"]), "non-empty query"),
        (lambda: client.embed("tei", ["a"], truncate=True), "unknown option 'truncate'"),
        (lambda: client.rerank("tgi", "q", ["a"]), "tgi has no rerank API"),
        (lambda: client.generate("tei", "Hi"), "tei has no generate API"),
    ]
    for call, complaint in cases:
        with pytest.raises(errors.BadRequestError, match=complaint):
            call()
    with pytest.raises(errors.BadRequestError) as caught:
        client.embed_sparse("openai", ["a"])
    assert caught.value.hint == "for embed_sparse use tei"
    assert sim.stats()["requests"] == {}
    assert client.embed("tei", "fine").shape == (1, SimTEI.dims)


def test_models_come_from_the_server(client):
    assert client.models("tgi") == [SimTGI.model_id]
    assert client.models("tei") == [SimTEI.model_id]
