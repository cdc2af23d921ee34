"""A Redis consumer's state, its round trips and its acknowledgements.

:class:`Taking` holds what a :class:`~.consumer.RedisConsumer` knows (what it read
ahead, handed out, and must acknowledge) and its own reads: one ``TAKE`` script per
round trip, its acknowledgements riding along (see :mod:`.consumer` for how a
consumer reads, waits and parks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from ..consumer import Delivery, ParkingConsumer
from ..prefetch import prefetch_count
from .connection import LOST, text
from .feeds import GROUP, Feed, acknowledging, entries_of
from .reader import NodeReader

if TYPE_CHECKING:
    from . import RedisTransport

__all__ = ["CLOSED", "RUNG", "RedisDelivery", "Taking"]

log = logging.getLogger(__name__)

RUNG = object()  # a consumer's wait ends: its private mailbox got something
CLOSED = object()  # a consumer's wait ends: it was closed
_NOTHING: frozenset[tuple[str, str]] = frozenset()


class RedisDelivery(Delivery):
    __slots__ = ("_consumer", "entry_id", "key")

    def __init__(
        self,
        consumer: Taking,
        mailbox: str,
        key: str,
        entry_id: str,
        payload: bytes,
        attempts: int,
    ) -> None:
        super().__init__(mailbox, payload, attempts)
        self._consumer = consumer
        self.key = key
        self.entry_id = entry_id

    async def ack(self) -> None:
        await self._consumer.ack(self)

    async def dead_letter(self, reason: str, *, attempts: int, into: str, keep: int) -> int:
        return await self._consumer.dead_letter(self, reason, attempts, into, keep)


class Taking(ParkingConsumer):
    """What a consumer holds, and its reads and acknowledgements (see :class:`RedisConsumer`)."""

    __slots__ = (
        "_buffer",
        "_dirty",
        "_eager",
        "_feeds",
        "_handed_at",
        "_handling",
        "_late",
        "_parked",
        "_private",
        "_reader",
        "_recover",
        "_refused",
        "_regroup",
        "_rings",
        "_seen_ahead",
        "_to_ack",
        "_transport",
        "_unacked",
        "_waiting",
        "_wake",
        "closed",
        "name",
    )  # fmt: skip

    def __init__(
        self,
        transport: RedisTransport,
        reader: NodeReader,
        name: str,
        private: Sequence[str],
    ) -> None:
        self._transport = transport
        self._reader = reader
        self.name = name
        self._private = tuple(transport.mailbox_key(m) for m in private)
        self._feeds: tuple[Feed, ...] = ()  # the shared mailboxes, as the reader reads them
        self._buffer: list[RedisDelivery] = []  # read ahead (≤ prefetch): a list is smaller
        self._unacked: dict[tuple[str, str], RedisDelivery] = {}
        self._to_ack: dict[str, list[str]] = {}
        self._dirty = bool(self._private)  # a private mailbox may hold something: read it
        self._rings = 0
        self._recover = False  # read the private mailboxes from '0': a read was cut short
        self._regroup = False
        self._refused: str | None = None  # why Redis does not serve it: said once (CONNECTION_LOST)
        self._waiting: asyncio.Future[Any] | None = None
        self._wake: Callable[[], None] | None = None  # parked (receive_or_park): whom to wake
        self._late: asyncio.Future[Any] | None = None  # a read whose receive was cancelled
        self._eager = False  # counted in its feeds' ``eager`` (see Feed)
        self._parked = False  # waiting for the reader, no read of its own in flight
        self._handed_at = 0.0  # when the last delivery was handed out
        self._handling = transport.prefetch_window  # moving average of the time per message
        #: (key, id) of what was read ahead and waited at the last heartbeat
        self._seen_ahead: AbstractSet[tuple[str, str]] = _NOTHING
        self.closed = False

    def take_back_waiting(self, stuck: dict[str, list[str]]) -> None:
        """At a heartbeat: add to ``stuck`` what this consumer read ahead and still holds
        since the last one behind a message in hand (its handler turned slow), and let go
        of them; what waits while nothing is in hand is handed out next anyway."""
        if not self._unacked or self.closed or not self._buffer:
            self._seen_ahead = _NOTHING  # (shared: an idle consumer holds no set of its own)
            return
        seen = self._seen_ahead
        waited = [d for d in self._buffer if (d.key, d.entry_id) in seen]
        if waited:
            self._buffer = [d for d in self._buffer if (d.key, d.entry_id) not in seen]
            for delivery in waited:
                self._finished(delivery)
                stuck.setdefault(delivery.key, []).append(delivery.entry_id)
        self._seen_ahead = {(d.key, d.entry_id) for d in self._buffer}

    def _end_wait(self, waiting: asyncio.Future[Any], item: object) -> None:
        waiting.set_result(item)
        self._woken()

    def _woken(self) -> None:
        """A parked consumer's wait ended: wake its caller now (not a loop turn later: the
        reader lets the consumers it served run before it reads again, see NodeReader._step)."""
        wake = self._wake
        if wake is not None:
            wake()

    def _ack_quietly(self) -> bool:
        """Give the acknowledgements due to the reader: its next read sends them, in the same
        write. If it is blocked (its next read may be ``block`` seconds away), send them
        now too, without an answer (nothing wakes for it) — acknowledging twice is
        harmless, and one not applied (a lost connection) is not left behind."""
        transport, acks = self._transport, self._to_ack
        if not acks:
            return False
        if not self._reader.reads_soon():
            quiet = transport.quiet
            for key, ids in acks.items():
                transport.pipeliner.send("acknowledge", *acknowledging(key, ids), quiet=quiet)
        self._reader.add_acks(acks)
        self._to_ack = {}
        return False

    async def _take(self) -> bool:
        """One round trip: the acknowledgements due, then the first mailbox with entries
        (private ones only when rung), or a ring for the reader. True if entries came."""
        transport, reader = self._transport, self._reader
        to_ack, self._to_ack = self._to_ack, {}
        for key, ids in reader.share_acks().items():
            to_ack.setdefault(key, []).extend(ids)
        keys = list(to_ack)
        args: list[Any] = [GROUP, reader.node, self._count(), len(keys)]
        args += [len(ids) for ids in to_ack.values()]
        args += [i for ids in to_ack.values() for i in ids]
        private = self._private if self._dirty else []
        for key in private:
            keys.append(key)
            args += ["0" if self._recover else ">", "p"]
        shared = [feed.key for feed in self._feeds]
        for key in shared:
            keys.append(key)
            args += [">", "s"]
        args += ["" if not shared or reader.covers(self._feeds) else reader.bell, self.name]
        rings = self._rings
        taking = transport.pipeliner.execute(
            "EVALSHA", transport.scripts["take"].sha, len(keys), *keys, *args
        )
        try:
            reply = await asyncio.shield(taking)
        except asyncio.CancelledError:
            self._late = taking  # what it reads is kept for the next receive (or put back)
            taking.add_done_callback(lambda done: self._took_late(done, to_ack))
            raise
        except BaseException as exc:
            for key, ids in to_ack.items():  # maybe not applied: acknowledging twice is harmless
                self._to_ack.setdefault(key, []).extend(ids)
            if isinstance(exc, LOST):  # it may have read entries: read them back
                self._recover = True
                reader.lost()
            raise
        self._acked(to_ack)
        if private and (not reply or text(reply[0]) not in private) and rings == self._rings:
            self._dirty = self._recover = False  # read to the end, and no ring since
        return self._took(reply)

    def _took_late(self, done: asyncio.Future[Any], to_ack: dict[str, list[str]]) -> None:
        if self._late is done:
            self._late = None
        if done.cancelled() or done.exception() is not None:
            for key, ids in to_ack.items():
                self._to_ack.setdefault(key, []).extend(ids)
            self._recover = True
            self._reader.lost()
            return
        self._acked(to_ack)
        self._took(done.result())

    def _acked(self, to_ack: dict[str, list[str]]) -> None:
        self._reader.acked(to_ack)

    def _took(self, reply: Any) -> bool:
        """Buffer what a take read (none: False)."""
        if not reply:
            return False
        key = text(reply[0])
        skip = {entry for k, ids in self._to_ack.items() if k == key for entry in ids}
        skip.update(entry for k, entry in self._unacked if k == key)
        skip.update(d.entry_id for d in self._buffer if d.key == key)  # a read from '0' again
        found, foreign = entries_of(reply[1], 1, skip)
        feed = self._reader.feeds.get(key)
        mailbox = feed.mailbox if feed is not None else self._transport.mailbox_of(key)
        for entry_id, payload, attempts in found:
            if feed is not None:
                feed.held.add(entry_id)
            self._buffer.append(RedisDelivery(self, mailbox, key, entry_id, payload, attempts))
        if foreign:
            log.warning("%s: dropped %d foreign entries on %s", self.name, len(foreign), key)
            self._to_ack.setdefault(key, []).extend(foreign)
        if found and key in self._private:
            self._transport.own(key)  # held: it lives while the node does, however long that is
        return bool(found or foreign)  # foreign: read again at once, their acknowledgements first

    def _count(self) -> int:
        """Entries to read: what we expect to handle within the prefetch window."""
        transport = self._transport
        return prefetch_count(self._handling, transport.prefetch_window, transport.prefetch)

    async def dead_letter(
        self, delivery: RedisDelivery, reason: str, attempts: int, into: str, keep: int
    ) -> int:
        """Move ``delivery`` to ``into``'s dead letters, acknowledged (one script, at once)."""
        self._unacked.pop((delivery.key, delivery.entry_id), None)
        dropped = await self._transport.set_aside(
            delivery.key, GROUP, delivery.entry_id, delivery.payload, attempts, reason, into, keep
        )
        self._finished(delivery)
        return dropped

    async def ack(self, delivery: RedisDelivery) -> None:
        """Acknowledge with the next read (one round trip fewer per message).

        Until then the entry stays pending: if this process dies first, the
        message is handled again elsewhere (at-least-once, as documented).
        """
        self._unacked.pop((delivery.key, delivery.entry_id), None)
        self._to_ack.setdefault(delivery.key, []).append(delivery.entry_id)
        feed = self._reader.feeds.get(delivery.key)
        if feed is not None:
            feed.redelivered.discard(delivery.entry_id)
        waiting = self._waiting
        if waiting is not None and not waiting.done():
            # Read ahead already (a runner with a pump): it reads again, the ack riding along.
            self._end_wait(waiting, RUNG)

    def _finished(self, delivery: RedisDelivery) -> None:
        feed = self._reader.feeds.get(delivery.key)
        if feed is not None:
            feed.held.discard(delivery.entry_id)
            feed.redelivered.discard(delivery.entry_id)

    async def flush_acks(self) -> None:
        to_ack, self._to_ack = self._to_ack, {}
        try:
            while to_ack:
                key = next(iter(to_ack))
                await self._transport.ack(key, to_ack[key])  # awaited: none may be left behind
                self._acked({key: to_ack.pop(key)})
        finally:
            for key, ids in to_ack.items():  # not sent: keep them for the next write
                self._to_ack.setdefault(key, []).extend(ids)
