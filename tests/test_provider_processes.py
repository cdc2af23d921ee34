"""The same typed actors across real OS processes over every networked transport, with
real faults (SIGKILL): one test body per behaviour, run over Redis and over NATS.

What only one transport shows (the keys Redis keeps, NATS's streams and consumers) stays
in ``test_redis_processes.py`` and ``test_nats_processes.py``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal

import pytest
import redis

from tactor import ActorSystem
from tests.conftest import drop_keys, drop_nats, require_nats, require_redis, with_query
from tests.helpers import JobLog, ProviderProcess, eventually, processes
from tests.model import Item, PriceChanged, Pricing, StockChanged, UsStockChanged
from tests.procs import Worker

pytestmark = [pytest.mark.slow]

TTL = 1.0  # seconds a silent node stays in the registry (fast, for tests)


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.redis), "nats"])
def fast_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL with a namespace of this test's own and short liveness timings."""
    if request.param == "redis":
        base = require_redis()
        prefix = f"tactor-test:{uuid.uuid4().hex[:12]}"
        yield with_query(base, prefix=prefix, ttl=str(TTL), block="0.2", claim_idle="0.2")
        drop_keys(base, prefix)
    else:
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
        # Hierarchical topics and wildcard patterns ("stock.#"; on NATS "stock.>" and
        # "stock") across processes too.
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


async def test_a_sigkilled_provider_leaves_the_registry_and_broadcasts(fast_url: str) -> None:
    specs = [(fast_url, "pricing", 1, "doomed"), (fast_url, "pricing", 1, "alive")]
    async with processes(*specs) as (doomed, alive), ActorSystem(fast_url) as me:
        assert sorted(await me.providers(Pricing)) == sorted(doomed.ids + alive.ids)
        # A broadcast in flight when a provider dies reports it as "no answer" at the deadline.
        # The handler sleeps long past the kill, even on a loaded machine (a CI run once
        # had the doomed one answer a 0.5 s sleep before its kill came).
        in_flight = asyncio.create_task(me.broadcast(Pricing.sleep, 2.0, timeout=3.0))
        await asyncio.sleep(0.2)
        await doomed.kill()
        killed_at = time.monotonic()
        # It leaves providers() within the TTL of its last beat, plus the time to notice:
        # polled from the kill on, while the broadcast waits for its deadline.
        left_at: list[float] = []

        async def departure() -> None:
            await eventually(lambda: me.providers(Pricing), lambda p: p == alive.ids, timeout=10)
            left_at.append(time.monotonic())

        left = asyncio.create_task(departure())
        result = await in_flight
        assert not result.complete
        assert result.missing == doomed.ids
        assert list(result) == ["alive"]
        await left
        assert left_at[0] - killed_at < TTL + 1.0
        # A broadcast sent after that does not wait for it: complete, long before 30 s.
        async with asyncio.timeout(10):
            after = await me.broadcast(Pricing.where, timeout=30.0)
        assert after.complete and list(after) == ["alive"]


async def test_a_cleanly_stopped_provider_is_removed_at_once(fast_url: str) -> None:
    async with processes((fast_url, "pricing", 1, "x")) as (proc,), ActorSystem(fast_url) as me:
        assert await me.providers(Pricing) == proc.ids
        await proc.stop()
        assert await me.providers(Pricing) == []


@asynccontextmanager
async def _two_workers(
    fast_url: str,
) -> AsyncIterator[tuple[JobLog, ProviderProcess, ProviderProcess]]:
    """Two worker processes on ``fast_url`` recording into a job log on Redis; both ended
    (the second stopped, the first killed if still alive) and the log deleted afterwards."""
    base = require_redis()  # where the workers record what they did
    env = {"TACTOR_REDIS_URL": base}
    log = JobLog(redis.Redis.from_url(base), f"tactor-test:{uuid.uuid4().hex[:12]}:record")
    first = await ProviderProcess.start(fast_url, "worker", 1, log.key, env=env)
    second = await ProviderProcess.start(fast_url, "worker", 1, log.key, env=env)
    try:
        yield log, first, second
    finally:
        await second.stop()
        if first.process.returncode is None:
            await first.kill()
        log.delete()
        log.client.close()


async def test_quick_tells_a_sigkilled_provider_had_taken_ahead_are_all_handled(
    fast_url: str,
) -> None:
    """Quick jobs told faster than one provider handles them: each provider takes several per
    read where they wait (prefetch). One SIGKILLed mid-stream loses none of what it held: the
    survivor handles every job, at least once."""
    jobs = 2000
    async with _two_workers(fast_url) as (log, first, _), ActorSystem(fast_url) as me:
        # More than a mailbox holds (1024): the last tells wait for room while the two
        # drain it, as long as a loaded machine takes (not this test's subject).
        tells = (me.tell(Worker.work, job, 0.0, timeout=60) for job in range(jobs))
        await asyncio.gather(*tells)

        async def done_by_first() -> int:
            return sum(1 for _, pid in await log.done() if pid == first.pid)

        await eventually(done_by_first, lambda n: n >= 50, timeout=10)
        await first.kill()
        assert len(await log.finished_jobs()) < jobs  # killed mid-stream
        await eventually(log.finished_jobs, lambda d: d == set(range(jobs)), timeout=30)
        await eventually(lambda: me.endpoint_info(Worker), lambda i: i.depth == 0, timeout=5)


async def test_unacknowledged_tells_are_redelivered_after_sigkill(fast_url: str) -> None:
    jobs = 8
    async with _two_workers(fast_url) as (log, first, second), ActorSystem(fast_url) as me:
        for job in range(jobs):
            # Long jobs, so the kill lands mid-job even on a loaded machine.
            await me.tell(Worker.work, job, 1.0)
        await eventually(lambda: log.cut_short(first.pid), bool, timeout=10)
        await first.kill()
        cut = await log.cut_short(first.pid)
        assert cut, "the killed worker had a job in hand"
        # Every job is finished at least once; the cut ones by the survivor, once the
        # dead node's deliveries were claimed (Redis) or their ack wait passed (NATS).
        await eventually(log.finished_jobs, lambda d: d == set(range(jobs)), timeout=30)
        done = await log.done()
        assert all((job, second.pid) in done for job in cut)
        # Nothing stays in the mailbox: every delivery was acknowledged in the end.
        await eventually(lambda: me.endpoint_info(Worker), lambda i: i.depth == 0, timeout=5)
        if fast_url.startswith("redis"):  # and acknowledged entries are trimmed away
            stream = f"{fast_url.split('prefix=')[1].split('&')[0]}:mb:ep:worker"

            async def length() -> int:
                return int(log.client.xlen(stream))

            await eventually(length, lambda n: n == 0, timeout=5)
