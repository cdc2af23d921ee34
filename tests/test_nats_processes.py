"""The same typed actors across real OS processes over NATS, with real faults (SIGKILL)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
import redis

from tactor import ActorSystem
from tests.conftest import drop_nats, require_nats, require_redis, with_query
from tests.helpers import ProviderProcess, eventually
from tests.model import Item, PriceChanged, Pricing, StockChanged, UsStockChanged
from tests.procs import Worker
from tests.test_redis_processes import JobLog, processes

pytestmark = [pytest.mark.slow]

TTL = 1.0  # seconds a silent node stays in the registry (fast, for tests)


@pytest.fixture
def fast_url() -> Iterator[str]:
    """A NATS URL with a namespace of this test's own and short liveness timings."""
    base = require_nats()
    prefix = f"tactor-test-{uuid.uuid4().hex[:12]}"
    yield with_query(base, prefix=prefix, ttl=str(TTL), block="1")
    drop_nats(base, prefix)


async def test_calls_tells_and_events_cross_processes(fast_url: str) -> None:
    async with processes((fast_url, "pricing", 1, "far")) as (proc,), ActorSystem(fast_url) as me:
        pricing = me.proxy(Pricing, timeout=5)
        assert await pricing.where() == "far"
        assert await pricing.quote([Item("a", 2)]) == Decimal("3.00")
        await me.tell(Pricing.restock, "a", 7)
        assert await pricing.stock_of("a") == 7
        await me.publish(PriceChanged("a", Decimal("10")))
        await eventually(lambda: pricing.quote([Item("a", 1)]), lambda p: p == Decimal("10"))
        # Wildcard patterns ("stock.#": NATS's "stock.>" and "stock") across processes too.
        await me.publish(StockChanged("s", 1))
        await me.publish(UsStockChanged("u", 2))
        seen = await eventually(pricing.events_seen, lambda s: len(s) >= 3)
        assert sorted(seen) == ["StockChanged:s", "UsStockChanged:u", "price:a"]
        assert await me.providers(Pricing) == proc.ids


async def test_broadcast_to_three_provider_processes(fast_url: str) -> None:
    specs = [(fast_url, "pricing", 2, "a"), (fast_url, "pricing", 1, "b")]
    async with processes(*specs) as procs, ActorSystem(fast_url) as me:
        ids = sorted(i for p in procs for i in p.ids)
        assert sorted(await me.providers(Pricing)) == ids and len(ids) == 3
        # It returns when all three answered, long before its deadline: one that waited
        # for the 30 s deadline would be cut short by the 10 s bound and fail.
        async with asyncio.timeout(10):
            result = await me.broadcast(Pricing.where, timeout=30.0)
            slow = await me.broadcast(Pricing.sleep, 0.2, timeout=30.0)
        assert result.complete and sorted(result) == ["a0", "a1", "b"]
        assert slow.complete and len(list(slow)) == 3


async def test_a_sigkilled_provider_leaves_the_registry_within_its_ttl(fast_url: str) -> None:
    specs = [(fast_url, "pricing", 1, "doomed"), (fast_url, "pricing", 1, "alive")]
    async with processes(*specs) as (doomed, alive), ActorSystem(fast_url) as me:
        assert sorted(await me.providers(Pricing)) == sorted(doomed.ids + alive.ids)
        await doomed.kill()
        killed_at = time.monotonic()
        await eventually(lambda: me.providers(Pricing), lambda p: p == alive.ids, timeout=10)
        # Within the TTL of its last beat, plus the time to notice (not a fixed sleep: the
        # condition above is polled; this bounds how late it came, generously).
        assert time.monotonic() - killed_at < TTL + 1.0
        after = await me.broadcast(Pricing.where, timeout=5.0)
        assert after.complete and list(after) == ["alive"]


async def test_unacknowledged_tells_are_redelivered_after_sigkill(fast_url: str) -> None:
    base = require_redis()  # where the workers record what they did
    env = {"TACTOR_REDIS_URL": base}
    key = f"tactor-test:{uuid.uuid4().hex[:12]}:record"
    jobs = 8
    first = await ProviderProcess.start(fast_url, "worker", 1, key, env=env)
    second = await ProviderProcess.start(fast_url, "worker", 1, key, env=env)
    client = redis.Redis.from_url(base)
    log = JobLog(client, key)
    try:
        async with ActorSystem(fast_url) as me:
            for job in range(jobs):
                await me.tell(Worker.work, job, 1.0)  # long jobs: the kill lands mid-job
            await eventually(lambda: log.cut_short(first.pid), bool, timeout=10)
            await first.kill()
            cut = await log.cut_short(first.pid)
            assert cut, "the killed worker had a job in hand"
            # Every job is finished; the cut ones by the survivor (JetStream redelivered
            # them once their ack_wait, the TTL, passed without an acknowledgement).
            await eventually(log.finished_jobs, lambda d: d == set(range(jobs)), timeout=30)
            done = await log.done()
            assert all((job, second.pid) in done for job in cut)
    finally:
        await second.stop()
        if first.process.returncode is None:
            await first.kill()
        client.delete(f"{key}:started", f"{key}:done")
        client.close()


async def test_a_closed_system_leaves_nothing_of_its_own(fast_url: str) -> None:
    """As a clean close leaves nothing under a Redis prefix, it leaves nothing of its nodes in
    the namespace's streams and buckets: no registry key, no consumer (an endpoint's, a
    provider's, a queue's), no message, no unfinished count. The streams and buckets stay."""
    async with ActorSystem(fast_url) as server, ActorSystem(fast_url) as caller:
        ref = await server.spawn(Pricing, "eu")
        assert await caller.call(Pricing.where, provider=ref) == "eu"
        await caller.tell(Pricing.restock, "a", 7)
        assert await caller.proxy(Pricing).stock_of("a") == 7  # the tell was handled
        await caller.broadcast(Pricing.where)
        jobs = caller.queue("jobs", int)
        await jobs.put(1)
        assert await jobs.get() == 1
        await jobs.task_done()
        transport = server.transport
    base = require_nats()
    prefix = fast_url.split("prefix=")[1].split("&")[0]
    import nats

    from tactor.transports.nats.names import Names

    names = Names(prefix)
    nc = await nats.connect(base)
    try:
        js = nc.jetstream()
        for bucket in (names.registry, names.registered, names.unfinished):
            assert not await _has_keys(await js.key_value(bucket)), bucket
        for stream in (names.mailboxes, names.queues):
            assert [c.name for c in await js.consumers_info(stream)] == [], stream
            assert (await js.stream_info(stream)).state.messages == 0, stream
    finally:
        await nc.close()
    assert getattr(transport, "_closed", False)


async def _has_keys(kv: object) -> bool:
    try:
        await kv.keys()  # type: ignore[attr-defined]
    except Exception:  # nats-py: NoKeysError when the bucket is empty
        return False
    return True
