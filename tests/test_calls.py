"""Proxy calls, providers and the registry, remote errors — on every transport."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tactor import (
    ActorSystem,
    InvalidArguments,
    NoProvider,
    RemoteError,
    TactorError,
)
from tests.model import Item, OutOfStock, Pricing, Refused


async def test_quickstart_call_returns_declared_type(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        pricing = system.proxy(Pricing, timeout=2.0)
        total = await pricing.quote([Item("a", 2), Item("b", 1)])
        assert total == Decimal("5.25")
        assert type(total) is Decimal


async def test_keyword_arguments_and_defaults(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        pricing = system.proxy(Pricing)
        assert await pricing.quote([Item("a", 2)], coupon="HALF") == Decimal("1.50")
        assert await pricing.quote(items=[Item("a", 2)]) == Decimal("3.00")
        assert await pricing.quote([Item("a", 2)], None) == Decimal("3.00")


async def test_wrong_arity_is_a_local_type_error(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        pricing = system.proxy(Pricing)
        with pytest.raises(TypeError, match=r"Pricing\.quote"):
            await pricing.quote()  # type: ignore[call-arg]
        with pytest.raises(TypeError, match=r"Pricing\.quote"):
            await pricing.quote([], nope=1)  # type: ignore[call-arg]


async def test_spawn_returns_ref_and_providers_lists_live_ones(url: str) -> None:
    async with ActorSystem(url) as system:
        eu = await system.spawn(Pricing, "eu")
        us = await system.spawn(Pricing, "us")
        assert eu.endpoint == "pricing" and eu.actor_class is Pricing
        assert eu.id != us.id
        assert sorted(await system.providers(Pricing)) == sorted([eu.id, us.id])
        await system.stop(eu)
        assert await system.providers(Pricing) == [us.id]


async def test_calls_spread_across_providers(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        await system.spawn(Pricing, "us")
        pricing = system.proxy(Pricing)
        # Slow calls in flight at once: each provider takes one at a time, so both serve.
        import asyncio

        regions = await asyncio.gather(*(pricing.sleep(0.05) for _ in range(6)))
        assert set(regions) == {"eu", "us"}


async def test_call_addressed_to_one_provider(url: str) -> None:
    async with ActorSystem(url) as system:
        eu = await system.spawn(Pricing, "eu")
        us = await system.spawn(Pricing, "us")
        for _ in range(5):
            assert await system.proxy(Pricing, provider=us.id).where() == "us"
            assert await system.proxy(Pricing, provider=eu).where() == "eu"
            assert await system.call(Pricing.where, provider=eu) == "eu"


async def test_no_provider_fails_fast(url: str) -> None:
    import time

    async with ActorSystem(url, timeout=30.0) as system:
        started = time.monotonic()
        with pytest.raises(NoProvider, match="pricing"):
            await system.proxy(Pricing).quote([Item("a", 1)])
        with pytest.raises(NoProvider):
            await system.tell(Pricing.restock, "a", 1)
        ref = await system.spawn(Pricing, "eu")
        await system.stop(ref)
        with pytest.raises(NoProvider, match=ref.id):
            await system.proxy(Pricing, provider=ref.id).where()
        assert time.monotonic() - started < 5


async def test_two_nodes_call_each_other(url: str) -> None:
    async with ActorSystem(url) as server, ActorSystem(url) as client:
        ref = await server.spawn(Pricing, "eu")
        assert await client.providers(Pricing) == [ref.id]
        assert await client.proxy(Pricing).where() == "eu"
        assert await client.call(Pricing.quote, [Item("b", 2)]) == Decimal("4.50")


async def test_tell_is_processed_in_order(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        for qty in range(1, 11):
            await system.tell(Pricing.restock, "a", qty)
        assert await system.call(Pricing.stock_of, "a") == sum(range(1, 11))


async def test_remote_exception_becomes_remote_error(url: str) -> None:
    async with ActorSystem(url) as system:
        ref = await system.spawn(Pricing, "eu")
        with pytest.raises(RemoteError) as info:
            await system.proxy(Pricing).crash("boom")
        err = info.value
        assert err.remote_type == "builtins.ValueError"
        assert err.remote_message == "boom"
        assert "raise ValueError(message)" in err.remote_traceback
        assert err.provider == ref.id and err.method == "crash"
        assert isinstance(err, TactorError)
        # The actor survived its exception.
        assert await system.proxy(Pricing).where() == "eu"


async def test_interface_exceptions_are_reraised_as_themselves(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        pricing = system.proxy(Pricing)
        await pricing.restock("a", 1)
        with pytest.raises(OutOfStock) as info:
            await pricing.reserve("a", 5)
        assert info.value == OutOfStock("a", 5)
        with pytest.raises(Refused, match="not today"):
            await pricing.refuse("not today")
        assert await pricing.reserve("a", 1) == 0


async def test_wrong_argument_types_are_rejected_with_a_path(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        pricing = system.proxy(Pricing)
        with pytest.raises(InvalidArguments) as info:
            await pricing.quote([Item("a", "two")])  # type: ignore[arg-type]
        assert any(e.startswith("items[0].qty") for e in info.value.errors), info.value.errors
        with pytest.raises(InvalidArguments) as info2:
            await pricing.restock("a", qty="3")  # type: ignore[arg-type]
        assert any(e.startswith("qty") for e in info2.value.errors)
        assert await pricing.quote([Item("a", 2)]) == Decimal("3.00")
