"""Fault injection for tests only: at the Redis consumer's steps, and in a memory consumer.

:class:`FaultyRedisTransport` is a real :class:`RedisTransport` on a real
server; it only lets a test run an action just before one named step of its
consumers — a Redis client method (``xgroup_create``, ``xpending_range``, …)
or a transport method (``live_members``). The action is usually a real Redis
action (delete the stream, replace it with a string) at the one moment a
test cannot otherwise hit; it may also raise. Nothing else changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import redis.asyncio as aioredis

from tactor.transports.base import Delivery, MailboxConsumer
from tactor.transports.memory import MemoryTransport
from tactor.transports.redis import RedisTransport

Action = Callable[[], Awaitable[None]]

#: The steps a fault can be armed at: the consumer's Redis client calls, and the transport's.
CLIENT_STEPS = frozenset(
    {"xgroup_create", "xgroup_createconsumer", "xreadgroup", "xpending_range", "xclaim"}
)
TRANSPORT_STEPS = frozenset({"live_members"})


class Faults:
    """Actions armed at named steps: each runs once, before the next call of its step."""

    def __init__(self) -> None:
        self._armed: dict[str, list[tuple[Action, str | None, bool]]] = {}
        self._hit: dict[str, asyncio.Event] = {}

    def arm(
        self, step: str, action: Action, *, key: str | None = None, always: bool = False
    ) -> asyncio.Event:
        """Run ``action`` before the next call of ``step`` (on ``key`` only, if given; every
        such call, with ``always``). Returns an event set once the action ran."""
        assert step in CLIENT_STEPS | TRANSPORT_STEPS, step
        self._armed.setdefault(step, []).append((action, key, always))
        return self._hit.setdefault(step, asyncio.Event())

    async def before(self, step: str, args: tuple[Any, ...]) -> None:
        """Run the fault armed at ``step``, if any, for a call with ``args``."""
        armed = self._armed.get(step)
        if not armed:
            return
        action, only, always = armed[0]
        keys = [k for a in args for k in (a if isinstance(a, dict) else (a,))]
        if only is not None and only not in keys:
            return
        if not always:
            armed.pop(0)
        await action()
        self._hit[step].set()


class FaultyClient:
    """A redis.asyncio client whose armed steps run their fault first; the rest passes through."""

    def __init__(self, client: aioredis.Redis, faults: Faults) -> None:
        self._client = client
        self._faults = faults

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name not in CLIENT_STEPS:
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            await self._faults.before(name, args)
            return await attr(*args, **kwargs)

        return call


class FaultyRedisTransport(RedisTransport):
    """A Redis transport whose consumers meet the faults armed in :attr:`faults`."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.faults = Faults()

    @property
    def redis(self) -> Any:
        return FaultyClient(super().redis, self.faults)

    async def live_members(self, key: str, members: Iterable[str] = ()) -> list[str]:
        await self.faults.before("live_members", (key, *members))
        return await super().live_members(key, members)


def raising(exc: BaseException) -> Action:
    async def action() -> None:
        raise exc

    return action


def replacing(client: aioredis.Redis, key: str) -> Action:
    """Replace ``key`` with a string: Redis then answers WRONGTYPE to stream commands on it."""

    async def action() -> None:
        await client.delete(key)
        await client.set(key, "not a stream")

    return action


def deleting(client: aioredis.Redis, key: str) -> Action:
    async def action() -> None:
        await client.delete(key)

    return action


class _BreakingConsumer(MailboxConsumer):
    def __init__(self, inner: MailboxConsumer, transport: BreakableMemoryTransport, name: str):
        self._inner = inner
        self._transport = transport
        self._name = name

    def _meet_fault(self) -> None:
        error, times = self._transport.breaks.get(self._name, (None, 0))
        if error is not None and times != 0:
            self._transport.breaks[self._name] = (error, times - 1)
            raise error

    async def receive(self) -> Delivery:
        self._meet_fault()
        return await self._inner.receive()

    async def receive_or_park(self, wake: Callable[[], None]) -> Delivery | None:
        self._meet_fault()
        return await self._inner.receive_or_park(wake)

    async def close(self) -> None:
        await self._inner.close()


class BreakableMemoryTransport(MemoryTransport):
    """A memory transport whose consumer named N raises ``error`` from ``receive`` the next
    ``times`` times (-1: always) once ``breaks[N] = (error, times)`` is set.

    A receive already waiting is not interrupted: the fault is met at the next one.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.breaks: dict[str, tuple[BaseException | None, int]] = {}
        self.opened: dict[str, MailboxConsumer] = {}  # the consumers by name, unwrapped

    async def consume(
        self, mailboxes: Sequence[str], consumer: str, *, private: Sequence[str] = ()
    ) -> MailboxConsumer:
        inner = await super().consume(mailboxes, consumer, private=private)
        self.opened[consumer] = inner
        return _BreakingConsumer(inner, self, consumer)
