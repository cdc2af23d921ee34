"""Broadcast: every live provider, all outcomes, back once all answered or at the deadline."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from tactor import ActorSystem, BroadcastResult, NoProvider, RemoteError
from tests.model import Item, OutOfStock, Pricing


async def test_broadcast_gathers_every_provider(url: str) -> None:
    async with ActorSystem(url) as system:
        refs = [await system.spawn(Pricing, region) for region in ("eu", "us", "ap")]
        result = await system.broadcast(Pricing.quote, [Item("a", 2)], timeout=2.0)
        assert isinstance(result, BroadcastResult)
        assert list(result) == [Decimal("3.00")] * 3
        assert result.complete and result.missing == [] and result.errors == {}
        assert sorted(o.provider for o in result.outcomes) == sorted(r.id for r in refs)
        regions = await system.broadcast(Pricing.where)
        assert sorted(regions) == ["ap", "eu", "us"]


async def test_broadcast_returns_as_soon_as_all_answered(url: str) -> None:
    async with ActorSystem(url) as system:
        for region in ("eu", "us", "ap"):
            await system.spawn(Pricing, region)
        started = time.monotonic()
        result = await system.broadcast(Pricing.sleep, 0.05, timeout=10.0)
        elapsed = time.monotonic() - started
        assert result.complete and len(result) == 3
        assert elapsed < 2.0, elapsed  # far under the 10 s deadline


async def test_broadcast_reports_errors_without_hiding_values(url: str) -> None:
    async with ActorSystem(url) as system:
        eu = await system.spawn(Pricing, "eu")
        us = await system.spawn(Pricing, "us")
        await system.tell(Pricing.restock, "a", 3, provider=eu)
        result = await system.broadcast(Pricing.reserve, "a", 2)
        assert result.complete
        assert list(result) == [1]
        assert set(result.errors) == {us.id}
        assert isinstance(result.errors[us.id], OutOfStock)
        by_provider = {o.provider: o for o in result.outcomes}
        assert by_provider[eu.id].ok and by_provider[eu.id].value == 1
        assert not by_provider[us.id].ok and by_provider[us.id].answered

        crashed = await system.broadcast(Pricing.crash, "x")
        assert len(crashed) == 0 and crashed.complete
        assert all(isinstance(e, RemoteError) for e in crashed.errors.values())


async def test_broadcast_deadline_marks_silent_providers(url: str) -> None:
    async with ActorSystem(url) as system:
        fast = await system.spawn(Pricing, "fast")
        slow = await system.spawn(Pricing, "slow")
        # Keep the slow provider busy past the broadcast's deadline.
        busy = asyncio.create_task(system.call(Pricing.sleep, 1.0, provider=slow, timeout=5.0))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        result = await system.broadcast(Pricing.where, timeout=0.3)
        elapsed = time.monotonic() - started
        assert 0.25 <= elapsed < 0.9, elapsed
        assert not result.complete
        assert result.missing == [slow.id]
        assert list(result) == ["fast"]
        assert {o.provider for o in result.outcomes} == {fast.id, slow.id}
        assert await busy == "slow"


async def test_broadcast_with_no_provider_raises_no_provider_as_a_call_does(url: str) -> None:
    async with ActorSystem(url) as system:
        with pytest.raises(NoProvider, match=r"broadcast pricing\.where: no live provider"):
            await system.broadcast(Pricing.where)
        with pytest.raises(NoProvider, match="pricing"):
            await system.call(Pricing.where)
