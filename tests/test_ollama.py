"""Ollama through the engine and through the official ``ollama`` client, over HTTP to the simulator."""

from __future__ import annotations

import asyncio

import numpy as np
import ollama
import pytest

import accel_nb
from accel_nb import errors
from accel_nb.servers import ollama as ollama_server
from accel_nb.sim.textgen import answer
from accel_nb.tokens import count_tokens, estimate_prompt_tokens

PROMPT = "Explain backpressure in two sentences."


def sent(sim) -> int:
    return sim.stats()["requests"].get("ollama", 0)


# -- chat, generate, embed --------------------------------------------------------------------
def test_chat_usage_and_timings(client):
    response = client.chat("ollama", PROMPT, system="Be brief")
    assert response.text == answer(0, "llama3.2", PROMPT) and response.model == "llama3.2"
    messages = [{"role": "user", "content": PROMPT}]
    assert response.usage.input_tokens == estimate_prompt_tokens(messages, "Be brief")
    assert response.usage.output_tokens == count_tokens(response.text) and not response.usage.estimated
    timings = response.timings
    assert set(timings) == {"total_s", "load_s", "prompt_eval_s", "eval_s", "tokens_per_s"}
    assert timings["eval_s"] == pytest.approx(response.usage.output_tokens * 0.0125)
    assert timings["tokens_per_s"] == pytest.approx(80.0) and response.finish_reason == "stop"


def test_ndjson_stream_matches_the_plain_reply(client):
    plain = client.chat("ollama", PROMPT)
    stream = client.stream("ollama", PROMPT)
    chunks = [chunk.text for chunk in stream]
    assert len(chunks) == plain.usage.output_tokens and "".join(chunks) == plain.text
    assert stream.response.usage == plain.usage and stream.response.timings == plain.timings
    assert stream.response.ttft_s is not None


def test_options_map_to_ollamas_names(client):
    response = client.chat("ollama", PROMPT, max_tokens=5, temperature=0, params={"num_ctx": 2048, "keep_alive": "1m"})
    assert response.usage.output_tokens == 5 and response.finish_reason == "length"


def test_generate_plain_and_streamed(client):
    response = client.generate("ollama", "Once upon a time")
    assert response.text == answer(0, "llama3.2", "Once upon a time")
    assert response.usage.input_tokens == count_tokens("Once upon a time") and response.raw["context"]
    stream = client.stream("ollama", "Once upon a time", kind="generate")
    assert "".join(chunk.text for chunk in stream) == response.text
    assert client.logs(1)[0]["kind"] == "generate" and client.logs(1)[0]["response"] == response.text


def test_embeddings(client):
    vectors = client.embed("ollama", ["the cat sat on the mat", "a cat sat on a mat", "quarterly tax filing"])
    assert vectors.shape == (3, 768) and vectors.response.model == "nomic-embed-text"
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    texts = ["the cat sat on the mat", "a cat sat on a mat", "quarterly tax filing"]
    assert vectors.usage.input_tokens == sum(count_tokens(t) for t in texts)
    assert client.embed("ollama:llama3.2", "hello").shape == (1, 3072)


def test_async_twins(client):
    async def main():
        response = await client.achat("ollama", "Hello")
        parts = [chunk.text async for chunk in client.astream("ollama", "Hello")]
        generated = await client.agenerate("ollama", "Hello")
        stream = client.astream("ollama", "Hello", kind="generate")
        streamed = [chunk.text async for chunk in stream]
        models = await client.ollama.alist()
        pulled = await client.ollama.apull("gemma3", progress=False)
        return response, parts, generated, streamed, models, pulled

    response, parts, generated, streamed, models, pulled = asyncio.run(main())
    assert "".join(parts) == response.text and "".join(streamed) == generated.text
    assert "llama3.2:latest" in [m["name"] for m in models] and pulled == {"status": "success"}


def test_ollama_host_without_scheme_reaches_the_server(sim, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{sim.port}/ollama")
    with accel_nb.Client() as client:  # no simulator setting, no key: just OLLAMA_HOST
        assert client.settings.providers["ollama"].base_url == f"http://127.0.0.1:{sim.port}/ollama"
        assert client.chat("ollama", "Hi").text


# -- model management -------------------------------------------------------------------------
def test_list_show_ps_version(client):
    models = client.ollama.list()
    assert [m["name"] for m in models] == ["llama3.2:latest", "nomic-embed-text:latest"]
    assert models[0]["details"]["parameter_size"] == "3.2B" and models[0]["size"] > 2e9
    assert client.ollama.show("llama3.2")["capabilities"] == ["completion", "tools"]
    assert client.ollama.version() == "0.12.6"
    client.chat("ollama", "Hi")
    assert [m["name"] for m in client.ollama.ps()] == ["llama3.2:latest"]
    assert client.models("ollama") == ["llama3.2:latest", "nomic-embed-text:latest"]


def test_a_model_that_is_not_pulled_says_how_to_pull_it(client, sim):
    with pytest.raises(errors.NotFoundError) as caught:
        client.chat("ollama:mistral", "Hi")
    assert caught.value.hint == "pull it first: client.ollama.pull('mistral')" and sent(sim) == 1
    assert "client.ollama.pull('mistral')" in str(caught.value)
    assert client.ollama.pull("mistral", progress=False) == {"status": "success"}
    assert client.chat("ollama:mistral", "Hi").text
    assert "mistral:latest" in [m["name"] for m in client.ollama.list()]
    client.ollama.delete("mistral")
    with pytest.raises(errors.NotFoundError):
        client.ollama.show("mistral")
    with pytest.raises(errors.NotFoundError):
        client.ollama.delete("mistral")


def test_pull_streams_progress_into_bars(client, monkeypatch):
    seen: list[dict] = []
    monkeypatch.setattr(ollama_server._PullBar, "update", lambda self, frame: seen.append(frame))
    assert client.ollama.pull("qwen2.5:7b") == {"status": "success"}
    statuses = [frame["status"] for frame in seen]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    layers = {frame["digest"]: frame for frame in seen if "digest" in frame}
    assert len(layers) == 4 and all(f["completed"] == f["total"] for f in layers.values())
    assert client.logs(1)[0]["kind"] == "admin" and client.logs(1)[0]["model"] == "qwen2.5:7b"


def test_pull_draws_real_bars(client, capsys):
    client.ollama.pull("all-minilm")
    drawn = capsys.readouterr().err
    assert "all-minilm pulling" in drawn and "100%" in drawn


def test_an_interrupted_pull_is_retried_and_an_unknown_model_is_not(client, sim):
    sim.script("ollama", ["midstream=3", "ok"])
    assert client.ollama.pull("llama3.1", progress=False) == {"status": "success"}
    assert sent(sim) == 2
    with pytest.raises(errors.NotFoundError) as caught:
        client.ollama.pull("no-such-model", progress=False)
    assert "ollama.com/library" in caught.value.hint and sent(sim) == 3


def test_bad_input_fails_before_sending(client, sim):
    with pytest.raises(errors.BadRequestError, match="no infer API"):
        client.infer("ollama", [1, 2])
    with pytest.raises(errors.BadRequestError, match="prompt is empty"):
        client.generate("ollama", " ")
    assert sent(sim) == 0


# -- the official client against the simulator -------------------------------------------------
@pytest.fixture
def official(sim) -> ollama.Client:
    return ollama.Client(host=sim.base_urls["ollama"])


def test_official_client_chat_generate_and_embed(official):
    reply = official.chat(model="llama3.2", messages=[{"role": "user", "content": PROMPT}])
    assert reply.message.content == answer(0, "llama3.2", PROMPT) and reply.done and reply.eval_count > 0
    parts = list(official.chat(model="llama3.2", messages=[{"role": "user", "content": PROMPT}], stream=True))
    assert "".join(p.message.content for p in parts) == reply.message.content and parts[-1].done_reason == "stop"
    generated = official.generate(model="llama3.2", prompt="Once upon a time", options={"num_predict": 7})
    assert generated.eval_count == 7 and generated.done_reason == "length"
    streamed = list(official.generate(model="llama3.2", prompt="Once upon a time", stream=True))
    assert "".join(p.response for p in streamed) == answer(0, "llama3.2", "Once upon a time")
    vectors = official.embed(model="nomic-embed-text", input=["a", "b"]).embeddings
    assert np.asarray(vectors).shape == (2, 768)


def test_official_client_manages_models(official):
    assert [m.model for m in official.list().models] == ["llama3.2:latest", "nomic-embed-text:latest"]
    progress = list(official.pull("gemma3", stream=True))
    assert progress[0].status == "pulling manifest" and progress[-1].status == "success"
    assert any(p.total and p.completed == p.total for p in progress)
    assert official.show("gemma3").details.family == "gemma3"
    official.chat(model="gemma3", messages=[{"role": "user", "content": "Hi"}])
    assert "gemma3:latest" in [m.model for m in official.ps().models]
    assert official.delete("gemma3").status == "success"
    assert official.pull("all-minilm").status == "success"  # not streamed


def test_official_client_sees_ollamas_errors(official, sim):
    with pytest.raises(ollama.ResponseError) as caught:
        official.chat(model="mistral", messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.status_code == 404 and "try pulling it first" in caught.value.error
    with pytest.raises(ollama.ResponseError, match="file does not exist"):
        list(official.pull("no-such-model", stream=True))
    sim.script("ollama", ["stream_error=2"])
    with pytest.raises(ollama.ResponseError, match="unexpected EOF"):
        list(official.chat(model="llama3.2", messages=[{"role": "user", "content": "Hi"}], stream=True))
    sim.script("ollama", ["overloaded"])
    with pytest.raises(ollama.ResponseError) as caught:
        official.chat(model="llama3.2", messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.status_code == 503 and "server busy" in caught.value.error
