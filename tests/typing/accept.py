"""Calls that mypy --strict must accept, with the types it must infer."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, assert_type

import tactor
from tactor import (
    ActorRef,
    ActorSystem,
    AsyncQueue,
    BlockingProcesses,
    BlockingSystem,
    BroadcastResult,
    DeadLetter,
    EndpointInfo,
    Outcome,
    ProviderInfo,
    SystemStats,
)
from tests.model import Item, Pricing


async def calls(system: ActorSystem) -> None:
    ref = await system.spawn(Pricing, "eu")
    assert_type(ref, ActorRef[Pricing])
    assert_type(ref.id, str)
    await system.spawn(Pricing, region="us")
    in_child = await system.processes(restart="always").spawn(Pricing, "eu")
    assert_type(in_child, ActorRef[Pricing])
    assert_type(await system.processes().spawn_many(2, Pricing, "eu"), list[ActorRef[Pricing]])
    stats = await system.stats()
    assert_type(stats.children, Mapping[str, SystemStats])
    assert_type(stats.children[in_child.id].node, str)

    pricing = system.proxy(Pricing, timeout=2.0)
    assert_type(pricing, Pricing)
    assert_type(await pricing.quote([Item("a", 2)]), Decimal)
    assert_type(await pricing.quote([Item("a", 2)], coupon="HALF"), Decimal)
    assert_type(await pricing.restock("a", 10), None)
    assert_type(system.proxy(Pricing, provider=ref), Pricing)
    assert_type(system.proxy(Pricing, provider=ref.id), Pricing)

    totals = await system.broadcast(Pricing.quote, [Item("a", 2)], timeout=2.0)
    assert_type(totals, BroadcastResult[Decimal])
    for total in totals:
        assert_type(total, Decimal)
    assert_type(totals.outcomes, tuple[Outcome[Decimal], ...])
    assert_type(totals.complete, bool)
    assert_type(
        await system.broadcast(Pricing.quote, [Item("a", 2)], "HALF"), BroadcastResult[Decimal]
    )

    assert_type(await system.call(Pricing.quote, [Item("a", 1)], timeout=1.0), Decimal)
    assert_type(await system.call(Pricing.where, provider=ref), str)
    assert_type(await system.tell(Pricing.restock, "a", 10), None)
    await system.tell(Pricing.restock, "a", 10, timeout=1.0, provider=ref)
    assert_type(await system.providers(Pricing), list[str])
    reached = await system.publish(Item("a", 1))
    assert_type(reached, int | None)


def blocking(system: BlockingSystem) -> None:
    ref = system.spawn(Pricing, "eu")
    assert_type(ref, ActorRef[Pricing])
    assert_type(system.call(Pricing.quote, [Item("a", 1)], timeout=1.0), Decimal)
    assert_type(system.broadcast(Pricing.quote, [Item("a", 1)]), BroadcastResult[Decimal])
    assert_type(system.tell(Pricing.restock, "a", 1), None)
    assert_type(system.publish(Item("a", 1)), int | None)
    pool = system.processes(restart="never", max_restarts=1, restart_window=5.0)
    assert_type(pool, BlockingProcesses)
    assert_type(pool.spawn(Pricing, "eu"), ActorRef[Pricing])
    assert_type(pool.spawn(Pricing, region="us"), ActorRef[Pricing])
    assert_type(pool.spawn_many(2, Pricing, "eu"), list[ActorRef[Pricing]])


def module_level() -> None:
    def product(a: int, b: int) -> int:
        return a * b

    async def aproduct(a: int, b: int) -> int:
        return a * b

    assert_type(tactor.stub(product)(2, 3), int)
    assert_type(tactor.stub(product, multi=True)(2, 3), list[int])
    assert_type(tactor.stub(aproduct, timeout=1.0)(2, 3), int)
    assert_type(tactor.stub(aproduct, multi=True)(2, 3), list[int])
    served = tactor.remote(product)  # the decorator returns the function itself
    assert_type(served(1, 2), int)
    assert_type(tactor.processes(restart="always"), BlockingProcesses)
    assert_type(tactor.processes().spawn(Pricing, "eu"), ActorRef[Pricing])
    assert_type(tactor.processes().spawn_many(3, Pricing, "eu"), list[ActorRef[Pricing]])


async def queues(system: ActorSystem) -> None:
    items = system.queue("items", Item, maxsize=10)
    assert_type(items, AsyncQueue[Item])
    await items.put(Item("a", 1), timeout=1.0)
    await items.put_nowait(Item("a", 1))
    assert_type(await items.get(timeout=1.0), Item)
    assert_type(await items.get_nowait(), Item)
    assert_type(await items.qsize(), int)
    assert_type(await items.full(), bool)
    anything = system.queue("anything")
    assert_type(anything, AsyncQueue[Any])
    await anything.put({"any": ["json", 1]})
    assert_type(await system.queue("ints", list[int]).get(), list[int])


async def failures(system: ActorSystem) -> None:
    letters = await system.dead_letters(Pricing)
    assert_type(letters, list[DeadLetter])
    assert_type(await system.dead_letters("pricing"), list[DeadLetter])
    for letter in letters:
        assert_type(letter.attempts, int)
        assert_type(letter.payload, bytes)
        assert_type(letter.method, str | None)
        assert_type(await system.replay(letter), bool)
        assert_type(await system.discard(letter), bool)


def module_registrations() -> None:
    def product(a: int, b: int) -> int:
        return a * b

    assert_type(tactor.expose(product, "product"), None)
    assert_type(tactor.unexpose(product), None)
    assert_type(tactor.unexpose("product"), None)
    assert_type(tactor.unsubscribe(product), None)


async def operating(system: ActorSystem) -> None:
    for endpoint in await system.endpoints():
        assert_type(endpoint, EndpointInfo)
        assert_type(endpoint.depth, int | None)
        for provider in endpoint.providers:
            assert_type(provider, ProviderInfo)
            assert_type(provider.age, float | None)
            assert_type(provider.pid, int | None)
    assert_type(await system.endpoint_info(Pricing), EndpointInfo)
    assert_type(await system.call_json("pricing", "quote", [[]], {"coupon": None}), Any)
    assert_type(await system.broadcast_json("pricing", "where"), BroadcastResult[Any])
    assert_type(await system.tell_json("pricing", "restock", ["a", 1], timeout=1.0), None)
    assert_type(await system.publish_json("PriceChanged", {}), int | None)
    assert_type(await system.serve(drain_timeout=5.0), signal.Signals)
