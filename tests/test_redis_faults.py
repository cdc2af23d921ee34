"""A Redis server restarted under a running system: it reconnects and serves again on its own."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from tactor import ActorSystem, CallTimeout, NoProvider, TransportError
from tests.conftest import with_query
from tests.helpers import eventually
from tests.model import PriceChanged, Pricing
from tests.servers import redis_server

pytestmark = [pytest.mark.redis, pytest.mark.slow]


async def answer(system: ActorSystem) -> str | BaseException:
    try:
        return await system.proxy(Pricing, timeout=1.0).where()
    except (TransportError, CallTimeout, NoProvider) as exc:
        return exc


async def test_system_survives_a_redis_restart() -> None:
    with redis_server() as server:
        url = with_query(server.url, prefix="restart", ttl="1", block="0.2", claim_idle="0.2")
        async with ActorSystem(url) as node, ActorSystem(url) as caller:
            ref = await node.spawn(Pricing, "eu")
            events: list[PriceChanged] = []

            async def on_price(event: PriceChanged) -> None:
                events.append(event)

            await caller.subscribe(on_price)
            assert await caller.proxy(Pricing).where() == "eu"

            # A call in flight when Redis dies fails clearly, and no later than its deadline.
            in_flight = asyncio.create_task(caller.proxy(Pricing, timeout=3.0).sleep(0.5))
            await asyncio.sleep(0.1)
            server.kill()
            started = time.monotonic()
            outcome = await asyncio.gather(in_flight, return_exceptions=True)
            assert isinstance(outcome[0], TransportError | CallTimeout), outcome
            assert time.monotonic() - started < 3.5

            # While it is down, calls fail with a typed error, never past their deadline.
            started = time.monotonic()
            down = await answer(caller)
            assert isinstance(down, TransportError | CallTimeout), down
            assert time.monotonic() - started < 1.5

            server.start()  # same port, empty: no keys, no groups, no registry
            # It reconnects, re-registers its provider and serves, without user action.
            await eventually(lambda: answer(caller), lambda r: r == "eu", timeout=15)
            assert await caller.providers(Pricing) == [ref.id]

            # And it re-subscribed: events flow again.
            async def publish_and_count() -> int:
                await node.publish(PriceChanged("a", Decimal(2)))
                return len(events)

            await eventually(publish_and_count, lambda n: n > 0, timeout=10)
