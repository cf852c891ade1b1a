"""``Client``: the sync and async face of the engine.

Every call builds a normalized ``Request``, checks it (so bad input fails here,
with a message that says what to do, before anything is queued), hands a ``Job``
to the engine thread and waits for its sink: a lock for
blocking calls, a future of the caller's own loop for ``a…`` calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import queue
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import batching, checks, errors, registry
from .config import Settings, load_settings
from .engine.core import Engine
from .engine.job import Job
from .engine.loop import Mailbox
from .engine.sinks import BatchSink, Channel, FutureSink, LoopFutureSink, LoopQueueSink, QueueSink
from .providers import adapters, get_adapter, parse_target
from .providers.base import Reply
from .results import EmbeddingsJoin, Join, Ranking, RankingJoin, SparseEmbeddings, SparseJoin
from .secret import Secret
from .stats import Stats
from .streams import POLL_S, AsyncStream, Stream, wait_get
from .types import _NO_HEADERS, Priority, Request, Response, Usage

if TYPE_CHECKING:
    from .engine.state import LaneState
    from .ovmskit import OVMSKit
    from .results import Results
    from .s3kit import S3Kit
    from .servers.llvm import LlvmServer
    from .servers.ollama import OllamaServer
    from .servers.opea import OpeaServices

__all__ = [
    "AsyncStream",
    "Client",
    "Stream",
    "default_client",
    "set_default_client",
]

_INPUT_KINDS = frozenset({"embed", "rerank", "embed_sparse"})  # a list of texts in, one result per text out

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
        lane_state: LaneState | None = None,
    ) -> None:
        """``lane_state`` is where each key's pacing, breaker and cooldown state lives: this
        process's memory by default; a shared store lets kernels that share keys share it."""
        self.settings: Settings = load_settings(config, keys)
        self._lane_state = lane_state
        if cache is not None:
            self.settings.cache = cache
        if timeout is not None:
            self.settings.timeout_s = checks.timeout(timeout)
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        # per caller loop: (results from the engine, submissions to it)
        self._links: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[Mailbox, Mailbox]] = (
            weakref.WeakKeyDictionary()
        )

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The engine, started on first use."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = Engine(self.settings, state=self._lane_state)
                    registry.engine_started(self)
        return self._engine

    @property
    def started(self) -> bool:
        """Whether the engine runs (watchers use this to stay lazy)."""
        return self._engine is not None

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
        return self._wait(job, sink)

    async def achat(
        self, target: str, prompt: str | Sequence[Mapping[str, Any]] | None = None, **options: Any
    ) -> Response:
        """``chat`` for asyncio code: awaits without blocking the caller's loop."""
        job, future = self._async_job("chat", target, prompt, options)
        return await self._await(job, future)

    def stream(
        self,
        target: str,
        prompt: str | Sequence[Mapping[str, Any]] | None = None,
        *,
        kind: str = "chat",
        **options: Any,
    ) -> Stream:
        """Iterate ``Chunk``s as they arrive; ``.response`` holds the full ``Response`` at the end.

        ``kind="generate"`` streams a raw prompt (see ``generate``) instead of a chat."""
        job, sink = self._job(checks.stream_kind(kind), target, prompt, {**options, "stream": True}, QueueSink())
        return Stream(self.engine, job, sink)

    def astream(
        self,
        target: str,
        prompt: str | Sequence[Mapping[str, Any]] | None = None,
        *,
        kind: str = "chat",
        **options: Any,
    ) -> AsyncStream:
        """``async for chunk in client.astream(...)``."""
        loop = asyncio.get_running_loop()
        channel = Channel(loop)
        inbox, outbox = self._link(loop)
        sink = LoopQueueSink(inbox, channel)
        job, _ = self._job(checks.stream_kind(kind), target, prompt, {**options, "stream": True}, sink, outbox=outbox)
        return AsyncStream(self.engine, job, channel)

    # -- raw prompts ---------------------------------------------------------------------
    def generate(self, target: str, prompt: str, **options: Any) -> Response:
        """Complete a raw prompt as it is, with no chat template (TGI ``/generate``, Ollama
        ``/api/generate``, vLLM ``/v1/completions``).

        Takes ``chat``'s options except ``system``; stream it with
        ``client.stream(target, prompt, kind="generate")``.
        """
        return self._call("generate", target, prompt, options)

    async def agenerate(self, target: str, prompt: str, **options: Any) -> Response:
        return await self._acall("generate", target, prompt, options)

    # -- model servers ---------------------------------------------------------------------
    def infer(
        self,
        target: str,
        inputs: Any,
        *,
        parameters: Mapping[str, Any] | None = None,
        outputs: Sequence[str] | None = None,
        version: str | int | None = None,
        **options: Any,
    ) -> Any:
        """Run a served model on ``inputs``; what goes in and out follows the server.

        * Tensor servers (``ovms``, KServe v2): ``{input name: array}`` in, an ``InferResult``
          (``{output name: numpy array}`` with ``.response``) out.  Arrays must have the model's
          dtypes and shapes (lists are converted); a mismatch is refused before sending, naming
          the input and what the model expects.  ``outputs`` picks outputs by name, ``version``
          pins a model version; small requests to one model are coalesced into one call
          (``providers.<id>.batch``).
        * JSON model servers (``llvm``): any JSON value in (numpy arrays become lists), an
          ``Inference`` out (``.output`` as the server sent it, ``.response``).

        ``parameters`` go to the server as its own inference parameters.

        >>> client.infer("ovms:resnet", {"image": batch})["probs"]          # doctest: +SKIP
        >>> client.infer("llvm:bert-base", "some text").output              # doctest: +SKIP
        """
        payload, finish = self._infer(target, inputs, outputs, version)
        return self._call("infer", target, payload, {**options, "params": parameters}, finish)

    async def ainfer(
        self,
        target: str,
        inputs: Any,
        *,
        parameters: Mapping[str, Any] | None = None,
        outputs: Sequence[str] | None = None,
        version: str | int | None = None,
        **options: Any,
    ) -> Any:
        """``infer`` for asyncio code."""
        payload, finish = self._infer(target, inputs, outputs, version)
        return await self._acall("infer", target, payload, {**options, "params": parameters}, finish)

    def infer_batch(self, target: str, inputs: Iterable[Any], *, parameters: Mapping[str, Any] | None = None,
                    **options: Any) -> Results:
        """Many inputs in one call (LLVM ``/batch_infer``): a list of outputs in input order,
        with ``.response`` for the call's metadata."""
        options = {**options, "params": parameters}
        return self._call("infer_batch", target, checks.batch_inputs(inputs), options, _results)

    async def ainfer_batch(self, target: str, inputs: Iterable[Any], *, parameters: Mapping[str, Any] | None = None,
                           **options: Any) -> Results:
        options = {**options, "params": parameters}
        return await self._acall("infer_batch", target, checks.batch_inputs(inputs), options, _results)

    # -- self-hosted servers' own calls ------------------------------------------------------
    @functools.cached_property
    def ollama(self) -> OllamaServer:
        """Ollama's model management: ``list``, ``pull`` (progress bars), ``show``, ``delete``, ``ps``, ``version``."""
        from .servers.ollama import OllamaServer

        return OllamaServer(self)

    @functools.cached_property
    def llvm(self) -> LlvmServer:
        """The LLVM model server's ``models``, ``model``, ``statistics``, ``optimize`` and ``status``."""
        from .servers.llvm import LlvmServer

        return LlvmServer(self)

    @functools.cached_property
    def opea(self) -> OpeaServices:
        """OPEA's microservices beyond chat and embeddings: ``retrieve`` and ``rerank``."""
        from .servers.opea import OpeaServices

        return OpeaServices(self)

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


    # -- embeddings, reranking, sparse vectors ----------------------------------------------
    def embed(self, target: str, texts: str | Sequence[str], *, normalize: bool = True, **options: Any) -> Any:
        """Vectors for ``texts`` as an ``Embeddings`` array (rows L2-normalized unless ``normalize=False``).

        More texts than the server takes in one request (TEI's ``max_client_batch_size``, its
        payload limit) are sent as several requests through the same queue and joined back in
        order; ``.response`` then sums their usage.  Options as for ``chat``, plus ``params``
        (e.g. ``{"truncate": True}`` for TEI).
        """
        return self._inputs("embed", target, texts, options, {"normalize": normalize}, EmbeddingsJoin(normalize))

    async def aembed(self, target: str, texts: str | Sequence[str], *, normalize: bool = True, **options: Any) -> Any:
        return await self._ainputs("embed", target, texts, options, {"normalize": normalize}, EmbeddingsJoin(normalize))

    def rerank(
        self,
        target: str,
        query: str,
        texts: Sequence[str],
        *,
        return_text: bool = False,
        raw_scores: bool = False,
        **options: Any,
    ) -> Ranking:
        """``texts`` by relevance to ``query``, best first: a ``Ranking`` of ``Ranked(index, score,
        text)`` (``text`` only with ``return_text``; ``raw_scores`` skips the sigmoid)."""
        payload = checks.rerank_payload(query, return_text, raw_scores)
        return self._inputs("rerank", target, texts, options, payload, RankingJoin())

    async def arerank(
        self,
        target: str,
        query: str,
        texts: Sequence[str],
        *,
        return_text: bool = False,
        raw_scores: bool = False,
        **options: Any,
    ) -> Ranking:
        payload = checks.rerank_payload(query, return_text, raw_scores)
        return await self._ainputs("rerank", target, texts, options, payload, RankingJoin())

    def embed_sparse(self, target: str, texts: str | Sequence[str], **options: Any) -> SparseEmbeddings:
        """Sparse vectors (a SPLADE model's): one ``{index: value}`` dict of nonzero weights per text."""
        return self._inputs("embed_sparse", target, texts, options, {}, SparseJoin())

    async def aembed_sparse(self, target: str, texts: str | Sequence[str], **options: Any) -> SparseEmbeddings:
        return await self._ainputs("embed_sparse", target, texts, options, {}, SparseJoin())

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
        items = _batch_items(prompts, priority)
        results, pending = self._batch_start(items, batch_id)
        outcomes: queue.SimpleQueue[tuple[int, bool, Any]] = queue.SimpleQueue()
        jobs: dict[int, Job] = {}
        try:
            for index in pending:
                try:
                    jobs[index], _ = self._job(
                        "chat", target, items[index], {**options, "priority": priority},
                        BatchSink(index, outcomes), (batch_id, index),
                    )
                except errors.AccelError as exc:  # bad input for this item only
                    results[index] = self._batch_item(False, exc, raise_on_error)
            with _progress(len(items), len(items) - len(jobs), progress, target) as bar:
                for _ in range(len(jobs)):
                    index, ok, value = wait_get(outcomes)
                    del jobs[index]
                    results[index] = self._batch_item(ok, value, raise_on_error)
                    bar.update(1)
        except BaseException:
            for job in jobs.values():
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
        items = _batch_items(prompts, priority)
        results, pending = self._batch_start(items, batch_id)
        jobs: list[tuple[int, Job, asyncio.Future[Any]]] = []
        try:
            for index in pending:
                try:
                    job, future = self._async_job(
                        "chat", target, items[index], {**options, "priority": priority}, (batch_id, index)
                    )
                except errors.AccelError as exc:
                    results[index] = self._batch_item(False, exc, raise_on_error)
                    continue
                jobs.append((index, job, future))
            with _progress(len(items), len(items) - len(jobs), progress, target) as bar:
                if bar.enabled:
                    tick = bar.tick  # one bound method shared by every future
                    for _, _, future in jobs:
                        future.add_done_callback(tick)
                if jobs:
                    await asyncio.wait([f for *_, f in jobs])
            for index, _, future in jobs:
                error = future.exception()
                results[index] = self._batch_item(error is None, error or future.result(), raise_on_error)
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
        checks.number(limit, "logs(limit=...)", whole=True)
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
        if not isinstance(key, str) or not key.strip():
            what = "an empty string" if isinstance(key, str) else type(key).__name__
            raise errors.BadRequestError(f"add_key takes the key as a non-empty string, not {what}", provider=pid)
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
        if all(k.label != label for k in keys):
            raise errors.BadRequestError(
                f"{pid} has no key labelled {label!r}; its keys: {', '.join(k.label for k in keys) or 'none'}",
                provider=pid, hint=f"client.key_status({pid!r}) lists them",
            )
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
        """``(provider, model)`` for a target or alias, with the provider's default model
        (none for ``admin`` calls: a server-wide call names no model)."""
        target = self.settings.aliases.get(target, target) if isinstance(target, str) else target
        provider, model = parse_target(target)
        if model is None and kind == "admin":
            model = ""
        elif model is None:
            adapter = get_adapter(provider)
            configured = self.settings.providers[provider].default_model
            model = (adapter.default_embed_model if kind == "embed" else None) or configured or adapter.default_model
        return provider, model

    def _infer(self, target: str, inputs: Any, outputs: Any, version: Any) -> tuple[Any, Callable[..., Any]]:
        """The payload and result builder of an ``infer`` call, by the kind of server."""
        provider, _ = self.resolve(target)
        if get_adapter(provider).tensors:
            return self._infer_payload(target, inputs, outputs, version), _tensors
        if outputs is not None or version is not None:
            raise errors.BadRequestError(
                f"{provider} takes no outputs= or version= (they are for tensor servers such as ovms)",
                provider=provider,
            )
        if inputs is None:
            raise errors.BadRequestError(f"an infer call to {provider} needs an input", provider=provider)
        return checks.json_input(inputs), _inference

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

    def _call(
        self, kind: str, target: str, prompt: Any, options: dict[str, Any],
        finish: Callable[[Reply, Response], Any] | None = None,
    ) -> Any:
        """One blocking call of any kind: its result, or the ``Response`` when ``finish`` is ``None``."""
        job, sink = self._job(kind, target, prompt, options, FutureSink(), finish=finish)
        return self._wait(job, sink)

    async def _acall(
        self, kind: str, target: str, prompt: Any, options: dict[str, Any],
        finish: Callable[[Reply, Response], Any] | None = None,
    ) -> Any:
        job, future = self._async_job(kind, target, prompt, options, finish=finish)
        return await self._await(job, future)

    def _inputs(
        self, kind: str, target: str, texts: Any, options: dict[str, Any], payload: dict[str, Any], join: Join
    ) -> Any:
        """A call on a list of texts: one job, or (when the API limits batches) parts on the engine loop."""
        texts = self._texts(kind, target, texts)
        if not self._splits(kind, target, texts):
            options = {**options, "_payload": payload}
            job, sink = self._job(kind, target, texts, options, FutureSink(), finish=join.single)
            return self._wait(job, sink)
        future = self.engine.spawn(batching.gather(self, kind, target, texts, options, payload, join))
        try:
            while True:
                try:
                    pieces, response = future.result(timeout=POLL_S)
                    break
                except concurrent.futures.TimeoutError:
                    continue
        except KeyboardInterrupt:
            future.cancel()  # cancels every part still queued or running
            raise
        return join.whole(pieces, response)

    async def _ainputs(
        self, kind: str, target: str, texts: Any, options: dict[str, Any], payload: dict[str, Any], join: Join
    ) -> Any:
        texts = self._texts(kind, target, texts)
        if not self._splits(kind, target, texts):
            job, future = self._async_job(kind, target, texts, {**options, "_payload": payload}, finish=join.single)
            return await self._await(job, future)
        spawned = self.engine.spawn(batching.gather(self, kind, target, texts, options, payload, join))
        pieces, response = await asyncio.wrap_future(spawned)  # cancelling this cancels the parts
        return join.whole(pieces, response)

    def _texts(self, kind: str, target: str, texts: Any) -> list[str]:
        texts = list(texts) if isinstance(texts, Iterable) and not isinstance(texts, str) else [texts]
        if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            provider, _ = self.resolve(target, kind)
            raise errors.BadRequestError(
                f"{kind} needs a non-empty text or list of non-empty texts", provider=provider
            )
        return texts

    def _splits(self, kind: str, target: str, texts: list[str]) -> bool:
        """Whether the API limits how many texts one request carries (then ``batching`` decides)."""
        if len(texts) < 2:
            return False
        provider, _ = self.resolve(target, kind)
        return get_adapter(provider).batch_limits(None) is not None

    def _job(
        self,
        kind: str,
        target: str,
        prompt: Any,
        options: dict[str, Any],
        sink: Any,
        batch: tuple[str | None, int] | None = None,
        finish: Callable[[Reply, Response], Any] | None = None,
        outbox: Mailbox | None = None,
    ) -> tuple[Job, Any]:
        options = dict(options)
        priority = checks.priority(options.pop("priority", "normal"))
        cache = options.pop("cache", None)
        if cache not in (None, True, False, "force"):
            raise errors.BadRequestError(f"cache must be True, False or 'force', not {cache!r:.80}",
                                         hint="'force' caches even when temperature > 0")
        timeout = options.pop("timeout", None)
        timeout = self.settings.timeout_s if timeout is None else checks.timeout(timeout)
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
        self.engine.submit(job, outbox)
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
        inbox, outbox = self._link(loop)
        job, _ = self._job(kind, target, prompt, options, LoopFutureSink(inbox, future), batch, finish, outbox)
        return job, future

    def _request(self, kind: str, target: str, prompt: Any, options: dict[str, Any]) -> Request:
        provider, model = self.resolve(target, kind)
        if kind not in get_adapter(provider).kinds:
            raise _no_such_api(provider, kind)
        self._check_key(provider)
        stream = bool(options.pop("stream", False))
        system = options.pop("system", None)
        headers = dict(options.pop("headers", None) or {}) or _NO_HEADERS
        payload = options.pop("_payload", None)  # kind-specific input set by the client's own methods
        params = checks.params(options, provider)
        if kind in _INPUT_KINDS:
            texts = self._texts(kind, target, prompt)
            checks.no_more(options, provider)
            return Request(kind, provider, model, inputs=texts, params=params, headers=headers, payload=payload)
        if kind == "generate" and (system is not None or not isinstance(prompt, str)):
            raise errors.BadRequestError(
                "generate takes one raw prompt string (no system prompt, no messages)",
                provider=provider,
                hint="put any instructions into the prompt itself, or use chat",
            )
        if kind not in checks.TEXT_KINDS:  # infer, admin, s3…: a payload for the adapter, checked by its front
            checks.no_more(options, provider)
            if prompt is None:
                raise errors.BadRequestError(f"a {kind} call needs an input", provider=provider)
            if stream and kind != "admin":  # (a management call may stream its progress: Ollama's pull)
                raise errors.BadRequestError(f"{kind} calls do not stream", provider=provider)
            return Request(kind, provider, model, params=params, stream=stream, headers=headers, payload=prompt)
        messages = checks.messages(prompt, options.pop("messages", None), provider)
        checks.no_more(options, provider)
        return Request(kind, provider, model, messages, system, params=params, stream=stream, headers=headers)

    def _check_key(self, provider: str) -> None:
        adapter = get_adapter(provider)
        if adapter.needs_key and not self.settings.providers[provider].keys:
            names = adapter.key_env
            raise errors.AuthenticationError(
                f"no API key for {provider}",
                provider=provider,
                hint=f"set {' or '.join(names)} in the environment or a .env file, "
                "or run `%accel keys` to enter it without it showing in the notebook",
            )

    def _link(self, loop: asyncio.AbstractEventLoop) -> tuple[Mailbox, Mailbox]:
        link = self._links.get(loop)
        if link is None:
            engine = self.engine
            link = self._links[loop] = (Mailbox(loop, sender=engine.loop), engine.outbox(loop))
        return link

    def _wait(self, job: Job, sink: FutureSink) -> Any:
        try:
            while not sink.wait(POLL_S):
                pass
            return sink.result()
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
    def _batch_item(ok: bool, value: Any, raise_on_error: bool) -> Any:
        if ok:
            return value
        if raise_on_error or not isinstance(value, errors.AccelError):
            raise value
        return value

    def __repr__(self) -> str:
        state = "running" if self._engine is not None else "idle"
        return f"<accel_nb.Client {state}, {len(self.settings.providers)} providers>"


def _no_such_api(provider: str, kind: str) -> errors.BadRequestError:
    """(Not inline in ``Client._request``: its comprehension would make every request build a cell.)"""
    able = [pid for pid, other in adapters().items() if kind in other.kinds]
    return errors.BadRequestError(
        f"{provider} has no {kind} API", provider=provider, hint=f"for {kind} use {' or '.join(able)}" if able else None
    )


def _batch_items(prompts: Any, priority: Any) -> list[Any]:
    """A batch's prompts as a list, checked before any is sent (one string is one prompt, not a
    batch of its characters)."""
    checks.priority(priority)
    if isinstance(prompts, (str, bytes, Mapping)) or not isinstance(prompts, Iterable):
        raise errors.BadRequestError(
            f"map takes a list of prompts, not a {type(prompts).__name__}",
            hint="for one prompt use chat(target, prompt); for a batch, map(target, [prompt, ...])",
        )
    return list(prompts)


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

    @property
    def enabled(self) -> bool:
        return self._bar is not None

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def tick(self, _future: Any = None) -> None:
        self.update(1)

    def __enter__(self) -> _progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.close()


def default_client() -> Client:
    """The kernel's shared client (used by the magics, widgets and the lab extension)."""
    if registry.default is None:
        with registry.lock:
            if registry.default is None:
                registry.default = Client()
    return registry.default


def set_default_client(client: Client | None) -> None:
    """Replace the shared client (the old one is closed); ``None`` makes a fresh one on next use."""
    with registry.lock:
        old, registry.default = registry.default, client
    if old is not None and old is not client:
        old.close()


def _tensors(reply: Reply, response: Response) -> Any:
    from .tensors import InferResult  # numpy loads only for tensors

    return InferResult(reply.data or {}, response)


def _inference(reply: Reply, response: Response) -> Any:
    from .results import Inference

    return Inference(reply.data, response)


def _results(reply: Reply, response: Response) -> Any:
    from .results import Results

    return Results(reply.data, response)
