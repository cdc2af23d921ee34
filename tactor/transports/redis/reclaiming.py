"""Redelivery from nodes that died: the node reader's part.

The node's name is kept alive by the heartbeat thread. While some consumer waits
(and at least every ``reclaim_every`` seconds) the reader looks for entries pending
with consumers (nodes) no longer alive and claims them, one at a time (see
:mod:`.consumer` for how attempts are counted); it also sweeps dead nodes' consumers
out of the groups, and reads back what is pending with its own node after a read
was cut short.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .connection import text
from .feeds import GROUP, Feed, entries_of, pairs_of

if TYPE_CHECKING:
    from . import RedisTransport

__all__ = ["Reclaiming"]

log = logging.getLogger(__name__)


class Reclaiming:
    """Claims of dead nodes' entries and sweeps of their consumers (a mixin of
    :class:`~.reader.NodeReader`, which provides the attributes below)."""

    _transport: RedisTransport
    node: str
    feeds: dict[str, Feed]
    _next_reclaim: float
    _recover: bool

    if TYPE_CHECKING:

        async def _took(self, key: str, entries: Any, deliveries: int = 1) -> None: ...

    async def _recover_own(self) -> None:
        """Read back what is pending with the node and not held here (a read cut short)."""
        redis = self._transport.redis
        for feed in list(self.feeds.values()):
            own = await redis.xreadgroup(GROUP, self.node, {feed.key: "0"})
            for _, entries in pairs_of(own):
                found, _ = entries_of(entries, 1, feed.held)
                feed.give(found)
        self._recover = False

    async def _reclaim(self, feed: Feed) -> None:
        """Claim the oldest entry pending with a node that is no longer alive.

        One at a time, and again at the next step (until none is left); not while a
        redelivered message is in hand here: what a claimer handles before it dies is
        not counted again, so only the message it died on gains an attempt.
        """
        if feed.redelivered:
            self._next_reclaim = 0.0  # claim after it
            return
        transport = self._transport
        min_idle = int(transport.claim_idle * 1000)
        pending = await transport.redis.xpending_range(
            feed.key, GROUP, "-", "+", 100, idle=min_idle
        )
        owners = {text(p["consumer"]) for p in pending} - {self.node}
        if not owners:
            return
        live = set(await transport.live_members(transport.live_key, owners))
        dead = [p for p in pending if text(p["consumer"]) in owners - live]
        if dead:
            await self._flush_waiting_acks(feed)
            oldest = dead[0]
            claimed = await transport.redis.xclaim(
                feed.key, GROUP, self.node, min_idle, [oldest["message_id"]]
            )
            if claimed:
                log.warning("%s: took over a message of a dead consumer", self.node)
            self._next_reclaim = 0.0  # the next step looks for more
            await self._took(feed.key, claimed, int(oldest["times_delivered"]) + 1)

    async def _flush_waiting_acks(self, feed: Feed) -> None:
        """Send the acknowledgements the feed's waiting consumers still hold, before a claim."""
        for consumer in list(feed.waiters):
            await consumer.flush_acks()

    async def _forget_dead_consumers(self, feed: Feed) -> None:
        """Take the consumers of nodes that died (killed, never closed) out of the group.

        A clean close removes the node's consumer; a killed one's stays, one name per
        kill. Only those with nothing pending (claimed already), not live and quiet for
        ``forget_dead_after`` are removed — a live reader reads at least every ``block``.
        """
        transport = self._transport
        quiet_ms = transport.forget_dead_after * 1000
        consumers = await transport.redis.xinfo_consumers(feed.key, GROUP)
        quiet = {
            text(c["name"])
            for c in consumers
            if int(c["pending"]) == 0 and int(c["idle"]) > quiet_ms
        } - {self.node}
        if not quiet:
            return
        live = set(await transport.live_members(transport.live_key, quiet))
        for name in sorted(quiet - live):
            await transport.redis.xgroup_delconsumer(feed.key, GROUP, name)
            log.info("%s: removed the dead consumer %s from %s", self.node, name, feed.key)
