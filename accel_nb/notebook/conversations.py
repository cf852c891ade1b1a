"""Per-target conversation memory for ``%%accel -c``: kept in the kernel, never in the notebook."""

from __future__ import annotations

from typing import Any

__all__ = ["Conversations"]


class Conversations:
    """``{"provider:model": [{role, content}, …]}``; a turn is stored only once it succeeded."""

    def __init__(self) -> None:
        self._history: dict[str, list[dict[str, str]]] = {}

    def messages(self, key: str, prompt: str) -> list[dict[str, str]]:
        """The history for ``key`` followed by the new user turn."""
        return [*self._history.get(key, []), {"role": "user", "content": prompt}]

    def record(self, key: str, prompt: str, answer: str) -> None:
        turns = self._history.setdefault(key, [])
        turns.append({"role": "user", "content": prompt})
        turns.append({"role": "assistant", "content": answer})

    def turns(self, key: str) -> int:
        """Completed exchanges (user + assistant) with ``key``."""
        return len(self._history.get(key, [])) // 2

    def reset(self, key: str | None = None) -> dict[str, int]:
        """Forget one conversation (or all); returns what was forgotten, ``{key: turns}``."""
        keys = list(self._history) if key is None else [key] if key in self._history else []
        return {k: len(self._history.pop(k)) // 2 for k in keys}

    def keys(self) -> list[str]:
        return list(self._history)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}: {self.turns(k)} turns" for k in self._history)
        return f"<Conversations {inner or 'empty'}>"

    def export(self) -> dict[str, Any]:
        return {k: [dict(m) for m in v] for k, v in self._history.items()}
