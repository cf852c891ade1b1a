"""The engine: admits jobs, queues them by priority, grants lanes, runs attempts, records.

Every public method here is safe to call from any thread; everything else runs
on the engine loop.  A job's life: ``submit`` (caller thread) → ``_admit`` (cache,
overflow) → a provider's priority heap → ``_pump`` grants a lane → ``_run``
(first attempt, then tenacity for retries) → ``_succeed`` / ``_fail`` (tracker,
ledger, cache, sink).  Nothing a caller does — cancel, time out, bad input — can
leave a job unanswered or the engine unusable.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import heapq
import inspect
import itertools
import logging
import time
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

import aiohttp
import orjson

from .. import errors
from ..config import Settings
from ..pricing import PriceTable
from ..providers import Adapter, get_adapter
from ..providers.base import Delta, HttpCall, Reply
from ..providers.framing import decoder_for
from ..secret import Redactor, Secret
from ..tokens import count_tokens, estimate_prompt_tokens
from ..types import Priority, Request, Response, Usage
from .cache import SqliteCache
from .catalog import MISSING, ModelCatalog
from .coalesce import Coalescer
from .job import DONE, QUEUED, RUNNING, TEXT_KINDS, Job
from .keys import KeyPool
from .lanes import UNKNOWN, Lane
from .ledger import SqliteLedger
from .loop import EngineLoop, Mailbox
from .retry import RetryPolicy
from .sinks import Sink
from .state import LaneState, MemoryLaneState
from .threads import SdkRunner
from .tracker import Tracker
from .transport import Transport, decode_json, transport_error
from .watchdog import Watchdog

__all__ = ["Engine"]

log = logging.getLogger("accel_nb")

_PRIORITY_NAMES = tuple(p.name.lower() for p in Priority)
#: what the response cache keeps of an answer
_STORED_FIELDS = ("text", "provider", "model", "cost_usd", "finish_reason", "raw")
_STORED_USAGE = ("input_tokens", "output_tokens", "total_tokens", "estimated")
_SUCCESS, _FAILURE, _RATE_LIMITED, _REJECTED_KEY, _NEUTRAL = range(5)


class _ProviderPool:
    """A provider's lanes and its priority heap of jobs waiting for one."""

    __slots__ = ("id", "keys", "heap", "wake", "wake_at")

    def __init__(self, pid: str, keys: KeyPool) -> None:
        self.id = pid
        self.keys = keys
        self.heap: list[tuple[int, int, Job]] = []
        self.wake: asyncio.TimerHandle | None = None
        self.wake_at = float("inf")


class Engine:
    """Queueing, lanes, retries, tracking and recording for every provider."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = asyncio.sleep,
        state: LaneState | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._state = state or MemoryLaneState(clock)
        self.tracker = Tracker()
        self.redact = Redactor()
        for pid, provider in settings.providers.items():
            self.redact.add([part for key in provider.keys for part in get_adapter(pid).secret_parts(key)])
        self.prices = PriceTable.load(settings.prices_path)
        self.ledger = SqliteLedger(settings.ledger_path) if settings.ledger_path else None
        self._cache: SqliteCache | None = None
        self.retry = RetryPolicy(settings.retry, sleep=sleep, clock=clock)
        self._transport = Transport(settings.connect_timeout_s, settings.read_timeout_s)
        self._pools: dict[str, _ProviderPool] = {}
        self._queued = 0
        self._overflow: list[tuple[int, int, Job]] = []
        self._draining = False
        self._seq = itertools.count()
        self._jobs: set[Job] = set()
        self._closed = False
        self._catalog = ModelCatalog()
        self._sdk_runners: dict[str, SdkRunner] = {}
        self._runner = EngineLoop()
        self.loop = self._runner.loop
        self._coalescer = Coalescer(self.loop, lambda pid: self.settings.providers[pid].batch, self._dispatch)
        self._watchdog = Watchdog(self.loop, settings.read_timeout_s, self._silent)
        # bound once, not per submission: the method object would be made on the caller's thread
        # and freed on the engine's, a request's garbage the collector counts
        self._admit_posted = self._admit

    # -- thread-safe API -------------------------------------------------------------------
    @property
    def mailbox(self) -> Mailbox:
        return self._runner.mailbox

    def submit(self, job: Job, outbox: Mailbox | None = None) -> Job:
        """Hand ``job`` to the engine.  An asyncio caller passes its loop's ``outbox``
        (see ``outbox``) so a burst of submissions wakes the engine once."""
        if self._closed:
            raise errors.CancelledError("this client is closed; create a new accel_nb.Client")
        job.t_submit = self._clock()
        (outbox or self.mailbox).post(self._admit_posted, job)
        return job

    def outbox(self, loop: asyncio.AbstractEventLoop) -> Mailbox:
        """A mailbox into the engine for posts made on ``loop`` only."""
        return Mailbox(self.loop, sender=loop)

    def cancel(self, job: Job, reason: errors.AccelError | None = None) -> None:
        """Cancel a job wherever it is (queued or running); its sink gets the reason."""
        self.mailbox.post(self._cancel, (job, reason))

    def call(self, fn: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Run ``fn()`` on the engine loop and return its result (for consistent snapshots)."""
        if self._runner.in_loop():
            return fn()

        async def run() -> Any:
            return fn()

        return self._runner.run(run(), timeout)

    def snapshot(self) -> dict[str, Any]:
        return self.call(self._snapshot)

    def add_key(self, provider: str, key: Secret) -> None:
        """A new lane for ``key`` (e.g. typed into the key manager); the keyless placeholder
        lane (simulator, or a server without auth) gives way to it."""
        self.redact.add(get_adapter(provider).secret_parts(key))
        self.call(lambda: self._add_lane(provider, key))

    def retire_key(self, provider: str, label: str, reason: str = "removed") -> None:
        def retire() -> None:
            for lane in self._pool(provider).keys.lanes:
                if lane.label == label:
                    lane.retired = reason
            self._pump(self._pool(provider))

        self.call(retire)

    def lane_info(self, provider: str) -> Any:
        """What the provider's discovery call said (``None`` when it has none), fetched once."""
        return self._runner.run(self.discovered(provider), timeout=60)

    async def discovered(self, provider: str) -> Any:
        """``lane_info`` for code already on the engine loop."""
        pool = self._pool(provider)
        lane = next((lane for lane in pool.keys.lanes if not lane.retired), pool.keys.lanes[0])
        if lane.info is UNKNOWN:
            await self._discover(get_adapter(provider), lane)
        return lane.info

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        """Run ``coro`` on the engine loop (e.g. a call made of several jobs); cancelling the
        returned future cancels it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def describe(self, req: Request, refresh: bool = False) -> Any:
        """What the adapter learned of ``req``'s model (fetched once; again with ``refresh``)."""
        adapter = get_adapter(req.provider)

        async def run() -> Any:
            key, calls = self._catalog_key(adapter, req)
            if refresh:
                self._catalog.forget(key)
            known = self._catalog.get(key)
            if known is not MISSING:
                return known
            return await self._catalog.load(key, partial(self._fetch_description, adapter, req.model, calls))

        return self._runner.run(run(), timeout=self.settings.connect_timeout_s + self.settings.retry.max_time_s + 60)

    def direct(self, provider: str, build: Callable[[Adapter, str, str | None], HttpCall | None],
               key: Secret | None = None) -> Any:
        """One call outside the queue with ``build(adapter, base_url, key)`` (model lists, key
        checks); ``None`` when the adapter has no such call."""
        adapter = get_adapter(provider)
        cfg = self.settings.providers[provider]
        key = key or (cfg.keys[0] if cfg.keys else None)
        call = build(adapter, cfg.base_url, key.reveal() if key else None)
        if call is None:
            return None
        return self._runner.run(self._direct(adapter, call), timeout=self.settings.connect_timeout_s + 60)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._runner.run(self._shutdown(), timeout=15)
        except Exception:  # a closing engine must not raise on the way out
            log.debug("accel_nb engine shutdown was not clean", exc_info=True)
        self._runner.stop()
        for store in (self.ledger, self._cache):
            if store is not None:
                store.close()

    # -- admission and queueing (engine loop) --------------------------------------------
    def _admit(self, job: Job) -> None:
        if job.state == DONE:  # cancelled before it arrived
            return
        try:
            self._jobs.add(job)
            job.seq = next(self._seq)
            req = job.request
            self.tracker.queued(job.id, req.provider, req.model, _PRIORITY_NAMES[job.priority])
            if job.timeout_s is not None:
                job.timer = self.loop.call_later(job.timeout_s, self._expire, job)
            if job.cache_key is not None and self._serve_from_cache(job):
                return
            if req.kind in job.adapter.described_kinds:
                self._prepare(job)
            else:
                self._place(job)
        except Exception as exc:  # a bug must fail one request, never the engine or the posts after it
            log.exception("accel_nb internal error admitting request %s", job.id)
            self._fail(job, errors.AccelError(f"internal error in accel_nb: {type(exc).__name__}: {exc}"))

    def _place(self, job: Job) -> None:
        """Into a coalescing group when the request can share a call, else into the queue."""
        if job.adapter.batch is not None and self._coalescer.hold(job):
            return
        self._queue(job)

    def _queue(self, job: Job) -> None:
        req = job.request
        if self._queued >= self.settings.queue.max_size:
            if self.settings.queue.overflow == "reject":
                self._fail(job, errors.QueueFullError(
                    f"the queue already holds {self._queued} requests (queue.max_size)",
                    provider=req.provider,
                    hint="wait for some to finish, raise queue.max_size, or set queue.overflow = 'wait'",
                ))
                return
            heapq.heappush(self._overflow, (job.priority, job.seq, job))
            job.state = QUEUED
            return
        self._enqueue(job)

    def _dispatch(self, jobs: list[Job]) -> None:
        """A coalescing group is due: one batch job does the work of all its live members."""
        jobs = [job for job in jobs if job.state != DONE]
        if len(jobs) <= 1:
            for job in jobs:
                self._queue(job)
            return
        try:
            merged = jobs[0].adapter.merge([job.request for job in jobs])
        except Exception as exc:  # a bug must fail these requests, never the engine
            log.exception("accel_nb could not merge %d requests", len(jobs))
            for job in jobs:
                self._fail(job, errors.AccelError(f"internal error in accel_nb: {type(exc).__name__}: {exc}"))
            return
        batch = Job(merged, Sink(), Priority(min(job.priority for job in jobs)), members=jobs)
        batch.seq = next(self._seq)
        batch.t_submit = self._clock()
        self._jobs.add(batch)
        self._queue(batch)

    # -- models described before use (engine loop) -----------------------------------------
    def _catalog_key(self, adapter: Adapter, req: Request) -> tuple[Any, list[HttpCall]]:
        lanes = self._pool(req.provider).keys.lanes
        lane = next((lane for lane in lanes if not lane.retired), lanes[0])
        calls = adapter.describe(req, lane.base_url, lane.key.reveal() if lane.key else None)
        return (req.provider, tuple(call.url for call in calls)), calls

    def _prepare(self, job: Job) -> None:
        """Check a request against its model's description (fetched first if need be): bad input
        fails here, alone, before it is queued or batched."""
        key, calls = self._catalog_key(job.adapter, job.request)
        description = self._catalog.get(key)
        if description is MISSING:
            job.task = self.loop.create_task(self._describe_then_place(job, key, calls))
        else:
            self._checked(job, description)

    async def _describe_then_place(self, job: Job, key: Any, calls: list[HttpCall]) -> None:
        fetch = partial(self._fetch_description, job.adapter, job.request.model, calls)
        try:
            description = await self._catalog.load(key, fetch)
        except asyncio.CancelledError:
            self._fail(job, job.cancel_reason or errors.CancelledError("cancelled", provider=job.request.provider))
            return
        except errors.AccelError as exc:
            self._fail(job, copy.copy(exc))  # every request waiting on this fetch got the same error object
            return
        job.task = None
        self._checked(job, description)

    def _checked(self, job: Job, description: Any) -> None:
        try:
            job.adapter.prepare(job.request, description)
        except errors.AccelError as exc:
            self._fail(job, exc)
            return
        except Exception as exc:  # a bug must fail one request, never the engine
            log.exception("accel_nb internal error in request %s", job.id)
            self._fail(job, errors.AccelError(f"internal error in accel_nb: {type(exc).__name__}: {exc}"))
            return
        self._place(job)

    async def _fetch_description(self, adapter: Adapter, model: str, calls: list[HttpCall]) -> Any:
        """The first of ``calls`` that is not a 404, learned; retried like any request."""

        async def once() -> Any:
            missing: errors.AccelError | None = None
            for index, call in enumerate(calls):
                try:
                    body = await self._direct(adapter, call)
                except errors.NotFoundError as exc:
                    missing = exc
                    continue
                return adapter.learn_model(index, body)
            raise errors.NotFoundError(
                f"{adapter.id} does not serve a model {model!r}: {missing.message if missing else 'no route'}",
                provider=adapter.id,
                status=404,
                hint=f"client.models({adapter.id!r}) lists the models it serves",
            )

        try:
            return await once()
        except errors.AccelError as exc:
            if not exc.retryable:
                raise
            return await self.retry.run_after_failure(exc, once, started_at=self._clock(), lane_wait=lambda _: None)

    def _enqueue(self, job: Job) -> None:
        pool = self._pool(job.request.provider)
        heapq.heappush(pool.heap, (job.priority, job.seq, job))
        job.state = QUEUED
        job.in_queue = True
        self._queued += 1
        self._pump(pool)

    def _left_queue(self, job: Job) -> None:
        if job.in_queue:
            job.in_queue = False
            self._queued -= 1
            if self._overflow and not self._draining:
                self._draining = True  # admitted on the next loop turn: never re-enter a pump
                self.loop.call_soon(self._drain_overflow)

    def _drain_overflow(self) -> None:
        self._draining = False
        overflow = self._overflow
        while overflow and self._queued < self.settings.queue.max_size:
            waiting = heapq.heappop(overflow)[2]
            if waiting.state != DONE:
                self._enqueue(waiting)

    def _add_lane(self, provider: str, key: Secret) -> None:
        pool = self._pool(provider)
        lanes = pool.keys.lanes
        if any(lane.key == key for lane in lanes):
            return
        for lane in lanes:
            if lane.key is None or lane.key.source == "simulator":
                lane.retired = "replaced by a real key"
        lanes.append(self._lane(provider, key))
        self._pump(pool)

    def _lane(self, provider: str, key: Secret | None) -> Lane:
        cfg = self.settings.providers[provider]
        label = key.label if key else "no key"
        state = self._state
        return Lane(
            provider,
            key,
            cfg.base_url,
            cfg.concurrency,
            state.limiter(provider, label, cfg.rpm, cfg.tpm),
            state.breaker(provider, label, self.settings.breaker),
            state.cooldown(provider, label),
        )

    def _pool(self, provider: str) -> _ProviderPool:
        pool = self._pools.get(provider)
        return pool if pool is not None else self._new_pool(provider)

    def _new_pool(self, provider: str) -> _ProviderPool:
        # (apart from `_pool`: its comprehension would make every call of `_pool` build two cells)
        cfg = self.settings.providers[provider]
        lanes = [self._lane(provider, key) for key in (cfg.keys or [None])]
        pool = self._pools[provider] = _ProviderPool(provider, KeyPool(lanes, cfg.key_strategy))
        return pool

    def _pump(self, pool: _ProviderPool) -> None:
        """Grant lanes to the best waiting jobs while lanes can take them."""
        heap = pool.heap
        while heap:
            job = heap[0][2]
            if job.state == DONE:
                heapq.heappop(heap)
                continue
            lane, wait = pool.keys.pick(job.cost_tokens)
            if lane is None:
                if wait is None:
                    heapq.heappop(heap)
                    self._left_queue(job)
                    self._refuse(job, self._unavailable(pool))
                    continue
                if wait != float("inf"):
                    self._wake_later(pool, wait)
                return
            heapq.heappop(heap)
            self._left_queue(job)
            lane.start(job.cost_tokens)
            job.lane = lane
            job.state = RUNNING
            if job.grant is not None:
                grant, job.grant = job.grant, None
                if not grant.done():
                    grant.set_result(lane)
            else:
                job.task = self.loop.create_task(self._run(job, lane))

    def _refuse(self, job: Job, error: errors.AccelError) -> None:
        """No lane can ever take this job now: answer it (or its waiting retry) with ``error``."""
        if job.grant is not None:
            grant, job.grant = job.grant, None
            if not grant.done():
                grant.set_exception(error)
        else:
            self._fail(job, error)

    def _wake_later(self, pool: _ProviderPool, wait: float) -> None:
        at = self._clock() + wait
        if pool.wake is not None and pool.wake_at <= at:
            return
        if pool.wake is not None:
            pool.wake.cancel()
        pool.wake_at = at
        pool.wake = self.loop.call_later(wait, self._woken, pool)

    def _woken(self, pool: _ProviderPool) -> None:
        pool.wake, pool.wake_at = None, float("inf")
        self._pump(pool)

    def _unavailable(self, pool: _ProviderPool) -> errors.AccelError:
        lanes = pool.keys.lanes
        if all(lane.retired for lane in lanes):
            keys = ", ".join(lane.label for lane in lanes)
            return errors.AuthenticationError(
                f"every key for {pool.id} was rejected: {keys}",
                provider=pool.id,
                status=401,
                hint=f"set a valid {_key_env(pool.id)} or run `%accel keys`",
            )
        retry_at = min(lane.breaker.retry_at for lane in lanes if not lane.retired)
        wait = max(0.0, retry_at - self._clock())
        return errors.CircuitOpenError(
            f"{pool.id} failed {self.settings.breaker.failures} times in a row; its circuit breaker is open "
            f"and lets a probe through in {wait:.1f} s",
            provider=pool.id,
            retry_after_s=wait,
            hint="try again then, or use another provider",
        )

    # -- running (engine loop) ----------------------------------------------------------
    async def _run(self, job: Job, lane: Lane) -> None:
        try:
            try:
                reply = await self._attempt(job, lane)
            except errors.AccelError as exc:
                if not self._should_retry(job, exc):
                    raise
                reply = await self.retry.run_after_failure(
                    exc,
                    partial(self._reattempt, job),
                    started_at=job.t_start,
                    lane_wait=partial(self._lane_wait, job),
                    retryable=partial(self._should_retry, job),
                    before_sleep=partial(self._on_retry, job),
                )
            self._succeed(job, reply)
        except asyncio.CancelledError:
            self._fail(job, job.cancel_reason or errors.CancelledError("cancelled", provider=job.request.provider))
        except errors.AccelError as exc:
            self._fail(job, exc)
        except Exception as exc:  # a bug must fail one request, never the engine
            log.exception("accel_nb internal error in request %s", job.id)
            self._fail(job, errors.AccelError(f"internal error in accel_nb: {type(exc).__name__}: {exc}"))

    def _should_retry(self, job: Job, exc: BaseException) -> bool:
        if not isinstance(exc, errors.AccelError) or job.state == DONE:
            return False
        if job.delivered:  # part of the answer is already on the user's screen
            if exc.retryable:
                exc.retryable = False
                exc.message += " (after part of the answer had arrived, so it was not retried)"
            return False
        if isinstance(exc, errors.AuthenticationError) and exc.status == 401:
            return bool(self._pool(job.request.provider).keys.live())
        return exc.retryable

    def _lane_wait(self, job: Job, exc: errors.AccelError) -> float | None:
        """For a key-scoped error: seconds until some live key of the provider is out of cooldown."""
        if _outcome(exc) not in (_RATE_LIMITED, _REJECTED_KEY):
            return None
        waits = [lane.cooldown.remaining_s() for lane in self._pool(job.request.provider).keys.live()]
        return min(waits, default=0.0)

    def _on_retry(self, job: Job, state: Any) -> None:
        req = job.request
        error = type(state.outcome.exception()).__name__
        for one in job.members or (job,):
            self.tracker.retry(one.id, req.provider, req.model, state.attempt_number, error, state.upcoming_sleep)

    async def _reattempt(self, job: Job) -> Reply:
        grant = job.grant = self.loop.create_future()
        self._enqueue(job)  # may answer the grant at once (a free lane, or none can ever serve)
        lane = await grant
        return await self._attempt(job, lane)

    async def _attempt(self, job: Job, lane: Lane) -> Reply:
        """One HTTP exchange on ``lane``; the lane learns from how it went."""
        job.attempts += 1
        req = job.request
        if job.attempts == 1:
            job.t_start = self._clock()
            if job.members is None:
                self.tracker.emit("started", job.id, req.provider, req.model, key=lane.label)
            else:
                for member in job.members:
                    if member.state != DONE:
                        self.tracker.emit("started", member.id, req.provider, req.model, key=lane.label,
                                          batch_size=len(job.members))
        outcome, error = _NEUTRAL, None
        call: HttpCall | None = None
        try:
            key = lane.key.reveal() if lane.key else None
            if lane.info is UNKNOWN:
                await self._discover(job.adapter, lane)
            adapter = job.adapter
            base_url = lane.base_url
            if adapter.services:  # an API of several servers (OPEA): the one this request goes to
                base_url = self.settings.providers[req.provider].services.get(adapter.service(req), base_url)
            call = adapter.build(req, base_url, key, lane.info)
            if adapter.transport is not None:  # an SDK binding (boto3) run in a thread pool
                reply, (job.http_status, job.provider_request_id) = await self._sdk(adapter).run(
                    lane, key, call, adapter, req
                )
            else:
                if req.headers:
                    call.headers.update(req.headers)
                if adapter.trace_header:
                    call.headers[adapter.trace_header] = job.id
                self._watchdog.watch(job)  # until `finally`: reads silent past the timeout end the exchange
                reply = await (self._stream(job, lane, call) if req.stream else self._call(job, lane, call))
            outcome = _SUCCESS
            return reply
        except errors.AccelError as exc:
            error, outcome = exc, _outcome(exc)
            raise self._annotate(exc, job, lane) from None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, asyncio.CancelledError) as exc:
            failure: BaseException = exc
            if isinstance(exc, asyncio.CancelledError):
                if not job.stalled or job.cancel_reason is not None:  # the caller's cancel wins
                    raise
                job.stalled = False  # the watchdog's: the read timeout ran out
                _uncancel(job.task)
                failure = asyncio.TimeoutError()
            url = call.url if call else lane.base_url
            error = transport_error(failure, req.provider, url, self.settings.read_timeout_s)
            outcome = _FAILURE
            raise self._annotate(error, job, lane) from None
        finally:
            self._watchdog.unwatch(job)
            self._release(lane, outcome, error)

    def _silent(self, job: Job) -> None:
        """The watchdog's verdict: ``job``'s exchange sent nothing for the read timeout."""
        if job.task is not None and not job.task.done() and job.cancel_reason is None:
            job.stalled = True
            job.task.cancel()

    def _sdk(self, adapter: Adapter) -> SdkRunner:
        runner = self._sdk_runners.get(adapter.id)
        if runner is None:
            cfg, settings = self.settings.providers[adapter.id], self.settings
            width = cfg.concurrency * max(1, len(cfg.keys))
            runner = self._sdk_runners[adapter.id] = SdkRunner(
                adapter.transport, cfg.options, settings.connect_timeout_s, settings.read_timeout_s, width
            )
        return runner

    async def _discover(self, adapter: Adapter, lane: Lane) -> None:
        """Run the adapter's discovery call once per lane; concurrent requests share it, and
        a request cancelled meanwhile does not cancel it for the others."""
        if lane.discovery is None:
            call = adapter.discover(lane.base_url, lane.key.reveal() if lane.key else None)
            if call is None:
                lane.info = None
                return
            lane.discovery = self.loop.create_task(self._learn(adapter, lane, call))
        await asyncio.shield(lane.discovery)

    async def _learn(self, adapter: Adapter, lane: Lane, call: HttpCall) -> None:
        try:
            lane.info = adapter.learn(await self._direct(adapter, call))
        except BaseException:
            lane.discovery = None  # the next request tries again
            raise

    async def _direct(self, adapter: Adapter, call: HttpCall) -> Any:
        """One call outside the queue (discovery, model lists, key checks), errors classified."""
        try:
            async with self._transport.send(call, read_timeout=True) as resp:
                body = await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise transport_error(exc, adapter.id, call.url, self.settings.read_timeout_s) from None
        if resp.status >= 400:
            error = adapter.classify(resp.status, resp.headers, body)
            error.provider = adapter.id
            error.message = self.redact(error.message)
            error.args = (error.message,)
            raise error
        return decode_json(body, adapter.id, resp.status) if body.strip() else None  # e.g. a health check

    async def _call(self, job: Job, lane: Lane, call: HttpCall) -> Reply:
        adapter = job.adapter
        async with self._transport.send(call) as resp:
            job.t_read = self._watchdog.now()
            body = await resp.read()
            self._observe(job, lane, resp)
        if resp.status >= 400:
            raise adapter.classify(resp.status, resp.headers, body)
        data = None if call.empty_ok and not body else decode_json(body, adapter.id, resp.status)
        reply = adapter.parse(job.request, data)
        if reply.raw is data and data is not None:
            reply.raw = body  # Response.raw decodes it again if asked (see types._JsonOnRead)
        if reply.usage is None:
            reply.usage = adapter.header_usage(resp.headers)
        return reply

    async def _stream(self, job: Job, lane: Lane, call: HttpCall) -> Reply:
        adapter = job.adapter
        parts: list[str] = []
        last = Delta()
        async with self._transport.send(call) as resp:
            job.t_read = self._watchdog.now()
            self._observe(job, lane, resp)
            if resp.status >= 400:
                raise adapter.classify(resp.status, resp.headers, await resp.read())
            try:
                await self._read_stream(job, resp, parts, last)
            except BaseException:
                resp.close()  # a cancelled or failed stream must not return its socket to the pool
                raise
        if last.finish_reason is None:
            raise errors.ConnectionError(f"the stream from {adapter.id} ended before the answer was complete")
        usage = None
        if last.input_tokens is not None or last.output_tokens is not None:
            usage = Usage(last.input_tokens or 0, last.output_tokens or 0)
        return Reply(text="".join(parts), usage=usage, finish_reason=last.finish_reason, raw=last.raw)

    async def _read_stream(self, job: Job, resp: aiohttp.ClientResponse, parts: list[str], last: Delta) -> None:
        adapter, req = job.adapter, job.request
        decoder = decoder_for(adapter.stream_format)
        now = self._watchdog.now
        async for chunk in resp.content.iter_any():  # whatever each read brought: frames, not lines
            job.t_read = now()
            for event, data in decoder.feed(chunk):
                delta = adapter.parse_frame(req, event, data)
                if delta is not None:
                    self._apply(job, delta, parts, last)
        for event, data in decoder.close():
            delta = adapter.parse_frame(req, event, data)
            if delta is not None:
                self._apply(job, delta, parts, last)

    def _apply(self, job: Job, delta: Delta, parts: list[str], last: Delta) -> None:
        if delta.error is not None:
            raise delta.error
        if delta.text:
            if job.t_first is None:
                job.t_first = self._clock()
                req = job.request
                self.tracker.emit("first_token", job.id, req.provider, req.model)
            parts.append(delta.text)
            job.delivered = True
            job.sink.chunk(delta.text)
        elif delta.progress is not None:  # not part of the answer: a retry may start over
            job.sink.progress(delta.progress)
        if delta.input_tokens is not None:
            last.input_tokens = delta.input_tokens
        if delta.output_tokens is not None:
            last.output_tokens = delta.output_tokens
        if delta.finish_reason is not None:
            last.finish_reason = delta.finish_reason
        if delta.raw is not None:
            last.raw = delta.raw

    def _observe(self, job: Job, lane: Lane, resp: aiohttp.ClientResponse) -> None:
        job.http_status = resp.status
        job.provider_request_id = resp.headers.get(job.adapter.request_id_header)
        limits = job.adapter.rate_limits(resp.headers)
        if limits is not None:
            lane.limiter.observe(limits)

    def _annotate(self, exc: errors.AccelError, job: Job, lane: Lane) -> errors.AccelError:
        exc.provider = job.request.provider
        exc.request_id = job.id
        exc.message = self.redact(exc.message)
        exc.args = (exc.message,)
        if isinstance(exc, errors.AuthenticationError) and lane.key is not None:
            exc.message = f"{exc.message} [key {lane.label}]"
            exc.args = (exc.message,)
            if job.adapter.key_env:
                exc.hint = f"set a valid {_key_env(job.request.provider)} or run `%accel keys`"
        return exc

    def _release(self, lane: Lane, outcome: int, error: errors.AccelError | None) -> None:
        lane.finish()
        breaker = lane.breaker
        if outcome == _SUCCESS:
            breaker.on_success()
            lane.cooldown.warm()
        elif outcome == _FAILURE:
            breaker.on_failure()
        else:
            breaker.on_neutral()
            if outcome == _RATE_LIMITED and error is not None:
                retry = self.settings.retry
                lane.cooldown.cool(error.retry_after_s, retry.backoff_base_s, retry.backoff_max_s)
            elif outcome == _REJECTED_KEY:
                lane.retired = "rejected (401)"
        self._pump(self._pool(lane.provider))

    # -- endings (engine loop) -----------------------------------------------------------
    def _serve_from_cache(self, job: Job) -> bool:
        cache = self._cache_store()
        value = cache.get(job.cache_key) if cache else None
        if value is None:
            return False
        value["usage"] = Usage(**value["usage"])
        # nothing was sent, so nothing was spent: the cost of a hit is zero
        response = Response(**{**value, "request_id": job.id, "cached": True, "attempts": 0, "cost_usd": 0.0})
        job.t_start = self._clock()
        self._finish(job, response, None)
        return True

    def _cache_store(self) -> SqliteCache | None:
        if self._cache is None and self.settings.cache_path is not None:
            self._cache = SqliteCache(self.settings.cache_path)
        return self._cache

    def _succeed(self, job: Job, reply: Reply) -> None:
        if job.members is not None:
            self._settle_batch(job, reply, None)
            return
        req = job.request
        usage = reply.usage
        if usage is None:
            usage = Usage(estimate_prompt_tokens(req.messages, req.system) if req.messages else
                          sum(count_tokens(t) for t in req.inputs), count_tokens(reply.text), estimated=True)
        now = self._clock()
        if job.lane is not None:
            job.lane.limiter.settle(job.cost_tokens, usage.total_tokens or 0)
        response = Response(
            text=reply.text,
            provider=req.provider,
            model=reply.model or req.model,
            request_id=job.id,
            usage=usage,
            latency_s=now - job.t_start,
            ttft_s=None if job.t_first is None else job.t_first - job.t_start,
            attempts=job.attempts,
            cost_usd=self.prices.cost(req.provider, req.model, usage),
            finish_reason=reply.finish_reason,
            raw=reply.raw,
        )
        if job.cache_key is not None and req.kind in TEXT_KINDS:
            self._store_in_cache(job.cache_key, response)
        result = job.finish(reply, response) if job.finish is not None else response
        self._finish(job, response, None, result)

    def _store_in_cache(self, key: str, response: Response) -> None:
        # (apart from `_succeed`: its comprehensions would make every answer build two cells)
        if cache := self._cache_store():
            stored = {k: getattr(response, k) for k in _STORED_FIELDS}
            stored["usage"] = {k: getattr(response.usage, k) for k in _STORED_USAGE}
            cache.put(key, stored)

    def _fail(self, job: Job, error: errors.AccelError) -> None:
        if job.members is not None:
            self._settle_batch(job, None, error)
            return
        error.provider = error.provider or job.request.provider
        error.request_id = error.request_id or job.id
        self._finish(job, None, error)

    def _settle_batch(self, batch: Job, reply: Reply | None, error: errors.AccelError | None) -> None:
        """A coalesced batch ended: its reply is split by rows, and each member is answered,
        tracked and recorded as its own request (with the batch's start, attempts and key)."""
        if batch.state == DONE:
            return
        batch.state = DONE
        self._left_queue(batch)
        self._jobs.discard(batch)
        if batch.grant is not None and not batch.grant.done():
            batch.grant.cancel()
        members, replies = batch.members or [], None
        if reply is not None:
            try:
                replies = batch.adapter.split(batch.request, reply, [member.request for member in members])
            except errors.AccelError as exc:
                error = exc
        for index, member in enumerate(members):
            if member.state == DONE:  # cancelled or timed out meanwhile: already answered
                continue
            member.t_start, member.attempts, member.lane = batch.t_start, batch.attempts, batch.lane
            member.http_status, member.provider_request_id = batch.http_status, batch.provider_request_id
            if replies is not None:
                self._succeed(member, replies[index])
            else:
                failure = copy.copy(error)
                failure.request_id = None  # each member's own id
                self._fail(member, failure)

    def _finish(self, job: Job, response: Response | None, error: errors.AccelError | None, result: Any = None) -> None:
        if job.state == DONE:
            return
        job.state = DONE
        self._left_queue(job)
        self._jobs.discard(job)
        if job.timer is not None:
            job.timer.cancel()
        if job.grant is not None and not job.grant.done():
            job.grant.cancel()
        try:
            row = self._row(job, response, error)
            self.tracker.finished(row)
            if self.ledger is not None:
                self.ledger.record(row)
        except Exception:  # bookkeeping must never keep an answer from its caller
            log.exception("accel_nb could not record request %s", job.id)
        finally:
            if error is not None:
                job.sink.fail(error)
            else:
                job.sink.done(result if result is not None else response)

    def _row(self, job: Job, response: Response | None, error: errors.AccelError | None) -> dict[str, Any]:
        req = job.request
        store = self.settings.store_content
        prompt = None  # as JSON text: a row of plain values is one the garbage collector never tracks
        if store and req.messages:
            prompt = orjson.dumps({"system": req.system, "messages": req.messages}).decode()
        elif store and (asked := req.inputs or job.adapter.summary(req)) is not None:
            # params pass as the transport sends them (keys need not be strings); anything else as text
            prompt = orjson.dumps(asked, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        now = self._clock()
        started = job.t_start or now
        return {
            "id": job.id,
            "created_at": job.created_at,
            "provider": req.provider,
            "model": response.model if response else req.model,
            "kind": req.kind,
            "priority": _PRIORITY_NAMES[job.priority],
            "status": "ok" if error is None else "error",
            "error_class": type(error).__name__ if error else None,
            "error_message": self.redact(error.message) if error else None,
            "http_status": error.status if error else job.http_status,
            "provider_request_id": job.provider_request_id,
            "attempts": job.attempts,
            "queue_s": (started - job.t_submit) if job.t_submit else None,
            "latency_s": response.latency_s if response else (now - started),
            "ttft_s": response.ttft_s if response else None,
            "input_tokens": response.usage.input_tokens if response else None,
            "output_tokens": response.usage.output_tokens if response else None,
            "usage_estimated": response.usage.estimated if response else None,
            "cost_usd": response.cost_usd if response else None,
            "cached": bool(response and response.cached),
            "finish_reason": response.finish_reason if response else None,
            "key": job.lane.label if job.lane else None,
            "batch_id": job.batch[0] if job.batch else None,
            "batch_index": job.batch[1] if job.batch else None,
            "prompt": prompt,
            "response": response.text if (response and store and req.kind in TEXT_KINDS) else None,
        }

    def _cancel(self, item: tuple[Job, errors.AccelError | None]) -> None:
        job, reason = item
        reason = reason or errors.CancelledError("cancelled by the caller", provider=job.request.provider)
        self._stop_job(job, reason)

    def _expire(self, job: Job) -> None:
        job.timer = None
        self._stop_job(job, errors.TimeoutError(
            f"no complete answer within the {job.timeout_s:g} s timeout", provider=job.request.provider,
            retryable=False, hint="raise timeout= if the model is just slow",
        ))

    def _stop_job(self, job: Job, reason: errors.AccelError) -> None:
        if job.state == DONE:
            return
        task = job.task
        if task is None or task.done():
            self._fail(job, reason)
            return
        job.cancel_reason = reason
        task.cancel()
        if inspect.getcoroutinestate(task.get_coro()) == inspect.CORO_CREATED:
            # cancelled before its first step: not a line of it will run, so neither will its
            # handlers that give back the lane and answer the job (a timer or a cancel that
            # arrives in the same loop turn as the lane's grant)
            if job.lane is not None and job.state == RUNNING:
                self._release(job.lane, _NEUTRAL, None)
            self._fail(job, reason)

    async def _shutdown(self) -> None:
        for job in list(self._jobs):
            self._stop_job(job, errors.CancelledError("the client was closed", provider=job.request.provider))
        tasks = [job.task for job in list(self._jobs) if job.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        for pool in self._pools.values():
            if pool.wake is not None:
                pool.wake.cancel()
        self._coalescer.close()
        self._watchdog.close()
        for runner in self._sdk_runners.values():
            runner.close()
        await self._transport.close()

    def _snapshot(self) -> dict[str, Any]:
        providers: dict[str, Any] = {}
        for pid in self.settings.providers:
            metrics = self.tracker.providers.get(pid)
            pool = self._pools.get(pid)
            if metrics is None and pool is None:
                continue
            entry = (metrics or self.tracker.metrics(pid)).summary()
            lanes = pool.keys.lanes if pool else []
            waiting = [0] * len(_PRIORITY_NAMES)
            for _, _, job in pool.heap if pool else ():
                if job.state != DONE:
                    waiting[job.priority] += 1
            entry["queued"] = sum(waiting)
            entry["queued_by_priority"] = dict(zip(_PRIORITY_NAMES, waiting))
            entry["in_flight"] = sum(lane.in_flight for lane in lanes)
            entry["lanes"] = [
                {
                    "key": lane.label,
                    "state": lane.state(),
                    "in_flight": lane.in_flight,
                    "concurrency": lane.concurrency,
                    "cooling_s": lane.cooldown.remaining_s(),
                    "breaker": lane.breaker.state,
                    "retired": lane.retired,
                }
                for lane in lanes
            ]
            providers[pid] = entry
        return {
            "providers": providers,
            "queued": self._queued,
            "waiting": sum(1 for *_, job in self._overflow if job.state != DONE),
            "in_flight": sum(p["in_flight"] for p in providers.values()),
        }


def _outcome(exc: errors.AccelError) -> int:
    if isinstance(exc, errors.AuthenticationError) and exc.status == 401:
        return _REJECTED_KEY
    if isinstance(exc, errors.RateLimitError) and not isinstance(exc, errors.QuotaExceededError):
        return _RATE_LIMITED
    if isinstance(exc, (errors.ServerError, errors.OverloadedError, errors.TimeoutError, errors.ConnectionError)):
        return _FAILURE
    return _NEUTRAL


def _uncancel(task: asyncio.Task[Any] | None) -> None:
    """Python 3.11+ counts cancellations: a task that turned one into a result must say so."""
    uncancel = getattr(task, "uncancel", None)
    if uncancel is not None:
        uncancel()


def _key_env(provider: str) -> str:
    return get_adapter(provider).key_env[0] if get_adapter(provider).key_env else "the provider's key"
