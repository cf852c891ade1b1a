"""Pure policy pieces: breaker, limiter, key pool, retry strategies, secrets, prices, tokens."""

from __future__ import annotations

import asyncio
import pickle

import pytest
from tenacity import RetryCallState

from accel_nb import checks, errors
from accel_nb.config import RetrySettings
from accel_nb.engine.breaker import CircuitBreaker
from accel_nb.engine.cooldown import Cooldown
from accel_nb.engine.keys import KeyPool
from accel_nb.engine.lanes import Lane
from accel_nb.engine.limiter import RateLimiter, TokenBucket
from accel_nb.engine.retry import RetryPolicy, stop_at_deadline, wait_for_hint
from accel_nb.pricing import PriceTable
from accel_nb.providers.base import RateLimits
from accel_nb.secret import Redactor, Secret
from accel_nb.tokens import count_tokens, split_tokens
from accel_nb.types import Usage


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_transitions():
    clock = Clock()
    breaker = CircuitBreaker(failures=3, cooldown_s=10, successes=2, clock=clock)
    for _ in range(2):
        breaker.on_failure()
    assert breaker.state == "closed"
    breaker.on_success()  # a success resets the streak
    for _ in range(3):
        breaker.on_failure()
    assert breaker.state == "open" and not breaker.available()
    clock.now += 9.9
    assert breaker.state == "open"
    clock.now += 0.2
    assert breaker.state == "half_open" and breaker.available()
    breaker.on_start()
    assert not breaker.available()  # exactly one probe at a time
    breaker.on_success()
    assert breaker.state == "half_open" and breaker.available()  # needs 2 successes
    breaker.on_start()
    breaker.on_success()
    assert breaker.state == "closed"


def test_breaker_failed_probe_reopens_and_neutral_frees_the_slot():
    clock = Clock()
    breaker = CircuitBreaker(failures=1, cooldown_s=5, clock=clock)
    breaker.on_failure()
    clock.now += 5
    breaker.on_start()
    breaker.on_neutral()  # a 400 says nothing about health
    assert breaker.state == "half_open" and breaker.available()
    breaker.on_start()
    breaker.on_failure()
    assert breaker.state == "open" and breaker.retry_at == clock.now + 5


def test_token_bucket_and_learning():
    bucket = TokenBucket(rate=1.0, capacity=2, now=0)
    assert bucket.wait_s(1, 0) == 0
    bucket.take(2, 0)
    assert bucket.wait_s(1, 0) == pytest.approx(1.0)
    assert bucket.wait_s(1, 0.5) == pytest.approx(0.5)
    learned = TokenBucket(rate=None, now=0)
    assert learned.wait_s(1, 0) == 0
    learned.learn(limit=100, remaining=0, reset_s=6.0, now=0)
    assert learned.wait_s(1, 0) == pytest.approx(0.06)  # 100 requests refill over 6 s


def test_rate_limiter_slows_down_before_the_server_says_429():
    clock = Clock()
    limiter = RateLimiter(rpm=60, clock=clock)
    for _ in range(60):
        assert limiter.wait_s(0) == 0
        limiter.take(0)
    assert limiter.wait_s(0) == pytest.approx(1.0)
    limiter.observe(RateLimits(requests_limit=60, requests_remaining=0, requests_reset_s=30))
    assert limiter.wait_s(0) > 0


def test_an_unpaced_limiter_learns_only_once_a_budget_is_half_spent():
    limiter = RateLimiter(clock=Clock())
    limiter.observe(RateLimits(requests_limit=100, requests_remaining=90, tokens_limit=1000, tokens_remaining=900))
    assert limiter.requests.rate is None and limiter.tokens.rate is None and limiter.wait_s(10) == 0
    limiter.observe(RateLimits(requests_limit=100, requests_remaining=40, requests_reset_s=30))
    assert limiter.requests.rate == pytest.approx(60 / 30) and limiter.tokens.rate is None


def lane(clock, name="k", concurrency=1):
    return Lane("openai", Secret(f"sk-{name}-0123456789", "env:X"), "http://x", concurrency,
                RateLimiter(clock=clock), CircuitBreaker(clock=clock), Cooldown(clock))


def test_key_pool_rotates_and_skips_cooling_keys():
    clock = Clock()
    lanes = [lane(clock, "a"), lane(clock, "b"), lane(clock, "c")]
    pool = KeyPool(lanes, "round_robin")
    picked = []
    for _ in range(3):
        chosen, _ = pool.pick(0)
        chosen.start(0)
        picked.append(chosen)
    assert picked == lanes and pool.pick(0) == (None, float("inf"))
    for item in lanes:
        item.finish()
    lanes[0].cooldown.cool(5.0, 0.5, 30)
    assert pool.pick(0)[0] is not lanes[0]
    lanes[1].retired = lanes[2].retired = "401"
    assert pool.pick(0) == (None, pytest.approx(5.0))
    lanes[0].retired = "401"
    assert pool.pick(0) == (None, None)


def test_cooldown_takes_the_hint_else_backs_off_with_jitter_until_a_success():
    clock = Clock()
    rest = Cooldown(clock)
    assert rest.cool(7.0, 0.5, 30) == 7.0 and rest.remaining_s() == pytest.approx(7.0)
    clock.now += 7
    waits = [rest.cool(None, 1.0, 4.0) for _ in range(4)]  # ceilings 2, 4, 4, 4 after the hinted 429
    assert all(c / 2 <= w <= c for w, c in zip(waits, (2.0, 4.0, 4.0, 4.0)))
    rest.warm()
    assert 0.5 <= rest.cool(None, 1.0, 4.0) <= 1.0


def test_key_pool_least_loaded_and_most_remaining():
    clock = Clock()
    a, b = lane(clock, "a", 4), lane(clock, "b", 4)
    a.in_flight = 3
    assert KeyPool([a, b], "least_loaded").pick(0)[0] is b
    a.in_flight = 0
    a.limiter.observe(RateLimits(requests_limit=100, requests_remaining=5, requests_reset_s=60))
    b.limiter.observe(RateLimits(requests_limit=100, requests_remaining=90, requests_reset_s=60))
    assert KeyPool([a, b], "most_remaining").pick(0)[0] is b
    with pytest.raises(ValueError, match="key_strategy"):
        KeyPool([a], "random")


def state_with(exc, attempt=1):
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.set_exception((type(exc), exc, None))
    return state


def test_wait_honours_hints_and_scopes():
    wait = wait_for_hint(lambda rs: 99.0, lane_wait=lambda e: 0.0 if isinstance(e, errors.RateLimitError) else None)
    assert wait(state_with(errors.OverloadedError("x", retry_after_s=2.5))) == 2.5
    assert wait(state_with(errors.ServerError("x"))) == 99.0
    assert wait(state_with(errors.RateLimitError("x", retry_after_s=7))) == 0.0  # another key is free


def test_stop_at_deadline_looks_at_the_next_wait():
    clock = Clock()
    stop = stop_at_deadline(clock.now + 10, clock)
    state = state_with(errors.ServerError("x"))
    state.upcoming_sleep = 5
    assert not stop(state)
    state.upcoming_sleep = 11
    assert stop(state)


def test_retry_policy_replays_the_first_failure_and_sleeps_the_hint():
    slept = []

    async def sleep(seconds):
        slept.append(seconds)

    policy = RetryPolicy(RetrySettings(max_attempts=4), sleep=sleep)
    calls = []

    async def attempt():
        calls.append(1)
        if len(calls) < 2:
            raise errors.ServerError("again", retry_after_s=0.5)
        return "ok"

    result = asyncio.run(policy.run_after_failure(
        errors.OverloadedError("first", retry_after_s=1.25), attempt, started_at=0.0 + __import__("time").monotonic(),
        lane_wait=lambda e: None))
    assert result == "ok" and slept == [1.25, 0.5] and len(calls) == 2


def test_retry_policy_stops_after_max_attempts_and_never_retries_permanent_errors():
    async def sleep(seconds):
        pass

    policy = RetryPolicy(RetrySettings(max_attempts=3), sleep=sleep)
    calls = []

    async def failing():
        calls.append(1)
        raise errors.ServerError("down")

    import time
    with pytest.raises(errors.ServerError):
        asyncio.run(policy.run_after_failure(errors.ServerError("down"), failing, started_at=time.monotonic(),
                                             lane_wait=lambda e: None))
    assert len(calls) == 2  # attempt 1 was the replayed failure

    async def bad():
        calls.append(1)
        raise errors.BadRequestError("no")

    calls.clear()
    with pytest.raises(errors.BadRequestError):
        asyncio.run(policy.run_after_failure(errors.ServerError("down"), bad, started_at=time.monotonic(),
                                             lane_wait=lambda e: None))
    assert len(calls) == 1


def test_secret_never_prints_and_cannot_be_pickled():
    key = Secret("sk-proj-ABCDEFGHIJKLMNOP1234", "env:OPENAI_API_KEY")
    assert "ABCDEFGH" not in repr(key) and repr(key).endswith("…1234)") and key.last4 == "…1234"
    assert "ABCDEFGH" not in f"{key} {[key]}"
    with pytest.raises(TypeError):
        pickle.dumps(key)
    redact = Redactor()
    redact.add([key])
    assert redact("echo sk-proj-ABCDEFGHIJKLMNOP1234 back") == "echo …1234 back"


def test_errors_pickle_and_print_where():
    err = errors.RateLimitError(
        "slow down", provider="openai", status=429, request_id="r1", retry_after_s=2, hint="wait"
    )
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.provider, copy.status, copy.retry_after_s, copy.retryable) == ("openai", 429, 2, True)
    assert str(copy) == "slow down (openai, HTTP 429, request r1)\n→ wait"


def test_prices():
    table = PriceTable.load()
    assert table.cost("openai", "gpt-4o-mini", Usage(1_000_000, 1_000_000)) == pytest.approx(0.75)
    assert table.cost("openai", "gpt-4o-mini-2024-07-18", Usage(1000, 0)) == pytest.approx(0.00015)
    assert table.cost("openai", "my-finetune", Usage(10, 10)) is None


def test_price_override(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text('[openai]\n"my-finetune" = { input = 1.0, output = 2.0 }\n')
    assert PriceTable.load(path).cost("openai", "my-finetune", Usage(1_000_000, 0)) == 1.0


def test_tokens_round_trip():
    text = "Backpressure keeps fast producers from overwhelming slow consumers."
    assert "".join(split_tokens(text)) == text
    assert count_tokens(text) == len(split_tokens(text)) > len(text.split())


def test_request_ids_are_version_4_uuids():
    import uuid

    from accel_nb.engine.job import request_id

    ids = {request_id() for _ in range(5000)}
    assert len(ids) == 5000
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


def test_ledger_rows_of_every_shape_read_back_as_recorded(tmp_path):
    from accel_nb.engine.ledger import COLUMNS, SqliteLedger

    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")
    base = dict.fromkeys(COLUMNS) | {"created_at": 1.0, "provider": "openai", "model": "m", "kind": "chat",
                                     "status": "ok", "cached": False}
    rows = [
        base | {"id": "plain"},
        base | {"id": "full", "usage_estimated": True, "cached": True, "ttft_s": 0.5, "batch_id": "b",
                "batch_index": 0, "prompt": '{"messages":[{"role":"user","content":"Hi"}]}',
                "response": ""},
        base | {"id": "failed", "status": "error", "error_class": "BadRequestError", "error_message": "no",
                "http_status": 400, "usage_estimated": False},
        base | {"id": "plain-again"},
    ]
    for row in rows:
        ledger.record(row)
    stored = {row["id"]: row for row in ledger.query(10)}  # (query flushes the writer)
    for row in rows:
        expected = dict(row)
        for flag in ("usage_estimated", "cached"):  # SQLite keeps booleans as 0 / 1
            expected[flag] = None if row[flag] is None else int(row[flag])
        assert stored[row["id"]] == expected
    ledger.close()


def test_ledger_migrations_on_a_blank_and_on_an_old_database(tmp_path):
    import sqlite3

    from accel_nb.engine.ledger import COLUMNS, SqliteLedger

    class OldLedger(SqliteLedger):  # the ledger as the first release wrote it
        MIGRATIONS = SqliteLedger.MIGRATIONS[:1]

    old = OldLedger(tmp_path / "ledger.sqlite3")
    insert = f"INSERT OR REPLACE INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    for i in range(3):
        old.write(insert, [f"id-{i}" if c == "id" else (100.0 + i if c == "created_at" else "x") for c in COLUMNS])
    old.close()
    ledger = SqliteLedger(tmp_path / "ledger.sqlite3")  # migrates the old file in place
    assert [row["id"] for row in ledger.query(10)] == ["id-2", "id-1", "id-0"]  # kept, newest first
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as db:
        applied = [name for (name,) in db.execute("SELECT name FROM _migrations ORDER BY name")]
        indexes = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'requests'")]
    assert applied == ["m001_requests", "m002_rowid_order"] and indexes == ["requests", "requests_batch"]
    ledger.close()
    blank = SqliteLedger(tmp_path / "blank.sqlite3")
    assert blank.query(5) == []
    blank.close()


def test_a_failing_hand_off_does_not_strand_the_posts_behind_it(caplog):
    from accel_nb.engine.loop import Mailbox

    def broken(_: object) -> None:
        raise RuntimeError("boom")

    async def main() -> list[int]:
        done: list[int] = []
        box = Mailbox(asyncio.get_running_loop())
        box.post(done.append, 1)
        box.post(broken)
        box.post(done.append, 2)
        await asyncio.sleep(0.05)
        return done

    assert asyncio.run(main()) == [1, 2]
    assert "hand-off" in caplog.text and "boom" in caplog.text


def test_generation_options_are_checked_and_kept_in_the_order_given():
    options = {"top_p": 0.5, "stop": ["\n"], "max_tokens": 9, "temperature": None, "messages": None}
    assert list(checks.params(options, "openai").items()) == [("top_p", 0.5), ("stop", ["\n"]), ("max_tokens", 9)]
    assert options == {"messages": None}  # the rest is left for the caller to refuse or use
    assert checks.params({"max_tokens": 4, "params": {"seed": 1}}, "openai") == {"max_tokens": 4, "seed": 1}
    for bad, says in [({"top_p": 1.5}, "top_p must be a number from 0 to 1"),
                      ({"temperature": True}, "temperature must be a number"),
                      ({"max_tokens": 0}, "max_tokens must be a positive integer"),
                      ({"stop": ["a", 1]}, "stop must be a string or a list of strings"),
                      ({"params": []}, "params must be a dict, not list"),
                      ({"params": {"f": object()}}, "params must be JSON-serializable")]:
        with pytest.raises(errors.BadRequestError, match=says):
            checks.params(bad, "openai")
