"""huggingface_hub's own ``InferenceClient``, pointed at the simulated TGI and TEI, must take them for the real servers.

It parses our replies, streams and errors with its own code (``TextGenerationOutput``,
``TextGenerationStreamOutput``, ``ChatCompletionOutput``, its TGI error mapping).
"""

from __future__ import annotations

import numpy as np
import pytest
from huggingface_hub import InferenceClient
from huggingface_hub import errors as hf_errors

from accel_nb.sim.tei import TEI
from accel_nb.sim.textgen import answer
from accel_nb.sim.tgi import TGI
from accel_nb.tokens import count_tokens, estimate_prompt_tokens, split_tokens

PROMPT = "Explain backpressure in two sentences."
TOKEN = "hf_test_token"
FULL_ANSWER = answer(0, TGI.model_id, PROMPT)


@pytest.fixture
def tgi(sim) -> InferenceClient:
    return InferenceClient(model=sim.base_urls["tgi"], token=TOKEN, provider="hf-inference")


@pytest.fixture
def tei(sim) -> InferenceClient:
    return InferenceClient(model=sim.base_urls["tei"], token=TOKEN, provider="hf-inference")


def faulty(sim, provider: str, fault: str) -> InferenceClient:
    return InferenceClient(
        model=sim.base_urls[provider], token=TOKEN, provider="hf-inference", headers={"x-sim-fault": fault}
    )


# -- TGI ------------------------------------------------------------------------------------
def test_text_generation_plain_and_with_details(tgi) -> None:
    assert tgi.text_generation(PROMPT) == FULL_ANSWER
    output = tgi.text_generation(PROMPT, max_new_tokens=12, details=True)
    assert output.generated_text == "".join(split_tokens(FULL_ANSWER)[:12])
    assert (output.details.finish_reason, output.details.generated_tokens) == ("length", 12)
    assert "".join(token.text for token in output.details.tokens) == output.generated_text


def test_text_generation_streams(tgi) -> None:
    assert "".join(tgi.text_generation(PROMPT, stream=True)) == FULL_ANSWER + "<|eot_id|>"  # hf joins raw tokens
    frames = list(tgi.text_generation(PROMPT, stream=True, details=True))
    last = frames[-1]
    assert last.token.special and last.generated_text == FULL_ANSWER
    assert last.details.finish_reason == "eos_token" and last.details.input_length == count_tokens(PROMPT)
    assert last.details.generated_tokens == len(frames) == len(split_tokens(FULL_ANSWER)) + 1
    assert [frame.index for frame in frames] == list(range(1, len(frames) + 1))


def test_chat_completion_on_the_v1_route(sim) -> None:
    chat = InferenceClient(base_url=sim.base_urls["tgi"] + "/v1/", token=TOKEN)
    messages = [{"role": "user", "content": PROMPT}]
    reply = chat.chat_completion(messages, max_tokens=20)
    assert reply.choices[0].message.content == "".join(split_tokens(FULL_ANSWER)[:20])
    assert reply.model == TGI.model_id and reply.choices[0].finish_reason == "length"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (estimate_prompt_tokens(messages), 20)
    chunks = list(chat.chat_completion(messages, max_tokens=20, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reply.choices[0].message.content and chunks[-1].usage.completion_tokens == 20


def test_endpoint_info_and_health(tgi, tei) -> None:
    info = tgi.get_endpoint_info()
    assert (info["model_id"], info["max_input_tokens"], info["max_total_tokens"]) == (TGI.model_id, 8191, 8192)
    assert tgi.health_check() and tei.health_check()
    assert tei.get_endpoint_info()["max_client_batch_size"] == TEI.max_client_batch_size


@pytest.mark.parametrize("stream", [False, True])
def test_tgi_errors_map_to_huggingface_hubs_own(sim, tgi, stream) -> None:
    def run(client: InferenceClient, prompt: str = PROMPT, **options) -> None:
        result = client.text_generation(prompt, stream=stream, **options)
        if stream:
            list(result)

    with pytest.raises(hf_errors.ValidationError, match=r"must have less than 8191 tokens\. Given: 9000"):
        run(tgi, "word " * 9000)
    with pytest.raises(hf_errors.ValidationError, match=r"must be <= 8192\. Given: 11 `inputs` tokens and 8190"):
        run(tgi, max_new_tokens=8190)
    with pytest.raises(hf_errors.OverloadedError, match="Model is overloaded"):
        run(faulty(sim, "tgi", "overloaded"))
    with pytest.raises(hf_errors.GenerationError):
        run(faulty(sim, "tgi", "424"))


def test_tgi_stream_error_after_tokens(sim) -> None:
    received = []
    client = faulty(sim, "tgi", "stream_error=4")  # kept: a collected client closes its streams
    with pytest.raises(hf_errors.GenerationError, match="CUDA out of memory"):
        for token in client.text_generation(PROMPT, stream=True):
            received.append(token)
    assert received == split_tokens(FULL_ANSWER)[:4]


# -- TEI ------------------------------------------------------------------------------------
def test_feature_extraction(tei) -> None:
    vectors = tei.feature_extraction(["the cat sat on the mat", "a cat sat on a mat", "quarterly tax filing"])
    assert vectors.shape == (3, TEI.dims) and vectors.dtype == np.float32
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1, 1, 1], abs=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    raw = tei.feature_extraction("the cat sat on the mat", normalize=False)
    assert np.linalg.norm(raw) > 1.5 and raw[0] / np.linalg.norm(raw) == pytest.approx(vectors[0], abs=1e-5)


def test_tei_errors_are_http_errors_with_teis_bodies(sim, tei) -> None:
    with pytest.raises(hf_errors.HfHubHTTPError) as caught:
        tei.feature_extraction(["x"] * (TEI.max_client_batch_size + 1))
    assert caught.value.response.status_code == 413
    assert caught.value.response.json() == {"error": "batch size 33 > maximum allowed batch size 32",
                                            "error_type": "Validation"}
    with pytest.raises(hf_errors.HfHubHTTPError) as caught:
        faulty(sim, "tei", "overloaded").feature_extraction("x")
    assert caught.value.response.status_code == 429
    assert caught.value.response.json()["error_type"] == "Overloaded"
