"""The S3 Kit against a real S3 server (moto's server mode): every operation through the engine."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import traceback
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest

import accel_nb
from accel_nb import errors

SECRET = "wJalrXUtnFEMI-DISTINCTIVE-SECRET-K7MDENG"


@pytest.fixture
def s3(moto_server, monkeypatch):
    """Fake credentials in boto3's chain, a fresh bucket, the server log reset, and a client factory."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = "t-" + uuid.uuid4().hex[:16]
    boto3.client("s3", endpoint_url=moto_server.url).create_bucket(Bucket=bucket)
    moto_server.log.reset()
    clients = []

    def make(keys=None, **config):
        section = {"endpoint_url": moto_server.url, **config.pop("s3", {})}
        client = accel_nb.Client({"providers": {"s3": section}, **config}, keys=keys)
        clients.append(client)
        return client

    yield SimpleNamespace(server=moto_server, log=moto_server.log, bucket=bucket, make=make, client=make())
    for client in clients:
        client.close()


def test_round_trip_of_small_objects(s3):
    client, bucket = s3.client, s3.bucket
    put = client.s3.put(bucket, "notes/a.txt", b"hello, object store", extra={"ContentType": "text/plain"})
    assert put["ETag"].strip('"')
    client.s3.put(bucket, "notes/b.txt", "text is stored as UTF-8: é")
    assert client.s3.get(bucket, "notes/a.txt") == b"hello, object store"
    assert client.s3.get(bucket, "notes/b.txt").decode() == "text is stored as UTF-8: é"
    assert client.s3.get(bucket, "notes/a.txt", range=(7, 12)) == b"object"
    assert client.s3.get(bucket, "notes/a.txt", range=(14, None)) == b"store"
    head = client.s3.head(bucket, "notes/a.txt")
    assert head["ContentLength"] == 19 and head["ContentType"] == "text/plain"
    client.s3.delete(bucket, "notes/a.txt")
    with pytest.raises(errors.NotFoundError):
        client.s3.head(bucket, "notes/a.txt")
    row = next(r for r in client.logs(20) if json.loads(r["prompt"] or "{}").get("op") == "put")
    assert row["kind"] == "s3" and row["model"] == bucket and row["status"] == "ok"
    assert row["input_tokens"] in (19, len("text is stored as UTF-8: é".encode())) and row["http_status"] == 200


def test_round_trip_of_a_multipart_file(s3, tmp_path):
    data = os.urandom(9 * 1024 * 1024 + 123)  # above the 8 MiB threshold: two parts
    source, copy = tmp_path / "big.bin", tmp_path / "copy.bin"
    source.write_bytes(data)
    s3.client.s3.upload_file(source, s3.bucket, "big.bin", progress=False)
    assert s3.log.count("POST", f"/{s3.bucket}/big.bin", "uploads") == 1  # CreateMultipartUpload
    assert s3.log.count("PUT", f"/{s3.bucket}/big.bin", "partNumber") == 2
    s3.client.s3.download_file(s3.bucket, "big.bin", copy)
    assert copy.read_bytes() == data
    with pytest.raises(errors.NotFoundError):
        s3.client.s3.download_file(s3.bucket, "missing.bin", tmp_path / "never.bin", progress=False)
    assert not (tmp_path / "never.bin").exists()
    rows = [r for r in s3.client.logs(5) if r["kind"] == "s3"][1:]
    assert [r["status"] for r in rows[:2]] == ["ok", "ok"]  # each whole transfer is one request
    assert rows[0]["output_tokens"] == len(data) and rows[1]["input_tokens"] == len(data)


def test_list_is_paginated_one_request_per_page(s3):
    for i in range(7):
        s3.client.s3.put(s3.bucket, f"logs/{i:02d}.txt", b"x" * i)
    s3.client.s3.put(s3.bucket, "other/keep.txt", b"y")
    listing = s3.client.s3.list(s3.bucket, "logs/", page_size=3)
    assert s3.log.count("GET", f"/{s3.bucket}", "list-type=2") == 0  # lazy: nothing asked yet
    keys = [obj["Key"] for obj in listing]
    assert keys == [f"logs/{i:02d}.txt" for i in range(7)]
    assert s3.log.count("GET", f"/{s3.bucket}", "list-type=2") == 3
    assert s3.log.count("GET", f"/{s3.bucket}", "continuation-token") == 2
    assert len(list(s3.client.s3.list(s3.bucket))) == 8


def test_no_such_key_reaches_the_server_once_and_is_not_retried(s3):
    with pytest.raises(errors.NotFoundError) as caught:
        s3.client.s3.get(s3.bucket, "missing.txt")
    err = caught.value
    assert s3.log.count("GET", f"/{s3.bucket}/missing.txt") == 1
    assert not err.retryable and err.status == 404 and "NoSuchKey" in err.message and "list" in err.hint
    assert s3.client.logs(1)[0]["attempts"] == 1


def test_a_bucket_that_does_not_exist_says_so(s3):
    with pytest.raises(errors.NotFoundError) as caught:
        s3.client.s3.put("no-such-bucket-here", "a.txt", b"x")
    assert "NoSuchBucket" in str(caught.value) and "create the bucket" in caught.value.hint
    assert "s3://no-such-bucket-here/a.txt" in caught.value.message


def test_slow_down_is_retried_with_backoff(s3):
    client = s3.make(retry={"backoff_base_s": 0.01})
    s3.log.fail_next("SlowDown", 503, times=2)
    client.s3.put(s3.bucket, "k", b"v")
    assert s3.log.count("PUT", f"/{s3.bucket}/k") == 3
    row = client.logs(1)[0]
    assert row["status"] == "ok" and row["attempts"] == 3
    assert client.stats()["providers"]["s3"]["retries"] == 2


def test_server_errors_trip_the_breaker(s3):
    client = s3.make(retry={"max_attempts": 1}, breaker={"failures": 3, "cooldown_s": 30})
    s3.log.fail_next("InternalError", 500, times=3)
    for _ in range(3):
        with pytest.raises(errors.ServerError):
            client.s3.get(s3.bucket, "k")
    sent = len(s3.log.requests)
    with pytest.raises(errors.CircuitOpenError):
        client.s3.get(s3.bucket, "k")
    assert len(s3.log.requests) == sent  # failing fast: nothing sent


def test_the_lane_concurrency_limit_holds(s3):
    client = s3.make(s3={"concurrency": 2})
    s3.log.delay_s = 0.05

    async def main():
        await asyncio.gather(*[client.s3.aput(s3.bucket, f"c/{i}", b"z") for i in range(8)])
        return [obj["Key"] async for obj in client.s3.alist(s3.bucket, "c/")]

    assert len(asyncio.run(main())) == 8
    assert s3.log.peak == 2


def test_async_twins(s3):
    client = s3.client

    async def main():
        await client.s3.aput(s3.bucket, "a/1", b"one")
        body = await client.s3.aget(s3.bucket, "a/1")
        head = await client.s3.ahead(s3.bucket, "a/1")
        url = await client.s3.apresign(s3.bucket, "a/1", expires=60)
        await client.s3.adelete(s3.bucket, "a/1")
        return body, head, url

    body, head, url = asyncio.run(main())
    assert body == b"one" and head["ContentLength"] == 3 and "X-Amz-Signature" in url


def test_presigned_url_works_without_credentials(s3):
    s3.client.s3.put(s3.bucket, "shared.txt", b"anyone with the link")
    url = s3.client.s3.presign(s3.bucket, "shared.txt", expires=300)
    assert urllib.request.urlopen(url, timeout=5).read() == b"anyone with the link"
    put_url = s3.client.s3.presign(s3.bucket, "upload.txt", method="put")
    binary = {"Content-Type": "application/octet-stream"}  # urllib's default form type is parsed away by moto
    urllib.request.urlopen(urllib.request.Request(put_url, data=b"via a link", method="PUT", headers=binary), timeout=5)
    assert s3.client.s3.get(s3.bucket, "upload.txt") == b"via a link"


def test_missing_credentials_are_a_clear_error(s3, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(errors.AuthenticationError) as caught:
        s3.make().s3.get(s3.bucket, "k")
    assert "credentials" in caught.value.message and "AWS_ACCESS_KEY_ID" in caught.value.hint
    assert "keys={'s3'" in caught.value.hint
    assert len(s3.log.requests) == 0


def test_rejected_credentials_never_show_the_secret(s3, monkeypatch):
    import moto.settings

    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # moto checks keys from now on
    client = s3.make(keys={"s3": f"AKIAWRONGKEY00000000:{SECRET}"})
    with pytest.raises(errors.AuthenticationError) as caught:
        client.s3.put(s3.bucket, "k", b"v")
    err = caught.value
    assert "InvalidAccessKeyId" in err.message and not err.retryable and "AWS_ACCESS_KEY_ID" in err.hint
    assert s3.log.count("PUT", f"/{s3.bucket}/k") == 1
    rendered = "".join(traceback.format_exception(err)) + repr(err) + str(err.__dict__)
    assert SECRET not in rendered and SECRET not in repr(client.logs(5)) and SECRET not in repr(client.settings)
    client.engine.ledger.flush()
    assert SECRET.encode() not in client.settings.ledger_path.read_bytes()


def test_runtime_keys_are_used_and_checked(s3, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    client = s3.make(keys={"s3": f"AKIARUNTIME000000000:{SECRET}"})
    client.s3.put(s3.bucket, "k", b"v")
    assert client.logs(1)[0]["key"] == "runtime …DENG"
    with pytest.raises(errors.AuthenticationError, match="ACCESS_KEY_ID:SECRET_ACCESS_KEY"):
        s3.make(keys={"s3": "no-colon-in-this-key"}).s3.get(s3.bucket, "k")


def test_bad_input_fails_before_anything_is_sent(s3):
    kit = s3.client.s3
    with pytest.raises(errors.BadRequestError, match="bucket is a name"):
        kit.put("a/b", "k", b"x")
    with pytest.raises(errors.BadRequestError, match="object key"):
        kit.get(s3.bucket, "")
    with pytest.raises(errors.BadRequestError, match="bytes or str"):
        kit.put(s3.bucket, "k", {"not": "bytes"})
    with pytest.raises(errors.BadRequestError, match="range"):
        kit.get(s3.bucket, "k", range=(5, 2))
    with pytest.raises(errors.BadRequestError, match="no file"):
        kit.upload_file("/nonexistent/file.bin", s3.bucket, "k")
    with pytest.raises(errors.BadRequestError, match="expires"):
        kit.presign(s3.bucket, "k", expires=0)
    assert s3.log.requests == []


def test_boto3_loads_only_when_s3_is_used():
    code = (
        "import sys, accel_nb; c = accel_nb.Client(); c.s3; c.chat\n"
        "print('boto3' in sys.modules, 'botocore' in sys.modules, 'numpy' in sys.modules)"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root).stdout
    assert out.split() == ["False", "False", "False"]
