"""Row 7: what tells leave behind in Redis: ``used_memory`` and the endpoint stream's length.

A provider process serves :class:`RemoteEcho`; this process sends N tells
(``bump(1)``, 16 senders at a time), then one call to ``total`` — the
endpoint's mailbox is FIFO and has one provider, so the call returns once
every tell was handled and acknowledged, and its answer proves none was lost.

Redis's ``used_memory`` (INFO memory) is read before (after a warm-up at the
same concurrency, so the stream, its consumer group and every connection
exist) and after: the figures are *after* beside *before*, so the ratio is
after ÷ before (1.00×: nothing left behind) and the note gives the growth.
The stream's XLEN and its group's pending count after each run, and the
longest XLEN sampled (every 20 ms) while the tells flow — bounded by
``mailbox_size``, 1024 — are in the row's finding and its target.

The Redis server is shared: other clients' keys come and go during the run,
so a growth of a few KiB either way is noise.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import uuid

import redis.asyncio as aioredis

from tactor import ActorSystem

from .harness import Figure, Row, Settings
from .servers import RemoteEcho, Server, delete_keys, start_all, stop_all, tactor_url

SENDERS = 16


async def _settled_length(client: aioredis.Redis, stream: str) -> int:
    """XLEN once the last acknowledgements (sent after the replies) had a moment to land."""
    for _ in range(50):
        length = int(await client.xlen(stream))
        if length == 0:
            return 0
        await asyncio.sleep(0.02)
    return length


async def run(settings: Settings) -> list[Row]:
    assert settings.redis_url is not None
    base = settings.redis_url
    tag = f"bench-{uuid.uuid4().hex[:12]}"
    url = tactor_url(base, tag)
    stream = f"{tag}:mb:ep:{RemoteEcho.__tactor_schema__.endpoint}"
    tells = 2_000 if settings.quick else 100_000
    servers: list[Server] = []
    client = aioredis.Redis.from_url(base)
    after_fig = Figure(f"Redis used_memory after {tells:,} acknowledged tells", "MiB")
    before_fig = Figure("Redis used_memory before them (reference)", "MiB")
    growth: list[float] = []
    lengths: list[int] = []
    peaks: list[int] = []
    pending: list[int] = []
    rates: list[float] = []
    try:
        servers = await start_all(("tactor", url, "echo", "1", base, "-"))
        async with ActorSystem(url, timeout=60) as system:
            proxy = system.proxy(RemoteEcho)
            # Warm-up, with the same concurrency: the stream, its group and every connection
            # of the caller's pool exist before the first reading.
            expected = SENDERS * 8
            await _tell(system, expected)
            assert await proxy.total() == expected
            for _ in range(settings.repeats):
                before = await _used_memory(client)
                done = asyncio.Event()
                sampler = asyncio.create_task(_peak_length(client, stream, done))
                try:
                    start = time.perf_counter()
                    await _tell(system, tells)
                    expected += tells
                    total = await proxy.total()
                    rates.append(tells / (time.perf_counter() - start))
                finally:
                    done.set()
                    peaks.append(await sampler)
                if total != expected:
                    raise RuntimeError(f"{expected - total} tells were not handled")
                after = await _used_memory(client)
                before_fig.medians.append(before / 2**20)
                after_fig.medians.append(after / 2**20)
                growth.append((after - before) / 1024)
                lengths.append(await _settled_length(client, stream))
                pending.append((await client.xpending(stream, "tactor"))["pending"])
    finally:
        await stop_all(servers)
        await client.aclose()
        await delete_keys(base, f"{tag}:*")
    for fig in (after_fig, before_fig):
        fig.p99s = list(fig.medians)
    after_fig.note = f"growth {', '.join(f'{g:+,.0f} KiB' for g in growth)}"
    row = Row(
        f"Redis memory and endpoint stream after {tells:,} tells",
        [after_fig, before_fig],
        target="growth < 1 MiB (shared server); stream empty after; ≤ mailbox_size while telling",
        finding=(
            f"endpoint stream after each run: XLEN {max(lengths)}, pending {max(pending)}; "
            f"longest seen while telling: {max(peaks)} (mailbox_size 1024); "
            f"tells sent and handled at {statistics.median(rates):,.0f}/s"
        ),
    )
    row.met = (
        statistics.median(growth) < 1024
        and max(lengths) == 0
        and max(pending) == 0
        and max(peaks) <= 1024
    )
    return [row]


async def _used_memory(client: aioredis.Redis) -> int:
    info = await client.info("memory")
    return int(info["used_memory"])


async def _tell(system: ActorSystem, count: int) -> None:
    async def sender(n: int) -> None:
        for _ in range(n):
            await system.tell(RemoteEcho.bump, 1)

    share = [count // SENDERS + (i < count % SENDERS) for i in range(SENDERS)]
    await asyncio.gather(*(sender(n) for n in share))


async def _peak_length(client: aioredis.Redis, stream: str, done: asyncio.Event) -> int:
    """Sample the stream's length every 20 ms until ``done``; returns the longest seen."""
    peak = 0
    while not done.is_set():
        peak = max(peak, await client.xlen(stream))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 0.02)
    return peak
