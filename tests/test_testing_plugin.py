"""The pytest plugin (tactor.testing): its fixtures, used here as a user would, and what it
reports (through pytester, a pytest run inside this one)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tactor import ActorSystem
from tactor.testing import ActorTestKit
from tests.model import Item, PriceChanged, Pricing, Stalling

pytest_plugins = ["pytester"]


async def test_tactor_system_is_running_on_a_namespace_of_its_own(
    tactor_system: ActorSystem, tactor_url: str
) -> None:
    assert tactor_url.startswith("memory://t")  # the default transport, namespaced
    await tactor_system.spawn(Pricing, "eu")
    assert await tactor_system.call(Pricing.quote, [Item("a", 2)]) == Decimal("3.00")


async def test_spawned_actors_are_stopped_at_the_end_and_events_captured(
    tactor_url: str,
) -> None:
    async with ActorSystem(tactor_url) as system:
        async with ActorTestKit(system) as kit:
            await kit.spawn(Pricing, "eu")
            prices = await kit.capture(PriceChanged)
            await system.publish(PriceChanged("a", Decimal(2)))
            assert await prices.wait(1) == [PriceChanged("a", Decimal(2))]
            assert len(await system.providers(Pricing)) == 1
        assert await system.providers(Pricing) == []  # the kit stopped what it spawned


async def test_idle_waits_for_every_mailbox_and_subscription(
    tactor_kit: ActorTestKit,
) -> None:
    system = tactor_kit.system
    await tactor_kit.spawn(Stalling)
    for _ in range(3):
        await system.tell(Stalling.stall, 0.05)
    stats = await tactor_kit.idle()
    assert await system.call(Stalling.counts) == [3, 3, 3]
    assert stats.mailbox_depth == {"stalling": 0} and stats.handling == 0


async def test_idle_says_what_is_busy_when_it_times_out(tactor_kit: ActorTestKit) -> None:
    await tactor_kit.spawn(Stalling)
    await tactor_kit.system.tell(Stalling.stall, 30.0)
    with pytest.raises(AssertionError, match=r"not idle within 0\.3s"):
        await tactor_kit.idle(timeout=0.3)


PLUGIN_TESTS = """
import asyncio

import pytest
from tactor import Actor


class Fragile(Actor, name="fragile"):
    async def fail(self) -> None:
        raise RuntimeError("broken inside the actor")


async def test_a_failing_tell(tactor_kit):
    await tactor_kit.spawn(Fragile)
    await tactor_kit.system.tell(Fragile.fail)
    await tactor_kit.idle()


async def test_a_failing_event_handler_with_the_system_alone(tactor_system):
    from dataclasses import dataclass

    @dataclass
    class Ping:
        n: int

    async def on_ping(event: Ping) -> None:
        raise ValueError(f"ping {event.n} refused")

    await tactor_system.subscribe(on_ping)
    await tactor_system.publish(Ping(1))
    while (await tactor_system.stats()).events_handled.get("Ping", 0) < 1:
        await asyncio.sleep(0.01)


@pytest.mark.tactor_allow_failures
async def test_allowed_to_fail(tactor_kit):
    await tactor_kit.spawn(Fragile)
    await tactor_kit.system.tell(Fragile.fail)
    await tactor_kit.idle()
    assert len(tactor_kit.failures) == 1


async def test_url(tactor_url):
    assert tactor_url.split("://")[0] in ("memory", "redis")
"""


def test_a_failure_inside_an_actor_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_fragile=PLUGIN_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*ActorFailed: actors failed during the test:*",
            "*fragile*fail (message*broken inside*",
            "*on_ping*raised while handling an event Ping*ping 1 refused*",
        ]
    )


def test_tactor_url_runs_a_test_once_per_transport_chosen(pytester: pytest.Pytester) -> None:
    from tests.conftest import require_redis

    redis = require_redis()
    pytester.makepyfile(test_fragile=PLUGIN_TESTS)
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "-k",
        "test_url",
        "--tactor-url",
        "memory://",
        "--tactor-url",
        redis,
    )
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*SKIP*")
