"""Named queues on Redis lists: the queue verbs of :class:`~tactor.transports.redis.RedisTransport`.

``P:q:NAME`` holds the items (RPUSH, then BLPOP/LPOP: each item goes to
exactly one getter), ``P:q:NAME:unfinished`` counts items put and not yet
marked done (deleted at 0, so a finished queue leaves no key).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ...errors import TransportClosed, TransportError
from .connection import commands, text, translated

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["RedisQueues"]

log = logging.getLogger(__name__)

#: How long the token that wakes a cancelled get's BLPOP may wait for it (ms).
WAKE_TTL_MS = 10_000


class RedisQueues:
    """The transport's queue verbs (a mixin: the transport provides the attributes below)."""

    block: float
    scripts: dict[str, Any]
    _closed: bool
    _give_backs: set[asyncio.Task[None]]

    if TYPE_CHECKING:

        @property
        def redis(self) -> aioredis.Redis: ...

        def key(self, kind: str, name: str | None = None) -> str: ...

    def queue_key(self, queue: str) -> str:
        return self.key("q", queue)

    @contextlib.asynccontextmanager
    async def _queue_op(self, what: str) -> AsyncIterator[None]:
        """Translate errors; on (or cut by) a closed transport, raise TransportClosed."""
        if self._closed:
            raise TransportClosed(f"the Redis transport is closed: cannot {what}")
        try:
            with translated(what):
                yield
        except TransportError as exc:
            if self._closed and not isinstance(exc, TransportClosed):
                raise TransportClosed(f"the Redis transport closed during {what}") from exc
            raise

    async def queue_put(self, queue: str, payload: bytes, maxsize: int) -> bool:
        key = self.queue_key(queue)
        async with self._queue_op(f"put on queue {queue}"):
            result = await self.scripts["queue_put"](
                keys=[key, f"{key}:unfinished"], args=[max(maxsize, 0), payload]
            )
        return bool(result == 1)

    async def queue_get(self, queue: str, timeout: float | None) -> bytes | None:
        key = self.queue_key(queue)
        what = f"get from queue {queue}"
        if timeout is not None and timeout <= 0:
            return await self._pop(key, 0.0, what)
        loop = asyncio.get_running_loop()
        end = None if timeout is None else loop.time() + timeout
        while True:
            # BLPOP in slices of at most `block` seconds, so that close() is noticed;
            # never 0 seconds, which BLPOP takes as "for ever".
            wait = self.block if end is None else min(self.block, end - loop.time())
            payload = await self._pop(key, max(wait, 0.001), what)
            if payload is not None:
                return payload
            if end is not None and loop.time() >= end:
                return None

    async def _pop(self, key: str, wait: float, what: str) -> bytes | None:
        """One LPOP (``wait`` 0) or BLPOP of up to ``wait`` seconds, in a task of its own.

        A cancelled caller does not cancel the command: redis-py would drop the
        connection, and a payload the server popped just then would be lost (it
        may also swallow the cancellation and return the payload). Instead the
        BLPOP, which also watches a wake-up list of its own, is woken by a push
        onto that list, and a payload it took all the same goes back to the
        front of the queue. Nothing is lost, and nothing waits out the BLPOP.
        """
        wake = f"{key}:wake:{uuid.uuid4().hex}" if wait > 0 else None
        async with self._queue_op(what):
            task = asyncio.get_running_loop().create_task(self._pop_once(key, wait, wake))
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                self._give_back(key, task, wake)
                raise

    async def _pop_once(self, key: str, wait: float, wake: str | None) -> bytes | None:
        if wake is None:
            payload = await commands(self.redis).lpop(key)
        else:
            item = await commands(self.redis).blpop([key, wake], timeout=wait)
            payload = None if item is None or text(item[0]) != key else item[1]
        if payload is None or isinstance(payload, bytes):
            return payload
        return str(payload).encode()

    def _give_back(self, key: str, pop: asyncio.Task[bytes | None], wake: str | None) -> None:
        """After a cancelled get: end its pop at once, and requeue what it took (at the front)."""

        async def give_back() -> None:
            if wake is not None and not pop.done():
                try:  # the token expires if the BLPOP ended by itself meanwhile
                    await self.scripts["queue_wake"](keys=[wake], args=[WAKE_TTL_MS])
                except Exception as exc:  # then the BLPOP ends at its own timeout
                    log.warning("could not wake a cancelled get on %s: %s", key, exc)
            try:
                payload = await pop
            except Exception:
                return  # the pop failed: it took nothing (or nothing we can know of)
            if payload is None:
                return
            try:
                await commands(self.redis).lpush(key, payload)
            except Exception as exc:
                log.error("a queue item on %s popped for a cancelled get was lost: %s", key, exc)

        task = asyncio.get_running_loop().create_task(give_back())
        self._give_backs.add(task)
        task.add_done_callback(self._give_backs.discard)

    async def queue_size(self, queue: str) -> int:
        async with self._queue_op(f"size queue {queue}"):
            return int(await commands(self.redis).llen(self.queue_key(queue)))

    async def queue_task_done(self, queue: str) -> int:
        key = self.queue_key(queue)
        async with self._queue_op(f"mark a task of queue {queue} done"):
            left = int(await self.scripts["queue_task_done"](keys=[f"{key}:unfinished"]))
        if left < 0:
            raise ValueError("task_done() called too many times")
        return left

    async def queue_unfinished(self, queue: str) -> int:
        async with self._queue_op(f"count unfinished tasks of queue {queue}"):
            value = await self.redis.get(f"{self.queue_key(queue)}:unfinished")
        return int(value or 0)

    async def queue_delete(self, queue: str) -> None:
        key = self.queue_key(queue)
        async with self._queue_op(f"delete queue {queue}"):
            await self.redis.delete(key, f"{key}:unfinished")
