"""After a Redis restart, no call fails and no reply is lost for a connection Redis closed."""

from __future__ import annotations

import asyncio

import pytest

from tactor import ActorSystem
from tests.conftest import with_query
from tests.helpers import eventually
from tests.model import Pricing
from tests.servers import redis_server

pytestmark = [pytest.mark.redis, pytest.mark.slow]


async def test_the_first_calls_after_a_restart_and_their_replies_go_through() -> None:
    with redis_server() as server:
        url = with_query(server.url, prefix="fresh", ttl="1", block="0.2", claim_idle="0.2")
        async with ActorSystem(url) as node, ActorSystem(url) as caller:
            ref = await node.spawn(Pricing, "eu")
            # Both nodes' pipelined connections (requests, replies) are in use...
            assert await caller.proxy(Pricing, timeout=2).where() == "eu"
            server.kill()
            server.start()  # ...and Redis closes them: same port, empty
            # The provider is back (its reads reconnect by themselves), and some time passes
            # before anyone calls: the idle pipelined connections are still the closed ones.
            await eventually(lambda: caller.providers(Pricing), lambda p: p == [ref.id], 15)
            await asyncio.sleep(0.5)
            # Every call is answered: the caller's request is not written into a closed
            # connection (TransportError), nor the provider's reply (lost: CallTimeout).
            for _ in range(4):
                assert await caller.proxy(Pricing, timeout=3).where() == "eu"
