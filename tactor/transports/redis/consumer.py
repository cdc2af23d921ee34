"""Mailboxes on Redis Streams: a consumer per provider, reading through its node.

Each mailbox is a stream with one consumer group. Every consumer of a node reads
under the node's name (see :mod:`.reader`), so an entry taken stays in the group's
pending list, owned by the node, until acknowledged; the consumer knows which of
them it holds. Acknowledged entries are deleted at once (XACK + XDEL), so a stream
holds only what is unfinished.

Reading: a consumer with nothing buffered sends one script (``TAKE``) that sends
its acknowledgements due, reads its private mailboxes (when its node's bell said
they got something) and its shared ones, earlier ones first, and — when nothing was
there — rings the node's bell so that the reader reads the shared ones for it,
blocking. It then waits for the reader to hand it an entry, or to say its private
mailbox rang. An idle consumer costs no connection and no command.

Prefetch: a consumer reads as many entries per round trip as it expects to
handle within ``prefetch_window`` seconds (a moving average of its handling
time decides), at most ``prefetch``. A fast handler reads many per round trip;
a slow one reads one at a time, so it never holds work an idle provider could
have taken for longer than the window.

Attempts: a delivery's ``attempts`` is the entry's delivery count in the group
(1 when read, one more per ``XCLAIM``: the count ``XPENDING`` gave before the
claim, plus one) plus the ``n`` field an entry put back at a close carries (its
deliveries before). Both come with the reads and claims there are anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from ...errors import TransportClosed, TransportError
from ..base import Delivery, MailboxConsumer
from .connection import LOST, Backoff, check_cancelled, text
from .feeds import GROUP, Entry, Feed, entries_of, expected
from .reader import NodeReader

if TYPE_CHECKING:
    from . import RedisTransport

__all__ = ["GROUP", "RedisConsumer"]

log = logging.getLogger(__name__)

_RUNG = object()  # a consumer's wait ends: its private mailbox got something
_CLOSED = object()  # a consumer's wait ends: it was closed


class RedisDelivery(Delivery):
    __slots__ = ("_consumer", "entry_id", "key")

    def __init__(
        self,
        consumer: RedisConsumer,
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


class RedisConsumer(MailboxConsumer):
    """Reads one or more mailbox streams, one delivery at a time, through its node's reader."""

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
        self._refused: str | None = None
        self._waiting: asyncio.Future[Any] | None = None
        self._wake: Callable[[], None] | None = None  # parked (receive_or_park): whom to wake
        self._late: asyncio.Future[Any] | None = None  # a read whose receive was cancelled
        self._eager = False  # counted in its feeds' ``eager`` (see Feed)
        self._parked = False  # waiting for the reader, no read of its own in flight
        self._handed_at = 0.0  # when the last delivery was handed out
        self._handling = transport.prefetch_window  # moving average of the time per message
        self.closed = False

    async def open(self, shared: Sequence[str]) -> None:
        """Start reading: the private mailboxes through the node's bell, the ``shared`` ones
        through the node's feeds."""
        for key in self._private:
            self._reader.private[key] = self
        try:
            for mailbox in shared:
                key = self._transport.mailbox_key(mailbox)
                self._feeds += (await self._reader.join(key, mailbox),)
        except BaseException:
            await self.close()
            raise

    # -- the reader's side -----------------------------------------------------

    def ring(self) -> None:
        """The private mailbox got something: read it at the next receive (now, if waiting)."""
        self._dirty = True
        self._rings += 1
        waiting = self._waiting
        if waiting is not None and not waiting.done():
            self._end_wait(waiting, _RUNG)

    def recover(self) -> None:
        """Entries read for the node may have been lost on their way: read the private
        mailboxes from the start (what this consumer holds is skipped)."""
        if self._private:
            self._recover = True
        self.ring()

    def parked(self) -> bool:
        """Whether the reader may read the private mailboxes for it (see ``served``)."""
        waiting = self._waiting
        return self._parked and not self._recover and waiting is not None and not waiting.done()

    def served(self, key: str, entries: Any, count: int) -> None:
        """The reader read ``entries`` (asking for ``count``) from private mailbox ``key``,
        or a delivery did for the node (carried by a ring): kept in order, after what the
        consumer was handed before."""
        waiting = self._waiting
        if waiting is not None and waiting.done():  # not taken yet: after what it holds
            item = None if waiting.cancelled() or waiting.exception() else waiting.result()
            if isinstance(item, tuple) and len(item) == 3 and item[0] == key:
                item[1].extend(entries)
                return
        if waiting is None or waiting.done():  # busy: buffer them
            self._took([key, entries])
            return
        self._rings += 1
        self._dirty = len(entries) >= count or len(self._private) > 1  # maybe more to read
        self._end_wait(waiting, (key, entries, count))

    def fail(self, exc: Exception) -> None:
        """The reader failed (not Redis): a waiting receive raises ``exc``."""
        waiting = self._waiting
        if waiting is not None and not waiting.done():
            waiting.set_exception(exc)
            self._woken()

    def offer(self, feed: Feed, entry: Entry) -> bool:
        """Take ``entry`` if waiting (and stop waiting on every feed); False if not."""
        waiting = self._waiting
        if waiting is None or waiting.done():
            feed.waiters.pop(self, None)
            return False
        for mine in self._feeds:
            mine.waiters.pop(self, None)
        self._end_wait(waiting, (feed, entry))
        return True

    def _end_wait(self, waiting: asyncio.Future[Any], item: object) -> None:
        waiting.set_result(item)
        self._woken()

    def _woken(self) -> None:
        """A parked consumer's wait ended: wake its caller now (not a loop turn later: the
        reader lets the consumers it served run before it reads again, see NodeReader._step)."""
        wake = self._wake
        if wake is not None:
            wake()

    # -- receiving -------------------------------------------------------------

    async def receive(self) -> Delivery:
        delivery = await self._receive(None)
        assert delivery is not None  # (it parks only when told whom to wake)
        return delivery

    async def receive_or_park(self, wake: Callable[[], None]) -> Delivery | None:
        return await self._receive(wake)

    async def _receive(self, wake: Callable[[], None] | None) -> RedisDelivery | None:
        backoff: Backoff | None = None  # made at the first error: an idle consumer holds less
        while True:
            if self.closed:
                raise TransportClosed("mailbox consumer is closed")
            waiting = self._waiting
            if waiting is not None:  # parked by an earlier receive_or_park
                if wake is not None and not waiting.done():
                    return None  # nothing yet: its wake is still due
                if (delivery := await self._wait(waiting)) is not None:
                    return delivery
                continue
            self._be_eager(False)
            if self._reader.failure is not None:
                raise self._reader.failure
            now = time.monotonic()
            if self._handed_at:  # the time since the last hand-out: how long one message takes
                self._handling += (now - self._handed_at - self._handling) * 0.25
                self._handed_at = 0.0
            if self._buffer:
                return self._hand_out(self._buffer.pop(0))
            if not self._dirty:
                for feed in self._feeds:
                    if feed.buffer:
                        if self._to_ack:  # no read of our own: the reader's next one sends them
                            self._reader.add_acks(self._to_ack)
                            self._to_ack = {}
                        return self._adopt(feed, feed.buffer.popleft())
            try:
                if self._regroup:
                    for feed in self._feeds:
                        await self._reader.ensure_group(feed)
                    self._regroup = False
                delivery = await self._take_or_wait(wake)
                check_cancelled()
                backoff = None
                if self._refused is not None:
                    log.warning("%s: Redis serves the mailbox again", self.name)
                    self._refused = None
            except ResponseError as exc:
                self._regroup = True  # never ends (see NodeReader._run): make the groups again
                if str(exc) != self._refused:
                    log.warning("%s: Redis refused a mailbox read (%s); retrying", self.name, exc)
                    self._refused = str(exc)
                if not expected(exc):
                    backoff = backoff or Backoff()
                    await backoff.wait()
                continue
            except LOST as exc:
                what = "Redis connection lost while receiving"
                log.warning("%s: %s (%s); retrying", self.name, what, exc)
                backoff = backoff or Backoff()
                await backoff.wait()
                continue
            if delivery is not None or self._wake is not None:
                return delivery  # (None: parked)

    def _hand_out(self, delivery: RedisDelivery) -> RedisDelivery:
        self._handed_at = time.monotonic()
        self._unacked[(delivery.key, delivery.entry_id)] = delivery
        self._be_eager(self._count() > 1)
        return delivery

    def _be_eager(self, eager: bool) -> None:
        if eager != self._eager:
            self._eager = eager
            for feed in self._feeds:
                feed.eager += 1 if eager else -1
                feed.want = max(feed.want, self._count()) if feed.eager else 0

    def _adopt(self, feed: Feed, entry: Entry) -> RedisDelivery:
        entry_id, payload, attempts = entry
        if attempts > 1:
            feed.redelivered.add(entry_id)
        delivery = RedisDelivery(self, feed.mailbox, feed.key, entry_id, payload, attempts)
        return self._hand_out(delivery)

    async def _take_or_wait(self, wake: Callable[[], None] | None) -> RedisDelivery | None:
        """Read for itself; if nothing was there, wait for the reader — or, with ``wake``,
        park (see ``receive_or_park``). None: look again, or parked."""
        waiting: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting = waiting
        for feed in self._feeds:  # before the read: the reader may read for us meanwhile
            feed.waiters[self] = None
        try:
            if not self._dirty and self._feeds and self._reader.covers(self._feeds):
                took = self._ack_quietly()  # the reader reads for us: no read of our own
            else:
                took = await self._take()
        except BaseException:
            self._give_back(waiting)
            self._settle(waiting)
            raise
        if not waiting.done():
            if took:
                self._settle(waiting)
                return None  # buffered
            for feed in self._feeds:  # kept there while the private ones were read
                if feed.buffer:
                    self._settle(waiting)
                    return self._adopt(feed, feed.buffer.popleft())
            if self._private:  # nothing in hand from them: they need not outlive the ttl
                self._transport.disown_all(self._private)
            if wake is not None:  # no task waits: what ends the wait wakes the caller
                self._parked, self._wake = True, wake
                return None
        return await self._wait(waiting)

    async def _wait(self, waiting: asyncio.Future[Any]) -> RedisDelivery | None:
        """What ended the wait (at once if it ended, parked); None: look again."""
        self._parked = True
        try:
            item = await waiting
        except BaseException:
            self._give_back(waiting)
            raise
        finally:
            self._settle(waiting)
        if item is _CLOSED:
            raise TransportClosed("mailbox consumer is closed")
        if item is _RUNG:
            return None
        if len(item) == 3:  # read for us by the reader, from a private mailbox
            self._took(item[:2])
            return None
        feed, entry = item
        return self._adopt(feed, entry)

    def _settle(self, waiting: asyncio.Future[Any]) -> None:
        """The wait is over: the reader no longer hands this consumer anything."""
        self._waiting = self._wake = None
        self._parked = False
        if not waiting.done():
            waiting.cancel()
        for feed in self._feeds:
            feed.waiters.pop(self, None)

    def _ack_quietly(self) -> bool:
        """Send the acknowledgements due without an answer (nothing wakes for it), and give
        them to the reader too: its next read sends them again, answered — acknowledging
        twice is harmless, and one not applied (a lost connection) is not left behind."""
        transport, acks = self._transport, self._to_ack
        if acks:
            script = transport.unanswered_script("ack")
            for key, ids in acks.items():
                transport.pipeliner.send(
                    "acknowledge", *script, 1, key, GROUP, *ids, quiet=transport.quiet
                )
            self._reader.add_acks(acks)
            self._to_ack = {}
        return False

    def _give_back(self, waiting: asyncio.Future[Any]) -> None:
        if (
            waiting.done()
            and not waiting.cancelled()
            and waiting.exception() is None
            and isinstance(waiting.result(), tuple)
        ):
            item = waiting.result()
            if len(item) == 3:  # private entries, pending with the node: keep them
                self._took(item[:2])
            else:
                item[0].put_back(item[1])
        elif not waiting.done():
            waiting.cancel()

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
        window, most = self._transport.prefetch_window, self._transport.prefetch
        if most == 1 or self._handling >= window:
            return 1
        return min(most, max(1, int(window / max(self._handling, 1e-6))))

    # -- finishing -------------------------------------------------------------

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
            self._end_wait(waiting, _RUNG)

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

    async def close(self) -> None:
        """Put back what was taken and not acknowledged, then leave the feeds."""
        if self.closed:
            return
        self.closed = True
        self._be_eager(False)
        self._transport.consumers.discard(self)
        waiting, wake = self._waiting, self._wake
        if waiting is not None and not waiting.done():
            waiting.set_result(_CLOSED)
        if waiting is not None and wake is not None:  # parked: nobody takes what ended it
            self._give_back(waiting)
            self._settle(waiting)
            wake()  # it finds the consumer closed
        for key in self._private:
            if self._reader.private.get(key) is self:
                del self._reader.private[key]
        if self._late is not None:  # let a cut-short read land in the buffer first
            await asyncio.wait([self._late], timeout=2.0)
        # Deliveries are handled one at a time, in order: only the oldest one handed out
        # and not acknowledged was in hand; the others go back without another attempt.
        in_hand = next(iter(self._unacked.values()), None)
        held: dict[str, list[str]] = {}
        for delivery in [*self._unacked.values(), *self._buffer]:
            held.setdefault(delivery.key, []).append(delivery.entry_id)
            self._finished(delivery)
        self._unacked.clear()
        self._buffer.clear()
        with contextlib.suppress(*LOST, ResponseError, TransportError):
            await self.flush_acks()
            for key, ids in held.items():
                first = in_hand.entry_id if in_hand and in_hand.key == key else ""
                await self._transport.scripts["requeue"](keys=[key], args=[GROUP, first, *ids])
        self._transport.disown_all(self._private)
        for feed in self._feeds:
            await self._reader.leave(feed)
