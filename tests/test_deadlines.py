"""Deadlines: system, proxy and per-call; they travel with the message and are inherited."""

from __future__ import annotations

import asyncio
import time

import pytest

import tactor
from tactor import Actor, ActorSystem, CallTimeout, ConfigError
from tests.model import Pricing


async def test_call_timeout_is_a_timeout_error(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        started = time.monotonic()
        with pytest.raises(CallTimeout) as info:
            await system.proxy(Pricing, timeout=0.2).sleep(2.0)
        assert isinstance(info.value, TimeoutError)
        assert 0.15 < time.monotonic() - started < 1.0


async def test_system_proxy_and_call_defaults(url: str) -> None:
    async with ActorSystem(url, timeout=0.2) as system:
        await system.spawn(Pricing, "eu")
        await system.spawn(Pricing, "us")
        with pytest.raises(CallTimeout):
            await system.proxy(Pricing).sleep(1.0)  # system default 0.2 s
        assert await system.proxy(Pricing, timeout=3.0).sleep(0.4) in ("eu", "us")
        assert await system.call(Pricing.sleep, 0.4, timeout=3.0) in ("eu", "us")
        with pytest.raises(CallTimeout):
            await system.call(Pricing.sleep, 1.0, timeout=0.1)
        with tactor.deadline(0.1), pytest.raises(CallTimeout):
            await system.proxy(Pricing, timeout=5.0).sleep(1.0)


@pytest.mark.parametrize("bad", [0, -1, float("nan")])
async def test_a_timeout_that_is_not_seconds_over_zero_is_refused(bad: float) -> None:
    """Before, a call, tell or broadcast given one ended in CallTimeout, whose message said
    the deadline was inherited from the message being handled or tactor.deadline()."""
    async with ActorSystem() as system:
        await system.spawn(Pricing, "eu")
        refused = f"timeout={bad!r}: expected seconds > 0"
        with pytest.raises(ConfigError, match=refused):
            system.proxy(Pricing, timeout=bad)
        with pytest.raises(ConfigError, match=refused):
            await system.call(Pricing.where, timeout=bad)
        with pytest.raises(ConfigError, match=refused):
            await system.tell(Pricing.restock, "a", 1, timeout=bad)
        with pytest.raises(ConfigError, match=refused):
            await system.broadcast(Pricing.where, timeout=bad)
        assert await system.proxy(Pricing).stock_of("a") == 0  # the tell was not sent


async def test_deadline_travels_and_is_inherited(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        left = await system.proxy(Pricing, timeout=1.5).remaining()
        assert left is not None and 1.0 < left <= 1.5
        assert await system.tell(Pricing.restock, "a", 1) is None


class Relay(Actor, name="relay"):
    async def relay_remaining(self) -> float | None:
        # A nested call with a long timeout of its own still gets only what is left.
        return await self.system.proxy(Pricing, timeout=60.0).remaining()

    async def relay_sleep(self, seconds: float) -> str:
        return await self.system.proxy(Pricing, timeout=60.0).sleep(seconds)


async def test_nested_calls_inherit_what_is_left(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        await system.spawn(Relay)
        left = await system.proxy(Relay, timeout=1.0).relay_remaining()
        assert left is not None and 0 < left <= 1.0
        started = time.monotonic()
        with pytest.raises(CallTimeout):
            await system.proxy(Relay, timeout=0.3).relay_sleep(2.0)
        assert time.monotonic() - started < 1.5


async def test_expired_message_is_not_run(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        pricing = system.proxy(Pricing)
        await pricing.restock("a", 1)
        busy = asyncio.create_task(system.call(Pricing.sleep, 0.4, timeout=5.0))
        await asyncio.sleep(0.05)
        # Queued behind the busy call; its deadline passes before the actor is free.
        with pytest.raises(CallTimeout):
            await system.call(Pricing.restock, "a", 100, timeout=0.1)
        assert await busy == "eu"
        # stock_of is queued after the expired restock: had it run, we would see 101.
        assert await pricing.stock_of("a") == 1


async def test_one_timer_serves_every_deadline_in_any_order(url: str) -> None:
    """Calls in flight with long and short deadlines, started in any order, each end on time."""
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        await system.spawn(Pricing, "us")
        await system.spawn(Pricing, "asia")
        pricing = system.proxy(Pricing)

        async def timed(timeout: float, sleep: float) -> tuple[str, float]:
            started = time.monotonic()
            try:
                with tactor.deadline(timeout):
                    await pricing.sleep(sleep)
            except CallTimeout:
                return "timeout", time.monotonic() - started
            return "ok", time.monotonic() - started

        long_first = asyncio.create_task(timed(5.0, 0.6))  # arms the timer far away
        await asyncio.sleep(0.05)
        short, quick = await asyncio.gather(timed(0.2, 2.0), timed(3.0, 0.0))
        assert short[0] == "timeout" and 0.15 < short[1] < 0.6  # re-armed nearer
        assert quick[0] == "ok"
        assert (await long_first)[0] == "ok"


async def test_a_timed_out_call_leaves_nothing_pending(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Pricing, "eu")
        with pytest.raises(CallTimeout):
            await system.proxy(Pricing, timeout=0.1).sleep(0.5)
        assert await system.proxy(Pricing, timeout=2).sleep(0.0) == "eu"
        assert system._calls._pending == {}
        assert system._calls._sending == {}
