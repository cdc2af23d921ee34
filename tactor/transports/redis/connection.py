"""What every part of the Redis transport shares about its connections.

Errors that mean "the connection is gone" (:data:`LOST`), back-off between
reconnection attempts, re-raising a cancellation redis-py swallowed,
translating redis-py errors at the boundary, decoding replies to text, and
the typed view of the client's commands whose redis-py hints differ by version.
"""

from __future__ import annotations

import asyncio
import re
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from redis.asyncio.sentinel import MasterNotFoundError as AsyncMasterNotFound
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.sentinel import MasterNotFoundError

from ...errors import TransportError

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = [
    "CONNECTION_LOST",
    "LOST",
    "Backoff",
    "Commands",
    "check_cancelled",
    "commands",
    "described",
    "text",
    "translated",
]

#: Errors that mean the connection was lost: retry after reconnecting.
LOST = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
#: Why a reader that retries is not served, beside a refusal's text: it logs the loss once,
#: and once more when Redis serves it again, however many retries an outage takes.
CONNECTION_LOST = "the connection was lost"


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


#: A redis-py client as its repr shows it: ``<redis....Redis(<...ConnectionPool(<...Connection(
#: host=H,port=P,...)>)>)>``, every connection option included.
_CLIENT = re.compile(r"<redis\.[\w.]*Redis\((?P<options>.*?)\)>\)>\)>", re.DOTALL)
_HOST = re.compile(r"[(,]host=([^,)>]+)")
_PORT = re.compile(r"[(,]port=(\d+)")


#: How Redis refuses a command run by a script to a user whose ACL lacks it (no NOPERM).
_SCRIPT_REFUSED = "user executing the script can't run"
_ACL_NEEDS = (
    "the Redis user's ACL lacks what tactor runs: see 'Running with a restricted ACL user' "
    "in tactor's docs/transports.md"
)


def described(exc: BaseException) -> str:
    """``exc``'s message, made readable where redis-py's or Redis's is not.

    A Sentinel client names the Sentinels that failed by their whole repr
    (``MasterNotFoundError``: "No master found for 'svc' : <redis...Redis(<...>)> -
    ..."), some 1,500 characters each on redis-py 8; this keeps ``host:port``. A
    Sentinel that answered without a primary for the service says so, and a refusal by
    the user's ACL says where tactor's needs are listed.
    """
    message = str(exc)
    if isinstance(exc, NoPermissionError) or _SCRIPT_REFUSED in message:
        return f"{message} ({_ACL_NEEDS})"
    if isinstance(exc, MasterNotFoundError | AsyncMasterNotFound) and " : " not in message:
        # Every Sentinel answered (none failed to): none names an up primary of the service.
        return f"{message} (the Sentinels answered: is the name right? a failover under way?)"
    if "<redis." not in message:
        return message

    def address(client: re.Match[str]) -> str:
        host, port = _HOST.search(client["options"]), _PORT.search(client["options"])
        return f"{host[1]}:{port[1]}" if host and port else "a Redis client"

    return _CLIENT.sub(address, message)


#: What a TLS handshake with a plain server, or plain text to a TLS port, fails with.
_TLS_MISMATCH = (
    "Timeout connecting",
    "WRONG_VERSION_NUMBER",
    "wrong version number",
    "record layer",
)
_PLAIN_TO_TLS = ("Connection reset by peer", "Connection closed by server")


def tls_hint(tls: bool, error: BaseException) -> str:
    """What to add to the message of ``error``, a first connection's failure, when it looks
    like TLS on one side only: ``" (…)"``, or ``""``."""
    message = str(error)
    if tls and any(sign in message for sign in _TLS_MISMATCH):
        return " (the URL asks for TLS: does the server serve TLS on that port, its tls-port?)"
    if not tls and any(sign in message for sign in _PLAIN_TO_TLS):
        return " (if that port serves TLS, the URL is rediss://)"
    return ""


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
            raise TransportError(f"Redis {what} failed: {described(exc)}") from exc


def text(value: Any) -> str:
    """A reply value (bytes, or already decoded) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


class Commands(Protocol):
    """The client's commands whose redis-py type hints differ between supported versions.

    redis-py up to 7.x hints them, on the asyncio client too, as "an awaitable
    or a value" (its clients share one set of command methods), which mypy
    will not await; 8.x hints awaitables. Called through this view, which
    every supported version satisfies; their callers check what comes back.
    """

    def ping(self) -> Any: ...

    def lpop(self, name: str) -> Any: ...

    # Any: redis-py 5.x hints an int; Redis takes a float number of seconds.
    def blpop(self, keys: list[str], timeout: Any) -> Any: ...

    def lpush(self, name: str, *values: bytes) -> Any: ...

    def llen(self, name: str) -> Any: ...

    # Any: redis-py 5.x hints str values; Redis takes bytes.
    def hset(self, name: str, key: str, value: Any) -> Any: ...

    def hdel(self, name: str, *keys: str) -> Any: ...


def commands(client: aioredis.Redis) -> Commands:
    """``client`` as :class:`Commands` (mypy checks here that it is one)."""
    return client
