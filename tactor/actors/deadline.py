"""One deadline per operation, inherited by the calls made while handling a message.

Deadlines are absolute wall-clock times (``time.time()`` seconds) because
they travel in envelopes to other processes and machines; keep clocks in sync
(NTP) when nodes run on different machines.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["current_deadline", "deadline", "resolve_deadline", "running_deadline"]

_CURRENT: ContextVar[float | None] = ContextVar("tactor_deadline", default=None)


def current_deadline() -> float | None:
    """The deadline inherited by calls made here, or None."""
    return _CURRENT.get()


def resolve_deadline(timeout: float | None, default: float) -> float:
    """The absolute deadline of a new call: its own timeout, capped by the inherited one."""
    own = time.time() + (default if timeout is None else timeout)
    inherited = _CURRENT.get()
    return own if inherited is None or own < inherited else inherited


@contextmanager
def running_deadline(value: float | None) -> Iterator[None]:
    """Run a block (a message handler) under ``value``: calls inside inherit it."""
    token = _CURRENT.set(value)
    try:
        yield
    finally:
        _CURRENT.reset(token)


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
