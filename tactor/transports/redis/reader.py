"""A node's reading of its mailboxes: one task on one connection, whatever its provider count.

Every consumer of a node reads under the node's name in the streams' consumer
groups, so that one ``XREADGROUP`` may read many streams. A mailbox shared by
competing consumers (an endpoint's) is a :class:`Feed`: the node reads it only
while one of its consumers waits on it, as many entries as consumers wait (at
most ``prefetch``), and hands each to a waiting consumer; what nobody waits for
any more stays in the feed for the next one (and goes back to the stream when the
node's last consumer of it closes, or at the second heartbeat that finds it there:
see :meth:`NodeReader._give_back_at_beats`). A consumer that finished a message first reads
for itself, its acknowledgements riding along (see :meth:`RedisConsumer.receive`);
it waits on the reader only when there was nothing to read.

The private mailboxes of a node's providers are not read by the reader: a delivery
to one reads the new entry for the node and rings the node's *bell* (a stream of its
own, see ``_RING`` in :mod:`.scripts`) with the mailbox's name and the entry, and the
reader — blocked on the bell and on the feeds somebody waits on — hands it to that
consumer, in order, with no read of its own. So an idle provider costs no connection
and no command; a node blocks on one stream, not one per provider. A consumer that
starts waiting on a feed the reader is not blocked on rings the bell itself, in the
same script as its read.

Redelivery from nodes that died is in :mod:`.reclaiming`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from itertools import islice
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from .connection import CONNECTION_LOST, LOST, Backoff, check_cancelled, described, text
from .feeds import GROUP, Feed, acknowledging, entries_of, expected, pairs_of, rings_in
from .reclaiming import Reclaiming
from .scripts import CARRIED
from .wire import HeldConnection, quietly

if TYPE_CHECKING:
    from . import RedisTransport
    from .consumer import RedisConsumer

__all__ = ["NodeReader"]

log = logging.getLogger(__name__)

BELL_BATCH = 1000  # rings read per round trip once the bell rang


class NodeReader(Reclaiming):
    """Reads the feeds and the bell of one node; one task, one held connection."""

    def __init__(self, transport: RedisTransport) -> None:
        self._transport = transport
        self.node = transport.node
        self.bell = transport.key("bell", transport.node)
        self.feeds: dict[str, Feed] = {}
        self.private: dict[str, RedisConsumer] = {}  # private mailbox key -> its consumer
        self._connection = HeldConnection(transport.redis)
        self._blocked_on: frozenset[str] | None = None
        self._to_ack: dict[str, list[str]] = {}
        self._strays: list[tuple[str, list[str]]] = []  # read for a feed that was left meanwhile
        self._task: asyncio.Task[None] | None = None
        self._giving_back: asyncio.Task[None] | None = None
        self._starting: asyncio.Lock = asyncio.Lock()
        self._regroup = False
        self._recover = False
        self._resting = False  # waiting after a failure before it reads again
        self._refused: str | None = None  # why Redis does not serve it: said once (CONNECTION_LOST)
        #: A fault that is not Redis's (a bug): receives raise it until a step succeeds, so
        #: runners give up and their providers leave the registry rather than serve nothing.
        self.failure: Exception | None = None
        self._next_reclaim = 0.0
        self._next_sweep = time.monotonic() + transport.forget_dead_after

    async def start(self) -> None:
        """Say the node is alive, make its bell and start reading; idempotent."""
        async with self._starting:
            if self._task is not None:
                return
            transport = self._transport
            await transport.keep_alive(transport.live_key, self.node)
            transport.own(self.bell)
            await self._make_bell()
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), name=f"tactor-reader-{self.node}")
            self._giving_back = loop.create_task(
                self._give_back_at_beats(), name=f"tactor-give-back-{self.node}"
            )

    async def close(self) -> None:
        tasks, self._task, self._giving_back = (self._task, self._giving_back), None, None
        for task in tasks:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._connection.close()
        transport = self._transport
        transport.disown(self.bell)
        with contextlib.suppress(*LOST, ResponseError, Exception):
            await transport.redis.delete(self.bell)
        await transport.forget(transport.live_key, self.node)

    # -- giving back what waits behind a slow message ----------------------------

    async def _give_back_at_beats(self) -> None:
        """At every heartbeat: what was read ahead and still waits at the second beat —
        in a consumer whose message in hand turned slow, or in a feed no consumer of this
        node waits on — goes back to the end of its mailbox for an idle provider, its
        attempts unchanged (as NATS gives back what a consumer pulled ahead)."""
        transport = self._transport
        while True:
            await asyncio.sleep(transport.heartbeat_interval)
            stuck: dict[str, list[str]] = {}
            for consumer in list(transport.consumers):
                consumer.take_back_waiting(stuck)
            for feed in self.feeds.values():
                feed.take_back_waiting(stuck)
            for key, ids in stuck.items():
                try:
                    await transport.scripts["requeue"](keys=[key], args=[GROUP, "", *ids])
                except Exception as exc:  # the reader's next step tries again
                    if not isinstance(exc, (*LOST, ResponseError)):
                        log.exception("%s: giving back entries of %s failed", self.node, key)
                    self._strays.append((key, ids))

    # -- feeds -----------------------------------------------------------------

    async def join(self, key: str, mailbox: str) -> Feed:
        """The feed of ``key``, one user more (its group made and joined the first time)."""
        feed = self.feeds.get(key)
        if feed is None:
            feed = self.feeds[key] = Feed(key, mailbox)
            try:
                await self.ensure_group(feed)
            except BaseException:
                del self.feeds[key]
                raise
        feed.users += 1
        return feed

    async def leave(self, feed: Feed) -> None:
        """One user less; the last one puts back what the node holds and leaves the group."""
        feed.users -= 1
        if feed.users > 0 or self.feeds.get(feed.key) is not feed:
            return
        del self.feeds[feed.key]
        transport, key = self._transport, feed.key
        buffered = [entry[0] for entry in feed.buffer]
        feed.buffer.clear()
        with contextlib.suppress(*LOST, ResponseError, Exception):
            if buffered:
                await transport.scripts["requeue"](keys=[key], args=[GROUP, "", *buffered])
            # Everything else still pending with the node goes back too (a read cut short).
            while pending := await transport.redis.xpending_range(
                key, GROUP, "-", "+", 500, consumername=self.node
            ):
                ids = [text(p["message_id"]) for p in pending]
                await transport.scripts["requeue"](keys=[key], args=[GROUP, "", *ids])
            await transport.scripts["cleanup"](keys=[key], args=[GROUP, self.node])

    async def _make_bell(self) -> None:
        """The bell, and its life: it expires some time after the node died (the heartbeat
        extends it while the node lives)."""
        await self._ensure_group(self.bell)
        await self._transport.redis.pexpire(self.bell, self._transport.private_lifetime)

    async def ensure_group(self, feed: Feed) -> None:
        await self._ensure_group(feed.key)

    async def _ensure_group(self, key: str) -> None:
        redis = self._transport.redis
        try:
            await redis.xgroup_create(key, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        # Join the group now, not at the first entry read: a node that has read nothing yet
        # must still count, or a leaving one would drop the stream under it.
        await redis.xgroup_createconsumer(key, GROUP, self.node)

    def covers(self, feeds: Iterable[Feed]) -> bool:
        """Whether the reader will read ``feeds`` for consumers waiting on them without a ring:
        it is blocked on them, or not blocked (it looks at the waiters before it blocks)."""
        blocked = self._blocked_on
        return blocked is None or all(feed.key in blocked for feed in feeds)

    def reads_soon(self) -> bool:
        """Whether the reader's next read is on its way: it is running, not blocked in a
        read, and not resting after a failure (acknowledgements given now go with it)."""
        task = self._task
        return (
            task is not None and not task.done() and self._blocked_on is None and not self._resting
        )

    def add_acks(self, acks: dict[str, list[str]]) -> None:
        """Acknowledgements of a consumer that took from a feed without a read of its own:
        they go with the reader's next read, or with the next read of any consumer."""
        for key, ids in acks.items():
            self._to_ack.setdefault(key, []).extend(ids)

    def share_acks(self) -> dict[str, list[str]]:
        """The acknowledgements due but the bell's (a consumer's read sends them)."""
        shared = {key: ids for key, ids in self._to_ack.items() if key != self.bell}
        for key in shared:
            del self._to_ack[key]
        return shared

    def acked(self, acks: dict[str, list[str]]) -> None:
        for key, ids in acks.items():
            feed = self.feeds.get(key)
            if feed is not None:
                feed.held.difference_update(ids)

    def lost(self) -> None:
        """A consumer's read was cut short: what it took is pending with the node; read it back."""
        self._recover = True

    def _wake_private(self) -> None:
        """Rings may have been lost (a lost connection, a restart), and the entries they
        carried, read for this node: every consumer reads its own again, from the start."""
        for consumer in list(self.private.values()):
            consumer.recover()

    # -- the loop --------------------------------------------------------------

    async def _run(self) -> None:
        backoff = Backoff()
        regrouped = False
        while True:
            try:
                if self._regroup:
                    await self._make_bell()
                    for feed in list(self.feeds.values()):
                        await self.ensure_group(feed)
                    self._regroup = False
                    self._wake_private()
                await self._step()
                check_cancelled()
                backoff.reset()
                regrouped = False
                self.failure = None
                if self._refused is not None:
                    log.warning("%s: Redis serves the mailboxes again", self.node)
                    self._refused = None
            except ResponseError as exc:
                # Every refusal is met by making the streams and groups again, never by
                # ending: a stream deleted or replaced by another type, a server turned
                # replica (READONLY) and back. A reader that gave up here would leave the
                # node's providers registered by the heartbeat thread while they read nothing.
                self._regroup = True
                if expected(exc) and not regrouped:
                    regrouped = True  # at once the first time; if it recurs, at a pace
                    continue
                if str(exc) != self._refused:
                    log.warning(
                        "%s: Redis refused a mailbox read (%s); retrying", self.node, described(exc)
                    )
                    self._refused = str(exc)
                await self._rest(backoff)
            except LOST as exc:
                if self._refused != CONNECTION_LOST:
                    what = "Redis connection lost while reading"
                    log.warning("%s: %s (%s); retrying", self.node, what, described(exc))
                    self._refused = CONNECTION_LOST
                self._recover = True
                self._wake_private()
                await self._rest(backoff)
            except Exception as exc:
                log.exception("%s: unexpected error reading the mailboxes; retrying", self.node)
                self.failure = exc
                for consumer in {c for f in self.feeds.values() for c in f.waiters}:
                    consumer.fail(exc)
                for consumer in list(self.private.values()):
                    consumer.fail(exc)
                await self._rest(backoff)

    async def _rest(self, backoff: Backoff) -> None:
        self._resting = True
        try:
            await backoff.wait()
        finally:
            self._resting = False

    async def _step(self) -> None:
        transport = self._transport
        if self._recover:
            await self._recover_own()
        for key, ids in self._strays:
            await transport.scripts["requeue"](keys=[key], args=[GROUP, "", *ids])
        self._strays.clear()
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + transport.forget_dead_after
            for feed in list(self.feeds.values()):
                await self._forget_dead_consumers(feed)
        waiting = [f for f in self.feeds.values() if (f.waiters or f.eager) and not f.buffer]
        if waiting and time.monotonic() >= self._next_reclaim:
            self._next_reclaim = time.monotonic() + transport.reclaim_every
            for feed in waiting:
                await self._reclaim(feed)
            check_cancelled()
            # Again, from every feed: consumers that started waiting during the awaits above
            # were told the reader would look (``covers``), and rang no bell.
            waiting = [f for f in self.feeds.values() if (f.waiters or f.eager) and not f.buffer]
        # Each waiter wants one entry or more: its first ``prefetch`` say all that can be read
        # (a node of thousands of waiting providers does not sum them all on every read).
        most = transport.prefetch
        wanted = (max(sum(islice(f.waiters.values(), most)), f.want, 1) for f in waiting)
        count = min(most, min(wanted, default=1))
        keys = [self.bell, *(feed.key for feed in waiting)]
        check_cancelled()
        self._blocked_on = frozenset(keys)
        try:
            response = await self._read_and_ack(keys, count, int(transport.block * 1000))
        finally:
            self._blocked_on = None
        if not response:
            self._next_reclaim = 0.0  # idle: look for orphans at once
        for stream, entries in pairs_of(response):
            await self._took(text(stream), entries)
        if response:
            # Let the consumers just handed an entry run before this task reads again: the
            # next read is then written after their replies, not on their path.
            await asyncio.sleep(0)

    async def _took(self, key: str, entries: Any, deliveries: int = 1) -> None:
        if key == self.bell:
            await self._rang(entries)
            return
        feed = self.feeds.get(key)
        found, foreign = entries_of(entries, deliveries, feed.held if feed else ())
        if foreign:
            log.warning("%s: dropped %d foreign entries on %s", self.node, len(foreign), key)
            await self._transport.ack(key, foreign)
        if feed is None:  # left while the read was on the wire: they go back
            self._strays.append((key, [entry[0] for entry in found]))
        else:
            feed.give(found)

    async def _rang(self, entries: Any) -> None:
        """Serve the consumers whose private mailboxes were delivered to (reading the rest
        of the rings at once: the blocking read takes only as many as consumers wait).

        A ring carries the entries the delivery read for this node (see ``_RING`` in
        :mod:`.scripts`): each consumer is handed its own, in order, once, with no read;
        the mailboxes of rings that carry none are read for the consumers that wait.
        """
        rung: dict[str, RedisConsumer] = {}
        carried: dict[str, list[Any]] = {}
        while entries:
            for entry_id, fields in entries:
                self._to_ack.setdefault(self.bell, []).append(text(entry_id))
                if isinstance(fields, list):
                    rings_in(fields, rung, carried, self.private)
            if len(entries) < BELL_BATCH:
                break
            read = ("XREADGROUP", "GROUP", GROUP, self.node, "COUNT", BELL_BATCH)
            more = await self._connection.execute(*read, "STREAMS", self.bell, ">")
            entries = more[0][1] if more else None
        for key, held in carried.items():
            rung.pop(key, None)
            if consumer := self.private.get(key):
                consumer.served(key, held, CARRIED)
        keys = list(rung)
        for first in range(0, len(keys), BELL_BATCH):
            await self._read_for({key: rung[key] for key in keys[first : first + BELL_BATCH]})

    async def _read_for(self, rung: dict[str, RedisConsumer]) -> None:
        """Read the private mailboxes of the rung consumers that wait, all in one XREADGROUP
        (a broadcast reaches every provider of a node so), and hand each its entries; the
        busy ones read for themselves at their next receive."""
        parked = {key: consumer for key, consumer in rung.items() if consumer.parked()}
        for key, consumer in rung.items():
            if key not in parked:
                consumer.ring()
        if not parked:
            return
        keys, count = list(parked), self._transport.prefetch
        read = ("XREADGROUP", "GROUP", GROUP, self.node, "COUNT", count, "STREAMS")
        try:
            reply = await self._connection.execute(*read, *keys, *(">" for _ in keys))
        except ResponseError:  # one expired meanwhile (NOGROUP): each reads its own
            for consumer in parked.values():
                consumer.ring()
            return
        got = {text(stream): entries for stream, entries in pairs_of(reply)}
        for key, consumer in parked.items():
            consumer.served(key, got.get(key) or [], count)

    async def _read_and_ack(self, keys: list[str], count: int, block: int) -> Any:
        """Read blocking; the bell's acknowledgements due go first, in the same write,
        without an answer where Redis allows it."""
        read = (
            "XREADGROUP", "GROUP", GROUP, self.node, "COUNT", count, "BLOCK", block,
            "STREAMS", *keys, *(">" for _ in keys),
        )  # fmt: skip
        to_ack, self._to_ack = self._to_ack, {}
        acks = [command for key, ids in to_ack.items() for command in acknowledging(key, ids)]
        quiet = self._transport.quiet
        try:
            replies = await self._connection.execute_many(
                [*(c for ack in acks for c in quietly(ack)), read] if quiet else [*acks, read]
            )
        except BaseException:
            for key, ids in to_ack.items():  # maybe not applied: acknowledging twice is harmless
                self._to_ack.setdefault(key, []).extend(ids)
            raise
        # (An acknowledgement Redis refused, answered: the stream or its group is gone, and
        # with them what there was to acknowledge.)
        if isinstance(replies[-1], ResponseError):
            raise replies[-1]
        self.acked(to_ack)
        return replies[-1]
