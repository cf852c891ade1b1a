"""``Client``: the sync and async face of the engine.

Every call builds a normalized ``Request``, checks it (so bad input fails here,
with a message that says what to do, before anything is queued), hands a ``Job``
to the engine thread and waits for its sink: a ``concurrent.futures.Future`` for
blocking calls, a future of the caller's own loop for ``a…`` calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import queue
import threading
import weakref
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence

from . import errors
from .config import Settings, load_settings
from .engine.core import Engine, Job
from .engine.loop import Mailbox
from .engine.sinks import FutureSink, LoopFutureSink, LoopQueueSink, QueueSink, StreamEnd
from .providers import get_adapter, parse_target
from .providers.base import Reply
from .secret import Secret
from .stats import Stats
from .types import Chunk, Priority, Request, Response, Usage

if TYPE_CHECKING:
    from .ovmskit import OVMSKit
    from .s3kit import S3Kit
    from .tensors import InferResult

__all__ = ["AsyncStream", "Client", "Stream", "default_client", "set_default_client"]

_COMMON = ("max_tokens", "temperature", "top_p", "stop")

# A blocked wait wakes this often: a SIGINT (kernel interrupt) that lands on another
# thread is only seen when the main thread runs Python code again.
_POLL_S = 0.1


def _get(q: queue.SimpleQueue[Any]) -> Any:
    while True:
        try:
            return q.get(timeout=_POLL_S)
        except queue.Empty:
            continue


class Client:
    """One engine (a thread, a connection pool, lanes, a ledger) behind sync and async calls.

    >>> client = Client()                                    # doctest: +SKIP
    >>> client.chat("claude", "Hello").text                  # doctest: +SKIP
    """

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        keys: Mapping[str, str | list[str]] | None = None,
        cache: bool | None = None,
        timeout: float | None = None,
    ) -> None:
        self.settings: Settings = load_settings(config, keys)
        if cache is not None:
            self.settings.cache = cache
        if timeout is not None:
            self.settings.timeout_s = timeout
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._mailboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Mailbox] = weakref.WeakKeyDictionary()

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The engine, started on first use."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = Engine(self.settings)
        return self._engine

    def close(self) -> None:
        """Cancel what is pending, flush the ledger, stop the engine thread."""
        if self._engine is not None:
            self._engine.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    # -- chat ------------------------------------------------------------------------------
    def chat(self, target: str, prompt: str | Sequence[Mapping[str, Any]] | None = None, **options: Any) -> Response:
        """Send one prompt (or a list of ``{role, content}`` messages) and wait for the answer.

        Options: ``system``, ``max_tokens``, ``temperature``, ``top_p``, ``stop``, ``params``
        (provider-specific extras), ``priority`` (``high``/``normal``/``low``), ``timeout``
        (seconds, queue included), ``cache`` (``True``/``False``/``"force"``), ``headers``.
        """
        job, sink = self._job("chat", target, prompt, options, FutureSink())
        return self._wait(job, sink.future)

    async def achat(self, target: str, prompt: str | Sequence[Mapping[str, Any]] | None = None, **options: Any) -> Response:
        """``chat`` for asyncio code: awaits without blocking the caller's loop."""
        job, future = self._async_job("chat", target, prompt, options)
        return await self._await(job, future)

    def stream(self, target: str, prompt: str | Sequence[Mapping[str, Any]] | None = None, **options: Any) -> Stream:
        """Iterate ``Chunk``s as they arrive; ``.response`` holds the full ``Response`` at the end."""
        job, sink = self._job("chat", target, prompt, {**options, "stream": True}, QueueSink())
        return Stream(self.engine, job, sink)

    def astream(self, target: str, prompt: str | Sequence[Mapping[str, Any]] | None = None, **options: Any) -> AsyncStream:
        """``async for chunk in client.astream(...)``."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        sink = LoopQueueSink(self._mailbox(loop), queue)
        job, _ = self._job("chat", target, prompt, {**options, "stream": True}, sink)
        return AsyncStream(self.engine, job, queue)

    # -- embeddings ------------------------------------------------------------------------
    def embed(self, target: str, texts: str | Sequence[str], *, normalize: bool = True, **options: Any) -> Any:
        """Vectors for ``texts`` as an ``Embeddings`` array (rows L2-normalized unless ``normalize=False``)."""
        job, sink = self._job("embed", target, texts, options, FutureSink(), finish=_embeddings(normalize))
        return self._wait(job, sink.future)

    async def aembed(self, target: str, texts: str | Sequence[str], *, normalize: bool = True, **options: Any) -> Any:
        job, future = self._async_job("embed", target, texts, options, finish=_embeddings(normalize))
        return await self._await(job, future)

    # -- tensors ---------------------------------------------------------------------------
    def infer(
        self,
        target: str,
        inputs: Mapping[str, Any],
        *,
        outputs: Sequence[str] | None = None,
        version: str | int | None = None,
        **options: Any,
    ) -> InferResult:
        """Run a tensor model (KServe v2): ``{input name: array}`` in, ``{output name: array}`` out.

        Arrays must have the model's dtypes and shapes (lists are converted); a mismatch is
        refused before sending, naming the input and what the model expects.  ``outputs``
        picks outputs by name; ``version`` pins a model version.  Small requests to one
        model are coalesced into one call (``providers.<id>.batch``).  Also takes
        ``priority``, ``timeout``, ``headers`` and ``params`` (KServe ``parameters``).

        >>> client.infer("ovms:resnet", inputs={"image": batch})["probs"]   # doctest: +SKIP
        """
        payload = self._infer_payload(target, inputs, outputs, version)
        job, sink = self._job("infer", target, payload, {**options, "cache": False}, FutureSink(), finish=_tensors)
        return self._wait(job, sink.future)

    async def ainfer(
        self,
        target: str,
        inputs: Mapping[str, Any],
        *,
        outputs: Sequence[str] | None = None,
        version: str | int | None = None,
        **options: Any,
    ) -> InferResult:
        """``infer`` for asyncio code."""
        payload = self._infer_payload(target, inputs, outputs, version)
        job, future = self._async_job("infer", target, payload, {**options, "cache": False}, finish=_tensors)
        return await self._await(job, future)

    def _infer_payload(self, target: str, inputs: Any, outputs: Any, version: Any) -> Any:
        from .providers.ovms import InferPayload

        provider, model = parse_target(self.settings.aliases.get(target, target))
        if model is None:
            raise errors.BadRequestError(
                f"name the model to run, e.g. {provider}:<model>", provider=provider,
                hint=f"client.models({provider!r}) lists the models the server has",
            )
        if not isinstance(inputs, Mapping) or not inputs or not all(isinstance(n, str) and n for n in inputs):
            raise errors.BadRequestError(
                "inputs must be a non-empty dict of {input name: array}", provider=provider,
                hint=f"client.{provider}.metadata({model!r}) shows the inputs the model takes",
            )
        if outputs is not None and (isinstance(outputs, str) or not all(isinstance(n, str) for n in outputs)):
            raise errors.BadRequestError("outputs must be a list of output names", provider=provider)
        version = None if version is None else str(version)
        return InferPayload(dict(inputs), tuple(outputs) if outputs else None, version)

    @functools.cached_property
    def ovms(self) -> OVMSKit:
        """OpenVINO Model Server extras: ``health()``, ``ready(model)``, ``metadata(model)``."""
        from .ovmskit import OVMSKit

        return OVMSKit(self)

    @functools.cached_property
    def s3(self) -> S3Kit:
        """S3 through the engine: ``put / get / head / delete / list / upload_file / download_file /
        presign`` (and ``a…`` twins), with the engine's queue, backoff, breaker and ledger."""
        from .s3kit import S3Kit

        return S3Kit(self)

    # -- batches ---------------------------------------------------------------------------
    def map(
        self,
        target: str,
        prompts: Iterable[str | Sequence[Mapping[str, Any]]],
        *,
        priority: str | Priority = "low",
        progress: bool = True,
        raise_on_error: bool = False,
        batch_id: str | None = None,
        **options: Any,
    ) -> list[Response | errors.AccelError]:
        """Every prompt through the same queue; results in input order.

        A failed item is returned as its ``AccelError`` unless ``raise_on_error``.  With a
        ``batch_id``, items the ledger already holds as done are not sent again: run the
        same call after an interruption and it resumes.
        """
        items = list(prompts)
        results, pending = self._batch_start(items, batch_id)
        jobs: dict[concurrent.futures.Future[Any], tuple[int, Job]] = {}
        try:
            for index in pending:
                try:
                    job, sink = self._job(
                        "chat", target, items[index], {**options, "priority": priority}, FutureSink(), (batch_id, index)
                    )
                except errors.AccelError as exc:  # bad input for this item only
                    results[index] = self._batch_item(exc, None, raise_on_error)
                    continue
                jobs[sink.future] = (index, job)
            with _progress(len(items), len(items) - len(jobs), progress, target) as bar:
                for future in concurrent.futures.as_completed(jobs):
                    index, _ = jobs[future]
                    results[index] = self._batch_item(future.exception(), future, raise_on_error)
                    bar.update(1)
        except BaseException:
            for future, (_, job) in jobs.items():
                if not future.done():
                    self.engine.cancel(job)
            raise
        return results

    async def amap(
        self,
        target: str,
        prompts: Iterable[str | Sequence[Mapping[str, Any]]],
        *,
        priority: str | Priority = "low",
        progress: bool = True,
        raise_on_error: bool = False,
        batch_id: str | None = None,
        **options: Any,
    ) -> list[Response | errors.AccelError]:
        """``map`` for asyncio code."""
        items = list(prompts)
        results, pending = self._batch_start(items, batch_id)
        jobs: list[tuple[int, Job, asyncio.Future[Any]]] = []
        try:
            for index in pending:
                try:
                    job, future = self._async_job(
                        "chat", target, items[index], {**options, "priority": priority}, (batch_id, index)
                    )
                except errors.AccelError as exc:
                    results[index] = self._batch_item(exc, None, raise_on_error)
                    continue
                jobs.append((index, job, future))
            with _progress(len(items), len(items) - len(jobs), progress, target) as bar:
                for _, _, future in jobs:
                    future.add_done_callback(lambda _f: bar.update(1))
                await asyncio.wait([f for *_, f in jobs]) if jobs else None
            for index, _, future in jobs:
                results[index] = self._batch_item(future.exception(), future, raise_on_error)
        except BaseException:
            for _, job, future in jobs:
                if not future.done():
                    self.engine.cancel(job)
            raise
        return results

    # -- observing -------------------------------------------------------------------------
    def stats(self) -> Stats:
        """Live metrics per provider: requests, errors, latency / TTFT percentiles, tokens, cost,
        queue depth, in flight, and each key's lane state."""
        if self._engine is None:
            return Stats({"providers": {}, "queued": 0, "waiting": 0, "in_flight": 0})
        return Stats(self._engine.snapshot())

    def logs(
        self, limit: int = 20, *, provider: str | None = None, errors: bool = False, batch_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The newest ledger rows (this and earlier sessions), newest first."""
        if provider:
            provider, _ = parse_target(provider)
        ledger = self.engine.ledger
        if ledger is None:  # ledger turned off: what this session remembers
            rows = [r for r in reversed(self.engine.tracker.recent) if (not provider or r["provider"] == provider)]
            return [r for r in rows if not errors or r["status"] != "ok"][:limit]
        return ledger.query(limit, provider=provider, errors=errors, batch_id=batch_id)

    # -- keys and models -------------------------------------------------------------------
    def add_key(self, provider: str, key: str, source: str = "session") -> str:
        """Use ``key`` for ``provider`` from now on (in memory only); returns its label."""
        pid, _ = parse_target(provider)
        secret = Secret(key, source)
        keys = self.settings.providers[pid].keys
        if secret not in keys:
            keys[:] = [k for k in keys if k.source != "simulator"] + [secret]
        if self._engine is not None:
            self._engine.add_key(pid, secret)
        return secret.label

    def remove_key(self, provider: str, label: str) -> None:
        """Stop using the key with this label (as shown by ``key_status``)."""
        pid, _ = parse_target(provider)
        keys = self.settings.providers[pid].keys
        keys[:] = [k for k in keys if k.label != label]
        if self._engine is not None:
            self._engine.retire_key(pid, label)

    def key_status(self, provider: str) -> list[dict[str, Any]]:
        """Each key's label (source and last 4 characters) and lane state — never the key."""
        pid, _ = parse_target(provider)
        lanes = {}
        if self._engine is not None:
            lanes = {lane["key"]: lane for lane in self.stats()["providers"].get(pid, {}).get("lanes", [])}
        return [
            {"key": k.label, "source": k.source, **{f: lanes.get(k.label, {}).get(f) for f in ("state", "cooling_s")}}
            for k in self.settings.providers[pid].keys
        ]

    def models(self, provider: str) -> list[str]:
        """The provider's model list, from its API (configured models when it has no such call)."""
        pid, _ = parse_target(provider)
        body = self.engine.direct(pid, lambda adapter, base, key: adapter.models_call(base, key))
        if body is None:
            return list(self.settings.providers[pid].models)
        return get_adapter(pid).parse_models(body)

    def verify_key(self, provider: str, label: str | None = None) -> dict[str, Any]:
        """Make the provider's cheapest authenticated call with one key (the first by default).

        Returns ``{"key": label, "ok": bool, "error": message or None, "models": n}``.
        """
        pid, _ = parse_target(provider)
        keys = self.settings.providers[pid].keys
        key = next((k for k in keys if label is None or k.label == label), None)
        if key is None:
            raise errors.AuthenticationError(f"no key {label or ''} for {pid}".replace("  ", " "), provider=pid)
        try:
            body = self.engine.direct(pid, lambda adapter, base, raw: adapter.models_call(base, raw), key)
        except errors.AccelError as exc:
            return {"key": key.label, "ok": False, "error": f"{type(exc).__name__}: {exc.message}", "models": 0}
        models = get_adapter(pid).parse_models(body) if body is not None else []
        return {"key": key.label, "ok": True, "error": None, "models": len(models)}

    # -- plumbing --------------------------------------------------------------------------
    def resolve(self, target: str, kind: str = "chat") -> tuple[str, str]:
        """``(provider, model)`` for a target or alias, with the provider's default model."""
        target = self.settings.aliases.get(target, target) if isinstance(target, str) else target
        provider, model = parse_target(target)
        if model is None:
            adapter = get_adapter(provider)
            configured = self.settings.providers[provider].default_model
            model = (adapter.default_embed_model if kind == "embed" else None) or configured or adapter.default_model
        return provider, model

    def _job(
        self,
        kind: str,
        target: str,
        prompt: Any,
        options: dict[str, Any],
        sink: Any,
        batch: tuple[str | None, int] | None = None,
        finish: Callable[[Reply, Response], Any] | None = None,
    ) -> tuple[Job, Any]:
        options = dict(options)
        priority = Priority.parse(options.pop("priority", "normal"))
        cache = options.pop("cache", None)
        timeout = options.pop("timeout", self.settings.timeout_s)
        request = self._request(kind, target, prompt, options)
        job = Job(
            request,
            sink,
            priority,
            cache=self.settings.cache if cache is None else cache,
            batch=batch if batch and batch[0] else None,
            timeout_s=timeout,
            finish=finish,
        )
        self.engine.submit(job)
        return job, sink

    def _async_job(
        self,
        kind: str,
        target: str,
        prompt: Any,
        options: dict[str, Any],
        batch: tuple[str | None, int] | None = None,
        finish: Callable[[Reply, Response], Any] | None = None,
    ) -> tuple[Job, asyncio.Future[Any]]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        sink = LoopFutureSink(self._mailbox(loop), future)
        job, _ = self._job(kind, target, prompt, options, sink, batch, finish)
        return job, future

    def _request(self, kind: str, target: str, prompt: Any, options: dict[str, Any]) -> Request:
        provider, model = self.resolve(target, kind)
        adapter = get_adapter(provider)
        if kind not in adapter.kinds:
            raise errors.BadRequestError(
                f"{provider} has no {kind} API",
                provider=provider,
                hint="for embeddings use openai or gemini" if kind == "embed" else None,
            )
        self._check_key(provider)
        headers = dict(options.pop("headers", None) or {})
        if kind not in ("chat", "embed"):  # tensors, S3 operations…: a payload its own front checked
            params = _params(options, provider)
            _no_more(options, provider)
            return Request(kind, provider, model, params=params, headers=headers, payload=prompt)
        stream = bool(options.pop("stream", False))
        system = options.pop("system", None)
        params = _params(options, provider)
        if kind == "embed":
            texts = [prompt] if isinstance(prompt, str) else list(prompt or [])
            if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
                raise errors.BadRequestError(
                    "embed needs a non-empty text or list of non-empty texts", provider=provider
                )
            return Request(kind, provider, model, inputs=texts, params=params, headers=headers)
        messages = _messages(prompt, options.pop("messages", None), provider)
        _no_more(options, provider)
        return Request(kind, provider, model, messages, system, params=params, stream=stream, headers=headers)

    def _check_key(self, provider: str) -> None:
        adapter = get_adapter(provider)
        if adapter.needs_key and not self.settings.providers[provider].keys:
            names = adapter.key_env
            raise errors.AuthenticationError(
                f"no API key for {provider}",
                provider=provider,
                hint=f"set {' or '.join(names)} in the environment or a .env file, "
                "or run `%accel keys` to enter one safely (never `%env`: it echoes the key)",
            )

    def _mailbox(self, loop: asyncio.AbstractEventLoop) -> Mailbox:
        mailbox = self._mailboxes.get(loop)
        if mailbox is None:
            mailbox = self._mailboxes[loop] = Mailbox(loop, sender=self.engine.loop)
        return mailbox

    def _wait(self, job: Job, future: concurrent.futures.Future[Any]) -> Any:
        try:
            while True:
                try:
                    return future.result(timeout=_POLL_S)
                except concurrent.futures.TimeoutError:
                    continue
        except KeyboardInterrupt:
            self.engine.cancel(job, errors.CancelledError("interrupted", provider=job.request.provider))
            raise

    async def _await(self, job: Job, future: asyncio.Future[Any]) -> Any:
        try:
            return await future
        except asyncio.CancelledError:
            self.engine.cancel(job)
            raise

    def _batch_start(self, items: list[Any], batch_id: str | None) -> tuple[list[Any], list[int]]:
        results: list[Any] = [None] * len(items)
        done = {}
        if batch_id and self.engine.ledger is not None:
            done = self.engine.ledger.batch_done(batch_id)
        for index, row in done.items():
            if 0 <= index < len(items):
                results[index] = _response_from_row(row)
        return results, [i for i in range(len(items)) if results[i] is None]

    @staticmethod
    def _batch_item(error: BaseException | None, future: Any, raise_on_error: bool) -> Any:
        if error is None:
            return future.result()
        if raise_on_error or not isinstance(error, errors.AccelError):
            raise error
        return error

    def __repr__(self) -> str:
        state = "running" if self._engine is not None else "idle"
        return f"<accel_nb.Client {state}, {len(self.settings.providers)} providers>"


class Stream:
    """A blocking iterator of ``Chunk``s; ``.response`` is set once the stream ends."""

    def __init__(self, engine: Engine, job: Job, sink: QueueSink) -> None:
        self._engine = engine
        self._job = job
        self._queue = sink.queue
        self._parts: list[str] = []
        self.response: Response | None = None
        self._finished = False

    @property
    def request_id(self) -> str:
        return self._job.id

    @property
    def text(self) -> str:
        """What has arrived so far (all of it, once the stream is done)."""
        return "".join(self._parts)

    def __iter__(self) -> Iterator[Chunk]:
        while not self._finished:
            try:
                item = _get(self._queue)
            except KeyboardInterrupt:
                self.close()
                raise
            if isinstance(item, StreamEnd):
                self._finished = True
                if not item.ok:
                    raise item.value
                self.response = item.value
                return
            self._parts.append(item)
            yield Chunk(item, self._job.id)

    def close(self) -> None:
        """Stop the stream: the request is cancelled and its connection closed."""
        if not self._finished:
            self._finished = True
            self._engine.cancel(self._job, errors.CancelledError("stream closed", provider=self._job.request.provider))

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncStream:
    """``async for chunk in stream``; ``.response`` is set once the stream ends."""

    def __init__(self, engine: Engine, job: Job, queue: asyncio.Queue[Any]) -> None:
        self._engine = engine
        self._job = job
        self._queue = queue
        self._parts: list[str] = []
        self.response: Response | None = None
        self._finished = False

    @property
    def request_id(self) -> str:
        return self._job.id

    @property
    def text(self) -> str:
        return "".join(self._parts)

    async def __aiter__(self) -> AsyncIterator[Chunk]:
        try:
            while not self._finished:
                item = await self._queue.get()
                if isinstance(item, StreamEnd):
                    self._finished = True
                    if not item.ok:
                        raise item.value
                    self.response = item.value
                    return
                self._parts.append(item)
                yield Chunk(item, self._job.id)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if not self._finished:
            self._finished = True
            self._engine.cancel(self._job, errors.CancelledError("stream closed", provider=self._job.request.provider))


def _no_more(options: dict[str, Any], provider: str) -> None:
    if options:
        raise errors.BadRequestError(
            f"unknown option {sorted(options)[0]!r}",
            provider=provider,
            hint="pass provider-specific fields as params={...}",
        )


def _tensors(reply: Reply, response: Response) -> Any:
    from .tensors import InferResult  # numpy loads only for tensors

    return InferResult(reply.value or {}, response)


def _embeddings(normalize: bool) -> Callable[[Reply, Response], Any]:
    def finish(reply: Reply, response: Response) -> Any:
        from .embeddings import Embeddings  # numpy loads only for embeddings

        return Embeddings(reply.vectors or [], response, normalize=normalize)

    return finish


def _messages(prompt: Any, messages: Any, provider: str) -> list[dict[str, Any]]:
    if messages is None:
        messages = prompt
    if isinstance(messages, str):
        if not messages.strip():
            raise errors.BadRequestError(
                "the prompt is empty", provider=provider, hint="write something for the model to answer"
            )
        return [{"role": "user", "content": messages}]
    if not messages:
        raise errors.BadRequestError("no prompt and no messages were given", provider=provider)
    result = []
    for message in messages:
        if not (isinstance(message, Mapping) and message.get("role") in ("user", "assistant") and
                isinstance(message.get("content"), str)):
            raise errors.BadRequestError(
                f"each message must be {{'role': 'user'|'assistant', 'content': str}}, not {message!r:.80}",
                provider=provider,
                hint="put a system prompt in system=...",
            )
        result.append({"role": message["role"], "content": message["content"]})
    if result[-1]["role"] != "user" or not result[-1]["content"].strip():
        raise errors.BadRequestError("the last message must be a non-empty user message", provider=provider)
    return result


def _params(options: dict[str, Any], provider: str) -> dict[str, Any]:
    """The common generation options, checked, plus ``params={...}`` passed through."""
    params: dict[str, Any] = {}
    for name in _COMMON:
        value = options.pop(name, None)
        if value is not None:
            params[name] = value
    if "max_tokens" in params and not (isinstance(params["max_tokens"], int) and params["max_tokens"] > 0):
        raise errors.BadRequestError(f"max_tokens must be a positive integer, not {params['max_tokens']!r}", provider=provider)
    for name, low, high in (("temperature", 0.0, 2.0), ("top_p", 0.0, 1.0)):
        if name in params:
            value = params[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise errors.BadRequestError(f"{name} must be a number from {low:g} to {high:g}, not {value!r}", provider=provider)
    if "stop" in params:
        stop = params["stop"]
        if not (isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))):
            raise errors.BadRequestError(f"stop must be a string or a list of strings, not {stop!r}", provider=provider)
    extra = options.pop("params", None) or {}
    if not isinstance(extra, Mapping):
        raise errors.BadRequestError(f"params must be a dict, not {type(extra).__name__}", provider=provider)
    try:
        json.dumps(extra)
    except (TypeError, ValueError) as exc:
        raise errors.BadRequestError(f"params must be JSON-serializable: {exc}", provider=provider) from None
    params.update(extra)
    return params


def _response_from_row(row: Mapping[str, Any]) -> Response:
    """A ``Response`` rebuilt from a ledger row (for a resumed batch: it was not sent again)."""
    return Response(
        text=row["response"] or "",
        provider=row["provider"],
        model=row["model"],
        request_id=row["id"],
        usage=Usage(row["input_tokens"] or 0, row["output_tokens"] or 0, estimated=bool(row["usage_estimated"])),
        latency_s=row["latency_s"] or 0.0,
        ttft_s=row["ttft_s"],
        attempts=row["attempts"] or 1,
        cached=True,
        cost_usd=row["cost_usd"],
        finish_reason=row["finish_reason"],
    )


class _progress:
    """A ``tqdm.auto`` bar (a widget in notebooks, text in terminals), or nothing."""

    def __init__(self, total: int, initial: int, enabled: bool, target: str) -> None:
        self._bar = None
        if enabled and total:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=str(target), unit="req")

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def __enter__(self) -> _progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.close()


_default: Client | None = None
_default_lock = threading.Lock()


def default_client() -> Client:
    """The kernel's shared client (used by the magics, widgets and the lab extension)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Client()
    return _default


def set_default_client(client: Client | None) -> None:
    """Replace the shared client (the old one is closed); ``None`` makes a fresh one on next use."""
    global _default
    with _default_lock:
        old, _default = _default, client
    if old is not None and old is not client:
        old.close()
