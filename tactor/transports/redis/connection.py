"""What every part of the Redis transport shares about its connections.

Errors that mean "the connection is gone" (:data:`LOST`), back-off between
reconnection attempts, re-raising a cancellation redis-py swallowed,
translating redis-py errors at the boundary, and decoding replies to text.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ...errors import TransportError

__all__ = ["LOST", "Backoff", "check_cancelled", "text", "translated"]

#: Errors that mean the connection was lost: retry after reconnecting.
LOST = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


def check_cancelled() -> None:
    """Re-raise a cancellation that redis-py swallowed.

    redis-py can absorb a ``CancelledError`` that lands while it finishes a
    command (it returns the result instead); the task's cancellation request
    is still pending, so raise it here, or stopping a consumer would hang.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class Backoff:
    """Exponential back-off between reconnection attempts, reset on success."""

    def __init__(self, first: float = 0.05, cap: float = 2.0) -> None:
        self.first, self.cap, self.delay = first, cap, first

    async def wait(self) -> None:
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, self.cap)

    def reset(self) -> None:
        self.delay = self.first


class translated:  # lower case: used like a function, ``with translated("publish"): ...``
    """Redis errors never reach users untranslated: they leave as ``TransportError``.

    A class, not a generator: it wraps every delivery. ``subject`` is joined to
    ``what`` only when there is an error to describe.
    """

    __slots__ = ("subject", "what")

    def __init__(self, what: str, subject: str = "") -> None:
        self.what = what
        self.subject = subject

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, RedisError | OSError):
            what = f"{self.what} {self.subject}" if self.subject else self.what
            raise TransportError(f"Redis {what} failed: {exc}") from exc


def text(value: Any) -> str:
    """A reply value (bytes, or already decoded) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
