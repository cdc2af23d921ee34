"""A node's reply inbox on Redis: a list, read by a task of its own with BLMPOP.

A reply is appended with RPUSH, and the list expires ``ttl`` after its last
reply (a dead node's inbox so holds its last replies that long). Replies are
at-most-once: when the connection drops, the inbox says so once (``on_lost``)
and the runtime fails the calls waiting on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from redis.exceptions import RedisError, ResponseError

from ...errors import TransportError
from ..inbox import Inbox, InboxHandler, InboxLostHandler
from .connection import LOST, Backoff, check_cancelled
from .wire import HeldConnection

if TYPE_CHECKING:
    from . import RedisTransport

__all__ = ["INBOX_BATCH", "RedisInbox"]

INBOX_BATCH = 128  # replies popped per round trip, at most


class RedisInbox(Inbox):
    """A list read with BLMPOP by a task of its own, each payload handed to the handler."""

    def __init__(
        self,
        transport: RedisTransport,
        name: str,
        on_payload: InboxHandler,
        on_lost: InboxLostHandler,
    ) -> None:
        self._transport = transport
        self._name = name
        self._key = transport.key("in", name)
        self._on_payload = on_payload
        self._on_lost = on_lost
        self._reader: asyncio.Task[None] | None = None
        self._connection = HeldConnection(transport.redis)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._reader = loop.create_task(self._read(), name=f"tactor-inbox-{self._name}")

    async def _read(self) -> None:
        backoff = Backoff()
        lost = False
        while True:
            try:
                if lost:  # reconnect, at a pace, and say again that this inbox is alive
                    await backoff.wait()
                    await self._transport.keep_alive(self._transport.live_key, self._key)
                # Up to INBOX_BATCH replies per round trip when many calls are in flight.
                popped = await self._connection.execute(
                    "BLMPOP", self._transport.block, 1, self._key, "LEFT", "COUNT", INBOX_BATCH
                )
                check_cancelled()
                backoff.reset()
                lost = False
            except (*LOST, ResponseError, TransportError) as exc:
                # A refusal too (a server turned replica answers UNBLOCKED, then READONLY):
                # this task must not end, or every later call of the node waits in vain.
                if not lost:  # once per outage: replies in flight may be lost
                    self._on_lost(TransportError(f"the connection to Redis was lost: {exc}"))
                lost = True
                continue
            if not popped:
                continue
            for payload in popped[1]:
                self._on_payload(payload if isinstance(payload, bytes) else str(payload).encode())
            # Let the callers just answered run before this task asks for more: the next
            # BLMPOP is then written after them, not on their path.
            await asyncio.sleep(0)

    async def close(self) -> None:
        if self._reader is None:
            return
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        self._reader = None
        await self._connection.close()
        await self._transport.forget(self._transport.live_key, self._key)
        with contextlib.suppress(*LOST, RedisError):  # e.g. READONLY: it expires then
            await self._transport.redis.delete(self._key)
