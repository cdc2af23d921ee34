"""Idle providers hold no task of their own, on every transport (push mode).

A provider without event handlers reads its mailboxes directly: while nothing comes
its consumer is parked (``MailboxConsumer.receive_or_park``) and the runner has no
task; a task is made when something is ready and ends when nothing is. Every
semantic stays: one message at a time, per-sender order, ``stop`` finishing the
message in hand, a provider whose source fails while idle leaving the registry.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import ClassVar

import pytest

from tactor import Actor, ActorSystem
from tactor.transports.memory_consumer import MemoryConsumer
from tactor.transports.nats.consumer import NatsConsumer
from tactor.transports.redis.taking import Taking
from tests.faults import BreakableMemoryTransport
from tests.helpers import eventually

MANY = 300
#: The tasks a node may add while it has providers (its reader, inbox, heartbeat, ...),
#: however many providers it has.
NODE_TASKS = 10


class Idle(Actor, name="idle-provider"):
    by_index: ClassVar[dict[int, Idle]] = {}

    def __init__(self, index: int) -> None:
        Idle.by_index[index] = self
        self.index = index
        self.seen: list[int] = []
        self.running = 0
        self.overlapped = False
        self.release = asyncio.Event()
        self.holding = asyncio.Event()

    async def which(self) -> int:
        return self.index

    async def note(self, n: int) -> None:
        self.running += 1
        self.overlapped |= self.running > 1
        await asyncio.sleep(0)
        self.seen.append(n)
        self.running -= 1

    async def hold(self) -> int:
        self.holding.set()
        await self.release.wait()
        return self.index


def counter(url: str) -> Callable[[], Awaitable[int]]:
    """Counts the tasks of the node: every task, or on NATS those of tactor (nats-py runs a
    task per subscription, and a NATS consumer has a subscription of its own)."""

    async def count() -> int:
        running = asyncio.all_tasks()
        if url.startswith("nats"):
            return sum(1 for task in running if task.get_name().startswith("tactor-"))
        return len(running)

    return count


async def test_idle_providers_hold_no_task_of_their_own(url: str) -> None:
    tasks = counter(url)
    async with ActorSystem(url) as node:
        await node.spawn(Idle, -1)
        assert await node.call(Idle.which) == -1
        await asyncio.sleep(0.2)
        before = await tasks()
        await asyncio.gather(*(node.spawn(Idle, i) for i in range(MANY)))
        await eventually(tasks, lambda n: n <= before + NODE_TASKS)
        # They all serve: a broadcast reaches each, and the tasks it woke end again.
        result = await node.broadcast(Idle.which, timeout=10)
        assert result.complete and sorted(result) == list(range(-1, MANY))
        await eventually(tasks, lambda n: n <= before + NODE_TASKS)


async def test_a_woken_provider_keeps_order_and_one_message_at_a_time(url: str) -> None:
    async with ActorSystem(url) as node:
        ref = await node.spawn(Idle, 0)
        for n in range(50):
            await node.tell(Idle.note, n, provider=ref)
        assert await node.call(Idle.which, provider=ref) == 0  # after every tell before it
        instance = Idle.by_index[0]
        assert instance.seen == list(range(50))
        assert not instance.overlapped


async def test_calls_that_come_as_a_runner_stops_lingering_are_all_served(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runner keeps its task a while after its consumer parks (``linger``; set here on
    every transport's consumers, and made short); calls that come within it, as it ends
    or after it are all served, by one task at a time."""
    for cls in (MemoryConsumer, NatsConsumer, Taking):
        monkeypatch.setattr(cls, "linger", 0.002)
    gaps = random.Random(7)
    async with ActorSystem(url) as node, ActorSystem(url) as caller:
        ref = await node.spawn(Idle, 3)
        for n in range(150):
            async with asyncio.timeout(5):
                await caller.tell(Idle.note, n, provider=ref)
                assert await caller.call(Idle.which, provider=ref) == 3
            await asyncio.sleep(gaps.uniform(0, 0.004))  # before, around and after the end
        instance = Idle.by_index[3]
        assert instance.seen == list(range(150))
        assert not instance.overlapped


async def test_stop_of_an_idle_provider(url: str) -> None:
    async with ActorSystem(url) as node:
        idle = await node.spawn(Idle, 1)
        other = await node.spawn(Idle, 2)
        assert await node.call(Idle.which, provider=idle) == 1
        await asyncio.sleep(0.1)  # parked again
        async with asyncio.timeout(5):
            await node.stop(idle)
        assert node.refs() == [other]
        assert await node.providers(Idle) == [other.id]
        assert {await node.call(Idle.which) for _ in range(5)} == {2}


async def test_stop_of_a_busy_provider_finishes_the_message_in_hand(url: str) -> None:
    async with ActorSystem(url) as node:
        ref = await node.spawn(Idle, 7)
        instance = Idle.by_index[7]
        call = asyncio.create_task(node.call(Idle.hold, provider=ref))
        await instance.holding.wait()
        stopping = asyncio.create_task(node.stop(ref))
        await asyncio.sleep(0.1)
        assert not stopping.done()  # it waits for the message in hand
        instance.release.set()
        assert await call == 7
        async with asyncio.timeout(5):
            await stopping
        assert node.refs() == []


async def test_a_provider_whose_source_fails_while_idle_is_unregistered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    hub = f"memory://{uuid.uuid4().hex[:12]}"
    transport = BreakableMemoryTransport.from_url(hub)
    async with ActorSystem(transport) as node, ActorSystem(hub) as caller:
        doomed = await node.spawn(Idle, 1)
        healthy = await caller.spawn(Idle, 2)
        assert await caller.call(Idle.which, provider=doomed) == 1
        await asyncio.sleep(0.1)  # parked: no task of its own is waiting
        await transport.opened[doomed.id].close()  # its source ends under it
        await eventually(lambda: caller.providers(Idle), lambda p: p == [healthy.id])
        assert node.refs() == []
        assert any("stopped serving" in r.getMessage() for r in caplog.records)
