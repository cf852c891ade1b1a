"""boto3 for the S3 adapter: one client per lane, one blocking call per attempt.

The client is configured as PROTOCOLS.md §11 says — path-style addressing, SigV4, checksums
only when required (botocore >= 1.36 otherwise sends aws-chunked uploads that many
S3-compatible stores refuse) — with botocore's retries off so the engine's are the only ones.
That takes ``total_max_attempts=1``: botocore's ``max_attempts`` counts *retries*, so the
``max_attempts=1`` of PROTOCOLS.md still retries once (botocore's Config docstring; a test
against moto counts the requests).  Transfers go
through boto3's transfer manager: multipart above the threshold, progress told to a callback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .. import errors
from ..providers.base import SdkCall
from ..providers.s3 import CREDENTIALS_HINT, classify_error, split_key

__all__ = ["S3Binding"]

_MIB = 1024 * 1024


class S3Binding:
    """Creates the boto3 S3 client of a lane and runs ``SdkCall``s on it (thread-safe)."""

    def __init__(self, options: Mapping[str, Any], connect_timeout_s: float, read_timeout_s: float, width: int) -> None:
        self._options = options
        self._timeouts = (connect_timeout_s, read_timeout_s)
        self._width = width
        self._threshold = int(float(options.get("multipart_threshold_mb") or 8) * _MIB)

    def connect(self, base_url: str, key: str | None) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1, "mode": "standard"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            connect_timeout=self._timeouts[0],
            read_timeout=self._timeouts[1],
            max_pool_connections=self._width,
        )
        credentials: dict[str, Any] = {}
        if key:
            access, secret, token = split_key(key)
            credentials = {"aws_access_key_id": access, "aws_secret_access_key": secret, "aws_session_token": token}
        endpoint = self._options.get("endpoint_url") or base_url or None
        session = boto3.session.Session()  # a session of its own: creating clients on one is not thread-safe
        return session.client("s3", endpoint_url=endpoint, region_name=self._options.get("region"), config=config,
                              **credentials)

    def invoke(self, client: Any, call: SdkCall) -> Any:
        try:
            if call.method in ("upload_file", "download_file"):
                return self._transfer(client, call)
            result = getattr(client, call.method)(**call.params)
            if call.method == "get_object":
                result["Body"] = result["Body"].read()
            return result
        except Exception as exc:  # every SDK and file error leaves here classified
            raise _classify(exc, _where(call)) from None

    @staticmethod
    def meta(result: Any) -> tuple[int | None, str | None]:
        """The HTTP status and S3 request id of a result, for the ledger."""
        meta = result.get("ResponseMetadata", {}) if isinstance(result, dict) else {}
        return meta.get("HTTPStatusCode"), meta.get("RequestId")

    def _transfer(self, client: Any, call: SdkCall) -> dict[str, Any]:
        from boto3.s3.transfer import TransferConfig

        params = dict(call.params)
        path = params["Filename"]
        # one attempt per transfer: the engine's retry loop is the only one
        config = TransferConfig(multipart_threshold=self._threshold, multipart_chunksize=self._threshold,
                                num_download_attempts=1)
        if call.method == "upload_file":
            size = os.path.getsize(path)
        elif call.progress is not None:
            size = client.head_object(Bucket=params["Bucket"], Key=params["Key"])["ContentLength"]
        else:
            size = None
        if call.progress is not None:
            call.progress.start(size)
        getattr(client, call.method)(**params, Config=config, Callback=call.progress)
        return {"bytes": size if size is not None else os.path.getsize(path)}


def _where(call: SdkCall) -> str:
    params = call.params.get("Params", call.params)
    bucket, key = params.get("Bucket", ""), params.get("Key", "")
    return f"{call.method} s3://{bucket}/{key}" if key else f"{call.method} s3://{bucket}"


def _classify(exc: BaseException, where: str) -> errors.AccelError:
    from botocore import exceptions as bx

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, bx.ClientError):  # transfers wrap the S3 error
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, bx.ClientError):
        error, meta = cause.response.get("Error", {}), cause.response.get("ResponseMetadata", {})
        return classify_error(error.get("Code"), meta.get("HTTPStatusCode"), error.get("Message", ""), where,
                              meta.get("HTTPHeaders"))
    if isinstance(exc, errors.AccelError):
        return exc
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError, bx.CredentialRetrievalError)):
        return errors.AuthenticationError(f"{where}: no usable AWS credentials ({exc})", hint=CREDENTIALS_HINT)
    if isinstance(exc, (bx.ConnectTimeoutError, bx.ReadTimeoutError)):
        return errors.TimeoutError(f"{where}: {exc}", hint="the endpoint may be stalled; raise timeouts in the config")
    if isinstance(exc, (bx.ConnectionError, bx.HTTPClientError)):
        return errors.ConnectionError(f"{where}: {exc}", hint="check endpoint_url (AWS_ENDPOINT_URL); is the store up?")
    if isinstance(exc, (bx.ParamValidationError, ValueError)):
        return errors.BadRequestError(f"{where}: {exc}")
    if isinstance(exc, OSError):
        return errors.BadRequestError(f"{where}: {exc.strerror or exc}: {exc.filename}", hint="check the local path")
    if isinstance(exc, bx.BotoCoreError):
        return errors.AccelError(f"{where}: {type(exc).__name__}: {exc}")
    raise exc
