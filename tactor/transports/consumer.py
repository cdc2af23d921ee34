"""Receiving from mailboxes: :class:`MailboxConsumer` (and :class:`ParkingConsumer`, one
with push mode), the :class:`Delivery` of each payload taken, and the :class:`DeadLetterEntry`
a delivery becomes when it is moved aside."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["DeadLetterEntry", "Delivery", "MailboxConsumer", "ParkingConsumer"]


class Delivery(ABC):
    """One payload taken from a mailbox. Call :meth:`ack` once it is handled.

    ``attempts`` counts the deliveries of this payload, this one included: 1
    the first time; one more each time it comes back because a consumer that
    had taken it went away without acknowledging it (closed, or died). A
    consumer handles its deliveries one at a time, in order: when it closes,
    only the oldest of its unacknowledged deliveries counts as attempted, the
    others go back as they were. A transport that cannot tell (a consumer that
    died) may count every payload the dead consumer held.
    """

    __slots__ = ("attempts", "mailbox", "payload")

    def __init__(self, mailbox: str, payload: bytes, attempts: int = 1) -> None:
        self.mailbox = mailbox
        self.payload = payload
        self.attempts = attempts

    @abstractmethod
    async def ack(self) -> None:
        """Mark the payload handled; it will not be delivered again."""

    def reply_and_ack(self, inbox: str, payload: bytes) -> bool:
        """Post ``payload``, the reply to this delivery's request, to ``inbox`` and
        acknowledge the delivery, in one step, where the transport can do both at once
        without waiting: True if it did (:meth:`ack` then does nothing); False, the
        default, if the caller is to post the reply and acknowledge as usual.

        Called once the request's handling is done and its reply is all that is left.
        """
        return False

    @abstractmethod
    async def dead_letter(self, reason: str, *, attempts: int, into: str, keep: int) -> int:
        """Move the payload into the dead letters of mailbox ``into``, acknowledged.

        The move and the acknowledgement are one step where the transport
        allows. The letter records ``reason`` and ``attempts`` (how often its
        handling was attempted, as the caller counts). At most ``keep`` letters
        stay in ``into``'s dead letters: the oldest beyond are dropped; returns
        how many were. Does nothing (returns 0) if the delivery was acknowledged.
        """


@dataclass(frozen=True, slots=True)
class DeadLetterEntry:
    """A payload moved aside by :meth:`Delivery.dead_letter`."""

    id: str  # unique among the mailbox's dead letters, in the order they were added
    payload: bytes
    attempts: int
    reason: str
    at: float  # when it was moved aside (``time.time()`` seconds)


class MailboxConsumer(ABC):
    """Receives payloads from one or more mailboxes, one at a time."""

    __slots__ = ()  # a node may hold thousands: subclasses may do without a __dict__

    #: Push mode: how long (seconds) a runner keeps its task after the consumer parked,
    #: for the wake of the next payload, before it lets the task end. A transport whose
    #: payloads come from another process sets it: the next one of a steady stream comes
    #: within it, and a task made and ended per payload costs more than the wait.
    linger: float = 0.0

    @abstractmethod
    async def receive(self) -> Delivery:
        """Wait for the next payload from any of the consumer's mailboxes.

        Raises :class:`tactor.errors.TransportClosed` once the consumer or the
        transport is closed. Cancelling a waiting ``receive`` loses nothing.
        """

    async def receive_or_park(self, wake: Callable[[], None]) -> Delivery | None:
        """Push mode: :meth:`receive`, but where it would wait, return None instead —
        parked, having arranged for ``wake`` to be called once, from the event loop,
        when a receive may find something (a payload, the consumer closed, a failure).

        The caller then needs no task of its own while nothing comes (a node holds
        thousands of idle consumers); when woken, it calls ``receive`` or
        ``receive_or_park`` again, which may still find nothing. Payloads handed to a
        parked consumer are its own, as a waiting receive's: :meth:`close` gives them
        back. This default waits as ``receive`` does (it never parks): a transport
        without push mode still works, with a task per waiting consumer.
        """
        return await self.receive()

    @abstractmethod
    async def close(self) -> None:
        """Stop receiving. Payloads taken and not acknowledged go back to the mailbox."""


class ParkingConsumer(MailboxConsumer):
    """A consumer with push mode: :meth:`receive` and :meth:`receive_or_park` are one
    ``_receive(wake)``, which parks where ``wake`` is given and returns a delivery where
    it is not."""

    __slots__ = ()

    async def receive(self) -> Delivery:
        delivery = await self._receive(None)
        assert delivery is not None  # (it parks only when told whom to wake)
        return delivery

    async def receive_or_park(self, wake: Callable[[], None]) -> Delivery | None:
        return await self._receive(wake)

    @abstractmethod
    async def _receive(self, wake: Callable[[], None] | None) -> Delivery | None:
        """The next delivery; with ``wake``, None where it would wait (parked)."""
