"""OVMS through the engine, over real HTTP to the simulator: tensors, metadata, coalescing, /v3."""

from __future__ import annotations

import asyncio

import numpy as np
import openai
import pytest
from sim_helpers import http

import accel_nb
from accel_nb import errors
from accel_nb.tensors import DATATYPES


def routes(sim, method, path):
    return sim.stats()["routes"].get(f"{method} /ovms{path}", 0)


def infers(sim):
    return routes(sim, "POST", "/v2/models/{model}/infer")


def rows(n, width=4, dtype=np.float32):
    """``n`` one-row inputs whose rows differ, so a mixed-up split shows."""
    return [np.arange(width, dtype=dtype)[None] + 10 * i for i in range(n)]


async def together(client, target, name, arrays, **options):
    return await asyncio.gather(*[client.ainfer(target, {name: a}, **options) for a in arrays], return_exceptions=True)


# -- tensors -------------------------------------------------------------------------------------
def test_infer_returns_numpy_arrays_and_its_response(client):
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    result = client.infer("ovms:affine", {"x": x})
    assert list(result) == ["y"] and result["y"].dtype == np.float32 and result["y"].shape == (2, 4)
    np.testing.assert_array_equal(result["y"], 2 * x + 1)
    response = result.response
    assert response.provider == "ovms" and response.model == "affine" and response.attempts == 1
    assert response.latency_s > 0 and len(response.request_id) == 36 and response.cost_usd is None
    assert response.raw["outputs"] == [{"name": "y", "shape": [2, 4], "datatype": "FP32"}]
    assert "InferResult({y: float32[2, 4]})" == repr(result)


@pytest.mark.parametrize("datatype", list(DATATYPES))
def test_every_v2_datatype_round_trips(client, datatype):
    if datatype == "BYTES":
        x = np.array([[b"ab", b"c"], [b"", "d\u00e9".encode()]], dtype=object)
    elif datatype == "BOOL":
        x = np.array([[True, False, True]])
    else:
        info = np.finfo if datatype.startswith("FP") else np.iinfo
        dtype = DATATYPES[datatype]
        x = np.array([[info(dtype).min, 0, 1], [info(dtype).max, 2, 3]], dtype=dtype)
    y = client.infer(f"ovms:identity-{datatype.lower()}", {"x": x})["y"]
    assert y.dtype == DATATYPES[datatype] and y.shape == x.shape
    assert y.tolist() == x.tolist()


def test_several_inputs_and_outputs_and_picking_outputs(client):
    a, b = np.array([[1, 2, 3], [4, 5, 6]], np.int32), np.array([[7, 8, 9], [1, 1, 1]], np.int32)
    both = client.infer("ovms:arith", {"a": a, "b": b})
    assert both["sum"].dtype == np.int32 and both["product"].dtype == np.int64
    np.testing.assert_array_equal(both["product"], a.astype(np.int64) * b)
    only = client.infer("ovms:arith", {"a": a, "b": b}, outputs=["sum"])
    assert list(only) == ["sum"]
    labels = client.infer("ovms:argmax", {"scores": np.eye(10, dtype=np.float32)[[3, 7]]})
    assert labels["label"].tolist() == [3, 7] and labels["score"].shape == (2,)


def test_lists_are_converted_to_the_models_dtype_and_versions_are_pinned(client):
    result = client.infer("ovms:affine", {"x": [[0, 1, 2, 3]]}, version=1)
    assert result["y"].dtype == np.float32 and result["y"].tolist() == [[1, 3, 5, 7]]
    with pytest.raises(errors.NotFoundError, match="version"):
        client.infer("ovms:affine", {"x": [[0, 1, 2, 3]]}, version=2)


def test_health_ready_metadata_and_models(client, sim):
    assert client.ovms.health() is True
    assert client.ovms.ready("affine") is True
    with pytest.raises(errors.NotFoundError):
        client.ovms.ready("nope")
    meta = client.ovms.metadata("arith")
    assert [t["name"] for t in meta["inputs"]] == ["a", "b"] and meta["outputs"][1]["datatype"] == "INT64"
    assert {"affine", "arith", "legacy"} <= set(client.models("ovms"))
    sim.script("ovms", ["503"])
    assert client.ovms.health() is False
    dead = accel_nb.Client({"providers": {"ovms": {"base_url": "http://127.0.0.1:9"}}})
    assert dead.ovms.health() is False
    dead.close()


def test_legacy_predict_is_the_fallback_and_is_remembered(client, sim):
    first = client.infer("ovms:legacy", {"x": [[1, 2, 3, 4], [0, 0, 0, 0]]})
    assert first["predictions"].tolist() == [[3, 5, 7, 9], [1, 1, 1, 1]]
    client.infer("ovms:legacy", {"x": np.ones((1, 4), np.float32)}, outputs=["y"])
    assert routes(sim, "GET", "/v2/models/{model}") == 1  # the v2 API said 404 once
    assert routes(sim, "GET", "/v1/models/{model}") == 1  # the TF-Serving API knew it
    assert routes(sim, "POST", "/v1/models/{model}:predict") == 2 and infers(sim) == 0


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("inputs,options,message", [
    ({"x": np.zeros((2, 3), np.float32)}, {}, r"input 'x' of ovms:affine has shape \(2, 3\), but the model expects "
                                               r"FP32 \(float32\) shaped \(any, 4\)"),
    ({"x": np.zeros((2, 4))}, {}, r"input 'x' of ovms:affine is float64, but the model expects FP32"),
    ({"x": np.zeros(4, np.float32)}, {}, r"has shape \(4,\)"),
    ({"z": np.zeros((1, 4), np.float32)}, {}, r"ovms:affine has no input 'z'; it takes x: FP32 shaped \(any, 4\)"),
    ({"x": np.zeros((1, 4), np.float32)}, {"outputs": ["nope"]}, r"no output 'nope'; its outputs: y"),
    ({"x": [["a", "b", "c", "d"]]}, {}, r"cannot be read as FP32"),
])
def test_wrong_tensors_are_refused_before_sending(client, sim, inputs, options, message):
    with pytest.raises(errors.BadRequestError, match=message) as caught:
        client.infer("ovms:affine", inputs, **options)
    assert caught.value.request_id and not caught.value.retryable
    assert infers(sim) == 0 and routes(sim, "GET", "/v2/models/{model}") == 1  # only the metadata was asked
    with pytest.raises(errors.BadRequestError, match="needs input 'b' too"):
        client.infer("ovms:arith", {"a": np.zeros((1, 3), np.int32)})
    row = client.logs(1)[0]
    assert row["status"] == "error" and row["kind"] == "infer" and row["attempts"] == 0


def test_unknown_model_and_bad_arguments(client, sim):
    with pytest.raises(errors.NotFoundError, match="does not serve a model 'nope'") as caught:
        client.infer("ovms:nope", {"x": [[1]]})
    assert "client.models('ovms')" in caught.value.hint and infers(sim) == 0

    async def three():  # waiting on one metadata fetch, each still gets an error of its own
        return await asyncio.gather(*[client.ainfer("ovms:ghost", {"x": [[1]]}) for _ in range(3)],
                                    return_exceptions=True)

    failures = asyncio.run(three())
    assert all(isinstance(f, errors.NotFoundError) for f in failures) and len({f.request_id for f in failures}) == 3
    assert routes(sim, "GET", "/v2/models/{model}") == 2  # nope, then ghost once for all three
    with pytest.raises(errors.BadRequestError, match="name the model"):
        client.infer("ovms", {"x": [[1]]})
    with pytest.raises(errors.BadRequestError, match="non-empty dict"):
        client.infer("ovms:affine", [[1, 2, 3, 4]])
    with pytest.raises(errors.BadRequestError, match="no infer API"):
        client.infer("openai:gpt-4o-mini", {"x": [[1]]})
    with pytest.raises(errors.BadRequestError, match="unknown option 'temprature'"):
        client.infer("ovms:affine", {"x": [[1, 2, 3, 4]]}, temprature=1)


# -- errors, retries, breaker -------------------------------------------------------------------
def warm(client):
    """Fetch the model's metadata first, so scripted faults land on the infer calls."""
    client.ovms.metadata("affine")


@pytest.mark.parametrize("fault,cls", [
    ("400", errors.BadRequestError),
    ("404", errors.NotFoundError),
    ("413", errors.BadRequestError),
])
def test_permanent_errors_reach_the_server_once(client, sim, fault, cls):
    warm(client)
    sim.script("ovms", [fault, "ok"])
    with pytest.raises(cls) as caught:
        client.infer("ovms:affine", {"x": np.zeros((1, 4), np.float32)})
    assert infers(sim) == 1 and not caught.value.retryable and caught.value.status == int(fault)


@pytest.mark.parametrize("fault,cls", [("overloaded", errors.OverloadedError), ("500", errors.ServerError),
                                       ("reset", errors.ConnectionError)])
def test_overload_and_server_errors_are_retried(make_client, sim, fault, cls):
    client = make_client(retry={"max_attempts": 2, "backoff_base_s": 0.01})
    warm(client)
    sim.script("ovms", [fault, "ok"])
    assert client.infer("ovms:affine", {"x": np.zeros((1, 4), np.float32)}).response.attempts == 2
    sim.script("ovms", [fault, fault])
    with pytest.raises(cls):
        client.infer("ovms:affine", {"x": np.zeros((1, 4), np.float32)})
    assert infers(sim) == 4


def test_overload_is_503_in_the_ovms_error_shape(sim):
    url = sim.url + "/ovms/v2/models/affine/infer"
    tensor = {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
    reply = http.post(url, headers={"x-sim-fault": "overloaded"}, json={"inputs": [tensor]})
    assert reply.status_code == 503 and reply.json() == {"error": "Service Unavailable"}
    bad = http.post(url, json={"inputs": [{**tensor, "shape": [1, 3], "data": [1, 2, 3]}]})
    assert bad.status_code == 400
    assert bad.json() == {"error": "Invalid input shape - Expected shape: (-1,4); Actual: (1,3); input name: x"}


def test_malformed_and_truncated_replies_are_protocol_errors(make_client, sim):
    client = make_client(retry={"max_attempts": 1})
    warm(client)
    for fault in ("malformed", "truncated"):
        sim.script("ovms", [fault])
        with pytest.raises(errors.ProtocolError):
            client.infer("ovms:affine", {"x": np.zeros((1, 4), np.float32)})


def test_circuit_breaker(make_client, sim):
    client = make_client(retry={"max_attempts": 1}, breaker={"failures": 2, "cooldown_s": 30})
    warm(client)
    sim.script("ovms", ["500", "500"])
    for _ in range(2):
        with pytest.raises(errors.ServerError):
            client.infer("ovms:affine", {"x": np.zeros((1, 4), np.float32)})
    with pytest.raises(errors.CircuitOpenError):
        client.infer("ovms:affine", {"x": np.zeros((1, 4), np.float32)})
    assert infers(sim) == 2


# -- coalescing ---------------------------------------------------------------------------------
def test_concurrent_small_calls_are_coalesced_and_split_back(make_client, sim):
    client = make_client(providers={"ovms": {"batch": {"max_size": 8, "delay_ms": 250}}})
    warm(client)
    events = []
    client.engine.tracker.subscribe(lambda e: events.append((e.kind, e.request_id, e.data)))
    xs = rows(20)
    results = asyncio.run(together(client, "ovms:affine", "x", xs))
    for x, result in zip(xs, results, strict=True):
        np.testing.assert_array_equal(result["y"], 2 * x + 1)  # each caller got its own row back
    assert infers(sim) == 3  # 8 + 8 + 4 rows
    ids = {r.response.request_id for r in results}
    assert len(ids) == 20
    for rid in ids:
        assert [kind for kind, request, _ in events if request == rid] == ["queued", "started", "done"]
    assert {data.get("batch_size") for kind, _, data in events if kind == "started"} == {8, 4}
    ledger = [row for row in client.logs(50) if row["kind"] == "infer"]
    assert {row["id"] for row in ledger} == ids and all(row["status"] == "ok" for row in ledger)
    assert all(row["latency_s"] > 0 and row["queue_s"] is not None for row in ledger)
    assert client.stats()["providers"]["ovms"]["requests"] == 20  # the metadata check is not a request

def test_no_coalescing_when_off_for_fixed_batches_or_different_layouts(make_client, sim):
    off = make_client(providers={"ovms": {"batch": {"delay_ms": 0}}})
    asyncio.run(together(off, "ovms:affine", "x", rows(6)))
    assert infers(sim) == 6
    on = make_client(providers={"ovms": {"batch": {"delay_ms": 250}}})
    results = asyncio.run(together(on, "ovms:affine-b1", "x", rows(3)))  # a fixed batch of one
    assert all(r["y"].shape == (1, 4) for r in results) and infers(sim) == 9
    widths = [np.ones((1, 2), np.float32), np.ones((1, 3), np.float32), np.ones((1, 2), np.float32)]
    results = asyncio.run(together(on, "ovms:identity-fp32", "x", widths))
    assert [r["y"].shape for r in results] == [(1, 2), (1, 3), (1, 2)] and infers(sim) == 11


def test_a_failed_batch_fails_every_member_and_a_retry_serves_them_all(make_client, sim):
    client = make_client(retry={"max_attempts": 2, "backoff_base_s": 0.01},
                         providers={"ovms": {"batch": {"delay_ms": 250}}})
    warm(client)
    sim.script("ovms", ["overloaded", "ok"])
    results = asyncio.run(together(client, "ovms:affine", "x", rows(5)))
    assert all(r.response.attempts == 2 for r in results) and infers(sim) == 2
    assert client.stats()["providers"]["ovms"]["retries"] == 5  # one retry event per member
    sim.script("ovms", ["500", "500"])
    failures = asyncio.run(together(client, "ovms:affine", "x", rows(5)))
    assert all(isinstance(f, errors.ServerError) for f in failures)
    assert len({f.request_id for f in failures}) == 5 and infers(sim) == 4


def test_a_bad_member_fails_alone_before_batching(make_client, sim):
    client = make_client(providers={"ovms": {"batch": {"delay_ms": 250}}})
    warm(client)
    arrays = [*rows(4), np.zeros((1, 5), np.float32)]
    results = asyncio.run(together(client, "ovms:affine", "x", arrays))
    assert isinstance(results[-1], errors.BadRequestError) and "shape (1, 5)" in str(results[-1])
    assert all(isinstance(r, dict) for r in results[:-1]) and infers(sim) == 1


def test_a_member_that_times_out_while_held_leaves_the_others(make_client, sim):
    client = make_client(providers={"ovms": {"batch": {"delay_ms": 300}}})
    warm(client)

    async def main():
        slow = client.ainfer("ovms:affine", {"x": rows(1)[0]}, timeout=0.05)
        rest = [client.ainfer("ovms:affine", {"x": x}) for x in rows(3)]
        return await asyncio.gather(slow, *rest, return_exceptions=True)

    results = asyncio.run(main())
    assert isinstance(results[0], errors.TimeoutError)
    assert all(isinstance(r, dict) for r in results[1:]) and infers(sim) == 1


# -- the OpenAI-compatible /v3 ---------------------------------------------------------------------
def test_chat_stream_and_embeddings_through_v3(client, sim):
    response = client.chat("ovms", "Explain backpressure in two sentences.", max_tokens=40)
    assert response.text and response.usage.output_tokens > 0 and not response.usage.estimated
    stream = client.stream("ovms:OpenVINO/Qwen3-8B-int4-ov", "Explain backpressure in two sentences.", max_tokens=40)
    assert "".join(chunk.text for chunk in stream) == response.text
    vectors = client.embed("ovms", ["a cat", "a dog"])
    assert vectors.shape == (2, 768)
    assert routes(sim, "POST", "/v3/chat/completions") == 2 and routes(sim, "POST", "/v3/embeddings") == 1


def test_openai_sdk_takes_the_v3_api(sim):
    sdk = openai.OpenAI(base_url=sim.url + "/ovms/v3", api_key="unused", max_retries=0)
    messages = [{"role": "user", "content": "Explain backpressure in two sentences."}]
    reply = sdk.chat.completions.create(model="OpenVINO/Qwen3-8B-int4-ov", messages=messages, max_tokens=30)
    assert reply.choices[0].message.content and reply.usage.completion_tokens > 0
    chunks = list(sdk.chat.completions.create(model="OpenVINO/Qwen3-8B-int4-ov", messages=messages, max_tokens=30,
                                              stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reply.choices[0].message.content and chunks[-1].usage.completion_tokens > 0
    embedded = sdk.embeddings.create(model="OpenVINO/bge-base-en-v1.5-fp16-ov", input=["a", "b"])
    assert len(embedded.data) == 2 and len(embedded.data[0].embedding) == 768
    assert [m.id for m in sdk.models.list()] == ["OpenVINO/Qwen3-8B-int4-ov", "OpenVINO/bge-base-en-v1.5-fp16-ov"]
    with pytest.raises(openai.InternalServerError) as caught:
        sdk.chat.completions.create(model="m", messages=messages, extra_headers={"x-sim-fault": "overloaded"})
    assert caught.value.status_code == 503 and caught.value.body == "Service Unavailable"  # the SDK unwraps error
