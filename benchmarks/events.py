"""Row 4: events across processes over Redis, against raw redis-py PUBLISH → SUBSCRIBE.

Both subscribers are separate processes and report on raw Redis lists, the
same way (see ``benchmarks/servers.py``):

- **latency** is one-way, publish → handler: the publisher stamps the event
  with ``time.time()`` just before publishing (tactor's encoding is inside
  the measured time), the handler reads the clock when it is called with the
  decoded event and pushes the difference onto a list. Both processes read
  the same system clock, so no clock skew enters. One event is in flight: the
  next is published once the previous difference has come back.
- **throughput** is events handled per second: 8 concurrent publishers send
  N events in batches; the subscriber pushes its count after every batch; at
  most two batches are unhandled at any time (so tactor's 1024-event
  subscription buffer never overflows and Redis never has to buffer much);
  the clock stops when the subscriber has handled all N.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import orjson
import redis.asyncio as aioredis

from tactor import ActorSystem

from .harness import Figure, Row, Settings, summarise
from .servers import Ping, Server, delete_keys, start_all, stop_all, tactor_url

PUBLISHERS = 8

Publish = Callable[[int, float, int], Awaitable[Any]]  # run, sent, batch


class Subject:
    """A publisher and the list its subscriber process reports on."""

    def __init__(self, publish: Publish, redis: aioredis.Redis, report_key: str) -> None:
        self.publish = publish
        self.redis = redis
        self.lat_key = f"{report_key}:lat"
        self.count_key = f"{report_key}:n"
        self._runs = itertools.count(1)

    async def wait_subscribed(self, timeout: float = 15.0) -> None:
        """Probe until the subscriber answers (its subscription is in place), then drain."""
        deadline = time.monotonic() + timeout
        probe = -1
        while True:
            await self.publish(probe, time.time(), 0)
            if await self.redis.blpop([self.lat_key], timeout=0.2) is not None:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the subscriber process did not answer")
            probe -= 1
        await asyncio.sleep(0.05)
        await self.redis.delete(self.lat_key, self.count_key)

    async def one_way(self, seq: int) -> float:
        """Publish one probe; the publish → handler time in microseconds."""
        await self.publish(seq, time.time(), 0)
        while True:
            item = await self.redis.blpop([self.lat_key], timeout=5)
            if item is None:
                raise TimeoutError(f"event {seq} was not handled within 5 s")
            run, _, delta = item[1].partition(b":")
            if int(run) == seq:  # a stale probe's answer is skipped
                return float(delta) * 1e6

    async def latency(self, settings: Settings) -> tuple[float, float]:
        seq = itertools.count()
        for _ in range(settings.warmup):
            await self.one_way(next(seq))
        return summarise([await self.one_way(next(seq)) for _ in range(settings.iterations)])

    async def rate(self, batches: int, batch: int) -> float:
        """Events handled per second (see the module's docstring)."""
        run = next(self._runs)
        handled = 0

        async def wait_handled(count: int) -> None:
            nonlocal handled
            while handled < count:
                item = await self.redis.blpop([self.count_key], timeout=10)
                if item is None:
                    raise TimeoutError(f"the subscriber reported {handled} of {count} events")
                got_run, _, n = item[1].partition(b":")
                if int(got_run) == run:
                    handled = max(handled, int(n))

        async def publisher(count: int) -> None:
            for _ in range(count):
                await self.publish(run, 0.0, batch)

        share = [batch // PUBLISHERS + (i < batch % PUBLISHERS) for i in range(PUBLISHERS)]
        start = time.perf_counter()
        for k in range(batches):
            await wait_handled((k - 1) * batch)  # at most two batches unhandled
            await asyncio.gather(*(publisher(n) for n in share if n))
        await wait_handled(batches * batch)
        return batches * batch / (time.perf_counter() - start)


async def run(settings: Settings) -> list[Row]:
    assert settings.redis_url is not None
    base = settings.redis_url
    tag = f"bench-{uuid.uuid4().hex[:12]}"
    url = tactor_url(base, tag)
    channel = f"{tag}:raw:ping"
    servers: list[Server] = []
    client = aioredis.Redis.from_url(base)
    try:
        servers = await start_all(
            ("tactor", url, "listener", "1", base, f"{tag}:report:tactor"),
            ("rawsub", base, channel, f"{tag}:report:raw"),
        )
        async with ActorSystem(url, timeout=30) as system:

            async def tactor_publish(run: int, sent: float, batch: int) -> None:
                await system.publish(Ping(run, sent, batch))

            async def raw_publish(run: int, sent: float, batch: int) -> None:
                await client.publish(
                    channel, orjson.dumps({"run": run, "sent": sent, "batch": batch})
                )

            ours = Subject(tactor_publish, client, f"{tag}:report:tactor")
            raw = Subject(raw_publish, client, f"{tag}:report:raw")
            return await _measure(settings, ours, raw)
    finally:
        await stop_all(servers)
        await client.aclose()
        await delete_keys(base, f"{tag}:*")


async def _measure(settings: Settings, ours: Subject, raw: Subject) -> list[Row]:
    await ours.wait_subscribed()
    await raw.wait_subscribed()
    lat = Figure("tactor publish → @subscribe handler in another process", "us")
    lat.note = "one-way (both read the same clock), one event in flight"
    raw_lat = Figure("raw redis-py PUBLISH → SUBSCRIBE loop in another process (baseline)", "us")
    thr = Figure("tactor events handled in another process", "ops/s")
    thr.note = f"{PUBLISHERS} concurrent publishers, ≤ 2 batches of events unhandled"
    raw_thr = Figure("raw redis-py pub/sub messages handled in another process (baseline)", "ops/s")
    one = replace(settings, repeats=1)
    batch, batches = (50, 4) if settings.quick else (400, max(4, settings.iterations * 5 // 400))
    for _ in range(settings.repeats):  # interleaved, so drift hits both alike
        for subject, fig in ((ours, lat), (raw, raw_lat)):
            median, p99 = await subject.latency(one)
            fig.medians.append(median)
            fig.p99s.append(p99)
        thr.medians.append(await ours.rate(batches, batch))
        raw_thr.medians.append(await raw.rate(batches, batch))
    return [
        Row("event publish → handler across processes", [lat, raw_lat]),
        Row("events delivered across processes", [thr, raw_thr]),
    ]
