"""OPEA through the engine: the ChatQnA megaservice (bytes-repr frames, estimated usage) and its microservices."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from accel_nb import errors
from accel_nb.config import load_settings
from accel_nb.sim.opea import CORPUS
from accel_nb.sim.textgen import answer, generate
from accel_nb.tokens import count_tokens, estimate_prompt_tokens

QUESTION = "What is the reranking microservice for?"


def sent(sim) -> int:
    return sim.stats()["requests"].get("opea", 0)


def test_chatqna_streams_by_default_and_usage_is_estimated(client, sim):
    stream = client.stream("opea", QUESTION)
    chunks = [chunk.text for chunk in stream]
    expected = generate(0, "chatqna", QUESTION, 1024).text
    assert len(chunks) == count_tokens(expected) and "".join(chunks) == expected
    usage = stream.response.usage
    assert usage.estimated and usage.input_tokens == estimate_prompt_tokens([{"role": "user", "content": QUESTION}])
    assert usage.output_tokens == count_tokens(expected)
    assert sim.stats()["routes"] == {"POST /opea/v1/chatqna": 1}


def test_chatqna_plain_reply_has_zero_usage_so_it_is_estimated(client):
    response = client.chat("opea", QUESTION, system="Answer from the documents", max_tokens=20)
    assert response.text == generate(0, "chatqna", QUESTION, 20).text and response.model == "chatqna"
    assert response.raw["usage"] == {"prompt_tokens": 0, "total_tokens": 0, "completion_tokens": 0}
    assert response.usage.estimated and response.usage.output_tokens == 20


def test_llm_microservice_is_openai_shaped_with_real_usage(client, sim):
    response = client.chat("opea:llm", QUESTION)
    assert response.text == answer(0, "Intel/neural-chat-7b-v3-3", QUESTION) and not response.usage.estimated
    stream = client.stream("opea:llm/Intel/neural-chat-7b-v3-3", QUESTION)
    assert "".join(chunk.text for chunk in stream) == response.text
    assert stream.response.usage == response.usage
    assert sim.stats()["routes"] == {"POST /opea/llm/v1/chat/completions": 2}


def test_embeddings_retrieval_and_reranking(client, sim):
    vectors = client.embed("opea", ["the retriever", "the reranker"])
    assert vectors.shape == (2, 768)
    docs = client.opea.retrieve(QUESTION, k=3)
    assert len(docs) == 3 and docs.response.provider == "opea"
    assert docs[0]["text"] == CORPUS[4][0] and docs[0]["metadata"]["source"] == "reranking.md"
    texts = [doc["text"] for doc in docs]
    ranked = client.rerank("opea", QUESTION, texts, return_text=True, params={"top_n": 2})
    assert ranked.indices == [0, 1] and ranked[0].score >= ranked[1].score
    assert [r.text for r in ranked] == texts[:2] and ranked.response.provider == "opea"
    routes = sim.stats()["routes"]
    assert routes["POST /opea/embedding/v1/embeddings"] == 2  # one for embed, one inside retrieve
    assert routes["POST /opea/retrieval/v1/retrieval"] == routes["POST /opea/reranking/v1/reranking"] == 1
    assert [row["kind"] for row in client.logs(4)] == ["rerank", "retrieve", "embed", "embed"]


def test_async_twins(client):
    async def main():
        docs = await client.opea.aretrieve("How are documents ingested?", k=1)
        ranked = await client.arerank("opea", "ingest documents", ["cats", "Dataprep ingests documents"])
        return docs, ranked, await client.achat("opea", QUESTION)

    docs, ranked, response = asyncio.run(main())
    assert "Dataprep" in docs[0]["text"] and ranked[0].index == 1 and response.usage.estimated


def test_fastapi_errors_are_classified(client, sim):
    sim.script("opea", ["422"])
    with pytest.raises(errors.BadRequestError, match="body: Input should be a valid request"):
        client.chat("opea", QUESTION)
    with pytest.raises(errors.BadRequestError, match="non-empty text or list of non-empty texts"):
        client.rerank("opea", QUESTION, [])
    with pytest.raises(errors.BadRequestError, match="query must be a non-empty string"):
        client.opea.retrieve("  ")
    assert sent(sim) == 1
    response = httpx.post(sim.base_urls["opea"] + "/retrieval/v1/retrieval", json={"embedding": [1.0]})
    assert response.status_code == 422 and response.json()["detail"][0]["msg"].startswith("embedding must be")


def test_service_urls_from_config_env_and_the_base_urls_host():
    settings = load_settings(
        {"providers": {"opea": {"services": {"llm": "http://gpu-box:9009"}}}},
        environ={"OPEA_BASE_URL": "http://rag.local:8888", "OPEA_EMBEDDING_URL": "http://embedder:6006/"},
        dotenv={},
        file_config={},
    )
    assert settings.providers["opea"].services == {
        "embedding": "http://embedder:6006",
        "retrieval": "http://rag.local:7000",
        "reranking": "http://rag.local:8000",
        "llm": "http://gpu-box:9009",
    }
    with pytest.raises(errors.BadRequestError, match="opea has: embedding, retrieval, reranking, llm"):
        load_settings(
            {"providers": {"opea": {"services": {"guardrail": "http://x"}}}}, environ={}, dotenv={}, file_config={}
        )
    sim = load_settings({"sim_url": "http://127.0.0.1:1"}, environ={}, dotenv={}, file_config={})
    assert sim.providers["opea"].services["retrieval"] == "http://127.0.0.1:1/opea/retrieval"
