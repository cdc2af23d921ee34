"""One deadline per operation, inherited by the calls made while handling a message.

Deadlines are absolute wall-clock times (``time.time()`` seconds) because
they travel in envelopes to other processes and machines; keep clocks in sync
(NTP) when nodes run on different machines.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from ..errors import ConfigError

__all__ = [
    "DeadlineTimer",
    "check_timeout",
    "current_deadline",
    "deadline",
    "resolve_deadline",
    "running_deadline",
]

_CURRENT: ContextVar[float | None] = ContextVar("tactor_deadline", default=None)


def current_deadline() -> float | None:
    """The deadline inherited by calls made here, or None."""
    return _CURRENT.get()


def check_timeout(timeout: float | None) -> None:
    """A ``timeout=`` given to a call, tell, broadcast or proxy must be seconds > 0."""
    if timeout is not None and not timeout > 0:  # (not <= 0: NaN fails too)
        raise ConfigError(f"timeout={timeout!r}: expected seconds > 0 (or None: the default)")


def resolve_deadline(timeout: float | None, default: float, now: float) -> float:
    """The absolute deadline of a call made at ``now``: its own timeout, capped by the inherited."""
    if timeout is None:
        own = now + default
    else:
        check_timeout(timeout)
        own = now + timeout
    inherited = _CURRENT.get()
    return own if inherited is None or own < inherited else inherited


class running_deadline:  # lower case: used like the function-style context managers
    """Run a block (a message handler) under ``value``: calls inside inherit it.

    A class rather than a generator: it runs for every message handled.
    """

    __slots__ = ("_token", "_value")

    def __init__(self, value: float | None) -> None:
        self._value = value

    def __enter__(self) -> None:
        self._token = _CURRENT.set(self._value)

    def __exit__(self, *exc: object) -> None:
        _CURRENT.reset(self._token)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Give every tactor call inside the block at most ``seconds`` in total.

    ``with tactor.deadline(0.5): await pricing.quote(items)`` overrides the
    proxy's timeout for that call; nested blocks can only shorten it.
    """
    inherited = _CURRENT.get()
    value = time.time() + seconds
    if inherited is not None and inherited < value:
        value = inherited
    with running_deadline(value):
        yield


class DeadlineTimer:
    """One timer for many deadlines: no timer per call or per request.

    Armed for the nearest deadline it was told of; when it fires it calls
    ``expire(now)``, which expires what is due and returns the nearest deadline
    still ahead (None: nothing), and re-arms for that. Deadlines are usually a
    shared timeout from now, so a new one rarely moves the timer.
    """

    __slots__ = ("_at", "_expire", "_timer")

    def __init__(self, expire: Callable[[float], float | None]) -> None:
        self._expire = expire
        self._timer: asyncio.TimerHandle | None = None
        self._at = 0.0

    def track(self, deadline: float) -> None:
        """Make sure the timer fires no later than ``deadline``."""
        if self._timer is None or deadline < self._at:
            self._arm(deadline)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        # At least a millisecond: wall and loop clocks differ by a hair, and a sweep
        # that comes a hair early must not spin.
        delay = max(deadline - time.time(), 0.001)
        self._at = deadline
        self._timer = loop.call_at(loop.time() + delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        nearest = self._expire(time.time())
        if nearest is not None:
            self._arm(nearest)
