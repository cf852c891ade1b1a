"""The LLVM model server and vLLM through the engine; vLLM also through the official ``openai`` SDK."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import openai
import pytest

import accel_nb
from accel_nb import errors
from accel_nb.sim.textgen import answer, generate
from accel_nb.sim.vectors import embed
from accel_nb.tokens import count_tokens

VLLM_MODEL = "meta-llama/Llama-3.2-1B-Instruct"
PROMPT = "Explain backpressure in two sentences."


def sent(sim, provider: str) -> int:
    return sim.stats()["requests"].get(provider, 0)


def resnet_scores(values: list) -> np.ndarray:
    """The simulated resnet50, written independently: softmax of sin((c+1)(j+1)) @ x."""
    x = np.asarray(values, dtype=float).ravel()
    logits = np.sin(np.outer(np.arange(1, 11), np.arange(1, x.size + 1))) @ x
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()


# -- LLVM: inference ---------------------------------------------------------------------------
def test_bert_base_returns_the_texts_feature_vector(client):
    result = client.infer("llvm:bert-base", "the cat sat on the mat")
    assert np.asarray(result).shape == (768,)
    assert np.asarray(result) == pytest.approx(embed("the cat sat on the mat", 768), abs=1e-6)
    assert result.response.provider == "llvm" and result.response.attempts == 1 and result.metrics["inference_time"]
    assert "bert-base" in repr(result)


def test_the_ledger_keeps_a_calls_parameters_as_they_were_sent(client):
    image = [[0.1, 0.5, -0.3]]
    client.infer("llvm:resnet50", image, parameters={"precision": "fp16", 7: "seven"})  # keys need not be str
    assert json.loads(client.logs(1)[0]["prompt"]) == {"precision": "fp16", "7": "seven"}


def test_resnet50_scores_its_input_array(client):
    image = [[0.1, 0.5, -0.3], [0.9, 0.0, 0.2]]
    output = client.infer("llvm:resnet50", image, parameters={"precision": "fp16"}).output
    expected = resnet_scores(image)
    assert output["scores"] == pytest.approx(expected.tolist()) and output["class_id"] == int(expected.argmax())
    assert client.infer("llvm:resnet50", np.asarray(image)).output == output  # numpy arrays go as lists
    assert client.infer_batch("llvm:resnet50", np.asarray([image, image]))[1] == output
    assert output["label"] in (
        "tench",
        "goldfish",
        "great white shark",
        "tiger shark",
        "hammerhead",
        "electric ray",
        "stingray",
        "cock",
        "hen",
        "ostrich",
    )


def test_gpt2_generates_text(client):
    result = client.infer("llvm:gpt2", "Once upon a time", parameters={"max_length": 6})
    assert result.output == generate(0, "gpt2", "Once upon a time", 6).text and count_tokens(result.output) == 6
    assert result.response.text == result.output


def test_a_batch_is_one_request_with_outputs_in_order(client, sim):
    texts = ["alpha", "beta gamma", "delta"]
    outputs = client.infer_batch("llvm:bert-base", texts)
    assert sent(sim, "llvm") == 1 and len(outputs) == 3 and outputs.response.attempts == 1
    for text, output in zip(texts, outputs, strict=True):
        assert np.asarray(output) == pytest.approx(embed(text, 768), abs=1e-6)


def test_every_request_carries_our_request_id(client):
    result = client.infer("llvm:gpt2", "Hi")
    row = client.logs(1)[0]
    assert row["provider_request_id"] == result.response.request_id == row["id"]


def test_async_twins(client):
    async def main():
        return (
            await client.ainfer("llvm:gpt2", "Hi"),
            await client.ainfer_batch("llvm:gpt2", ["a", "b"]),
            await client.llvm.astatus(),
        )

    one, many, status = asyncio.run(main())
    assert isinstance(one.output, str) and len(many) == 2 and status["status"] == "ok"


def test_llvm_base_url_and_key_from_the_environment(sim_factory, monkeypatch):
    guarded = sim_factory(require_key="llvm-key-00005678")
    monkeypatch.setenv("LLVM_BASE_URL", guarded.url + "/llvm")
    monkeypatch.setenv("LLVM_API_KEY", "llvm-key-00005678")
    with accel_nb.Client() as client:
        assert client.infer("llvm:gpt2", "Hi").output


# -- LLVM: management and bad input ------------------------------------------------------------
def test_models_statistics_optimize_and_status(client):
    assert [m["id"] for m in client.llvm.models()] == ["resnet50", "bert-base", "gpt2"]
    assert client.models("llvm") == ["resnet50", "bert-base", "gpt2"]
    client.infer_batch("llvm:gpt2", ["a", "b", "c"])
    stats = client.llvm.statistics("gpt2")
    assert (stats["requests"], stats["inputs"]) == (1, 3)
    assert client.llvm.optimize("gpt2", "speed")["status"] == "success"
    assert client.llvm.model("gpt2")["optimization"] == "speed"
    assert client.llvm.status()["models_loaded"] == 3


def test_bad_input(client, sim):
    with pytest.raises(errors.BadRequestError, match="optimization_type"):
        client.llvm.optimize("gpt2", "fastest")
    with pytest.raises(errors.BadRequestError, match="non-empty list"):
        client.infer_batch("llvm:gpt2", [])
    with pytest.raises(errors.BadRequestError, match="needs an input"):
        client.infer("llvm:gpt2", None)
    with pytest.raises(errors.BadRequestError, match="no chat API") as caught:
        client.chat("llvm", "Hi")
    assert "ollama" in caught.value.hint and "vllm" in caught.value.hint
    with pytest.raises(errors.BadRequestError, match="must be JSON"):
        client.infer("llvm:gpt2", {"when": object()})
    with pytest.raises(errors.BadRequestError, match="infer calls do not stream"):
        client.infer("llvm:gpt2", "Hi", stream=True)
    assert sent(sim, "llvm") == 0
    with pytest.raises(errors.BadRequestError, match="numeric array"):
        client.infer("llvm:resnet50", "not an image")
    with pytest.raises(errors.NotFoundError, match="Model 'yolo' not found"):
        client.infer("llvm:yolo", [1.0])
    with pytest.raises(errors.NotFoundError):
        client.llvm.statistics("yolo")
    assert sent(sim, "llvm") == 3  # each sent once: none of them is retried


# -- vLLM --------------------------------------------------------------------------------------
def test_vllm_chat_stream_and_completions(client):
    response = client.chat("vllm", PROMPT, max_tokens=64)
    assert response.text == generate(0, VLLM_MODEL, PROMPT, 64).text and not response.usage.estimated
    stream = client.stream("vllm", PROMPT, max_tokens=64)
    assert "".join(chunk.text for chunk in stream) == response.text
    assert stream.response.usage == response.usage
    completion = client.generate("vllm", "Once upon a time", max_tokens=10)
    assert completion.text == generate(0, VLLM_MODEL, "Once upon a time", 10).text
    assert completion.usage.input_tokens == count_tokens("Once upon a time") and completion.finish_reason == "length"
    streamed = client.stream("vllm", "Once upon a time", kind="generate", max_tokens=10)
    assert "".join(chunk.text for chunk in streamed) == completion.text
    assert streamed.response.usage == completion.usage


def test_vllm_models_and_unknown_model(client, sim):
    assert client.models("vllm") == [VLLM_MODEL]
    with pytest.raises(errors.NotFoundError, match="does not exist"):
        client.chat("vllm:gpt-4o", "Hi")
    assert sent(sim, "vllm") == 2


def test_vllm_base_url_from_the_environment(sim, monkeypatch):
    monkeypatch.setenv("VLLM_BASE_URL", sim.base_urls["vllm"])
    with accel_nb.Client() as client:
        assert client.chat("vllm", "Hi").text


@pytest.fixture
def sdk(sim) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.base_urls["vllm"], api_key="EMPTY", max_retries=0)


def test_openai_sdk_takes_the_simulator_for_vllm(sdk):
    reply = sdk.chat.completions.create(model=VLLM_MODEL, messages=[{"role": "user", "content": PROMPT}])
    assert reply.choices[0].message.content == answer(0, VLLM_MODEL, PROMPT)
    assert reply.usage.completion_tokens == count_tokens(reply.choices[0].message.content)
    chunks = list(
        sdk.chat.completions.create(
            model=VLLM_MODEL,
            messages=[{"role": "user", "content": PROMPT}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == reply.choices[0].message.content
    assert chunks[-1].usage.total_tokens == reply.usage.total_tokens
    completion = sdk.completions.create(model=VLLM_MODEL, prompt="Once upon a time", max_tokens=8)
    assert completion.choices[0].text == generate(0, VLLM_MODEL, "Once upon a time", 8).text
    assert completion.choices[0].finish_reason == "length" and completion.usage.completion_tokens == 8
    pieces = list(sdk.completions.create(model=VLLM_MODEL, prompt="Once upon a time", max_tokens=8, stream=True))
    assert "".join(p.choices[0].text for p in pieces if p.choices) == completion.choices[0].text
    assert [m.id for m in sdk.models.list()] == [VLLM_MODEL]


def test_openai_sdk_sees_vllms_errors(sdk, sim_factory):
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.chat.completions.create(model="nope", messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.body["type"] == "NotFoundError" and caught.value.body["code"] == 404
    with pytest.raises(openai.InternalServerError) as caught:
        sdk.chat.completions.create(
            model=VLLM_MODEL, messages=[{"role": "user", "content": "Hi"}], extra_headers={"x-sim-fault": "overloaded"}
        )
    assert caught.value.status_code == 503
    guarded = sim_factory(require_key="vllm-key")
    wrong = openai.OpenAI(base_url=guarded.base_urls["vllm"], api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
