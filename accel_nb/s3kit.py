"""``client.s3``: the S3 Kit — object storage through the same engine as every other API.

Each operation is one request in the engine's queue: the S3 lane's concurrency limit,
backoff on SlowDown / 503, the circuit breaker, tracker events and a ledger row (bytes sent
and received in the token columns).  boto3 runs it in a worker thread with botocore's own
retries off.  ``list`` pages lazily, one request per page; ``upload_file`` and
``download_file`` move a whole file (in parts above 8 MiB) as one request, with a progress bar.

>>> client.s3.put("my-bucket", "notes/a.txt", b"hello")          # doctest: +SKIP
>>> client.s3.get("my-bucket", "notes/a.txt")                    # doctest: +SKIP
b'hello'
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from . import errors
from .engine.sinks import FutureSink
from .providers.base import Reply
from .providers.s3 import S3Op
from .types import Priority, Response

if TYPE_CHECKING:
    from .client import Client

__all__ = ["S3Kit"]

_MAX_EXPIRES_S = 7 * 24 * 3600  # SigV4's limit for a presigned URL


class S3Kit:
    """Sync methods and their ``a…`` twins; every one also takes ``priority`` and ``timeout``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    # -- objects ---------------------------------------------------------------------------
    def put(self, bucket: str, key: str, data: bytes | str, *, extra: Mapping[str, Any] | None = None,
            priority: str | Priority = "normal", timeout: float | None = None) -> dict[str, Any]:
        """Store ``data`` (bytes, or text as UTF-8) at ``bucket/key``; returns S3's reply (``ETag`` …).
        ``extra`` goes to boto3 as is (``ContentType``, ``Metadata``, …)."""
        return self._run(_put(bucket, key, data, extra), priority, timeout)

    async def aput(self, bucket: str, key: str, data: bytes | str, *, extra: Mapping[str, Any] | None = None,
                   priority: str | Priority = "normal", timeout: float | None = None) -> dict[str, Any]:
        return await self._arun(_put(bucket, key, data, extra), priority, timeout)

    def get(self, bucket: str, key: str, range: tuple[int, int | None] | str | None = None, *,
            priority: str | Priority = "normal", timeout: float | None = None) -> bytes:
        """The object's bytes; ``range=(first, last)`` (inclusive, ``last`` may be None) for a part."""
        return self._run(_get(bucket, key, range), priority, timeout)

    async def aget(self, bucket: str, key: str, range: tuple[int, int | None] | str | None = None, *,
                   priority: str | Priority = "normal", timeout: float | None = None) -> bytes:
        return await self._arun(_get(bucket, key, range), priority, timeout)

    def head(self, bucket: str, key: str, *, priority: str | Priority = "normal",
             timeout: float | None = None) -> dict[str, Any]:
        """The object's metadata (``ContentLength``, ``ETag``, ``LastModified``, ``ContentType`` …)."""
        return self._run(S3Op("head", *_names(bucket, key)), priority, timeout)

    async def ahead(self, bucket: str, key: str, *, priority: str | Priority = "normal",
                    timeout: float | None = None) -> dict[str, Any]:
        return await self._arun(S3Op("head", *_names(bucket, key)), priority, timeout)

    def delete(self, bucket: str, key: str, *, priority: str | Priority = "normal",
               timeout: float | None = None) -> None:
        """Delete the object (S3 answers the same whether or not it existed)."""
        self._run(S3Op("delete", *_names(bucket, key)), priority, timeout)

    async def adelete(self, bucket: str, key: str, *, priority: str | Priority = "normal",
                      timeout: float | None = None) -> None:
        await self._arun(S3Op("delete", *_names(bucket, key)), priority, timeout)

    def list(self, bucket: str, prefix: str = "", *, page_size: int | None = None,
             priority: str | Priority = "normal", timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Every object under ``prefix`` (``Key``, ``Size``, ``ETag``, ``LastModified`` …), fetched a
        page at a time as the iterator is consumed (``ContinuationToken`` pagination)."""
        first = _list(bucket, prefix, page_size, None)

        def objects() -> Iterator[dict[str, Any]]:
            op: S3Op | None = first
            while op is not None:
                page = self._run(op, priority, timeout)
                yield from page["objects"]
                op = _list(bucket, prefix, page_size, page["next"]) if page["next"] else None

        return objects()

    async def alist(self, bucket: str, prefix: str = "", *, page_size: int | None = None,
                    priority: str | Priority = "normal", timeout: float | None = None) -> AsyncIterator[dict[str, Any]]:
        """``async for obj in client.s3.alist(bucket, prefix)``."""
        op: S3Op | None = _list(bucket, prefix, page_size, None)
        while op is not None:
            page = await self._arun(op, priority, timeout)
            for obj in page["objects"]:
                yield obj
            op = _list(bucket, prefix, page_size, page["next"]) if page["next"] else None

    # -- files -----------------------------------------------------------------------------
    def upload_file(self, path: str | os.PathLike[str], bucket: str, key: str, *, progress: bool = True,
                    extra: Mapping[str, Any] | None = None, priority: str | Priority = "normal",
                    timeout: float | None = None) -> None:
        """Send a local file to ``bucket/key`` — in parts above the multipart threshold — as one request."""
        op = _file("upload", path, bucket, key, extra)
        with _Progress(progress, f"↑ {key}") as op.progress:
            self._run(op, priority, timeout)

    async def aupload_file(self, path: str | os.PathLike[str], bucket: str, key: str, *, progress: bool = True,
                           extra: Mapping[str, Any] | None = None, priority: str | Priority = "normal",
                           timeout: float | None = None) -> None:
        op = _file("upload", path, bucket, key, extra)
        with _Progress(progress, f"↑ {key}") as op.progress:
            await self._arun(op, priority, timeout)

    def download_file(self, bucket: str, key: str, path: str | os.PathLike[str], *, progress: bool = True,
                      priority: str | Priority = "normal", timeout: float | None = None) -> None:
        """Save ``bucket/key`` to a local file — in parts above the multipart threshold — as one request."""
        op = _file("download", path, bucket, key, None)
        with _Progress(progress, f"↓ {key}") as op.progress:
            self._run(op, priority, timeout)

    async def adownload_file(self, bucket: str, key: str, path: str | os.PathLike[str], *, progress: bool = True,
                             priority: str | Priority = "normal", timeout: float | None = None) -> None:
        op = _file("download", path, bucket, key, None)
        with _Progress(progress, f"↓ {key}") as op.progress:
            await self._arun(op, priority, timeout)

    def presign(self, bucket: str, key: str, expires: int = 3600, method: str = "get", *,
                priority: str | Priority = "normal", timeout: float | None = None) -> str:
        """A URL that lets anyone ``GET`` (or ``PUT``, with ``method="put"``) the object for ``expires`` seconds."""
        return self._run(_presign(bucket, key, expires, method), priority, timeout)

    async def apresign(self, bucket: str, key: str, expires: int = 3600, method: str = "get", *,
                       priority: str | Priority = "normal", timeout: float | None = None) -> str:
        return await self._arun(_presign(bucket, key, expires, method), priority, timeout)

    # -- plumbing --------------------------------------------------------------------------
    def _run(self, op: S3Op, priority: str | Priority, timeout: float | None) -> Any:
        client = self._client
        job, sink = client._job("s3", f"s3:{op.bucket}", op, _options(priority, timeout), FutureSink(), finish=_value)
        return client._wait(job, sink)

    async def _arun(self, op: S3Op, priority: str | Priority, timeout: float | None) -> Any:
        client = self._client
        job, future = client._async_job("s3", f"s3:{op.bucket}", op, _options(priority, timeout), finish=_value)
        return await client._await(job, future)

    def __repr__(self) -> str:
        return f"<accel_nb S3Kit at {self._client.settings.providers['s3'].base_url or 'AWS'}>"


def _value(reply: Reply, response: Response) -> Any:
    return reply.data


def _options(priority: str | Priority, timeout: float | None) -> dict[str, Any]:
    options: dict[str, Any] = {"priority": priority, "cache": False}
    if timeout is not None:
        options["timeout"] = timeout
    return options


def _names(bucket: Any, key: Any) -> tuple[str, str]:
    if not isinstance(bucket, str) or not bucket.strip() or "/" in bucket:
        raise errors.BadRequestError(f"a bucket is a name such as 'my-data', not {bucket!r}", provider="s3")
    if not isinstance(key, str) or not key:
        raise errors.BadRequestError(f"an object key is a non-empty string such as 'path/to/file.csv', not {key!r}",
                                     provider="s3")
    return bucket, key


def _put(bucket: str, key: str, data: Any, extra: Mapping[str, Any] | None) -> S3Op:
    if isinstance(data, str):
        data = data.encode("utf-8")
    elif isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise errors.BadRequestError(f"put takes bytes or str, not {type(data).__name__}", provider="s3",
                                     hint="use upload_file(path, bucket, key) for a file")
    return S3Op("put", *_names(bucket, key), data=data, extra=dict(extra or {}))


def _get(bucket: str, key: str, range: Any) -> S3Op:
    if isinstance(range, tuple) and len(range) == 2 and isinstance(range[0], int) and range[0] >= 0 and (
        range[1] is None or (isinstance(range[1], int) and range[1] >= range[0])
    ):
        range = f"bytes={range[0]}-{'' if range[1] is None else range[1]}"
    elif range is not None and not (isinstance(range, str) and range.startswith("bytes=")):
        raise errors.BadRequestError(f"range must be (first, last) byte offsets or 'bytes=a-b', not {range!r}",
                                     provider="s3")
    return S3Op("get", *_names(bucket, key), range=range)


def _list(bucket: str, prefix: str, page_size: int | None, token: str | None) -> S3Op:
    _names(bucket, "-")
    if page_size is not None and not (isinstance(page_size, int) and 1 <= page_size <= 1000):
        raise errors.BadRequestError(f"page_size must be from 1 to 1000, not {page_size!r}", provider="s3")
    return S3Op("list", bucket, prefix=prefix or "", token=token, page_size=page_size)


def _file(op: str, path: Any, bucket: str, key: str, extra: Mapping[str, Any] | None) -> S3Op:
    path = os.fspath(path)
    if op == "upload" and not os.path.isfile(path):
        raise errors.BadRequestError(f"there is no file {path!r} to upload", provider="s3")
    return S3Op(op, *_names(bucket, key), path=path, extra=dict(extra or {}))


def _presign(bucket: str, key: str, expires: Any, method: str) -> S3Op:
    if method not in ("get", "put"):
        raise errors.BadRequestError(f"method must be 'get' or 'put', not {method!r}", provider="s3")
    if isinstance(expires, bool) or not isinstance(expires, int) or not 1 <= expires <= _MAX_EXPIRES_S:
        raise errors.BadRequestError(f"expires must be whole seconds from 1 to {_MAX_EXPIRES_S} (7 days), "
                                     f"not {expires!r}", provider="s3")
    return S3Op("presign", *_names(bucket, key), expires=expires, method=method)


class _Progress:
    """Bytes moved, on a ``tqdm.auto`` bar made in the caller's thread (so a notebook shows it in
    the right cell); the binding sets its total and restarts it on each attempt."""

    def __init__(self, enabled: bool, label: str) -> None:
        self._bar = None
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=None, desc=label, unit="B", unit_scale=True, unit_divisor=1024)

    def start(self, total: int | None) -> None:
        if self._bar is not None:
            self._bar.reset(total=total)

    def __call__(self, moved: int) -> None:
        if self._bar is not None:
            self._bar.update(moved)

    def __enter__(self) -> _Progress | None:
        return self if self._bar is not None else None

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.close()
