"""Events: typed topics, hierarchical patterns, plain function subscribers, counts."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from tactor import Actor, ActorSystem, ConfigError, SchemaError, subscribe
from tests.helpers import eventually
from tests.model import Item, PriceChanged, Pricing, StockChanged, UsStockChanged


async def test_subscribed_actors_receive_events_through_their_mailbox(url: str) -> None:
    async with ActorSystem(url) as system:
        eu = await system.spawn(Pricing, "eu")
        us = await system.spawn(Pricing, "us")
        reached = await system.publish(PriceChanged("a", Decimal("9.99")))
        if system.transport.counts_subscribers:
            assert reached == 2
        for ref in (eu, us):
            proxy = system.proxy(Pricing, provider=ref)
            await eventually(proxy.events_seen, lambda seen: "price:a" in seen)
            assert await proxy.quote([Item("a", 1)]) == Decimal("9.99")


async def test_a_busy_provider_with_event_handlers_holds_no_message_an_idle_one_could_take(
    url: str,
) -> None:
    """An actor with event handlers reads its mailbox beside its subscriptions; while it
    handles a message it takes no other: the calls made meanwhile go to the idle one."""
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        await system.spawn(Pricing, "us")
        pricing = system.proxy(Pricing, timeout=10)
        slow = asyncio.ensure_future(pricing.sleep(1.5))
        await asyncio.sleep(0.3)  # taken by one of them by now
        quick = [await pricing.sleep(0) for _ in range(6)]
        busy = await slow
        assert busy not in quick, (busy, quick)  # none waited behind the slow one


async def test_wildcard_patterns_and_union_annotations(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        proxy = system.proxy(Pricing)
        await system.publish(StockChanged("x", 1))  # topic stock.eu.changed
        await system.publish(UsStockChanged("y", 2))  # topic stock.us.changed
        seen = await eventually(proxy.events_seen, lambda s: len(s) >= 2)
        assert sorted(seen) == ["StockChanged:x", "UsStockChanged:y"]


async def test_function_subscribers_and_explicit_topics(url: str) -> None:
    async with ActorSystem(url) as system:
        got: list[tuple[str, int]] = []
        done = asyncio.Event()

        async def on_stock(event: StockChanged) -> None:
            got.append((event.sku, event.qty))
            if len(got) == 3:
                done.set()

        sub_all = await system.subscribe(on_stock, "stock.#")
        sub_one = await system.subscribe(on_stock, "stock.*.changed")
        assert await system.publish(StockChanged("a", 1)) in (2, None)
        assert await system.publish(StockChanged("b", 2), topic="stock") in (1, None)
        await asyncio.wait_for(done.wait(), 5)
        assert sorted(got) == [("a", 1), ("a", 1), ("b", 2)]
        await sub_all.close()
        await sub_one.close()
        if system.transport.counts_subscribers:
            assert await system.publish(StockChanged("c", 3)) == 0


async def test_events_are_handled_one_at_a_time_in_order(url: str) -> None:
    async with ActorSystem(url) as system:
        order: list[int] = []
        active = 0
        overlap = False

        async def handler(event: StockChanged) -> None:
            nonlocal active, overlap
            active += 1
            overlap = overlap or active > 1
            await asyncio.sleep(0)
            order.append(event.qty)
            active -= 1

        await system.subscribe(handler)
        for i in range(20):
            await system.publish(StockChanged("s", i))
        await eventually(lambda: asyncio.sleep(0, len(order)), lambda n: n == 20)
        assert order == list(range(20))
        assert not overlap


async def test_events_published_at_once_by_one_node_arrive_in_the_order_issued(url: str) -> None:
    """On Redis, publishes issued together share pipelined round trips: still in order."""
    async with ActorSystem(url) as publisher, ActorSystem(url) as listener:
        seen: list[int] = []

        async def handler(event: StockChanged) -> None:
            seen.append(event.qty)

        await listener.subscribe(handler)

        async def probed() -> list[int]:  # Redis pub/sub: until the subscription is live
            await publisher.publish(StockChanged("s", -1))
            return seen

        await eventually(probed, lambda got: -1 in got)
        await asyncio.gather(*(publisher.publish(StockChanged("s", i)) for i in range(300)))
        await eventually(lambda: asyncio.sleep(0, seen), lambda got: got.count(299) == 1)
        assert [qty for qty in seen if qty >= 0] == list(range(300))  # probes come first


@pytest.mark.in_process
async def test_handler_errors_do_not_stop_the_actor(url: str) -> None:
    class Fragile(Actor, name="fragile"):
        def __init__(self) -> None:
            self.count = 0

        @subscribe
        async def on_stock(self, event: StockChanged) -> None:
            self.count += 1
            if event.qty < 0:
                raise ValueError("negative")

        async def handled(self) -> int:
            return self.count

    async with ActorSystem(url) as system:
        await system.spawn(Fragile)
        await system.publish(StockChanged("a", -1))
        await system.publish(StockChanged("a", 1))
        await eventually(system.proxy(Fragile).handled, lambda n: n == 2)


def test_subscribe_needs_a_typed_single_parameter() -> None:
    with pytest.raises(SchemaError, match="exactly one parameter"):

        class Bad(Actor):
            @subscribe
            async def on_two(self, a: StockChanged, b: StockChanged) -> None: ...

    with pytest.raises(SchemaError, match="no type hint"):

        class Bad2(Actor):
            @subscribe
            async def on_any(self, event) -> None: ...  # type: ignore[no-untyped-def]


async def test_publish_of_an_unsendable_event_fails_clearly(url: str) -> None:
    async with ActorSystem(url) as system:
        with pytest.raises(SchemaError):
            await system.publish(object())
        with pytest.raises(ConfigError, match="invalid topic"):
            await system.publish(StockChanged("a", 1), topic="bad topic!")
