"""The OVMS and S3 adapters and the tensor codec as pure functions, on recorded-shape payloads."""

from __future__ import annotations

import json

import numpy as np
import pytest

from accel_nb import errors, tensors
from accel_nb.config import load_settings
from accel_nb.providers import get_adapter
from accel_nb.providers.ovms import InferPayload, ModelInfo
from accel_nb.providers.s3 import S3Op, classify_error, split_key
from accel_nb.secret import Redactor, Secret
from accel_nb.types import Request

OVMS = get_adapter("ovms")
S3 = get_adapter("s3")

# as GET /v2/models/resnet answers
METADATA = {
    "name": "resnet",
    "versions": ["1", "2"],
    "platform": "OpenVINO",
    "inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, 3]}],
    "outputs": [{"name": "probs", "datatype": "FP32", "shape": [-1, 2]}, {"name": "label", "datatype": "INT64",
                                                                         "shape": [-1]}],
}
# as POST /v2/models/resnet/infer answers a batch of two
INFER_REPLY = {
    "model_name": "resnet",
    "model_version": "2",
    "id": "abc",
    "outputs": [
        {"name": "probs", "shape": [2, 2], "datatype": "FP32", "data": [0.25, 0.75, 1.0, 0.0]},
        {"name": "label", "shape": [2], "datatype": "INT64", "data": [1, 0]},
    ],
}


def infer_request(inputs, version=None, outputs=None, info=None):
    req = Request("infer", "ovms", "resnet", payload=InferPayload(inputs, outputs, version))
    OVMS.prepare(req, info or ModelInfo.from_v2(METADATA))
    return req


# -- the tensor codec ------------------------------------------------------------------------------
@pytest.mark.parametrize("datatype", list(tensors.DATATYPES))
def test_every_datatype_survives_json(datatype):
    if datatype == "BYTES":
        array = np.array([[b"x", "\u00e9".encode()]], dtype=object)
    else:
        array = np.arange(6).reshape(2, 3).astype(tensors.DATATYPES[datatype])
    wire = json.loads(json.dumps(tensors.encode("t", array)))
    assert wire["datatype"] == datatype and wire["shape"] == list(array.shape)
    back = tensors.decode(wire)
    assert back.dtype == array.dtype and back.tolist() == array.tolist()


def test_codec_refuses_what_json_cannot_carry():
    with pytest.raises(errors.BadRequestError, match="not UTF-8"):
        tensors.encode("t", np.array([b"\xff"], dtype=object))
    with pytest.raises(errors.BadRequestError, match="complex128"):
        tensors.encode("t", np.zeros(2, np.complex128))
    with pytest.raises(errors.ProtocolError, match="'t'"):
        tensors.decode({"name": "t", "shape": [3], "datatype": "FP32", "data": [1, 2]})
    with pytest.raises(errors.ProtocolError):
        tensors.decode({"name": "t", "shape": [1], "datatype": "FP128", "data": [1]})


# -- OVMS -----------------------------------------------------------------------------------------
def test_infer_body_url_and_reply():
    req = infer_request({"image": [[1, 2, 3], [4, 5, 6]]}, version="2", outputs=("probs",))
    call = OVMS.build(req, "http://h:8001", None)
    assert (call.method, call.url) == ("POST", "http://h:8001/v2/models/resnet/versions/2/infer")
    assert call.json == {"inputs": [{"name": "image", "shape": [2, 3], "datatype": "FP32",
                                     "data": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}], "outputs": [{"name": "probs"}]}
    assert "authorization" not in call.headers
    reply = OVMS.parse(req, INFER_REPLY)
    assert reply.data["label"].dtype == np.int64 and reply.data["probs"].shape == (2, 2)
    assert reply.raw["outputs"][0] == {"name": "probs", "shape": [2, 2], "datatype": "FP32"} and reply.model == "resnet"
    with pytest.raises(errors.ProtocolError):
        OVMS.parse(req, {"model_name": "resnet"})


def test_metadata_describe_calls_and_malformed_metadata():
    req = Request("infer", "ovms", "a b", payload=InferPayload({}, version="3"))
    calls = OVMS.describe(req, "http://h", None)
    assert [c.url for c in calls] == ["http://h/v2/models/a%20b/versions/3", "http://h/v1/models/a%20b/versions/3"]
    assert OVMS.learn_model(1, {"model_version_status": []}).legacy
    with pytest.raises(errors.ProtocolError, match="metadata"):
        OVMS.learn_model(0, {"name": "x", "inputs": [{"name": "i"}]})


def test_legacy_predict_body_and_reply():
    info = ModelInfo("", legacy=True)
    req = infer_request({"a": [[1, 2]], "b": [[3, 4]]}, info=info)
    call = OVMS.build(req, "http://h", None)
    assert call.url == "http://h/v1/models/resnet:predict" and call.json == {"instances": [{"a": [1, 2], "b": [3, 4]}]}
    single = infer_request({"x": [[1, 2], [3, 4]]}, info=info)
    assert OVMS.build(single, "http://h", None).json == {"instances": [[1, 2], [3, 4]]}
    assert OVMS.parse(single, {"predictions": [[3, 5], [7, 9]]}).data["predictions"].tolist() == [[3, 5], [7, 9]]
    named = OVMS.parse(single, {"predictions": [{"y": 1, "z": [0, 1]}, {"y": 2, "z": [1, 0]}]}).data
    assert named["y"].tolist() == [1, 2] and named["z"].shape == (2, 2)


def test_merge_and_split_along_the_batch():
    parts = [infer_request({"image": np.full((n, 3), n, np.float32)}) for n in (1, 1)]
    key = OVMS.merge_key(parts[0])
    assert key is not None and key == OVMS.merge_key(parts[1])
    assert OVMS.merge_key(infer_request({"image": np.zeros((1, 3), np.float32)}, version="2")) != key
    merged = OVMS.merge(parts)
    assert merged.payload.inputs["image"].shape == (2, 3)
    replies = OVMS.split(merged, OVMS.parse(merged, INFER_REPLY), parts)
    assert [r.data["label"].tolist() for r in replies] == [[1], [0]]
    with pytest.raises(errors.ProtocolError, match="batch of 3 rows"):
        OVMS.split(merged, OVMS.parse(merged, INFER_REPLY), [*parts, parts[0]])


def test_what_cannot_be_merged():
    fixed = dict(METADATA, inputs=[{"name": "image", "datatype": "FP32", "shape": [1, 3]}])
    assert OVMS.merge_key(infer_request({"image": [[1, 2, 3]]}, info=ModelInfo.from_v2(fixed))) is None
    assert OVMS.merge_key(infer_request({"x": [[1, 2, 3]]}, info=ModelInfo("", legacy=True))) is None
    assert OVMS.merge_key(Request("chat", "ovms", "m", [{"role": "user", "content": "hi"}])) is None


@pytest.mark.parametrize("status,body,cls,retryable", [
    (404, {"error": "Model with requested name is not found"}, errors.NotFoundError, False),
    (400, {"error": "Invalid input precision - Expected: FP32; Actual: FP64; input name: x"},
     errors.BadRequestError, False),
    (503, {"error": "Service Unavailable"}, errors.OverloadedError, True),
    (500, {"error": "Internal inference error"}, errors.ServerError, True),
])
def test_ovms_errors_are_classified(status, body, cls, retryable):
    error = OVMS.classify(status, {}, json.dumps(body).encode())
    assert type(error) is cls and error.retryable is retryable and error.message == body["error"]


def test_v3_is_openai_shaped_under_its_prefix():
    req = Request("chat", "ovms", "m", [{"role": "user", "content": "hi"}], stream=True)
    assert OVMS.build(req, "http://h", None).url == "http://h/v3/chat/completions"
    delta = OVMS.parse_frame(req, None, json.dumps({"error": "Generation failed"}))
    assert isinstance(delta.error, errors.ServerError)
    assert OVMS.parse_models({"affine": {}, "legacy": {}}) == ["affine", "legacy"]


# -- S3 -------------------------------------------------------------------------------------------
def s3_request(**fields):
    return Request("s3", "s3", fields.get("bucket", "b"), payload=S3Op(**{"bucket": "b", **fields}))


def test_s3_operations_become_boto3_calls():
    put = S3.build(s3_request(op="put", key="k", data=b"abc", extra={"ContentType": "text/plain"}), "", None)
    assert (put.method, put.params) == ("put_object", {"Bucket": "b", "Key": "k", "Body": b"abc",
                                                       "ContentType": "text/plain"})
    get = S3.build(s3_request(op="get", key="k", range="bytes=0-9"), "", None)
    assert get.params == {"Bucket": "b", "Key": "k", "Range": "bytes=0-9"}
    page = S3.build(s3_request(op="list", prefix="p/", token="T", page_size=5), "", None)
    assert page.params == {"Bucket": "b", "Prefix": "p/", "ContinuationToken": "T", "MaxKeys": 5}
    sign = S3.build(s3_request(op="presign", key="k", method="put", expires=60), "", None)
    assert sign.params == {"ClientMethod": "put_object", "Params": {"Bucket": "b", "Key": "k"}, "ExpiresIn": 60}
    upload = S3.build(s3_request(op="upload", key="k", path="/tmp/f"), "", None)
    assert upload.method == "upload_file" and upload.params["Filename"] == "/tmp/f"


def test_s3_results_count_bytes_as_usage():
    meta = {"ResponseMetadata": {"HTTPStatusCode": 200}}
    got = S3.parse(s3_request(op="get", key="k"), {**meta, "Body": b"12345", "ContentLength": 5})
    assert got.data == b"12345" and (got.usage.input_tokens, got.usage.output_tokens) == (0, 5)
    assert "Body" not in got.raw and "ResponseMetadata" not in got.raw
    put = S3.parse(s3_request(op="put", key="k", data=b"abc"), {**meta, "ETag": '"e"'})
    assert put.data == {"ETag": '"e"'} and put.usage.input_tokens == 3
    page = S3.parse(s3_request(op="list"), {**meta, "Contents": [{"Key": "a"}], "IsTruncated": True,
                                            "NextContinuationToken": "N"})
    assert page.data == {"objects": [{"Key": "a"}], "next": "N"}
    assert S3.parse(s3_request(op="upload", key="k", path="f"), {"bytes": 10}).usage.input_tokens == 10
    assert S3.summary(s3_request(op="put", key="k", data=b"abc")) == {"op": "put", "bucket": "b", "key": "k",
                                                                        "bytes": 3}


@pytest.mark.parametrize("code,status,cls,retryable", [
    ("NoSuchKey", 404, errors.NotFoundError, False),
    ("NoSuchBucket", 404, errors.NotFoundError, False),
    ("404", 404, errors.NotFoundError, False),
    ("AccessDenied", 403, errors.PermissionDeniedError, False),
    ("InvalidAccessKeyId", 403, errors.AuthenticationError, False),
    ("SignatureDoesNotMatch", 403, errors.AuthenticationError, False),
    ("SlowDown", 503, errors.RateLimitError, True),
    ("ServiceUnavailable", 503, errors.OverloadedError, True),
    ("InternalError", 500, errors.ServerError, True),
    ("RequestTimeout", 400, errors.TimeoutError, True),
    ("InvalidRange", 416, errors.BadRequestError, False),
    ("BucketNotEmpty", 409, errors.BadRequestError, False),  # 409 alone would read as retryable
    ("SomethingNew", 502, errors.ServerError, True),
])
def test_s3_error_codes_map_into_the_taxonomy(code, status, cls, retryable):
    error = classify_error(code, status, "msg", "get_object s3://b/k")
    assert type(error) is cls and error.retryable is retryable and error.status == status
    assert error.message == f"get_object s3://b/k: {code}: msg"


def test_s3_keys_and_their_secret_half():
    assert split_key("AKID:SECRET") == ("AKID", "SECRET", None)
    assert split_key("AKID:SECRET:TOKEN:WITH:COLONS") == ("AKID", "SECRET", "TOKEN:WITH:COLONS")
    with pytest.raises(errors.AuthenticationError, match="ACCESS_KEY_ID:SECRET_ACCESS_KEY") as caught:
        split_key("just-one-part-secret")
    assert "just-one-part-secret" not in str(caught.value)
    redact = Redactor()
    redact.add(S3.secret_parts(Secret("AKIAEXAMPLE:wJalrXUtnFEMI/K7MDENG:SESSIONTOKEN123", "runtime")))
    assert "wJalr" not in redact("signature for wJalrXUtnFEMI/K7MDENG and SESSIONTOKEN123 failed")


# -- settings -------------------------------------------------------------------------------------
def settings(config=None, environ=None):
    return load_settings(config, environ=environ or {}, dotenv={}, file_config={})


def test_batch_and_s3_settings():
    assert (settings().providers["ovms"].batch.max_size, settings().providers["ovms"].batch.delay_ms) == (64, 5.0)
    assert not settings({"providers": {"ovms": {"batch": {"delay_ms": 0}}}}).providers["ovms"].batch.enabled
    assert settings().providers["openai"].batch is None
    with pytest.raises(errors.BadRequestError, match=r"unknown setting providers\.openai\.batch"):
        settings({"providers": {"openai": {"batch": {}}}})
    with pytest.raises(errors.BadRequestError, match="max_size must be a whole number"):
        settings({"providers": {"ovms": {"batch": {"max_size": 0}}}})
    with pytest.raises(errors.BadRequestError, match=r"providers\.ovms\.batch\.size"):
        settings({"providers": {"ovms": {"batch": {"size": 3}}}})
    s3 = settings({"providers": {"s3": {"region": "eu-west-1", "concurrency": 4}}},
                  environ={"AWS_ENDPOINT_URL_S3": "http://minio:9000", "ACCEL_NB_SIM_URL": "http://sim"}).providers
    assert s3["s3"].options["region"] == "eu-west-1" and s3["s3"].concurrency == 4
    assert s3["s3"].base_url == "http://minio:9000" and s3["s3"].keys == []  # the simulator does not speak S3
    assert s3["ovms"].base_url == "http://sim/ovms"
    assert settings().providers["ovms"].base_url == "http://localhost:8001"
