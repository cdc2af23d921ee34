"""Subscriptions to topics: :class:`Subscription`, and :class:`BufferedSubscription`, the one
that transports feed through a bounded local buffer."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod

from ..errors import TransportClosed

__all__ = ["BufferedSubscription", "Subscription"]


class Subscription(ABC):
    """Receives ``(topic, payload)`` pairs published on matching topics."""

    pattern: str

    @abstractmethod
    async def receive(self) -> tuple[str, bytes]:
        """Wait for the next published payload; raises ``TransportClosed`` once closed."""

    @abstractmethod
    async def close(self) -> None:
        """Unsubscribe."""


class BufferedSubscription(Subscription):
    """A subscription backed by a bounded local buffer; transports feed it.

    ``put`` waits for room (push-back on the publisher); ``offer`` drops the
    event when the buffer is full (for transports that cannot push back).
    Subclasses implement :meth:`detach` to stop being fed.
    """

    _CLOSED = ("", b"")

    def __init__(self, pattern: str, buffer: int) -> None:
        self.pattern = pattern
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(buffer)
        self._closed = False

    async def put(self, topic: str, payload: bytes) -> None:
        await self._queue.put((topic, payload))

    def offer(self, topic: str, payload: bytes) -> bool:
        """Buffer an event if there is room; False when it had to be dropped."""
        try:
            self._queue.put_nowait((topic, payload))
        except asyncio.QueueFull:
            return False
        return True

    async def receive(self) -> tuple[str, bytes]:
        if not self._closed:
            item = await self._queue.get()
            if item is not self._CLOSED:
                return item
        raise TransportClosed(f"subscription to {self.pattern!r} is closed")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Wake a waiting receiver; drop what was buffered (events are at-most-once).
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(self._CLOSED)
        await self.detach()

    @abstractmethod
    async def detach(self) -> None:
        """Stop feeding this subscription."""
