"""SQLite plumbing shared by the ledger and the cache: migrations and a batched writer.

Writes never happen on the engine loop: rows go into a queue and one background
thread commits them in batches (``executemany`` per statement), so a slow disk
cannot slow a request down.  The schema grows only by appending named migrations,
each applied once and recorded in ``_migrations``.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["SqliteStore"]

log = logging.getLogger("accel_nb")

_FLUSH = object()
_STOP = object()


class SqliteStore:
    """One database file: ``MIGRATIONS`` applied on open, writes batched on a thread."""

    MIGRATIONS: Sequence[tuple[str, str]] = ()
    BATCH_S = 0.25

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.reading() as db:
            self._migrate(db)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._urgent = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name=f"accel_nb-{self.path.stem}", daemon=True)
        self._writer.start()

    def connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A short-lived connection for the calling thread."""
        db = self.connect()
        try:
            yield db
        finally:
            db.close()

    def _migrate(self, db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
        done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
        for name, sql in self.MIGRATIONS:
            if name in done:
                continue
            db.execute("BEGIN IMMEDIATE")
            try:
                if not db.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                    for statement in filter(str.strip, sql.split(";")):
                        db.execute(statement)
                    db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, time.time()))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def write(self, sql: str, params: Sequence[Any]) -> None:
        """Queue one statement; it is committed within ``BATCH_S`` (or at the next flush)."""
        self._queue.put((sql, params))

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything queued so far is committed."""
        if not self._writer.is_alive():
            return
        done = threading.Event()
        self._queue.put((_FLUSH, done))
        self._urgent.set()
        done.wait(timeout)

    def close(self) -> None:
        if self._writer.is_alive():
            self._queue.put((_STOP, None))
            self._urgent.set()
            self._writer.join(10.0)

    def _write_loop(self) -> None:
        db = self.connect()
        try:
            while True:
                batch = [self._queue.get()]
                # let rows gather: one transaction per batch, not per request (a flush cuts it short)
                self._urgent.wait(self.BATCH_S)
                self._urgent.clear()
                while True:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                if not self._commit(db, batch):
                    return
        finally:
            db.close()

    def _commit(self, db: sqlite3.Connection, batch: list[tuple[Any, Any]]) -> bool:
        """Commit a batch; set flush events after the commit; ``False`` once told to stop."""
        groups: dict[str, list[Any]] = {}
        signals, keep_going = [], True
        for sql, params in batch:
            if sql is _FLUSH:
                signals.append(params)
            elif sql is _STOP:
                keep_going = False
            else:
                groups.setdefault(sql, []).append(params)
        if groups:
            for attempt in range(5):
                try:
                    db.execute("BEGIN IMMEDIATE")
                    for sql, rows in groups.items():
                        db.executemany(sql, rows)
                    db.execute("COMMIT")
                    break
                except sqlite3.OperationalError:  # locked by another kernel: back off, try again
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    time.sleep(0.05 * 2**attempt)
            else:
                log.error("accel_nb could not write %d rows to %s: the database stayed locked", len(batch), self.path)
        for event in signals:
            event.set()
        return keep_going
