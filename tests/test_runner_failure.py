"""No zombie providers: a runner that fails for good is unregistered, on every transport.

A consumer whose ``receive`` raises something unexpected (a fault in the
transport itself, not a TransportError) is retried a few times; if it keeps
failing the provider is unregistered and stopped, so calls go to other
providers or fail fast with NoProvider instead of waiting for their deadlines.
"""

from __future__ import annotations

import logging
import uuid

import pytest
import redis.asyncio as aioredis

from tactor import Actor, ActorRef, ActorSystem, NoProvider
from tests.conftest import drop_keys, require_redis, with_query
from tests.faults import BreakableMemoryTransport, FaultyRedisTransport, raising
from tests.helpers import eventually
from tests.model import Pricing


class Plain(Actor, name="runner-failure-plain"):
    """Like Pricing's ``where``/``restock``/``stock_of``, with no event handlers: its runner
    reads its mailbox directly (Pricing's has a pump per source)."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.stock = 0

    async def where(self) -> str:
        return self.region

    async def restock(self, sku: str, qty: int) -> None:
        self.stock += qty

    async def stock_of(self, sku: str) -> int:
        return self.stock


KINDS = pytest.mark.parametrize("kind", [Pricing, Plain], ids=["pumped", "direct"])


async def wake(caller: ActorSystem, kind: type[Pricing], ref: ActorRef[Pricing]) -> None:
    """Have the provider handle one message, so its next receive meets the armed fault."""
    await caller.tell(kind.restock, "a", 1, provider=ref)


@KINDS
async def test_a_runner_that_keeps_failing_leaves_and_calls_go_elsewhere(
    caplog: pytest.LogCaptureFixture, kind: type[Pricing]
) -> None:
    caplog.set_level(logging.ERROR)
    hub = f"memory://{uuid.uuid4().hex[:12]}"
    transport = BreakableMemoryTransport.from_url(hub)
    async with ActorSystem(transport) as node, ActorSystem(hub) as caller:
        doomed = await node.spawn(kind, "doomed")
        healthy = await caller.spawn(kind, "healthy")
        transport.breaks[doomed.id] = (RuntimeError("injected"), -1)
        await wake(caller, kind, doomed)
        await eventually(lambda: caller.providers(kind), lambda p: p == [healthy.id])
        assert node.refs() == []
        # Calls go to the provider that serves; calls to the failed one fail fast.
        assert {await caller.call(kind.where) for _ in range(10)} == {"healthy"}
        with pytest.raises(NoProvider):
            await caller.call(kind.where, provider=doomed, timeout=30)
        assert any("stopped serving" in r.getMessage() for r in caplog.records)


async def test_the_only_provider_failing_makes_calls_fail_fast_with_no_provider() -> None:
    hub = f"memory://{uuid.uuid4().hex[:12]}"
    transport = BreakableMemoryTransport.from_url(hub)
    async with ActorSystem(transport) as node, ActorSystem(hub) as caller:
        ref = await node.spawn(Pricing, "eu")
        transport.breaks[ref.id] = (RuntimeError("injected"), -1)
        await wake(caller, Pricing, ref)
        await eventually(lambda: caller.providers(Pricing), lambda p: p == [])
        with pytest.raises(NoProvider):
            await caller.call(Pricing.where, timeout=30)  # not a CallTimeout after 30 s


@KINDS
async def test_a_passing_fault_is_ridden_out(
    caplog: pytest.LogCaptureFixture, kind: type[Pricing]
) -> None:
    caplog.set_level(logging.ERROR)
    hub = f"memory://{uuid.uuid4().hex[:12]}"
    transport = BreakableMemoryTransport.from_url(hub)
    async with ActorSystem(transport) as node, ActorSystem(hub) as caller:
        ref = await node.spawn(kind, "eu")
        transport.breaks[ref.id] = (RuntimeError("injected"), 2)
        await wake(caller, kind, ref)
        assert await caller.call(kind.stock_of, "a", provider=ref) == 1
        assert transport.breaks[ref.id][1] == 0  # it met both faults, and serves
        assert await caller.providers(kind) == [ref.id]
        assert node.refs() == [ref]
        logged = [r for r in caplog.records if "unexpected error receiving" in r.getMessage()]
        assert len(logged) == 2


@pytest.mark.redis
async def test_a_redis_runner_that_keeps_failing_is_unregistered() -> None:
    base = require_redis()
    prefix = f"tactor-test:{uuid.uuid4().hex[:12]}"
    options = {"ttl": 1.0, "block": 0.2, "claim_idle": 0.2}
    transport = FaultyRedisTransport(base, prefix=prefix, **options)
    url = with_query(base, prefix=prefix, **{k: str(v) for k, v in options.items()})
    client = aioredis.Redis.from_url(base)
    try:
        async with ActorSystem(transport) as node, ActorSystem(url) as caller:
            ref = await node.spawn(Pricing, "eu")
            assert await caller.call(Pricing.where, provider=ref) == "eu"
            # Every attempt to make the groups again fails with a fault of the transport's own.
            transport.faults.arm("xgroup_create", raising(RuntimeError("injected")), always=True)
            await client.delete(f"{prefix}:mb:ep:pricing")
            await eventually(lambda: caller.providers(Pricing), lambda p: p == [], timeout=10)
            with pytest.raises(NoProvider):
                await caller.call(Pricing.where, timeout=30)
            assert node.refs() == []
    finally:
        await client.aclose()
        drop_keys(base, prefix)
