"""The transport contract: opaque bytes between mailboxes and topics.

A transport knows nothing of actors, methods or types. It offers four groups
of verbs, and everything above it (correlation, deadlines, broadcast
gathering, event dispatch) lives once in :mod:`tactor.actors`:

- **mailboxes**: :meth:`Transport.deliver` puts a payload into a named,
  bounded mailbox (waiting while it is full); :meth:`Transport.consume` opens
  a consumer over one or more mailboxes that receives one payload at a time
  and acknowledges each when done. Several consumers of one mailbox compete:
  each payload goes to one of them. A payload taken but not acknowledged when
  its consumer goes away is handed to another consumer. A consumer may also be
  read in push mode (:meth:`MailboxConsumer.receive_or_park`): parked while
  nothing comes, it needs no task of its caller (a node holds thousands).
- **dead letters**: a delivery knows how often it was attempted
  (:attr:`Delivery.attempts`); :meth:`Delivery.dead_letter` moves it aside,
  acknowledged, into a mailbox's dead letters, kept where the transport keeps
  its mailboxes, to be listed, replayed into the mailbox or discarded
  (:meth:`Transport.dead_letters` and the verbs beside it). Whether and when to
  move a delivery aside is decided above the transport.
- **inboxes**: :meth:`Transport.post` puts a payload into a node's private
  inbox, read by :meth:`Transport.open_inbox`; at-most-once and unacknowledged,
  as cheap as the transport can make it (replies travel this way).
- **topics**: :meth:`Transport.publish` sends a payload to every subscription
  whose pattern matches the topic (see :mod:`tactor.transports.topics`).
- **registry**: which providers serve an endpoint, with liveness, and what each
  registered with (opaque bytes: the system above keeps its node, host, pid and
  start time there); which endpoints have providers.
- **queues**: named FIFO queues of payloads shared by every node of the
  transport (:meth:`Transport.queue_put`, :meth:`Transport.queue_get`, …);
  each item popped goes to exactly one getter. A queue is shared state, not a
  node's: closing a transport leaves its queues in place.
- **lifecycle**: :meth:`Transport.start` and :meth:`Transport.close`.

Names of mailboxes, topics, endpoints and providers are plain strings made by
the runtime; a transport may map them onto its own namespace.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, TransportClosed, TransportError

if TYPE_CHECKING:
    from .channel import Channel

__all__ = [
    "BufferedSubscription",
    "DeadLetterEntry",
    "Delivery",
    "Inbox",
    "InboxHandler",
    "InboxLostHandler",
    "MailboxConsumer",
    "ProviderEntry",
    "Subscription",
    "Transport",
    "endpoint_mailbox",
    "no_provider_message",
    "provider_mailbox",
]


def endpoint_mailbox(endpoint: str) -> str:
    """The mailbox every provider of ``endpoint`` competes on."""
    return f"ep:{endpoint}"


def provider_mailbox(provider: str) -> str:
    """The mailbox only ``provider`` consumes (direct calls and broadcasts)."""
    return f"pv:{provider}"


def no_provider_message(endpoint: str, provider: str | None) -> str:
    """The one wording of NoProvider, for every transport."""
    if provider is None:
        return f"no live provider serves the endpoint {endpoint!r}"
    return f"provider {provider!r} of {endpoint!r} is not live"


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


@dataclass(frozen=True, slots=True)
class ProviderEntry:
    """A live provider of an endpoint, as :meth:`Transport.provider_entries` lists it."""

    provider: str
    info: bytes  # what register() was given; b"" if the transport lost it (a Redis restart)


class MailboxConsumer(ABC):
    """Receives payloads from one or more mailboxes, one at a time."""

    __slots__ = ()  # a node may hold thousands: subclasses may do without a __dict__

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


#: Called with each payload posted to an inbox. It must not block.
InboxHandler = Callable[[bytes], None]
#: Called when the transport lost its connection and posted payloads may be lost.
InboxLostHandler = Callable[[TransportError], None]


class Inbox(ABC):
    """An open private inbox: its payloads go to the handler given to ``open_inbox``."""

    @abstractmethod
    async def close(self) -> None:
        """Stop receiving and drop the inbox with anything left in it."""


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


class Transport(ABC):
    """Moves opaque payloads between mailboxes and topics, and keeps the registry."""

    #: Whether :meth:`publish` returns an exact count of subscriptions reached.
    counts_subscribers: bool = False
    #: The URL's ``max_deliveries`` and ``max_dead_letters`` (see
    #: :data:`~tactor.transports.options.SYSTEM_OPTIONS`), for the system above; None if not given.
    max_deliveries: int | None = None
    max_dead_letters: int | None = None

    @abstractmethod
    async def start(self) -> None:
        """Connect and make the transport ready; idempotent."""

    @abstractmethod
    async def close(self) -> None:
        """Disconnect and release everything this transport created; idempotent."""

    # -- mailboxes -------------------------------------------------------------

    @abstractmethod
    async def deliver(
        self,
        mailbox: str,
        payload: bytes,
        *,
        endpoint: str | None = None,
        provider: str | None = None,
    ) -> None:
        """Append ``payload`` to ``mailbox``, waiting while the mailbox is full.

        With ``endpoint``, deliver only if the endpoint has a live provider
        (with ``provider`` too: only if that provider is live), else raise
        :class:`tactor.errors.NoProvider`; the check and the append are one
        step where the transport allows, and cost no extra round trip.

        Once this returns the transport has accepted the payload: it will be
        received by a consumer of the mailbox (at least once, see each
        transport's guarantees). Callers bound the wait with a timeout.
        """

    @abstractmethod
    async def deliver_to_providers(
        self, endpoint: str, payload: bytes
    ) -> tuple[list[str], list[str]]:
        """Append ``payload`` to the private mailbox of every live provider of ``endpoint``.

        One step where the transport allows (a broadcast costs one round trip,
        not a registry read plus one per provider). Never waits: returns
        ``(reached, full)``, the providers whose mailbox took the payload and
        those whose mailbox was full, each in the order :meth:`providers` gives.
        A provider's private mailbox is ``provider_mailbox(provider)``.
        """

    @abstractmethod
    async def consume(
        self, mailboxes: Sequence[str], consumer: str, *, private: Sequence[str] = ()
    ) -> MailboxConsumer:
        """Open a consumer named ``consumer`` over ``mailboxes`` (earlier ones first).

        ``private`` names those of the mailboxes that belong to this consumer
        alone: the transport drops them some time after the consumer dies,
        even if it never closed.
        """

    @abstractmethod
    async def delete_mailbox(self, mailbox: str) -> None:
        """Drop a mailbox nobody will consume again, with anything left in it."""

    async def mailbox_depth(self, mailbox: str) -> int | None:
        """How many messages wait in ``mailbox`` (for ``system.stats()``); None where the
        transport cannot tell. A transport that can should say so (memory and Redis do)."""
        return None

    # -- dead letters ----------------------------------------------------------

    @abstractmethod
    async def dead_letters(self, mailbox: str) -> list[DeadLetterEntry]:
        """The dead letters of ``mailbox``, oldest first."""

    @abstractmethod
    async def replay_dead_letter(self, mailbox: str, letter: str) -> bool:
        """Move dead letter ``letter`` back into ``mailbox`` as a new payload (attempts
        start again at 1), in one step where the transport allows; like a redelivery it
        does not wait for room. False (and nothing changes) if there is no such letter."""

    @abstractmethod
    async def discard_dead_letter(self, mailbox: str, letter: str) -> bool:
        """Remove dead letter ``letter`` of ``mailbox``; False if there was none."""

    def take_system_options(self, options: dict[str, Any]) -> None:
        """Pop the options of the system above (``options.SYSTEM_OPTIONS``) off
        ``options``, as parsed from this transport's URL, and keep them."""
        self.max_deliveries = options.pop("max_deliveries", self.max_deliveries)
        self.max_dead_letters = options.pop("max_dead_letters", self.max_dead_letters)

    # -- inboxes ---------------------------------------------------------------

    @abstractmethod
    async def open_inbox(
        self, inbox: str, on_payload: InboxHandler, on_lost: InboxLostHandler
    ) -> Inbox:
        """Open the private inbox named ``inbox``; only this node reads it.

        Each payload posted to it is passed to ``on_payload`` as soon as it
        arrives (no task in between where the transport can avoid one).
        ``on_lost`` is called when the connection was lost and payloads may
        have been lost; the transport reconnects by itself.
        """

    @abstractmethod
    async def post(self, inbox: str, payload: bytes) -> None:
        """Put ``payload`` into an inbox without waiting for room.

        At-most-once: dropped if nobody has that inbox open, or if it is full.
        """

    # -- topics ----------------------------------------------------------------

    @abstractmethod
    async def publish(self, topic: str, payload: bytes) -> int | None:
        """Send ``payload`` to every matching subscription.

        Returns how many subscriptions it reached where the transport can know
        (:attr:`counts_subscribers`), else ``None``.
        """

    @abstractmethod
    async def subscribe(self, pattern: str) -> Subscription:
        """Subscribe to every topic that ``pattern`` matches."""

    # -- registry --------------------------------------------------------------

    @abstractmethod
    async def register(self, endpoint: str, provider: str, info: bytes = b"") -> None:
        """Announce ``provider`` as a live provider of ``endpoint``; keep it alive.

        ``info`` is kept beside the entry while it lives, for :meth:`provider_entries`.
        """

    @abstractmethod
    async def unregister(self, endpoint: str, provider: str) -> None:
        """Remove ``provider`` from ``endpoint`` at once."""

    @abstractmethod
    async def providers(self, endpoint: str) -> list[str]:
        """Return the live providers of ``endpoint``, in a stable order."""

    @abstractmethod
    async def provider_entries(self, endpoint: str) -> list[ProviderEntry]:
        """The live providers of ``endpoint`` with their ``info``, in :meth:`providers`' order."""

    @abstractmethod
    async def endpoints(self) -> list[str]:
        """The endpoints that have at least one live provider, sorted."""

    # -- queues ----------------------------------------------------------------
    #
    # A queue is a FIFO of payloads named by a plain string, created on first use
    # and shared by every transport of the same namespace (hub, Redis prefix). It
    # also keeps a count of unfinished tasks: one more per accepted put, one less
    # per task_done. Queues outlive the transports that use them: close() leaves
    # them in place, queue_delete() removes one.

    @abstractmethod
    async def queue_put(self, queue: str, payload: bytes, maxsize: int) -> bool:
        """Append ``payload`` to ``queue`` and count one more unfinished task.

        With ``maxsize > 0`` and the queue already holding ``maxsize`` items,
        append nothing, count nothing and return False; else return True. The
        check and the append are one atomic step. Never waits for room.
        """

    @abstractmethod
    async def queue_get(self, queue: str, timeout: float | None) -> bytes | None:
        """Pop the oldest payload of ``queue``, waiting up to ``timeout`` seconds for one.

        ``timeout=None`` waits until a payload arrives (or the transport
        closes: :class:`tactor.errors.TransportClosed`); ``0`` (or less) does
        not wait. Returns None when the timeout passed with the queue empty.
        Each payload is popped by exactly one getter, on any node; getters
        waiting at once are served in the order they started waiting where
        the transport allows. Cancelling a waiting get loses no payload. The
        unfinished count is not changed (see :meth:`queue_task_done`).
        """

    @abstractmethod
    async def queue_size(self, queue: str) -> int:
        """How many payloads ``queue`` holds now (0 for a queue never used)."""

    @abstractmethod
    async def queue_task_done(self, queue: str) -> int:
        """Count one unfinished task of ``queue`` as done; return how many are left.

        Raises ``ValueError`` (and changes nothing) when no task is unfinished.
        """

    @abstractmethod
    async def queue_unfinished(self, queue: str) -> int:
        """How many tasks of ``queue`` were put and not yet marked done."""

    @abstractmethod
    async def queue_delete(self, queue: str) -> None:
        """Remove ``queue``: its payloads and its unfinished count.

        Getters waiting on it keep waiting (for payloads put afterwards).
        """

    # -- child processes -------------------------------------------------------

    async def serve_child(self, channel: Channel) -> str | None:
        """Let a child process reach this transport's namespace, as a node of its own.

        Either serve this transport's verbs to the child over ``channel`` (the
        child then uses :class:`~tactor.transports.hub_client.HubClient`) and
        return None, or return a URL the child opens itself. What the child opened
        must be released when ``channel`` closes (the child exited or died).
        Raises :class:`~tactor.errors.ConfigError` where the transport cannot.
        """
        raise ConfigError(f"{type(self).__name__} cannot host providers in child processes")

    # -- conveniences ----------------------------------------------------------

    async def __aenter__(self) -> Transport:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"
