"""What the magics remember in a kernel: conversations, the last error, the in-process simulator.

Also the one place that turns an exception into the card a person sees, so every face
says the same thing about a missing key (never "use ``%env``": it echoes the key into the
notebook).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

from .conversations import Conversations

__all__ = ["Session"]

# the Python API's words in engine hints -> the magic's options
_MAGIC_WORDS = (("raise timeout=", "raise --timeout"), ("as params={...}", "with -p key=value"),
                ("in system=...", "in --system"))


@dataclass
class LastError:
    error: BaseException
    where: str  # the cell's first line, e.g. "%%accel claude -o a"
    traceback: str


@dataclass
class Session:
    conversations: Conversations = field(default_factory=Conversations)
    last_error: LastError | None = None
    sim: Any = None  # accel_nb.sim.SimServer while `%accel sim start` is on
    settings_before_sim: Any = None  # the Settings to restore on `%accel sim stop`

    # -- the client -----------------------------------------------------------------------------
    @staticmethod
    def client() -> Any:
        from ..client import default_client

        return default_client()

    def simulated(self, client: Any) -> set[str]:
        """Providers whose requests go to a simulator (so every footer can say so)."""
        from ..config import simulated

        return simulated(client.settings)

    # -- errors ---------------------------------------------------------------------------------
    def remember(self, error: BaseException, where: str, client: Any = None) -> None:
        """Keep ``error`` for ``%accel error`` (its hint fixed up, its traceback redacted)."""
        self._fix_hint(error, client)
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        self.last_error = LastError(error, where, redact(text, client))

    def error_card(self, error: BaseException, client: Any = None) -> dict[str, str]:
        from .. import errors
        from .display import card

        self._fix_hint(error, client)
        if not isinstance(error, errors.AccelError):
            return card(
                type(error).__name__,
                redact(str(error), client) or "unexpected error",
                hint="this looks like a bug in accel_nb; `%accel error` shows the traceback to report",
            )
        facts = [f for f in (error.provider, f"HTTP {error.status}" if error.status else None) if f]
        if isinstance(error, (errors.AuthenticationError, errors.PermissionDeniedError)) and client and error.provider:
            facts.append("key: " + key_labels(client, error.provider))
        if error.retry_after_s is not None and error.retryable:
            facts.append(f"retry after {error.retry_after_s:.1f} s")
        return card(
            type(error).__name__,
            redact(error.message, client),
            facts=facts,
            hint=redact(error.hint, client) if error.hint else None,
            more="full detail: `%accel error`",
        )

    @staticmethod
    def _fix_hint(error: BaseException, client: Any) -> None:
        """Hints in the magic's words (``--timeout``, not ``timeout=``); and for a missing key,
        where a key can come from, without ever suggesting ``%env``."""
        from .. import errors

        hint = getattr(error, "hint", None)
        if isinstance(hint, str):
            for python, magic in _MAGIC_WORDS:
                hint = hint.replace(python, magic)
            error.hint = hint
        if not (isinstance(error, errors.AuthenticationError) and error.provider and error.status is None):
            return
        settings = client.settings.providers.get(error.provider) if client is not None else None
        if settings is not None and settings.keys:
            return
        error.hint = missing_key_hint(error.provider)


def missing_key_hint(provider: str) -> str:
    from ..providers import get_adapter

    names = " or ".join(get_adapter(provider).key_env) or "the provider's key variable"
    return (
        f"set {names} in the environment or a .env file (then run `%accel config --reload`), "
        "or run `%accel keys` to enter it without it showing in the notebook; "
        "`%accel sim start` answers from the local simulator meanwhile"
    )


def key_labels(client: Any, provider: str) -> str:
    """``env:OPENAI_API_KEY …WXYZ, …`` or ``none``: sources and last four characters only."""
    keys = client.settings.providers[provider].keys
    return ", ".join(k.label for k in keys) if keys else "none"


def redact(text: str | None, client: Any) -> str:
    """``text`` with every key the client knows masked (belt and braces: errors are built
    from redacted text already)."""
    if not text or client is None:
        return text or ""
    from ..secret import Redactor

    redactor = Redactor()
    for ps in client.settings.providers.values():
        redactor.add(ps.keys)
    return redactor(text)
