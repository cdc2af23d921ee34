"""Events over Redis pub/sub: one connection per node, patterns shared, filtered locally.

A tactor pattern becomes a Redis glob that matches at least the same topics
(``*`` and ``#`` both become ``*``); each message is then checked against the
tactor pattern, so ``prices.*`` does not deliver ``prices.eu.changed``.
Pub/sub is at-most-once: a node that is disconnected when an event is
published does not receive it, and a subscriber whose buffer is full loses
the event (with a log line) rather than stall every other subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ..subscription import BufferedSubscription, Subscription
from ..topics import check_pattern, topic_matches
from .connection import LOST, Backoff, check_cancelled, described, text

if TYPE_CHECKING:
    from . import RedisTransport

__all__ = ["RedisEvents", "glob_of"]

log = logging.getLogger(__name__)


def glob_of(pattern: str) -> str:
    """A Redis glob matching every topic that ``pattern`` matches (and maybe more)."""
    glob = pattern.replace(".#", "*").replace("#.", "*").replace("#", "*")
    while "**" in glob:
        glob = glob.replace("**", "*")
    return glob


class RedisSubscription(BufferedSubscription):
    def __init__(self, events: RedisEvents, pattern: str, glob: str, buffer: int) -> None:
        super().__init__(pattern, buffer)
        self.glob = glob
        self._events = events
        self._dropped = 0

    def deliver(self, topic: str, payload: bytes) -> None:
        """Buffer an event on a matching topic; drop it (with a log line) when full."""
        if not topic_matches(self.pattern, topic) or self.offer(topic, payload):
            return
        self._dropped += 1
        if self._dropped in (1, 10, 100) or self._dropped % 1000 == 0:
            log.warning("subscription %r is full: %d event(s) dropped", self.pattern, self._dropped)

    async def detach(self) -> None:
        await self._events.remove(self)


class RedisEvents:
    """The node's pub/sub connection and its local subscriptions."""

    def __init__(self, transport: RedisTransport) -> None:
        self._transport = transport
        self._pubsub = transport.redis.pubsub()
        self._prefix = transport.key("ev", "")
        self._by_glob: dict[str, list[RedisSubscription]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._have_subs = asyncio.Event()
        self._adding = asyncio.Lock()  # the reader starts once the first pattern is subscribed

    def channel(self, topic: str) -> str:
        return self._prefix + topic

    async def add(self, pattern: str, buffer: int) -> Subscription:
        glob = glob_of(check_pattern(pattern))
        async with self._adding:
            return await self._add(pattern, glob, buffer)

    async def _add(self, pattern: str, glob: str, buffer: int) -> Subscription:
        sub = RedisSubscription(self, pattern, glob, buffer)
        subs = self._by_glob.setdefault(glob, [])
        subs.append(sub)
        if len(subs) == 1:
            try:
                await self._pubsub.psubscribe(self._prefix + glob)
            except BaseException:
                subs.remove(sub)
                if not subs:
                    del self._by_glob[glob]
                raise
        self._have_subs.set()
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(
                self._read(), name="tactor-redis-events"
            )
        return sub

    async def remove(self, sub: RedisSubscription) -> None:
        subs = self._by_glob.get(sub.glob, [])
        if sub in subs:
            subs.remove(sub)
        if not subs and self._by_glob.pop(sub.glob, None) is not None:
            with contextlib.suppress(*LOST):
                await self._pubsub.punsubscribe(self._prefix + sub.glob)
        if not self._by_glob:
            self._have_subs.clear()

    async def close(self) -> None:
        for subs in list(self._by_glob.values()):
            for sub in list(subs):
                await sub.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, RedisError):
                await self._reader
        with contextlib.suppress(*LOST, RedisError):
            # Untyped in redis-py before 8.2, typed since: called as what it is.
            close: Callable[[], Awaitable[None]] = self._pubsub.aclose
            await close()

    async def _read(self) -> None:
        backoff = Backoff()
        lost = False
        while True:
            await self._have_subs.wait()
            try:
                if lost:  # a new connection: subscribe again to every pattern
                    await self._pubsub.psubscribe(*(self._prefix + g for g in self._by_glob))
                    log.warning("tactor events: reconnected and re-subscribed")
                    lost = False
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=1.0
                )
                check_cancelled()
                backoff.reset()
            except LOST as exc:
                if not lost:
                    log.warning(
                        "tactor events: Redis connection lost (%s); reconnecting", described(exc)
                    )
                lost = True
                await backoff.wait()
                continue
            except RedisError as exc:  # e.g. an ACL that forbids a pattern: say so, keep going
                log.error("tactor events: Redis refused a subscription: %s", described(exc))
                continue
            if message is not None:
                self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") != "pmessage":
            return
        glob = text(message["pattern"])[len(self._prefix) :]
        topic = text(message["channel"])[len(self._prefix) :]
        data = message["data"]
        for sub in self._by_glob.get(glob, ()):
            sub.deliver(topic, data)
