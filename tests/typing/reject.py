"""Calls mypy --strict must reject: each line marked ``# E: code`` errors, no other line does."""

from __future__ import annotations

from decimal import Decimal

import tactor
from tactor import ActorSystem, BlockingSystem
from tests.model import Item, Pricing


async def misuse(system: ActorSystem) -> None:
    pricing = system.proxy(Pricing)
    await pricing.quote(["a"])  # E: list-item
    await pricing.quote([Item("a", 2)], coupon=3)  # E: arg-type
    await pricing.quote()  # E: call-arg
    await pricing.nope()  # E: attr-defined
    text: str = await pricing.quote([])  # E: assignment
    await system.spawn(Pricing)  # E: call-arg
    await system.spawn(Pricing, 1)  # E: arg-type
    await system.processes().spawn(Pricing, 1)  # E: arg-type
    await system.processes().spawn_many(2, Pricing)  # E: call-arg
    system.processes(restart="sometimes")  # E: arg-type
    await system.broadcast(Pricing.quote, "x")  # E: arg-type
    await system.broadcast(Pricing.quote)  # E: arg-type
    await system.broadcast(Pricing.quote, [Item("a", 1)], None, 3)  # E: arg-type
    await system.broadcast(Pricing.quote, [Item("a", 1)], timeout="1")  # E: arg-type
    totals = await system.broadcast(Pricing.quote, [Item("a", 1)])
    first: str = totals[0]  # E: assignment
    await system.tell(Pricing.restock, "a", "ten")  # E: arg-type
    await system.tell(Pricing.restock, "a")  # E: arg-type
    value: int = await system.call(Pricing.quote, [Item("a", 1)])  # E: arg-type
    system.proxy(Pricing, provider=3)  # E: arg-type
    await system.call(len, "abc")  # E: arg-type
    ok: Decimal = await system.call(Pricing.quote, [Item("a", 1)])


def blocking_misuse(system: BlockingSystem) -> None:
    system.call(Pricing.quote, ["a"])  # E: arg-type
    system.spawn(Pricing)  # E: call-arg
    total: str = system.call(Pricing.quote, [Item("a", 1)])  # E: assignment
    system.tell(Pricing.restock, "a", "ten")  # E: arg-type
    system.processes().spawn(Pricing, 1)  # E: arg-type
    system.processes().spawn(Pricing)  # E: call-arg
    system.processes().spawn_many(2, Pricing, region=3)  # E: arg-type
    system.processes(restart="sometimes")  # E: arg-type
    system.processes(max_restarts="5")  # E: arg-type
    pids: list[str] = system.processes().spawn_many(2, Pricing, "eu")  # E: assignment
    tactor.processes().spawn(Pricing, 1)  # E: arg-type
    tactor.processes(restart="sometimes")  # E: arg-type


def stub_misuse() -> None:
    def product(a: int, b: int) -> int:
        return a * b

    tactor.stub(product)("two", 3)  # E: arg-type
    tactor.stub(product)(1)  # E: call-arg
    many: int = tactor.stub(product, multi=True)(1, 2)  # E: assignment


async def queue_misuse(system: ActorSystem) -> None:
    items = system.queue("items", Item)
    await items.put("not an item")  # E: arg-type
    count: int = await items.get()  # E: assignment
    system.queue("items", Item, 10)  # E: call-overload


async def failures_misuse(system: ActorSystem) -> None:
    await system.replay("letter-id")  # E: arg-type
    await system.dead_letters(42)  # E: arg-type
    tactor.unexpose(42)  # E: arg-type
