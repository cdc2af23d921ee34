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
have taken for longer than the window. One that turns slow on a message gives
back what it read behind it at the second heartbeat that finds it still waiting
(see :meth:`NodeReader._give_back_at_beats`).

Attempts: a delivery's ``attempts`` is the entry's delivery count in the group
(1 when read, one more per ``XCLAIM``: the count ``XPENDING`` gave before the
claim, plus one) plus the ``n`` field an entry put back at a close carries (its
deliveries before). Both come with the reads and claims there are anyway.

What a consumer holds, its own reads and its acknowledgements are in :mod:`.taking`;
this module is how it receives: from what it read ahead, from the reader, or parked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import ResponseError

from ...errors import TransportClosed, TransportError
from ..prefetch import averaged
from .connection import CONNECTION_LOST, LOST, Backoff, check_cancelled, described
from .feeds import GROUP, Entry, Feed, expected
from .taking import CLOSED, RUNG, RedisDelivery, Taking

__all__ = ["GROUP", "RedisConsumer"]

log = logging.getLogger(__name__)


class RedisConsumer(Taking):
    """Reads one or more mailbox streams, one delivery at a time, through its node's reader."""

    __slots__ = ()

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
            self._end_wait(waiting, RUNG)

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

    # -- receiving -------------------------------------------------------------

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
                self._handling = averaged(self._handling, self._handed_at, now)
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
                    log.warning(
                        "%s: Redis refused a mailbox read (%s); retrying", self.name, described(exc)
                    )
                    self._refused = str(exc)
                if not expected(exc):
                    backoff = backoff or Backoff()
                    await backoff.wait()
                continue
            except LOST as exc:
                if self._refused != CONNECTION_LOST:
                    what = "Redis connection lost while receiving"
                    log.warning("%s: %s (%s); retrying", self.name, what, described(exc))
                    self._refused = CONNECTION_LOST
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
        count = self._count()
        for feed in self._feeds:  # before the read: the reader may read for us meanwhile
            feed.waiters[self] = count
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
        if item is CLOSED:
            raise TransportClosed("mailbox consumer is closed")
        if item is RUNG:
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

    # -- finishing -------------------------------------------------------------

    async def close(self) -> None:
        """Put back what was taken and not acknowledged, then leave the feeds."""
        if self.closed:
            return
        self.closed = True
        self._be_eager(False)
        self._transport.consumers.discard(self)
        waiting, wake = self._waiting, self._wake
        if waiting is not None and not waiting.done():
            waiting.set_result(CLOSED)
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
