"""Mailboxes: one message at a time, per-sender order, bounds and push-back, lifecycle."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter as Tally
from typing import ClassVar

import pytest

from tactor import Actor, ActorSystem, MailboxFull, NotRunning
from tactor.transports.memory import MemoryTransport
from tests.helpers import eventually
from tests.model import Pricing


class Counter(Actor, name="counter"):
    instances: ClassVar[list[Counter]] = []

    def __init__(self, gate: bool = False) -> None:
        self.value = 0
        self.active = 0
        self.max_active = 0
        self.log: list[str] = []
        self.gate_open = asyncio.Event()
        if not gate:
            self.gate_open.set()
        Counter.instances.append(self)

    async def on_start(self) -> None:
        self.log.append("start")

    async def on_stop(self) -> None:
        self.log.append("stop")

    async def add(self, n: int) -> int:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        await asyncio.sleep(0)  # a chance to interleave, if the runtime allowed it
        await self.gate_open.wait()
        self.value += n
        self.active -= 1
        return self.value

    async def record(self, tag: str) -> None:
        await self.gate_open.wait()
        self.log.append(tag)

    async def get(self) -> int:
        return self.value


@pytest.mark.in_process
async def test_one_message_at_a_time(url: str) -> None:
    async with ActorSystem(url) as system:
        ref = await system.spawn(Counter)
        counter = system.proxy(Counter)
        results = await asyncio.gather(*(counter.add(1) for _ in range(50)))
        assert sorted(results) == list(range(1, 51))
        instance = next(c for c in Counter.instances if c.log and c.value == 50)
        assert instance.max_active == 1
        assert ref.id in await system.providers(Counter)


@pytest.mark.in_process
async def test_per_sender_order_is_kept(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Counter)
        for i in range(30):
            await system.tell(Counter.record, f"m{i}")
        await system.call(Counter.get)
        instance = Counter.instances[-1]
        assert instance.log == ["start", *(f"m{i}" for i in range(30))]


@pytest.mark.in_process
async def test_hooks_run_and_stop_drains(url: str) -> None:
    async with ActorSystem(url) as system:
        ref = await system.spawn(Counter)
        instance = Counter.instances[-1]
        assert instance.log == ["start"]
        call = asyncio.create_task(system.call(Counter.add, 5))
        await asyncio.sleep(0.02)
        await system.stop(ref)  # the call in hand finishes first
        assert await call == 5
        assert instance.log == ["start", "stop"]
        assert await system.providers(Counter) == []


@pytest.mark.in_process
async def test_leaving_the_block_stops_every_actor(url: str) -> None:
    system = ActorSystem(url)
    async with system:
        for _ in range(3):
            await system.spawn(Counter)
        spawned = Counter.instances[-3:]
    assert all(c.log == ["start", "stop"] for c in spawned)
    with pytest.raises(NotRunning):
        await system.spawn(Counter)


async def test_bounded_mailbox_pushes_back_on_the_sender() -> None:
    transport = MemoryTransport(mailbox_size=4)
    async with ActorSystem(transport) as system:
        await system.spawn(Counter, gate=True)
        # The actor holds one message in hand; the mailbox holds 4 more.
        for i in range(5):
            await system.tell(Counter.record, f"m{i}", timeout=1.0)
        with pytest.raises(MailboxFull):
            await system.tell(Counter.record, "overflow", timeout=0.2)
        Counter.instances[-1].gate_open.set()
        await system.call(Counter.get)
        assert Counter.instances[-1].log == ["start", *(f"m{i}" for i in range(5))]


@pytest.mark.in_process
async def test_on_start_failure_is_raised_by_spawn(url: str) -> None:
    class Broken(Actor, name="broken"):
        async def on_start(self) -> None:
            raise RuntimeError("no database")

        async def ping(self) -> None: ...

    async with ActorSystem(url) as system:
        with pytest.raises(RuntimeError, match="no database"):
            await system.spawn(Broken)
        assert await system.providers(Broken) == []


async def test_stopping_one_provider_leaves_the_others_serving(url: str) -> None:
    async with ActorSystem(url) as system:
        first = await system.spawn(Counter)
        second = await system.spawn(Counter)
        subscriber = await system.spawn(Pricing, "eu")  # an actor with event handlers, too
        await system.stop(first)
        assert await system.call(Counter.add, 1, provider=second) == 1
        assert await system.call(Counter.add, 2) == 3  # only the second is left
        assert await system.proxy(Pricing, provider=subscriber).where() == "eu"
        await system.stop(subscriber)
        assert await system.call(Counter.get, provider=second) == 3


async def test_stop_puts_back_the_messages_a_provider_took(url: str) -> None:
    async with ActorSystem(url) as system:
        first = await system.spawn(Pricing, "first")  # subscribes to events: reads through pumps
        busy = asyncio.create_task(system.call(Pricing.sleep, 0.3, provider=first))
        await asyncio.sleep(0.05)
        for _ in range(3):  # queued behind the busy call; one is already held by its pump
            await system.tell(Pricing.restock, "x", 1)
        await asyncio.sleep(0.05)
        await system.stop(first)  # finishes the call in hand, hands back the rest
        assert await busy == "first"
        second = await system.spawn(Pricing, "second")
        await eventually(
            lambda: system.call(Pricing.stock_of, "x", provider=second), lambda n: n == 3
        )


class Sleeper(Actor, name="mailbox-sleeper"):
    def __init__(self) -> None:
        self.me = uuid.uuid4().hex

    async def work(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return self.me


async def test_slow_handlers_take_one_message_at_a_time_so_work_spreads(url: str) -> None:
    """Where messages wait, a provider takes several at once only if it expects to handle
    them within a few milliseconds (Redis's and NATS's ``prefetch_window``): a slow handler
    takes one at a time, so the calls made together spread over the idle providers."""
    async with ActorSystem(url) as system:
        for _ in range(2):
            await system.spawn(Sleeper)
        proxy = system.proxy(Sleeper, timeout=10)
        await asyncio.gather(*(proxy.work(0.02) for _ in range(4)))  # learn: slow
        handled = Tally(await asyncio.gather(*(proxy.work(0.1) for _ in range(10))))
        assert len(handled) == 2 and min(handled.values()) >= 3, handled  # hoarded: 9 and 1


class Stalling(Actor, name="mailbox-stalling"):
    """Quick with every item but two: "hold" waits for ``go``, "stall" for ``gate``."""

    go: ClassVar[asyncio.Event]
    gate: ClassVar[asyncio.Event]
    stalled: ClassVar[asyncio.Event]
    handled: ClassVar[list[str]]

    async def work(self, item: str) -> None:
        if item == "hold":
            await Stalling.go.wait()
        if item == "stall":
            Stalling.stalled.set()
            await Stalling.gate.wait()
        Stalling.handled.append(item)


@pytest.mark.in_process
async def test_what_a_provider_took_ahead_of_a_message_that_stalls_goes_to_an_idle_one(
    url: str,
) -> None:
    """A quick provider takes several waiting messages at once (Redis, NATS); when the one
    in hand then stalls, those it took behind it go back to the mailbox (at its second
    heartbeat) and an idle provider handles them, while the stalled one still waits."""
    if not url.startswith("memory"):
        url += "&ttl=0.6"  # a heartbeat every 0.2 s
    Stalling.go, Stalling.gate, Stalling.stalled = asyncio.Event(), asyncio.Event(), asyncio.Event()
    Stalling.handled = []
    items = [f"q{i}" for i in range(60)]
    items.insert(40, "stall")  # by then the provider has learned that it is quick
    async with ActorSystem(url) as system:
        await system.spawn(Stalling)
        await system.tell(Stalling.work, "hold")  # while it holds, the rest waits behind
        for item in items:
            await system.tell(Stalling.work, item)
        Stalling.go.set()  # it takes what waits, several at a time once it learned
        async with asyncio.timeout(10):
            await Stalling.stalled.wait()
        await system.spawn(Stalling)  # idle
        try:
            handled = lambda: asyncio.sleep(0, Stalling.handled)  # noqa: E731
            await eventually(handled, lambda h: len(h) >= 61, timeout=10)
            assert sorted(Stalling.handled) == sorted(["hold", *items[:40], *items[41:]])
        finally:
            Stalling.gate.set()
        await eventually(handled, lambda h: len(h) == 62)
