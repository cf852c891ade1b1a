"""Exact-match response cache: the same request to the same model gives the stored answer.

Opt-in (per client or per call).  A request with temperature > 0 asks for variety,
so it is not cached unless the caller forces it.
"""

from __future__ import annotations

import collections
import copy
import hashlib
import json
import time
from typing import Any, Protocol

from ..types import Request
from .sqlite import SqliteStore

__all__ = ["Cache", "SqliteCache", "cache_key", "cacheable"]


def cache_key(req: Request) -> str:
    """A digest of everything that shapes the answer (never the key: answers don't depend on it)."""
    payload = json.dumps(
        [req.kind, req.provider, req.model, req.system, req.messages, req.inputs, req.params],
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def cacheable(req: Request, force: bool) -> bool:
    return force or not (req.params.get("temperature") or 0) > 0


class Cache(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, value: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class SqliteCache(SqliteStore):
    MIGRATIONS = (
        (
            "m001_responses",
            # the stored answer (a Response as JSON) by request digest
            """CREATE TABLE responses (
                key TEXT PRIMARY KEY, created_at REAL NOT NULL, value TEXT NOT NULL
            )""",
        ),
    )

    RECENT = 1024  # answers kept in memory too: a repeat right away must not wait for the writer

    def __init__(self, path) -> None:
        super().__init__(path)
        self._reader = self.connect()  # used on the engine thread only
        self._recent: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()

    def get(self, key: str) -> dict[str, Any] | None:
        if key in self._recent:
            self._recent.move_to_end(key)
            return copy.deepcopy(self._recent[key])
        row = self._reader.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._recent[key] = value
        if len(self._recent) > self.RECENT:
            self._recent.popitem(last=False)
        self.write(
            "INSERT OR REPLACE INTO responses (key, created_at, value) VALUES (?, ?, ?)",
            (key, time.time(), json.dumps(value, ensure_ascii=False)),
        )

    def close(self) -> None:
        super().close()
        self._reader.close()
