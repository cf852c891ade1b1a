"""The simulated Ollama, LLVM, vLLM and OPEA servers on the wire, read with plain httpx."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from sim_helpers import http, sse_frames

from accel_nb.sim import serve


def test_ollama_streams_ndjson_and_deletes_with_an_empty_200(sim):
    base = sim.base_urls["ollama"]
    with http.stream(
        "POST", base + "/api/chat", json={"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}]}
    ) as r:
        assert r.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in r.iter_lines() if line]
    *tokens, last = lines
    assert not any(line["done"] for line in tokens) and last["done"] and last["eval_count"] == len(tokens)
    deleted = http.request("DELETE", base + "/api/delete", json={"model": "llama3.2"})
    assert deleted.status_code == 200 and deleted.content == b""
    assert http.post(base + "/api/show", json={"model": "llama3.2"}).json() == {"error": "model 'llama3.2' not found"}


def test_pull_progress_is_paced_at_realistic_latency():
    with serve(latency="realistic") as sim:
        start = time.monotonic()
        lines = http.post(sim.base_urls["ollama"] + "/api/pull", json={"model": "all-minilm"}).text.splitlines()
        assert time.monotonic() - start >= 0.05 * (len(lines) - 1) and json.loads(lines[-1]) == {"status": "success"}


def test_llvm_echoes_the_request_id_and_answers_errors_as_error(sim):
    base = sim.base_urls["llvm"]
    reply = http.post(base + "/models/gpt2/infer", json={"input": "Hi"}, headers={"X-Request-ID": "trace-1"})
    assert reply.headers["x-request-id"] == "trace-1" and reply.json()["status"] == "success"
    missing = http.post(base + "/models/yolo/infer", json={"input": [1]})
    assert missing.status_code == 404 and missing.json() == {"error": "Model 'yolo' not found"}
    busy = http.get(base + "/status", headers={"x-sim-fault": "overloaded"})
    assert busy.status_code == 503 and busy.json() == {"error": "Server overloaded, try again later"}


def test_vllm_errors_carry_the_status_as_code(sim):
    base = sim.base_urls["vllm"]
    busy = http.post(
        base + "/chat/completions",
        headers={"x-sim-fault": "overloaded"},
        json={"model": "meta-llama/Llama-3.2-1B-Instruct", "messages": [{"role": "user", "content": "Hi"}]},
    )
    assert busy.status_code == 503 and busy.json()["error"]["code"] == 503
    assert (
        busy.json()["error"]["type"] == "ServiceUnavailableError" and "x-ratelimit-limit-requests" not in busy.headers
    )


def test_opea_frames_are_bytes_reprs_and_errors_are_fastapis(sim):
    base = sim.base_urls["opea"]
    with http.stream("POST", base + "/v1/chatqna", json={"messages": "What is OPEA?", "max_tokens": 5}) as r:
        frames = sse_frames(r.iter_lines())
    assert [data for _, data in frames][-1] == "[DONE]" and all(d.startswith("b'") for _, d in frames[:-1])
    assert len(frames) == 6
    received: list[str] = []
    fault = {"x-sim-fault": "stream_error=2"}
    with pytest.raises(httpx.RemoteProtocolError):  # a failure mid-stream just closes the connection
        with http.stream("POST", base + "/v1/chatqna", json={"messages": "Hi"}, headers=fault) as cut:
            received.extend(line for line in cut.iter_lines() if line)
    assert len(received) == 2 and "data: [DONE]" not in received
    busy = http.post(
        base + "/reranking/v1/reranking",
        json={"input": "q", "retrieved_docs": []},
        headers={"x-sim-fault": "overloaded"},
    )
    assert busy.status_code == 503 and busy.json() == {"detail": "Service Unavailable"}
    assert http.get(base + "/retrieval/v1/health_check").json()["Service Description"]
