"""API keys that cannot leak by accident.

A ``Secret`` prints as its source and last four characters; only
``reveal()`` gives the key, and only the transport calls it.  ``Redactor``
scrubs every known key out of text that came from elsewhere (a server's error
body that echoes the key, an exception string) before it reaches a person.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

__all__ = ["Redactor", "Secret", "mask"]


def mask(value: str) -> str:
    """``sk-…WXYZ``-style hint: enough to tell keys apart, useless to an attacker."""
    return f"…{value[-4:]}" if len(value) >= 12 else "…"


class Secret:
    """An API key and where it came from (``env:OPENAI_API_KEY``, ``config``, …)."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        value = value.strip()
        if not value:
            raise ValueError(f"empty key from {source}")
        self._value = value
        self.source = source

    def reveal(self) -> str:
        return self._value

    @property
    def last4(self) -> str:
        return mask(self._value)

    @property
    def label(self) -> str:
        return f"{self.source} {self.last4}"

    def __repr__(self) -> str:
        return f"Secret({self.label})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self):
        raise TypeError("a Secret cannot be pickled: keys stay in this process's memory")


class Redactor:
    """Replaces every registered key in a text by its masked form."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[Secret]) -> None:
        with self._lock:
            before = len(self._values)
            self._values.update(s.reveal() for s in secrets)
            if len(self._values) != before:
                ordered = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(map(re.escape, ordered)))

    def __call__(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(lambda m: mask(m.group(0)), text)
