"""The Ollama, LLVM, vLLM and OPEA adapters as pure transforms, on recorded-shape payloads."""

from __future__ import annotations

import json

import pytest

from accel_nb import errors
from accel_nb.providers import get_adapter
from accel_nb.providers.admin import AdminCall
from accel_nb.providers.ollama import ollama_host
from accel_nb.providers.opea import bytes_literal
from accel_nb.types import Request

OLLAMA, LLVM, VLLM, OPEA = (get_adapter(p) for p in ("ollama", "llvm", "vllm", "opea"))
HI = [{"role": "user", "content": "Hi"}]


def request(kind: str, provider: str, model: str = "m", **kw) -> Request:
    if kind in ("chat", "generate"):
        kw.setdefault("messages", HI)
    return Request(kind, provider, model, **kw)


# -- Ollama ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value,url",
    [
        ("1.2.3.4", "http://1.2.3.4:11434"),
        (":56789", "http://127.0.0.1:56789"),
        ("example.com:56789/", "http://example.com:56789"),
        ("http://example.com", "http://example.com:80"),
        ("https://example.com", "https://example.com:443"),
        ("example.com:56789/path/", "http://example.com:56789/path"),
        ("[0001:002:003:0004::1]:56789", "http://[0001:002:003:0004::1]:56789"),
        ("http://localhost:11434", "http://localhost:11434"),
    ],
)
def test_ollama_host_reads_like_the_official_client(value, url):
    assert ollama_host(value) == url


def test_ollama_request_bodies():
    call = OLLAMA.build(
        request(
            "chat",
            "ollama",
            "llama3.2",
            system="Be brief",
            stream=True,
            params={
                "max_tokens": 5,
                "temperature": 0.2,
                "stop": ["\n"],
                "num_ctx": 4096,
                "keep_alive": "5m",
                "format": "json",
            },
        ),
        "http://h:11434",
        None,
    )
    assert (call.method, call.url) == ("POST", "http://h:11434/api/chat") and "authorization" not in call.headers
    assert call.json == {
        "model": "llama3.2",
        "messages": [{"role": "system", "content": "Be brief"}, *HI],
        "stream": True,
        "keep_alive": "5m",
        "format": "json",
        "options": {"num_predict": 5, "temperature": 0.2, "stop": ["\n"], "num_ctx": 4096},
    }
    call = OLLAMA.build(request("generate", "ollama", system="S"), "http://h", "key")
    assert call.url == "http://h/api/generate" and call.json == {
        "model": "m",
        "prompt": "Hi",
        "system": "S",
        "stream": False,
    }
    assert call.headers["authorization"] == "Bearer key"  # OLLAMA_API_KEY, as the official client sends it
    call = OLLAMA.build(request("embed", "ollama", inputs=["a", "b"], params={"dimensions": 64}), "http://h", None)
    assert call.url == "http://h/api/embed" and call.json == {"model": "m", "input": ["a", "b"], "dimensions": 64}


def test_ollama_management_calls():
    pull = OLLAMA.build(
        request("admin", "ollama", "llama3.2:1b", stream=True, payload=AdminCall("pull", {"model": "llama3.2:1b"})),
        "http://h",
        None,
    )
    assert (pull.method, pull.url, pull.json) == ("POST", "http://h/api/pull", {"model": "llama3.2:1b", "stream": True})
    delete = OLLAMA.build(
        request("admin", "ollama", "x", payload=AdminCall("delete", {"model": "x"})), "http://h", None
    )
    assert (delete.method, delete.url, delete.empty_ok) == ("DELETE", "http://h/api/delete", True)
    tags = request("admin", "ollama", "", payload=AdminCall("list"))
    assert OLLAMA.build(tags, "http://h", None).url == "http://h/api/tags"
    assert OLLAMA.parse(tags, {"models": [{"name": "a:latest"}]}).data == [{"name": "a:latest"}]
    with pytest.raises(errors.ProtocolError, match="no 'models'"):
        OLLAMA.parse(tags, {"tags": []})
    with pytest.raises(errors.BadRequestError, match="no management call 'copy'"):
        OLLAMA.build(request("admin", "ollama", payload=AdminCall("copy")), "http://h", None)


FINAL = {
    "model": "llama3.2",
    "created_at": "2025-01-01T00:00:00Z",
    "message": {"role": "assistant", "content": ""},
    "done_reason": "stop",
    "done": True,
    "total_duration": 2_000_000_000,
    "load_duration": 100_000_000,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 200_000_000,
    "eval_count": 250,
    "eval_duration": 1_600_000_000,
}


def test_ollama_replies_frames_and_timings():
    chat = request("chat", "ollama")
    reply = OLLAMA.parse(chat, {**FINAL, "message": {"role": "assistant", "content": "Hello!"}})
    assert (reply.text, reply.usage.input_tokens, reply.usage.output_tokens) == ("Hello!", 26, 250)
    assert OLLAMA.timings(FINAL) == {
        "total_s": 2.0,
        "load_s": 0.1,
        "prompt_eval_s": 0.2,
        "eval_s": 1.6,
        "tokens_per_s": pytest.approx(156.25),
    }
    first = OLLAMA.parse_frame(
        chat, None, json.dumps({**FINAL, "message": {"role": "assistant", "content": "He"}, "done": False})
    )
    assert (first.text, first.finish_reason, first.output_tokens) == ("He", None, None)
    last = OLLAMA.parse_frame(chat, None, json.dumps(FINAL))
    assert (last.text, last.finish_reason, last.input_tokens, last.output_tokens) == ("", "stop", 26, 250)
    generate = request("generate", "ollama")
    assert OLLAMA.parse_frame(generate, None, '{"model":"m","response":"Once","done":false}').text == "Once"
    assert OLLAMA.parse(generate, {"response": "Once upon", "done": True}).text == "Once upon"
    embed = OLLAMA.parse(
        request("embed", "ollama", inputs=["a"]), {"model": "m", "embeddings": [[0.1, 0.2]], "prompt_eval_count": 1}
    )
    assert embed.vectors == [[0.1, 0.2]] and embed.usage.input_tokens == 1
    with pytest.raises(errors.ProtocolError, match="no message"):
        OLLAMA.parse(chat, {"done": True})
    with pytest.raises(errors.ProtocolError, match="not JSON"):
        OLLAMA.parse_frame(chat, None, "data: {}")


def test_ollama_errors_in_the_stream_and_in_replies():
    chat = request("chat", "ollama")
    broken = OLLAMA.parse_frame(chat, None, '{"error":"an error was encountered while running the model: EOF"}')
    assert isinstance(broken.error, errors.ServerError) and broken.error.retryable
    pull = request("admin", "ollama", "nope", payload=AdminCall("pull"))
    missing = OLLAMA.parse_frame(pull, None, '{"error":"pull model manifest: file does not exist"}')
    assert isinstance(missing.error, errors.NotFoundError) and "ollama.com/library" in missing.error.hint
    progress = OLLAMA.parse_frame(
        pull, None, '{"status":"pulling 6a0746a1ec1a","digest":"sha256:6a07","total":9,"completed":3}'
    )
    assert progress.progress["completed"] == 3 and not progress.text and progress.finish_reason is None
    assert OLLAMA.parse_frame(pull, None, '{"status":"success"}').finish_reason == "success"
    not_pulled = OLLAMA.classify(404, {}, b'{"error":"model \\"qwen3\\" not found, try pulling it first"}')
    assert (
        isinstance(not_pulled, errors.NotFoundError) and not_pulled.hint == "pull it first: client.ollama.pull('qwen3')"
    )
    busy = OLLAMA.classify(503, {}, b'{"error":"server busy, please try again.  maximum pending requests exceeded"}')
    assert isinstance(busy, errors.OverloadedError) and busy.retryable
    assert isinstance(OLLAMA.classify(400, {}, b'{"error":"invalid options"}'), errors.BadRequestError)
    assert isinstance(
        OLLAMA.classify(429, {}, b'{"error":"you have reached your weekly usage limit"}'), errors.QuotaExceededError
    )


# -- LLVM -------------------------------------------------------------------------------------
def test_llvm_requests_and_replies():
    one = request("infer", "llvm", "bert-base", payload="text", params={"precision": "fp16"})
    call = LLVM.build(one, "http://h:8090", "k")
    assert (call.url, call.json) == (
        "http://h:8090/models/bert-base/infer",
        {"input": "text", "parameters": {"precision": "fp16"}},
    )
    assert call.headers["authorization"] == "Bearer k" and LLVM.trace_header == "X-Request-ID"
    assert LLVM.parse(one, {"output": [1, 2]}).data == [1, 2]
    assert LLVM.parse(one, {"result": "text out", "status": "success"}).text == "text out"
    with pytest.raises(errors.ProtocolError, match="neither output nor result"):
        LLVM.parse(one, {"status": "success"})
    many = request("infer_batch", "llvm", "org/model v2", payload=["a", "b"])
    assert LLVM.build(many, "http://h", None).url == "http://h/models/org%2Fmodel%20v2/batch_infer"
    assert LLVM.parse(many, {"results": ["x", "y"]}).data == ["x", "y"]
    with pytest.raises(errors.ProtocolError, match="results list of 2"):
        LLVM.parse(many, {"results": ["x"]})
    optimize = request("admin", "llvm", "gpt2", payload=AdminCall("optimize", {"optimization_type": "speed"}))
    assert LLVM.build(optimize, "http://h", None).url == "http://h/models/gpt2/optimize"
    assert LLVM.parse_models({"models": [{"id": "resnet50"}, "gpt2"]}) == ["resnet50", "gpt2"]
    not_found = LLVM.classify(404, {}, b'{"error": "Model \'yolo\' not found"}')
    assert isinstance(not_found, errors.NotFoundError) and "yolo" in not_found.message


# -- vLLM -------------------------------------------------------------------------------------
def test_vllm_completions_and_errors():
    call = VLLM.build(
        request("generate", "vllm", "llama", system="S", stream=True, params={"max_tokens": 9}),
        "http://h:8000/v1",
        None,
    )
    assert call.url == "http://h:8000/v1/completions" and "authorization" not in call.headers
    assert call.json == {
        "model": "llama",
        "prompt": "S\n\nHi",
        "max_tokens": 9,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    generate = request("generate", "vllm")
    reply = VLLM.parse(
        generate,
        {
            "choices": [{"index": 0, "text": "Once", "finish_reason": "length"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        },
    )
    assert (reply.text, reply.finish_reason, reply.usage.output_tokens) == ("Once", "length", 1)
    frame = VLLM.parse_frame(generate, None, '{"choices":[{"index":0,"text":" upon","finish_reason":null}]}')
    assert frame.text == " upon"
    not_found = VLLM.classify(
        404,
        {},
        b'{"error":{"message":"The model `x` does not exist.","type":"NotFoundError","param":"model","code":404}}',
    )
    assert isinstance(not_found, errors.NotFoundError)
    assert isinstance(VLLM.classify(401, {}, b'{"error":"Unauthorized"}'), errors.AuthenticationError)
    with pytest.raises(errors.BadRequestError, match="does not support 'embed'"):
        VLLM.build(request("embed", "vllm", inputs=["a"]), "http://h", None)


# -- OPEA -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data,text",
    [
        ("b' world'", " world"),
        ('b"it\'s"', "it's"),
        ("b'caf\\xc3\\xa9'", "café"),
        ("b'\\n'", "\n"),
        ("b''", ""),
        ("__import__('os').system('echo pwned')", None),
        ("b'a' + b'b'", None),
        ("b'x'.decode()", None),
        ("'not bytes'", None),
        ("b'unterminated", None),
        ("b'a'b'", None),
        ("b'café'", None),  # a bytes literal holds ASCII only
        ("[DONE]", None),
    ],
)
def test_bytes_literal_reads_literals_and_never_code(data, text):
    assert bytes_literal(data) == text


def test_opea_chatqna_frames():
    chat = request("chat", "opea", "chatqna", stream=True)
    assert OPEA.parse_frame(chat, None, "b' world'").text == " world"
    assert OPEA.parse_frame(chat, None, "[DONE]").finish_reason == "stop"
    passthrough = OPEA.parse_frame(chat, None, '{"choices":[{"index":0,"delta":{"content":"Hi"}}]}')
    assert passthrough.text == "Hi"
    with pytest.raises(errors.ProtocolError, match="neither b'…' nor"):
        OPEA.parse_frame(chat, None, "__import__('os').system('echo pwned')")


def test_opea_routes_each_request_to_its_service():
    megaservice = request("chat", "opea", "chatqna", params={"k": 2, "max_tokens": 50})
    assert OPEA.service(megaservice) is None
    call = OPEA.build(megaservice, "http://h:8888", None)
    assert call.url == "http://h:8888/v1/chatqna"
    assert call.json == {"messages": "Hi", "stream": False, "k": 2, "max_tokens": 50}
    with_system = OPEA.build(request("chat", "opea", "chatqna", system="S"), "http://h", None).json
    assert with_system["messages"] == [{"role": "system", "content": "S"}, *HI]
    llm = request("chat", "opea", "llm")
    assert OPEA.service(llm) == "llm" and "model" not in OPEA.build(llm, "http://h:9000", None).json
    named = OPEA.build(request("chat", "opea", "llm/Intel/neural-chat-7b-v3-3"), "http://h:9000", None)
    assert named.url == "http://h:9000/v1/chat/completions" and named.json["model"] == "Intel/neural-chat-7b-v3-3"
    embed = request("embed", "opea", "bge", inputs=["a"])
    assert OPEA.service(embed) == "embedding" and OPEA.build(embed, "http://h:6000", None).url == (
        "http://h:6000/v1/embeddings"
    )
    retrieve = request("retrieve", "opea", payload={"input": "q", "embedding": [0.1]}, params={"k": 2})
    assert OPEA.service(retrieve) == "retrieval"
    assert OPEA.build(retrieve, "http://h:7000", None).json == {"input": "q", "embedding": [0.1], "k": 2}


def test_opea_replies():
    reply = OPEA.parse(
        request("chat", "opea", "chatqna"),
        {
            "id": "chatcmpl-x",
            "object": "chat.completion",
            "model": "chatqna",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Answer"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "total_tokens": 0, "completion_tokens": 0},
        },
    )
    assert reply.text == "Answer" and reply.usage is None  # zeros mean "not reported": the engine estimates
    rerank = request("rerank", "opea", inputs=["a", "b", "a"], payload={"query": "q", "return_text": True})
    ranked = OPEA.parse(
        rerank,
        {"reranked_docs": [{"text": "a", "score": 0.9}, {"text": "a", "score": 0.8}, {"text": "b", "score": 0.1}]},
    ).data
    assert ranked == [(0, 0.9, "a"), (2, 0.8, "a"), (1, 0.1, "b")]
    docs = OPEA.parse(request("retrieve", "opea", payload={}), {"retrieved_docs": [{"text": "t"}]}).data
    assert docs == [{"text": "t"}]
    with pytest.raises(errors.ProtocolError, match="no reranked_docs"):
        OPEA.parse(rerank, {"documents": []})
    invalid = OPEA.classify(
        422, {}, b'{"detail":[{"type":"missing","loc":["body","messages"],"msg":"Field required"}]}'
    )
    assert isinstance(invalid, errors.BadRequestError) and invalid.message == "body.messages: Field required"
    assert isinstance(OPEA.classify(503, {}, b'{"detail":"Service Unavailable"}'), errors.OverloadedError)
    assert isinstance(OPEA.classify(401, {}, b'{"detail":"Not authenticated"}'), errors.AuthenticationError)
