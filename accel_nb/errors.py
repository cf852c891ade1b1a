"""The one error taxonomy every part of accel_nb raises.

::

    AccelError
    ├── AuthenticationError        401, a missing key, or every key retired
    ├── PermissionDeniedError      403
    ├── BadRequestError            400 / 422, bad input caught before sending
    │   └── ContextLengthError     the prompt does not fit the model
    ├── NotFoundError              404: unknown model or route
    ├── RateLimitError             429: retried after the server's hint
    │   └── QuotaExceededError     429 whose quota or budget is spent: never retried
    ├── OverloadedError            529 / 503 "overloaded", also inside a 200 stream
    ├── ServerError                other 5xx
    ├── TimeoutError               no (complete) answer in time
    ├── ConnectionError            refused, reset, DNS
    ├── ProtocolError              a reply that is not what the protocol says
    ├── CircuitOpenError           the lane's breaker is open: fail fast
    ├── QueueFullError             the bounded queue is full and the policy is "reject"
    └── CancelledError             cancelled by the caller (e.g. a kernel interrupt)

Every error carries ``provider``, ``status``, ``request_id``, ``retryable`` and
``retry_after_s``, and a message a person can act on.  Messages are built from
redacted text only: no key ever appears in one.
"""

from __future__ import annotations

__all__ = [
    "AccelError",
    "AuthenticationError",
    "BadRequestError",
    "CancelledError",
    "CircuitOpenError",
    "ConnectionError",
    "ContextLengthError",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "ProtocolError",
    "QueueFullError",
    "QuotaExceededError",
    "RateLimitError",
    "ServerError",
    "TimeoutError",
]


class AccelError(Exception):
    """Base class: what went wrong, where, and whether trying again can help."""

    retryable_by_default = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
        retry_after_s: float | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status = status
        self.request_id = request_id
        self.retryable = self.retryable_by_default if retryable is None else retryable
        self.retry_after_s = retry_after_s
        self.hint = hint

    def __str__(self) -> str:
        where = ", ".join(
            part
            for part in (
                self.provider,
                f"HTTP {self.status}" if self.status else None,
                f"request {self.request_id}" if self.request_id else None,
            )
            if part
        )
        text = f"{self.message} ({where})" if where else self.message
        return f"{text}\n→ {self.hint}" if self.hint else text

    def __reduce__(self):  # keep keyword attributes through pickling (multiprocessing, nbclient)
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))


def _rebuild(cls: type[AccelError], message: str, state: dict) -> AccelError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class AuthenticationError(AccelError):
    """The provider refused the key, or there is no key to send."""


class PermissionDeniedError(AccelError):
    """The key is valid but may not use this model or route."""


class BadRequestError(AccelError):
    """The request itself is wrong; sending it again will not help."""


class ContextLengthError(BadRequestError):
    """The prompt (plus requested output) exceeds the model's context."""


class NotFoundError(AccelError):
    """Unknown model, route or object."""


class RateLimitError(AccelError):
    """Too many requests for this key right now; wait for the hint and retry."""

    retryable_by_default = True


class QuotaExceededError(RateLimitError):
    """The account's quota or budget is spent: waiting will not help."""

    retryable_by_default = False


class OverloadedError(AccelError):
    """The provider is overloaded (Anthropic 529, Gemini 503, TGI 429 overloaded)."""

    retryable_by_default = True


class ServerError(AccelError):
    """The provider failed (5xx)."""

    retryable_by_default = True


class TimeoutError(AccelError):
    """No answer, or no complete answer, in time."""

    retryable_by_default = True


class ConnectionError(AccelError):
    """The connection was refused, reset or never established."""

    retryable_by_default = True


class ProtocolError(AccelError):
    """The reply does not follow the provider's protocol (not JSON, truncated, wrong shape)."""


class CircuitOpenError(AccelError):
    """The lane failed repeatedly; calls fail fast until the breaker half-opens."""


class QueueFullError(AccelError):
    """The bounded queue is full and the overflow policy is to reject."""


class CancelledError(AccelError):
    """The caller cancelled the request (a kernel interrupt, a timeout of the caller's own)."""
