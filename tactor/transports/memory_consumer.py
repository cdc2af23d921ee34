"""The consumer of ``memory://`` mailboxes and its deliveries.

A consumer takes payloads from its mailboxes (earlier ones first), waiting on a
future shared by all of them — or, parked (``receive_or_park``), with no task
waiting, woken when one may be there; or, for the hub's server of a child
process, has the next one handed to a callback within the sender's own
``deliver`` (:meth:`MemoryConsumer.hand_next`: no task to wake in between).
What it took and did not acknowledge goes back to the front of its mailbox when
it closes — only the oldest counted as attempted, since deliveries are handled
one at a time, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import TransportClosed
from .consumer import Delivery, ParkingConsumer
from .memory_hub import Mailbox, Message

if TYPE_CHECKING:
    from .memory import MemoryTransport

__all__ = ["MemoryConsumer", "MemoryDelivery"]


class MemoryDelivery(Delivery):
    __slots__ = ("_consumer",)

    def __init__(
        self, consumer: MemoryConsumer, mailbox: str, payload: bytes, attempts: int
    ) -> None:
        super().__init__(mailbox, payload, attempts)
        self._consumer = consumer

    def acknowledge(self) -> None:
        """What :meth:`ack` does, which in memory has nothing to wait for."""
        self._consumer.unacked.pop(id(self), None)

    async def ack(self) -> None:
        self.acknowledge()

    def give_back(self, attempted: bool) -> None:
        """Put it back at the front of its mailbox, unacknowledged, counted as attempted or
        not (not: it was handed over and never begun)."""
        self._consumer.unacked.pop(id(self), None)
        box = self._consumer.hub.mailbox(self.mailbox)
        box.hand_over(self.payload, front=True, attempted=self.attempts - (not attempted))

    async def dead_letter(self, reason: str, *, attempts: int, into: str, keep: int) -> int:
        if self._consumer.unacked.pop(id(self), None) is None:
            return 0  # acknowledged already, or gone back to the mailbox
        hub = self._consumer.hub
        letters = hub.dead_letters_of(into)
        return letters.add(hub.next_letter_id(), self.payload, attempts, reason, keep)


#: What a consumer waits on: handed ``(mailbox, message)`` by the mailbox.
_Wait = asyncio.Future[tuple[str, Message]]


class _Handed:
    """A waiter that hands its message to a callback at once, inside the sender's call."""

    __slots__ = ("_consumer", "callback", "taken")

    def __init__(
        self, consumer: MemoryConsumer, callback: Callable[[MemoryDelivery], None]
    ) -> None:
        self._consumer, self.callback, self.taken = consumer, callback, False

    def done(self) -> bool:
        return self.taken

    def set_result(self, result: tuple[str, Message], /) -> None:
        self.taken = True
        name, (payload, attempted) = result
        self._consumer._hand(self, name, payload, attempted)


class MemoryConsumer(ParkingConsumer):
    __slots__ = (
        "_boxes", "_closed", "_handed", "_transport", "_waiter", "_wake", "hub", "unacked",
    )  # fmt: skip

    def __init__(self, transport: MemoryTransport, boxes: list[Mailbox]) -> None:
        self._transport = transport
        self.hub = transport.hub
        self._boxes = boxes
        self._closed = False
        self.unacked: dict[int, MemoryDelivery] = {}
        self._waiter: _Wait | None = None  # the last wait (close ends it)
        self._wake: Callable[[], None] | None = None  # parked (receive_or_park): whom to wake
        self._handed: _Handed | None = None  # hand_next's callback, waiting

    def _delivery(self, mailbox: str, payload: bytes, attempted: int) -> MemoryDelivery:
        delivery = MemoryDelivery(self, mailbox, payload, attempted + 1)
        self.unacked[id(delivery)] = delivery
        return delivery

    async def _receive(self, wake: Callable[[], None] | None) -> MemoryDelivery | None:
        if self._closed:
            raise TransportClosed("mailbox consumer is closed")
        parked = self._waiter
        if self._wake is not None and parked is not None:  # parked by an earlier call
            if wake is not None and not parked.done():
                return None  # nothing yet: its wake is still due
            return await self._wait(parked)
        delivery = self._take()
        if delivery is not None:
            return delivery
        waiter: _Wait = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        for box in self._boxes:
            box.waiters.append(waiter)
        if wake is not None:  # no task waits: what ends the wait wakes the caller
            self._wake = wake
            waiter.add_done_callback(self._woken)
            return None
        return await self._wait(waiter)

    def _take(self) -> MemoryDelivery | None:
        if self._closed:
            raise TransportClosed("mailbox consumer is closed")
        for box in self._boxes:
            message = box.take()
            if message is not None:
                return self._delivery(box.name, *message)
        return None

    def hand_next(self, callback: Callable[[MemoryDelivery], None]) -> None:
        """Call ``callback`` with the next delivery: now if one is waiting, else within the
        ``deliver`` that puts it (so ``callback`` must not block, nor raise). One at a time:
        call again, from ``callback`` or later, for the one after (a call while one waits
        changes nothing). TransportClosed if the consumer is closed."""
        if self._handed is not None:
            return
        delivery = self._take()
        if delivery is not None:
            callback(delivery)
            return
        self._handed = handed = _Handed(self, callback)
        for box in self._boxes:
            box.waiters.append(handed)

    def _hand(self, handed: _Handed, name: str, payload: bytes, attempted: int) -> None:
        self._forget(handed)
        handed.callback(self._delivery(name, payload, attempted))

    def _forget(self, handed: _Handed) -> None:
        if self._handed is handed:
            self._handed = None
        for box in self._boxes:
            if handed in box.waiters:
                box.waiters.remove(handed)

    def _woken(self, waiter: _Wait) -> None:
        if waiter is self._waiter and self._wake is not None:
            self._wake()

    async def _wait(self, waiter: _Wait) -> MemoryDelivery:
        try:
            name, (payload, attempted) = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Handed a payload just as we were cancelled: give it back.
                name, (payload, attempted) = waiter.result()
                self.hub.mailbox(name).hand_over(payload, front=True, attempted=attempted)
            raise
        finally:
            self._settle(waiter)
        if self._closed:
            self.hub.mailbox(name).hand_over(payload, front=True, attempted=attempted)
            raise TransportClosed("mailbox consumer is closed")
        return self._delivery(name, payload, attempted)

    def _settle(self, waiter: _Wait) -> None:
        self._wake = None
        for box in self._boxes:
            # A membership test first: a failed deque.remove formats the
            # future's repr for its error message, which costs more than a call.
            if waiter in box.waiters:
                box.waiters.remove(waiter)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._transport.consumers.discard(self)
        # Wake our own waiting receive only: other consumers share these mailboxes.
        waiter, wake = self._waiter, self._wake
        if waiter is not None and not waiter.done():
            waiter.set_exception(TransportClosed("mailbox consumer is closed"))
        if waiter is not None and wake is not None:  # parked: nobody takes what ended it
            self._settle(waiter)
            if not waiter.cancelled() and waiter.exception() is None:
                name, (payload, attempted) = waiter.result()
                self.hub.mailbox(name).hand_over(payload, front=True, attempted=attempted)
            wake()  # it finds the consumer closed
        if self._handed is not None:
            self._handed.taken = True  # hands nothing from now on
            self._forget(self._handed)
        # Whatever was taken and not acknowledged goes back, oldest first. Only the oldest
        # was in hand (deliveries are handled one at a time, in order): only it counts.
        held = list(self.unacked.values())
        for index in range(len(held) - 1, -1, -1):
            held[index].give_back(attempted=index == 0)
