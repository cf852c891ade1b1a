"""Fault injection: the vocabulary, parsing, and the decision made for each request.

A fault is ``NAME`` or ``NAME=VALUE`` (see ``FAULTS``).  Three sources decide a
request's fault, first match wins: the ``x-sim-fault`` request header, then the
provider's script (a queue consumed one entry per request, ``ok`` meaning none),
then the server-wide spec ``"429:0.1,reset:0.02"`` drawn with a seeded RNG so a
run can be replayed exactly.  What a fault *looks like* on the wire is each
protocol's business; this module only decides which one happens.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["FAULTS", "Fault", "FaultPlan", "parse_fault", "parse_spec"]

#: Every fault name and what its optional ``=value`` means ("" = it takes none).
FAULTS: dict[str, str] = {
    "429": "the wait hint in seconds (default 1)",
    "quota": "",
    "400": "",
    "401": "",
    "403": "",
    "404": "",
    "413": "",
    "422": "",
    "424": "",  # Hugging Face TGI / TEI: generation or backend failed
    "500": "",
    "503": "",
    "529": "",
    "overloaded": "",
    "retry-after-ms": "the wait hint in milliseconds (required)",
    "reset": "",
    "midstream": "tokens sent before the connection drops (default 3)",
    "stream_error": "tokens sent before the in-stream error (default 0)",
    "stall": "seconds before the headers come (default 3600)",
    "malformed": "",
    "truncated": "",
    "slow": "",
    "ok": "",
}
_DEFAULTS = {"429": 1.0, "midstream": 3.0, "stream_error": 0.0, "stall": 3600.0}
_INTEGER_VALUES = frozenset({"midstream", "stream_error"})


@dataclass(frozen=True, slots=True)
class Fault:
    name: str
    value: float | None = None

    @property
    def amount(self) -> float:
        """The value, or this fault's default when none was given (see ``FAULTS``)."""
        return self.value if self.value is not None else _DEFAULTS.get(self.name, 0.0)

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}={self.value:g}"


def parse_fault(text: str) -> Fault | None:
    """``"429=0.3"`` -> ``Fault("429", 0.3)``; ``"ok"`` -> ``None``; anything else unknown raises ``ValueError``."""
    name, sep, raw = text.strip().partition("=")
    name = name.strip().lower()
    if name not in FAULTS:
        raise ValueError(f"unknown fault {name!r}; known faults: {', '.join(FAULTS)}")
    if not sep:
        if name == "retry-after-ms":
            raise ValueError("retry-after-ms needs a value, e.g. retry-after-ms=250")
        return None if name == "ok" else Fault(name)
    if not FAULTS[name]:
        raise ValueError(f"fault {name!r} takes no value, but got {raw!r}")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"fault {name!r} needs a number ({FAULTS[name]}), not {raw!r}") from None
    if value < 0 or value != value or (name in _INTEGER_VALUES and not value.is_integer()):
        kind = "a whole number" if name in _INTEGER_VALUES else "a number"
        raise ValueError(f"fault {name!r} needs {kind} >= 0, not {raw!r}")
    return Fault(name, value)


def parse_spec(spec: str | None) -> tuple[tuple[Fault, float], ...]:
    """``"429:0.1,reset=...:0.02"`` -> ``((Fault, probability), ...)``; probabilities must sum to <= 1."""
    entries: list[tuple[Fault, float]] = []
    for item in (spec or "").split(","):
        if not item.strip():
            continue
        text, sep, raw = item.rpartition(":")
        if not sep:
            raise ValueError(f"fault spec entry {item.strip()!r} needs a probability, e.g. 429:0.1")
        try:
            probability = float(raw)
        except ValueError:
            raise ValueError(f"fault spec entry {item.strip()!r}: {raw!r} is not a probability") from None
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"fault spec entry {item.strip()!r}: probability must be between 0 and 1")
        fault = parse_fault(text)
        if fault is not None:
            entries.append((fault, probability))
    if sum(p for _, p in entries) > 1.0 + 1e-9:
        raise ValueError(f"fault probabilities in {spec!r} add up to more than 1")
    return tuple(entries)


class FaultPlan:
    """Decides each request's fault: the header, else the provider's script, else a seeded draw."""

    def __init__(self, spec: str | None = None, seed: int = 0) -> None:
        self._seed = seed
        self._spec = parse_spec(spec)
        self._rng = random.Random(seed)
        self._scripts: dict[str, deque[Fault | None]] = {}

    @property
    def spec(self) -> str:
        return ",".join(f"{fault}:{p:g}" for fault, p in self._spec)

    def set_spec(self, spec: str | None) -> None:
        self._spec = parse_spec(spec)

    def script(self, provider: str, faults: Iterable[str]) -> None:
        """Queue faults for ``provider``'s next requests, in order (all validated before any is queued)."""
        parsed = [parse_fault(text) for text in faults]
        self._scripts.setdefault(provider, deque()).extend(parsed)

    def decide(self, provider: str, forced: str | None = None) -> Fault | None:
        """The fault for one request to ``provider`` (``None``: serve it normally).

        A script entry is consumed even when the header overrides it, so a script
        always lines up with the sequence of requests."""
        queue = self._scripts.get(provider)
        scripted = bool(queue)
        fault = queue.popleft() if queue else None
        if forced is not None:
            return parse_fault(forced)
        if scripted or not self._spec:
            return fault
        draw = self._rng.random()
        for fault, probability in self._spec:
            draw -= probability
            if draw < 0:
                return fault
        return None

    def reset(self) -> None:
        """Forget every script and restart the random draws from the seed."""
        self._scripts.clear()
        self._rng.seed(self._seed)
