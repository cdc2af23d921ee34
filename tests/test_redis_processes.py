"""The same typed actors across real OS processes over Redis, with real faults (SIGKILL)."""

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
from tactor.transports.redis.heartbeat import OWNED_LIFETIME
from tests.conftest import drop_keys, require_redis, with_query
from tests.helpers import ProviderProcess, eventually
from tests.model import Item, PriceChanged, Pricing, StockChanged, UsStockChanged
from tests.procs import Worker

pytestmark = [pytest.mark.redis, pytest.mark.slow]

TTL = 1.0  # seconds a silent provider stays in the registry (fast, for tests)


@pytest.fixture
def fast_url() -> Iterator[str]:
    """A Redis URL with a namespace of this test's own and short liveness timings."""
    base = require_redis()
    prefix = f"tactor-test:{uuid.uuid4().hex[:12]}"
    yield with_query(base, prefix=prefix, ttl=str(TTL), block="0.2", claim_idle="0.2")
    drop_keys(base, prefix)


@asynccontextmanager
async def processes(*specs: tuple[str, str, int, str]) -> AsyncIterator[list[ProviderProcess]]:
    """Start provider processes; stop (or reap) them all at the end."""
    started: list[ProviderProcess] = []
    try:
        for url, kind, count, arg in specs:
            started.append(await ProviderProcess.start(url, kind, count, arg))
        yield started
    finally:
        for proc in started:
            if proc.process.returncode is None:
                await proc.stop()


async def test_calls_tells_and_events_cross_processes(fast_url: str) -> None:
    async with processes((fast_url, "pricing", 1, "far")) as (proc,), ActorSystem(fast_url) as me:
        pricing = me.proxy(Pricing, timeout=5)
        assert await pricing.where() == "far"
        assert await pricing.quote([Item("a", 2)]) == Decimal("3.00")
        await me.tell(Pricing.restock, "a", 7)
        assert await pricing.stock_of("a") == 7
        await me.publish(PriceChanged("a", Decimal("10")))
        await eventually(lambda: pricing.quote([Item("a", 1)]), lambda p: p == Decimal("10"))
        # Hierarchical topics and wildcard patterns ("stock.#") across processes too.
        await me.publish(StockChanged("s", 1))
        await me.publish(UsStockChanged("u", 2))
        seen = await eventually(pricing.events_seen, lambda s: len(s) >= 3)
        assert sorted(seen) == ["StockChanged:s", "UsStockChanged:u", "price:a"]
        assert await me.providers(Pricing) == proc.ids


async def test_broadcast_to_three_provider_processes(fast_url: str) -> None:
    specs = [(fast_url, "pricing", 2, "a"), (fast_url, "pricing", 1, "b")]
    async with processes(*specs) as procs, ActorSystem(fast_url) as me:
        ids = sorted(i for p in procs for i in p.ids)
        assert sorted(await me.providers(Pricing)) == ids
        assert len(ids) == 3
        started = time.monotonic()
        result = await me.broadcast(Pricing.where, timeout=10.0)
        elapsed = time.monotonic() - started
        assert result.complete
        assert sorted(result) == ["a0", "a1", "b"]
        assert elapsed < 2.0, f"broadcast took {elapsed:.2f}s; it must return once all answered"


async def test_sigkilled_provider_leaves_the_registry_and_broadcasts(fast_url: str) -> None:
    specs = [(fast_url, "pricing", 1, "doomed"), (fast_url, "pricing", 1, "alive")]
    async with processes(*specs) as (doomed, alive), ActorSystem(fast_url) as me:
        # A broadcast in flight when a provider dies reports it as "no answer" at the deadline.
        in_flight = asyncio.create_task(me.broadcast(Pricing.sleep, 0.5, timeout=2.0))
        await asyncio.sleep(0.2)
        await doomed.kill()
        killed_at = time.monotonic()
        result = await in_flight
        assert not result.complete
        assert result.missing == doomed.ids
        assert list(result) == ["alive"]

        # It drops out of providers() within the TTL (plus one heartbeat of slack).
        await eventually(lambda: me.providers(Pricing), lambda p: p == alive.ids, timeout=5)
        assert time.monotonic() - killed_at < TTL + 1.0
        # Its private mailbox is not left behind for ever: it expires.
        client = redis.Redis.from_url(require_redis())
        ttl_ms = client.pttl(f"{prefix_of(fast_url)}:mb:pv:{doomed.ids[0]}")
        client.close()
        assert 0 < ttl_ms <= TTL * 1000 * OWNED_LIFETIME

        # A broadcast sent after that does not wait for it.
        started = time.monotonic()
        after = await me.broadcast(Pricing.where, timeout=5.0)
        assert after.complete and list(after) == ["alive"]
        assert time.monotonic() - started < 1.0


async def test_cleanly_stopped_provider_is_removed_at_once(fast_url: str) -> None:
    async with processes((fast_url, "pricing", 1, "x")) as (proc,), ActorSystem(fast_url) as me:
        assert await me.providers(Pricing) == proc.ids
        await proc.stop()
        assert await me.providers(Pricing) == []


def prefix_of(url: str) -> str:
    return url.split("prefix=")[1].split("&")[0]


class JobLog:
    """Reads what the worker processes recorded: (job, pid) pairs started and done."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.client = client
        self.key = key

    def _pairs(self, which: str) -> set[tuple[int, int]]:
        raw = self.client.lrange(f"{self.key}:{which}", 0, -1)
        return {(int(job), int(pid)) for job, pid in (e.decode().split(":") for e in raw)}

    async def started(self) -> set[tuple[int, int]]:
        return self._pairs("started")

    async def done(self) -> set[tuple[int, int]]:
        return self._pairs("done")

    async def cut_short(self, pid: int) -> set[int]:
        """Jobs that process ``pid`` started and did not finish."""
        done = {job for job, p in await self.done() if p == pid}
        return {job for job, p in await self.started() if p == pid} - done

    async def finished_jobs(self) -> set[int]:
        return {job for job, _ in await self.done()}


async def test_unacknowledged_tells_are_redelivered_after_sigkill(fast_url: str) -> None:
    base = require_redis()
    env = {"TACTOR_REDIS_URL": base}
    key = f"{prefix_of(fast_url)}:record"
    jobs = 8
    first = await ProviderProcess.start(fast_url, "worker", 1, key, env=env)
    second = await ProviderProcess.start(fast_url, "worker", 1, key, env=env)
    client = redis.Redis.from_url(base)
    log = JobLog(client, key)
    try:
        async with ActorSystem(fast_url) as me:
            for job in range(jobs):
                # Long jobs, so the kill lands mid-job even on a loaded machine.
                await me.tell(Worker.work, job, 1.0)
            # Kill the first worker while it is in the middle of a job.
            await eventually(lambda: log.cut_short(first.pid), bool, timeout=10)
            await first.kill()
            cut = await log.cut_short(first.pid)
            assert cut, "the killed worker had a job in hand"
            # Every job is finished at least once; the cut ones by the survivor.
            await eventually(log.finished_jobs, lambda d: d == set(range(jobs)), timeout=30)
            done = await log.done()
            assert all((job, second.pid) in done for job in cut)
            # Acknowledged entries are trimmed: the endpoint's stream holds nothing (the last
            # acknowledgement follows the job's own record of being done, so wait for it).
            stream = f"{prefix_of(fast_url)}:mb:ep:worker"

            async def depth() -> int:
                return int(client.xlen(stream))

            assert await eventually(depth, lambda n: n == 0, timeout=5) == 0
    finally:
        await second.stop()
        if first.process.returncode is None:
            await first.kill()
        client.delete(f"{key}:started", f"{key}:done")
        client.close()


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
