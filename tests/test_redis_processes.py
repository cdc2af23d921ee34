"""Provider processes over Redis: what only Redis shows (its keys). The behaviour that every
transport shares is in ``test_provider_processes.py``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
import redis

from tactor import ActorSystem
from tactor.transports.redis.heartbeat import OWNED_LIFETIME
from tests.conftest import drop_keys, require_redis, with_query
from tests.helpers import eventually, processes
from tests.model import PriceChanged, Pricing

pytestmark = [pytest.mark.redis, pytest.mark.slow]

TTL = 1.0  # seconds a silent provider stays in the registry (fast, for tests)


@pytest.fixture
def fast_url() -> Iterator[str]:
    """A Redis URL with a namespace of this test's own and short liveness timings."""
    base = require_redis()
    prefix = f"tactor-test:{uuid.uuid4().hex[:12]}"
    yield with_query(base, prefix=prefix, ttl=str(TTL), block="0.2", claim_idle="0.2")
    drop_keys(base, prefix)


async def test_a_sigkilled_providers_private_mailbox_expires(fast_url: str) -> None:
    spec = (fast_url, "pricing", 1, "doomed")
    async with processes(spec) as (doomed,), ActorSystem(fast_url) as me:
        assert await me.call(Pricing.where, provider=doomed.ids[0]) == "doomed"
        await doomed.kill()
        await eventually(lambda: me.providers(Pricing), lambda p: p == [], timeout=10)
        # Its private mailbox is not left behind for ever: it expires.
        client = redis.Redis.from_url(require_redis())
        ttl_ms = client.pttl(f"{prefix_of(fast_url)}:mb:pv:{doomed.ids[0]}")
        client.close()
        assert 0 < ttl_ms <= TTL * 1000 * OWNED_LIFETIME


def prefix_of(url: str) -> str:
    return url.split("prefix=")[1].split("&")[0]


async def test_a_closed_system_leaves_nothing_in_redis(fast_url: str) -> None:
    prefix = prefix_of(fast_url)
    client = redis.Redis.from_url(require_redis())
    async with ActorSystem(fast_url) as server, ActorSystem(fast_url) as caller:
        ref = await server.spawn(Pricing, "eu")
        await server.spawn(Pricing, "us")
        assert await caller.proxy(Pricing).where() in ("eu", "us")
        await caller.broadcast(Pricing.where)
        await caller.tell(Pricing.restock, "a", 1, provider=ref)
        await caller.publish(PriceChanged("a", Decimal(1)))
        assert await caller.call(Pricing.stock_of, "a", provider=ref) == 1
        assert list(client.scan_iter(f"{prefix}:*"))  # it did use Redis
    assert list(client.scan_iter(f"{prefix}:*")) == []
    client.close()


async def test_prefetch_reads_several_entries_per_round_trip(fast_url: str) -> None:
    url = with_query(fast_url, prefetch="8")
    async with processes((url, "pricing", 1, "batch")) as (proc,), ActorSystem(url) as me:
        transport = me.transport
        assert getattr(transport, "prefetch", None) == 8
        await asyncio.gather(*(me.tell(Pricing.restock, "a", 1) for _ in range(40)))
        assert await me.call(Pricing.stock_of, "a") == 40  # each handled once, in one provider
        results = await asyncio.gather(*(me.proxy(Pricing).where() for _ in range(20)))
        assert set(results) == {"batch"}
        assert await me.providers(Pricing) == proc.ids
