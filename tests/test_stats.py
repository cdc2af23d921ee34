"""``system.stats()``: counters and gauges by endpoint and method, on every transport."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from tactor import ActorSystem, CallTimeout, MethodStats, SystemStats
from tests.helpers import eventually
from tests.model import Item, OutOfStock, PriceChanged, Pricing, Stalling


def of(stats: SystemStats, endpoint: str, method: str) -> MethodStats:
    entry = stats.method(endpoint, method)
    assert entry is not None, f"no stats for {endpoint}.{method}: {stats.methods}"
    return entry


async def test_calls_are_counted_as_sent_handled_and_failed_by_type(url: str) -> None:
    async with ActorSystem(url, timeout=5) as system:
        await system.spawn(Pricing, "eu")
        pricing = system.proxy(Pricing)
        assert await pricing.quote([Item("a", 2)]) == Decimal("3.00")
        await pricing.restock("a", 1)
        with pytest.raises(OutOfStock):
            await pricing.reserve("a", 5)
        with pytest.raises(Exception, match="boom"):
            await pricing.crash("boom")
        stats = await system.stats()
    quote, reserve, crash = (of(stats, "pricing", m) for m in ("quote", "reserve", "crash"))
    assert (quote.sent, quote.handled, dict(quote.failed), dict(quote.handler_failed)) == (
        1,
        1,
        {},
        {},
    )
    assert dict(reserve.failed) == {"OutOfStock": 1}
    assert dict(reserve.handler_failed) == {"OutOfStock": 1}
    assert dict(crash.failed) == {"RemoteError": 1}
    assert dict(crash.handler_failed) == {"builtins.ValueError": 1}
    assert quote.handling_time.count == 1 and quote.handling_time.total > 0
    assert len(quote.handling_time.counts) == len(quote.handling_time.bounds) + 1
    assert stats.in_flight == 0 and quote.in_flight == 0
    assert stats.mailbox_depth == {"pricing": 0}


async def test_timeouts_are_counted_apart_and_calls_in_flight_are_a_gauge(url: str) -> None:
    async with ActorSystem(url, timeout=5) as system:
        await system.spawn(Stalling)
        stalled = asyncio.create_task(system.call(Stalling.stall, 30.0))
        started = await _in_flight(system, 1)
        assert of(started, "stalling", "stall").in_flight == 1
        with pytest.raises(CallTimeout):
            await system.call(Stalling.stall, 30.0, timeout=0.2)
        stats = await system.stats()
        stall = of(stats, "stalling", "stall")
        assert (stall.sent, stall.timed_out, dict(stall.failed)) == (2, 1, {})
        # The provider is busy with the first: the second waits in the mailbox, or was
        # taken and cancelled at its deadline.
        stalled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stalled
        ended = await _in_flight(system, 0)
    assert of(ended, "stalling", "stall").in_flight == 0


async def _in_flight(system: ActorSystem, count: int) -> SystemStats:
    return await eventually(system.stats, lambda stats: stats.in_flight == count)


async def test_mailbox_depth_counts_the_messages_waiting(url: str) -> None:
    async with ActorSystem(url, timeout=5) as system:
        await system.spawn(Stalling)
        first = asyncio.create_task(system.call(Stalling.stall, 30.0))
        await _in_flight(system, 1)
        for _ in range(3):
            await system.tell(Stalling.counts)
        stats = await system.stats()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
    assert stats.mailbox_depth["stalling"] == 3  # the one being handled is not waiting
    assert of(stats, "stalling", "counts").sent == 3


async def test_events_are_counted_by_topic(url: str) -> None:
    async with ActorSystem(url, timeout=5) as system:
        await system.spawn(Pricing, "eu")
        seen = asyncio.Event()

        async def boom(event: PriceChanged) -> None:
            seen.set()
            raise RuntimeError("subscriber failed")

        await system.subscribe(boom)
        await system.publish(PriceChanged("a", Decimal(2)))
        await seen.wait()
        pricing = system.proxy(Pricing)
        await eventually(pricing.events_seen, lambda seen: seen == ["price:a"])
        stats = await system.stats()
    assert stats.events_published == {"PriceChanged": 1}
    assert stats.events_handled == {"PriceChanged": 2}
    assert stats.events_failed == {"PriceChanged": 1}


async def test_unknown_methods_share_one_entry_past_the_limit() -> None:
    from tactor.actors.stats import _MAX_METHODS, Stats

    stats = Stats()
    for n in range(_MAX_METHODS + 5):
        token, _ = stats.sending("call", "e", f"m{n}", "id")
        stats.sent(token, None)
    snapshot = stats.snapshot("node", {})
    assert len(snapshot.methods) == _MAX_METHODS + 1
    assert of(snapshot, "e", "<other>").sent == 5
