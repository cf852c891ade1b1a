"""S3 (any S3-compatible store) spoken through boto3: operations in, results and errors out.

The one adapter that is not HTTP: ``build`` names a boto3 client method and its
arguments (an ``SdkCall``), and the engine runs it in a thread pool through the binding in
``accel_nb.sdk.s3`` — with botocore's own retries off, so the engine's backoff and breaker
are the only ones.  Everything here stays pure: the operation table, the result shapes and
the mapping of S3 error codes into the taxonomy.

Credentials come from boto3's own chain unless keys are given as ``ACCESS_KEY_ID:SECRET``
(``:SESSION_TOKEN`` may follow), e.g. ``Client(keys={"s3": "AKIA…:wJal…"})``.  Usage records
bytes, not tokens: ``input_tokens`` = bytes sent, ``output_tokens`` = bytes received.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import errors
from ..secret import Secret
from ..types import Request, Usage
from .base import Adapter, Reply, SdkCall, classify_status

__all__ = ["CREDENTIALS_HINT", "S3", "S3Op", "classify_error", "split_key"]

CREDENTIALS_HINT = (
    "boto3 looks for credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws/credentials; "
    "or pass Client(keys={'s3': 'ACCESS_KEY_ID:SECRET_ACCESS_KEY'})"
)

_METHODS = {
    "put": "put_object",
    "get": "get_object",
    "head": "head_object",
    "delete": "delete_object",
    "list": "list_objects_v2",
    "upload": "upload_file",
    "download": "download_file",
    "presign": "generate_presigned_url",
}

#: S3 error codes -> (class, hint).  Codes not here are classified by their HTTP status.
_CODES: dict[str, tuple[type[errors.AccelError], str | None]] = {
    "NoSuchBucket": (errors.NotFoundError, "create the bucket first, or check its name, endpoint URL and region"),
    "NoSuchKey": (errors.NotFoundError, "check the key: client.s3.list(bucket, prefix) shows what is there"),
    "404": (errors.NotFoundError, "check the bucket and the key: client.s3.list(bucket, prefix) shows what is there"),
    "NoSuchUpload": (errors.NotFoundError, None),
    "NoSuchVersion": (errors.NotFoundError, None),
    "InvalidAccessKeyId": (errors.AuthenticationError, CREDENTIALS_HINT),
    "SignatureDoesNotMatch": (errors.AuthenticationError, "the secret does not fit the key id; " + CREDENTIALS_HINT),
    "ExpiredToken": (errors.AuthenticationError, "the session token has expired: refresh the credentials"),
    "InvalidToken": (errors.AuthenticationError, CREDENTIALS_HINT),
    "AccessDenied": (errors.PermissionDeniedError, "these credentials may not do this here; " + CREDENTIALS_HINT),
    "AllAccessDisabled": (errors.PermissionDeniedError, None),
    "403": (errors.PermissionDeniedError, "these credentials may not do this here; " + CREDENTIALS_HINT),
    "SlowDown": (errors.RateLimitError, None),
    "Throttling": (errors.RateLimitError, None),
    "ServiceUnavailable": (errors.OverloadedError, None),
    "InternalError": (errors.ServerError, None),
    "RequestTimeout": (errors.TimeoutError, None),
    "InvalidRange": (errors.BadRequestError, "the range starts past the end of the object: head() gives its size"),
    "BucketNotEmpty": (errors.BadRequestError, "delete the bucket's objects first"),
    "BucketAlreadyExists": (errors.BadRequestError, "bucket names are global: pick another"),
    "BucketAlreadyOwnedByYou": (errors.BadRequestError, None),
    "InvalidBucketName": (errors.BadRequestError, "bucket names are 3-63 lowercase letters, digits, dots and hyphens"),
    "EntityTooLarge": (errors.BadRequestError, "use upload_file, which sends large objects in parts"),
    "PreconditionFailed": (errors.BadRequestError, None),
    "RequestTimeTooSkewed": (errors.BadRequestError, "this machine's clock is off: sync it"),
}


@dataclass(slots=True, eq=False)
class S3Op:
    """One S3 operation: what ``client.s3`` was asked to do."""

    op: str  # a key of _METHODS
    bucket: str
    key: str = ""
    data: bytes | None = None
    range: str | None = None
    prefix: str = ""
    token: str | None = None
    page_size: int | None = None
    path: str | None = None
    expires: int = 3600
    method: str = "get"
    extra: dict[str, Any] = field(default_factory=dict)  # passed through to boto3 (ContentType, Metadata…)
    progress: Any = None

    @property
    def where(self) -> str:
        return f"{_METHODS[self.op]} s3://{self.bucket}/{self.key}" if self.key else f"{_METHODS[self.op]} s3://{self.bucket}"


class S3(Adapter):
    id = "s3"
    title = "S3 (boto3)"
    key_env = ()  # boto3's own credential chain, unless keys are given
    base_url_env = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    default_base_url = ""  # AWS itself, by region
    sim_path = None
    default_model = ""
    needs_key = False
    kinds = frozenset({"s3"})
    transport = "accel_nb.sdk.s3:S3Binding"
    options = {"endpoint_url": None, "region": None, "multipart_threshold_mb": 8}

    def build(self, req: Request, base_url: str, key: str | None, info: Any = None) -> SdkCall:
        op: S3Op = req.payload
        target = {"Bucket": op.bucket, "Key": op.key}
        if op.op == "put":
            params: dict[str, Any] = {**target, "Body": op.data, **op.extra}
        elif op.op == "get":
            params = {**target, **({"Range": op.range} if op.range else {}), **op.extra}
        elif op.op in ("head", "delete"):
            params = {**target, **op.extra}
        elif op.op == "list":
            params = {"Bucket": op.bucket, "Prefix": op.prefix}
            if op.token:
                params["ContinuationToken"] = op.token
            if op.page_size:
                params["MaxKeys"] = op.page_size
        elif op.op == "upload":
            params = {"Filename": op.path, **target, "ExtraArgs": op.extra or None}
        elif op.op == "download":
            params = {**target, "Filename": op.path, "ExtraArgs": op.extra or None}
        else:
            method = {"get": "get_object", "put": "put_object"}[op.method]
            params = {"ClientMethod": method, "Params": target, "ExpiresIn": op.expires}
        return SdkCall(_METHODS[op.op], params, op.progress)

    def parse(self, req: Request, result: Any) -> Reply:
        op: S3Op = req.payload
        if op.op == "presign":
            return Reply(data=result, usage=Usage(0, 0))
        meta = {k: v for k, v in result.items() if k not in ("ResponseMetadata", "Body")}
        if op.op == "get":
            body = result["Body"]
            return Reply(data=body, raw=meta, usage=Usage(0, len(body)))
        if op.op == "list":
            page = {"objects": result.get("Contents", []),
                    "next": result.get("NextContinuationToken") if result.get("IsTruncated") else None}
            return Reply(data=page, raw=meta, usage=Usage(0, 0))
        sent = len(op.data or b"") if op.op == "put" else result.get("bytes", 0) if op.op == "upload" else 0
        received = result.get("bytes", 0) if op.op == "download" else 0
        return Reply(data=meta if op.op in ("put", "head") else None, raw=meta, usage=Usage(sent, received))

    def secret_parts(self, key: Secret) -> list[Secret]:
        _, secret, token = split_key(key.reveal())
        return [key, *(Secret(part, key.source) for part in (secret, token) if part)]

    def summary(self, req: Request) -> Any:
        op: S3Op = req.payload
        fields = {"op": op.op, "bucket": op.bucket, "key": op.key, "bytes": None if op.data is None else len(op.data),
                  "range": op.range, "prefix": op.prefix, "path": op.path}
        return {k: v for k, v in fields.items() if v not in (None, "")}


def split_key(value: str) -> tuple[str, str, str | None]:
    """``ACCESS_KEY_ID:SECRET[:SESSION_TOKEN]`` -> its parts; an ``AuthenticationError`` (that
    never repeats the key) for any other shape."""
    parts = value.split(":", 2)
    if len(parts) < 2 or not all(parts[:2]):
        raise errors.AuthenticationError(
            "an S3 key must be written ACCESS_KEY_ID:SECRET_ACCESS_KEY (optionally :SESSION_TOKEN)",
            provider="s3",
            hint="or give no key and let boto3 find credentials: " + CREDENTIALS_HINT,
        )
    return parts[0], parts[1], parts[2] if len(parts) > 2 else None


def classify_error(code: str | None, status: int | None, message: str, where: str,
                   headers: Mapping[str, str] | None = None) -> errors.AccelError:
    """An S3 error (its code, HTTP status and message) in the taxonomy; ``where`` says which
    operation on which object, so the message can be acted on."""
    text = f"{where}: {code or status}: {message}" if message else f"{where}: {code or status}"
    known = _CODES.get(code or "")
    if known is None:
        return classify_status(status or 500, text, headers=headers)
    cls, hint = known
    error = classify_status(status or 400, text, headers=headers, cls=cls)
    if hint:
        error.hint = hint
    return error
