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

from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .consumer import DeadLetterEntry, Delivery, MailboxConsumer
from .consumer import ParkingConsumer as ParkingConsumer
from .endpoints import ProviderEntry, endpoint_mailbox, no_provider_message, provider_mailbox
from .inbox import Inbox, InboxHandler, InboxLostHandler
from .subscription import BufferedSubscription, Subscription

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


class Transport(ABC):
    """Moves opaque payloads between mailboxes and topics, and keeps the registry."""

    #: Whether :meth:`publish` returns an exact count of subscriptions reached.
    counts_subscribers: bool = False
    #: The URL's ``max_deliveries`` and ``max_dead_letters`` (see
    #: :data:`~tactor.transports.options.SYSTEM_OPTIONS`), for the system above; None if not given.
    max_deliveries: int | None = None
    max_dead_letters: int | None = None

    @property
    def payload_limit(self) -> int | None:
        """The largest payload this transport carries once started (its server's limit,
        less what it adds to a message), or None where it sets none of its own. A system
        lowers its ``max_payload`` to it at start, so that what passes that check fits."""
        return None

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
