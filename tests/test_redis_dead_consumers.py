"""A killed node's consumer leaves the endpoint's group once nothing of it is pending.

A node's providers read under the node's name (see tactor/transports/redis/reader.py).
"""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis

from tactor import ActorSystem
from tactor.transports.redis.consumer import GROUP
from tests.conftest import drop_keys, require_redis, with_query
from tests.helpers import ProviderProcess, eventually
from tests.model import Pricing

pytestmark = [pytest.mark.redis, pytest.mark.slow]


async def test_a_killed_providers_consumer_is_removed_from_the_group() -> None:
    base, prefix = require_redis(), f"tactor-test:{uuid.uuid4().hex[:12]}"
    url = with_query(base, prefix=prefix, ttl="0.3", heartbeat="0.1", block="0.1", claim_idle="0.1")
    client = aioredis.Redis.from_url(base)
    stream = f"{prefix}:mb:ep:pricing"

    async def consumers() -> set[str]:
        infos = await client.xinfo_consumers(stream, GROUP)
        return {c["name"].decode() for c in infos}

    try:
        async with ActorSystem(url) as system:
            here = await system.spawn(Pricing, "here")
            node = system.transport.node  # type: ignore[attr-defined]
            assert await consumers() == {node}
            killed = await ProviderProcess.start(url, "pricing", 1, "there")
            try:
                there = await consumers() - {node}
                assert len(there) == 1  # the other process's node
                await killed.kill()  # SIGKILL: it never leaves the group by itself
            finally:
                await killed.stop()
            # The live node sweeps it out once it is quiet for 10 × ttl; not itself.
            await eventually(consumers, lambda names: names == {node}, timeout=15)
            assert here.id in await system.providers(Pricing)
            assert await system.proxy(Pricing, timeout=2).where() == "here"
    finally:
        await client.aclose()
        drop_keys(base, prefix)
