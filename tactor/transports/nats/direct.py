"""Subscriptions handled where nats-py reads: no queue and no task hop per message.

nats-py gives each subscription with a callback a queue and a task: a message is
put on the queue, the task wakes in a later turn of the event loop and awaits the
callback. On the call path that is a turn per message (the stream's answer to an
append, the reply, the message a provider pulled) for handlers that only hand
the message on. nats-py's ``subscribe(future=…)`` — how it answers an old-style
request — sets the message on the future in its read loop instead; a
:class:`_Handler` there takes the message the same way and calls a plain function
at once. Such a handler must not block: it hands the message on (completes a
future, appends to a deque, wakes a waiter) and schedules anything longer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

__all__ = ["subscribe_direct"]

log = logging.getLogger(__name__)


class _Handler:
    """Stands where nats-py keeps a request's future; each message calls ``handle``."""

    __slots__ = ("handle",)

    def __init__(self, handle: Callable[[Msg], None]) -> None:
        self.handle = handle

    def cancelled(self) -> bool:
        return False

    def done(self) -> bool:
        return False

    def set_result(self, msg: Msg) -> None:
        try:
            self.handle(msg)
        except Exception:  # as nats-py's error callback would: log it, keep reading
            log.exception("NATS: handling a message on %s failed", msg.subject)


async def subscribe_direct(nc: Client, subject: str, handle: Callable[[Msg], None]) -> Subscription:
    """Subscribe to ``subject``; ``handle`` is called with each message in nats-py's read loop."""
    future: Any = _Handler(handle)
    return await nc.subscribe(subject, future=future)
