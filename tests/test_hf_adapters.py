"""TGI and TEI adapters and the batch splitter as pure functions, on payloads shaped as the servers send them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from accel_nb import errors
from accel_nb.batching import merge, split
from accel_nb.config import load_settings
from accel_nb.providers import get_adapter
from accel_nb.providers.base import BatchLimits, Reply
from accel_nb.providers.hf_tei import TEIInfo
from accel_nb.providers.hf_tgi import TGIInfo
from accel_nb.results import EmbeddingsJoin, RankingJoin, SparseJoin
from accel_nb.types import Request, Response, Usage

TGI_INFO = {  # GET /info of TGI 3.x
    "model_id": "meta-llama/Llama-3.1-8B-Instruct", "model_sha": "0e9e39f", "model_pipeline_tag": "text-generation",
    "max_concurrent_requests": 128, "max_best_of": 2, "max_stop_sequences": 4, "max_input_tokens": 4095,
    "max_total_tokens": 4096, "validation_workers": 2, "max_client_batch_size": 4,
    "router": "text-generation-router", "version": "3.3.6", "sha": None, "docker_label": None,
}
TEI_INFO = {  # GET /info of TEI 1.x
    "model_id": "BAAI/bge-large-en-v1.5", "model_sha": None, "model_dtype": "float16",
    "model_type": {"embedding": {"pooling": "cls"}}, "max_concurrent_requests": 512, "max_input_length": 512,
    "max_batch_tokens": 16384, "max_batch_requests": None, "max_client_batch_size": 1024, "auto_truncate": False,
    "tokenization_workers": 8, "version": "1.8.2", "sha": None, "docker_label": None,
}


def generate(prompt: str = "Hi", stream: bool = False, **params) -> Request:
    return Request("generate", "tgi", "tgi", [{"role": "user", "content": prompt}], params=params, stream=stream)


def body(data) -> bytes:
    return json.dumps(data).encode()


# -- TGI --------------------------------------------------------------------------------------
def test_tgi_learns_its_limits_under_either_name():
    tgi = get_adapter("tgi")
    assert tgi.learn(TGI_INFO) == TGIInfo("meta-llama/Llama-3.1-8B-Instruct", 4095, 4096)
    legacy = {"model_id": "bigscience/bloom", "max_input_length": 1024, "max_total_tokens": 2048}  # TGI < 2.1
    assert tgi.learn(legacy).max_input_tokens == 1024
    assert tgi.discover("http://h:8080", "hf_x").url == "http://h:8080/info"
    with pytest.raises(errors.ProtocolError):
        tgi.learn(["not", "an", "object"])


def test_tgi_generate_body_speaks_tgis_parameters():
    tgi = get_adapter("tgi")
    call = tgi.build(generate("Once upon", max_tokens=20, temperature=0, top_p=1.0, stop="\n", seed=7),
                     "http://h:8080", "hf_x", TGIInfo(max_input_tokens=100, max_total_tokens=200))
    assert call.url == "http://h:8080/generate" and call.headers["authorization"] == "Bearer hf_x"
    assert call.json == {"inputs": "Once upon", "parameters": {
        "details": True, "max_new_tokens": 20, "do_sample": False, "stop": ["\n"], "seed": 7}}
    streamed = tgi.build(generate(stream=True, temperature=0.7, top_p=0.9), "http://h:8080", None)
    assert streamed.url.endswith("/generate_stream") and "authorization" not in streamed.headers
    assert streamed.json["parameters"] == {"details": True, "temperature": 0.7, "top_p": 0.9}
    chat = tgi.build(Request("chat", "tgi", "tgi", [{"role": "user", "content": "Hi"}], "Be brief.", stream=True),
                     "http://h:8080", None)
    assert chat.url == "http://h:8080/v1/chat/completions" and chat.json["messages"][0]["role"] == "system"
    assert chat.json["stream_options"] == {"include_usage": True}


def test_tgi_refuses_what_would_not_fit_with_the_numbers():
    tgi, info = get_adapter("tgi"), TGIInfo("m", max_input_tokens=10, max_total_tokens=30)
    with pytest.raises(errors.ContextLengthError, match=r"about 12 tokens; .*takes at most 10"):
        tgi.build(generate("word " * 12), "http://h", None, info)
    with pytest.raises(errors.ContextLengthError, match=r"\(about 5 tokens\) plus max_tokens=26 makes 31") as caught:
        tgi.build(generate("word " * 5, max_tokens=26), "http://h", None, info)
    assert "at most 25" in caught.value.hint
    tgi.build(generate("word " * 5, max_tokens=25), "http://h", None, info)  # exactly fits
    tgi.build(generate("word " * 50), "http://h", None, None)  # limits unknown: the server decides


def test_tgi_generate_reply_and_header_usage():
    tgi = get_adapter("tgi")
    reply = tgi.parse(generate(), {"generated_text": " there", "details": {
        "finish_reason": "eos_token", "generated_tokens": 2, "seed": None, "prefill": [],
        "tokens": [{"id": 1303, "text": " there", "logprob": -0.4, "special": False}]}})
    assert (reply.text, reply.finish_reason, reply.usage) == (" there", "eos_token", None)
    assert tgi.parse(generate(), [{"generated_text": "x"}]).text == "x"  # the compat route's list
    assert tgi.header_usage({"x-prompt-tokens": "5", "x-generated-tokens": "2"}) == Usage(5, 2)
    assert tgi.header_usage({"x-compute-time": "0.1"}) is None
    with pytest.raises(errors.ProtocolError):
        tgi.parse(generate(), {"error": "nope"})


def test_tgi_stream_frames():
    tgi, req = get_adapter("tgi"), generate(stream=True)
    first = tgi.parse_frame(req, None, '{"index":1,"token":{"id":9906,"text":"Hello","logprob":-0.3,"special":false},'
                                       '"generated_text":null,"details":null}')
    assert first.text == "Hello" and first.finish_reason is None
    last = tgi.parse_frame(req, None, '{"index":3,"token":{"id":128009,"text":"<|eot_id|>","logprob":-0.01,'
                                      '"special":true},"generated_text":"Hello!","details":{"finish_reason":'
                                      '"eos_token","generated_tokens":3,"seed":null,"input_length":7}}')
    assert (last.text, last.finish_reason, last.input_tokens, last.output_tokens) == ("", "eos_token", 7, 3)
    overloaded = tgi.parse_frame(req, None, '{"error":"Model is overloaded","error_type":"overloaded"}')
    assert isinstance(overloaded.error, errors.OverloadedError) and overloaded.error.retryable
    too_long = tgi.parse_frame(req, None, '{"error":"Input validation error: `inputs` tokens + `max_new_tokens` '
                                          'must be <= 4096. Given: 6 `inputs` tokens and 4091 `max_new_tokens`",'
                                          '"error_type":"validation"}')
    assert isinstance(too_long.error, errors.ContextLengthError) and not too_long.error.retryable
    chat = Request("chat", "tgi", "tgi", [{"role": "user", "content": "Hi"}], stream=True)
    mid = tgi.parse_frame(chat, None, '{"error":"Request failed during generation: Server error: CUDA OOM",'
                                      '"error_type":"generation"}')
    assert isinstance(mid.error, errors.ServerError) and mid.error.status == 424


@pytest.mark.parametrize(("status", "payload", "cls"), [
    (429, {"error": "Model is overloaded", "error_type": "overloaded"}, errors.OverloadedError),
    (422, {"error": "Input validation error: `temperature` must be strictly positive", "error_type": "validation"},
     errors.BadRequestError),
    (422, {"error": "Input validation error: `inputs` must have less than 4095 tokens. Given: 5000",
           "error_type": "validation"}, errors.ContextLengthError),
    (424, {"error": "Request failed during generation: Server error", "error_type": "generation"}, errors.ServerError),
    (500, {"error": "Incomplete generation", "error_type": "incomplete_generation"}, errors.ServerError),
    (422, {"error": "Template error: unknown filter", "error_type": "template_error"}, errors.BadRequestError),
    (402, {"error": "You have exceeded your monthly included credits"}, errors.QuotaExceededError),
    (503, {"error": "unhealthy", "error_type": "healthcheck"}, errors.OverloadedError),
])
def test_tgi_error_bodies(status, payload, cls):
    error = get_adapter("tgi").classify(status, {}, body(payload))
    assert type(error) is cls and error.message == payload["error"] and error.status == status


def test_errors_without_a_body_of_their_own():
    for provider in ("tgi", "tei"):
        adapter = get_adapter(provider)
        unauthorized = adapter.classify(401, {}, b"")
        assert isinstance(unauthorized, errors.AuthenticationError) and "--api-key" in unauthorized.message
        too_big = adapter.classify(413, {"content-type": "text/plain"},
                                   b"Failed to buffer the request body: length limit exceeded")
        assert type(too_big) is errors.BadRequestError and "payload limit" in too_big.message
        assert "--payload-limit" in too_big.hint
        assert isinstance(adapter.classify(404, {}, b""), errors.NotFoundError)
        assert isinstance(adapter.classify(502, {}, b"<html>Bad gateway</html>"), errors.ServerError)


# -- TEI --------------------------------------------------------------------------------------
def test_tei_learns_its_batch_size_and_splits_by_it():
    tei = get_adapter("tei")
    info = tei.learn(TEI_INFO)
    assert info == TEIInfo("BAAI/bge-large-en-v1.5", 1024, 512)
    assert tei.batch_limits(info) == BatchLimits(items=1024, bytes=2_000_000)
    assert tei.batch_limits(None) == BatchLimits(items=32, bytes=2_000_000)  # TEI's defaults
    assert tei.learn({"model_id": "x"}).max_client_batch_size == 32
    assert tei.parse_models(TEI_INFO) == ["BAAI/bge-large-en-v1.5"]


def test_tei_request_bodies():
    tei = get_adapter("tei")
    embed = Request("embed", "tei", "tei", inputs=["a", "b"], params={"truncate": True}, payload={"normalize": False})
    call = tei.build(embed, "http://h:8081", "hf_x")
    assert call.url == "http://h:8081/embed" and call.json == {"inputs": ["a", "b"], "normalize": False,
                                                                 "truncate": True}
    rerank = Request("rerank", "tei", "tei", inputs=["a", "b"],
                     payload={"query": "q", "return_text": True, "raw_scores": False})
    assert tei.build(rerank, "http://h", None).json == {"query": "q", "texts": ["a", "b"], "return_text": True,
                                                        "raw_scores": False}
    sparse = tei.build(Request("embed_sparse", "tei", "tei", inputs=["a"]), "http://h", None)
    assert sparse.url.endswith("/embed_sparse") and sparse.json == {"inputs": ["a"]}
    with pytest.raises(errors.BadRequestError, match="does not support 'chat'"):
        tei.build(Request("chat", "tei", "tei", [{"role": "user", "content": "x"}]), "http://h", None)


def test_tei_replies_and_usage():
    tei = get_adapter("tei")
    embed = Request("embed", "tei", "tei", inputs=["a", "b"])
    assert tei.parse(embed, [[0.6, 0.8], [1.0, 0.0]]).vectors == [[0.6, 0.8], [1.0, 0.0]]
    rerank = Request("rerank", "tei", "tei", inputs=["x", "y"])
    rows = tei.parse(rerank, [{"index": 1, "score": 0.98, "text": "y"}, {"index": 0, "score": 0.02}]).data
    assert rows == [(1, 0.98, "y"), (0, 0.02, None)]
    sparse = Request("embed_sparse", "tei", "tei", inputs=["x"])
    assert tei.parse(sparse, [[{"index": 2009, "value": 1.25}, {"index": 7, "value": 0.5}]]).data == [
        {2009: 1.25, 7: 0.5}]
    assert tei.header_usage({"x-compute-tokens": "12", "x-compute-characters": "40"}) == Usage(12, 0)
    with pytest.raises(errors.ProtocolError, match="one entry per input"):
        tei.parse(embed, [[0.1]])
    with pytest.raises(errors.ProtocolError, match="wrong shape"):
        tei.parse(rerank, [{"idx": 0}, {"idx": 1}])


@pytest.mark.parametrize(("status", "payload", "cls", "hint"), [
    (429, {"error": "Model is overloaded", "error_type": "Overloaded"}, errors.OverloadedError, None),
    (413, {"error": "batch size 1025 > maximum allowed batch size 1024", "error_type": "Validation"},
     errors.BadRequestError, None),
    (413, {"error": "Input validation error: `inputs` cannot be empty", "error_type": "Validation"},
     errors.BadRequestError, None),
    (413, {"error": "Input validation error: `inputs` must have less than 1024 tokens. Given: 19505",
           "error_type": "Validation"}, errors.ContextLengthError, "truncate"),
    (422, {"error": "Tokenization error: bad input", "error_type": "Tokenizer"}, errors.BadRequestError, None),
    (424, {"error": "Inference failed", "error_type": "Backend"}, errors.ServerError, None),
    (424, {"error": "model is not a re-ranker model", "error_type": "Backend"}, errors.BadRequestError, "base_url"),
    (424, {"error": "Model is not an embedding model", "error_type": "Backend"}, errors.BadRequestError, "base_url"),
    (503, {"error": "unhealthy", "error_type": "Unhealthy"}, errors.OverloadedError, None),
])
def test_tei_error_bodies(status, payload, cls, hint):
    error = get_adapter("tei").classify(status, {}, body(payload))
    assert type(error) is cls and error.status == status and error.message == payload["error"]
    if hint:
        assert hint in error.hint


# -- splitting and joining --------------------------------------------------------------------
def test_split_by_count_and_by_bytes():
    texts = [f"t{i}" for i in range(10)]
    assert split(texts, BatchLimits(items=4)) == [(0, 4), (4, 8), (8, 10)]
    assert split(texts, BatchLimits()) == [(0, 10)]
    assert split(["a" * 10] * 5, BatchLimits(bytes=30)) == [(0, 2), (2, 4), (4, 5)]  # 13 bytes a text, JSON-quoted
    assert split(["é" * 10, "a"], BatchLimits(bytes=62)) == [(0, 1), (1, 2)]  # \\u00e9: 6 bytes a character
    assert split(["x" * 100, "y"], BatchLimits(bytes=50)) == [(0, 1), (1, 2)]  # too big alone: still its own part
    assert split(["a"] * 3, BatchLimits(items=2, bytes=1000), overhead=990) == [(0, 2), (2, 3)]


def test_joins_keep_input_order():
    response = Response("", "tei", "tei", "r1", Usage(3, 0))
    vectors = EmbeddingsJoin(normalize=True).whole(
        [(0, EmbeddingsJoin(True).part(Reply(vectors=[[3.0, 4.0]]))), (1, EmbeddingsJoin(True).part(
            Reply(vectors=[[0.0, 2.0], [1.0, 0.0]])))], response)
    assert np.allclose(vectors, [[0.6, 0.8], [0.0, 1.0], [1.0, 0.0]]) and vectors.response is response
    ranking = RankingJoin().whole([(0, [(1, 0.5, None), (0, 0.1, None)]), (2, [(0, 0.9, None)])], response)
    assert ranking.indices == [2, 1, 0] and ranking[0].score == 0.9
    assert SparseJoin().whole([(0, [{1: 0.5}]), (1, [{2: 0.3}])], response) == [{1: 0.5}, {2: 0.3}]


def test_merge_sums_usage_and_cost():
    parts = [
        Response("", "tei", "tei", "a", Usage(10, 0), latency_s=0.1, attempts=1, cost_usd=0.001),
        Response("", "tei", "tei", "b", Usage(5, 0, estimated=True), latency_s=0.2, attempts=3, cost_usd=0.002),
    ]
    merged = merge(parts, "batch-1", 0.25)
    assert merged.request_id == "batch-1" and merged.usage == Usage(15, 0, estimated=True)
    assert merged.attempts == 3 and merged.cost_usd == pytest.approx(0.003) and merged.latency_s == 0.25
    parts[1].cost_usd = None
    assert merge(parts, "b", 0).cost_usd is None


# -- settings ---------------------------------------------------------------------------------
def test_base_urls_keys_and_defaults():
    def resolve(environ, config=None):
        return load_settings(config, environ=environ, dotenv={}, file_config={}).providers

    defaults = resolve({})
    assert (defaults["tgi"].base_url, defaults["tei"].base_url) == ("http://localhost:8080", "http://localhost:8081")
    assert defaults["tgi"].keys == [] and not get_adapter("tei").needs_key  # no key: none is sent
    env = {"HF_TGI_BASE_URL": "http://gpu:9000/", "TEI_BASE_URL": "http://gpu:9001", "HF_TOKEN": "hf_abcdefgh1234"}
    providers = resolve(env)
    assert (providers["tgi"].base_url, providers["tei"].base_url) == ("http://gpu:9000", "http://gpu:9001")
    assert [k.source for k in providers["tei"].keys] == ["env:HF_TOKEN"]
    assert resolve({**env, "TGI_BASE_URL": "http://first:1"})["tgi"].base_url == "http://first:1"
    configured = resolve(env, {"providers": {"hf_tei": {"base_url": "http://reranker:8080"}}})
    assert configured["tei"].base_url == "http://reranker:8080"  # config wins; the alias works there too
