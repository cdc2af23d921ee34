"""NATS rows, beside Redis in the same run: calls against raw nats-py request/reply,
calls/s with 64 in flight, a broadcast to 3 provider processes, events across processes.

Every server is its own OS process. The raw nats-py baseline (server kind
``natsraw``) is the least a request/reply over NATS costs: core NATS request
and ``respond`` — no stream, no acknowledgement. tactor's call over NATS
stores the request in a JetStream work-queue stream (the publish waits for
the stream's acknowledgement: a tell accepted survives its provider), the
provider pulls it, answers on the caller's inbox subject and acknowledges it:
the price of "accepted means kept". The same JetStream steps in plain nats-py
(server kind ``natsjs``, see ``nats_floor.py``) are the floor of that price,
and the same call over Redis is measured in the same run for the side-by-side.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import replace
from typing import Any

import redis.asyncio as aioredis

from tactor import ActorSystem

from . import nats_floor
from .events import Subject
from .harness import Figure, Row, Settings, repeat_latency
from .redis_calls import IN_FLIGHT, Op, calls_for_rate, rate
from .servers import (
    Ping,
    RemoteEcho,
    Server,
    cpu_each,
    cpu_medians,
    delete_keys,
    listening_pid,
    start_all,
    stop_all,
    tactor_url,
)

PROVIDERS = 3


async def run(settings: Settings) -> list[Row]:
    assert settings.redis_url is not None and settings.nats_url is not None
    base, nats_base = settings.redis_url, settings.nats_url
    tag = f"bench-{uuid.uuid4().hex[:12]}"
    nats_url, redis_url = tactor_url(nats_base, tag), tactor_url(base, tag)
    wide_nats, wide_redis = tactor_url(nats_base, f"{tag}-b"), tactor_url(base, f"{tag}-b")
    in_memory = tactor_url(nats_base, f"{tag}-m", storage="memory")
    subject = f"{tag}.raw.echo"
    servers: list[Server] = []
    client = aioredis.Redis.from_url(base)
    nc = await _connect(nats_base)
    try:
        await nats_floor.prepare(nc, tag)
        servers = await start_all(
            ("tactor", nats_url, "echo", "1", base, "-"),
            ("tactor", redis_url, "echo", "1", base, "-"),
            ("tactor", in_memory, "echo", "1", base, "-"),
            ("natsraw", nats_base, subject),
            ("natsjs", nats_base, tag),
            *[("tactor", wide_nats, "echo", "1", base, "-")] * PROVIDERS,
            *[("tactor", wide_redis, "echo", "1", base, "-")] * PROVIDERS,
            ("tactor", nats_url, "listener", "1", base, f"{tag}:report:nats"),
            ("tactor", redis_url, "listener", "1", base, f"{tag}:report:redis"),
        )
        floor = nats_floor.FloorCaller(nc, tag)
        await floor.start()
        async with (
            ActorSystem(nats_url, timeout=30) as on_nats,
            ActorSystem(redis_url, timeout=30) as on_redis,
            ActorSystem(wide_nats, timeout=30) as wide_on_nats,
            ActorSystem(wide_redis, timeout=30) as wide_on_redis,
            ActorSystem(in_memory, timeout=30) as on_memory,
        ):

            async def raw_call() -> bytes:
                return bytes((await nc.request(subject, b"1", timeout=10)).data)

            # The providers of the NATS call row's three subjects, for their CPU per call.
            answering = {"tactor": servers[0], "raw": servers[3], "floor": servers[4]}
            rows = await _calls(
                settings, on_nats, on_memory, on_redis, raw_call, floor.call, answering
            )
            rows.append(await _broadcast(settings, wide_on_nats, wide_on_redis))
            rows += await _events(settings, on_nats, on_redis, client, tag)
            return rows
    finally:
        await stop_all(servers)
        with contextlib.suppress(Exception):
            await nats_floor.drop(nc, tag)
        await nc.close()
        await client.aclose()
        await delete_keys(base, f"{tag}:*", f"{tag}-b:*")
        await _drop_nats(nats_base, tag, f"{tag}-b", f"{tag}-m")


async def _connect(url: str) -> Any:
    import nats

    return await nats.connect(url)


async def _drop_nats(url: str, *prefixes: str) -> None:
    """Delete the streams and buckets the benchmark's namespaces made."""
    from tactor.transports.nats.names import Names

    nc = await _connect(url)
    try:
        js = nc.jetstream()
        for prefix in prefixes:
            names = Names(prefix)
            for stream in (names.mailboxes, names.dead, names.queues):
                with contextlib.suppress(Exception):
                    await js.delete_stream(stream)
            for bucket in (names.registry, names.registered, names.unfinished):
                with contextlib.suppress(Exception):
                    await js.delete_key_value(bucket)
    finally:
        await nc.close()


async def _calls(
    settings: Settings,
    on_nats: ActorSystem,
    on_memory: ActorSystem,
    on_redis: ActorSystem,
    raw_call: Op,
    floor: Op,
    answering: dict[str, Server],
) -> list[Row]:
    one = replace(settings, repeats=1)
    nats_proxy, redis_proxy = on_nats.proxy(RemoteEcho), on_redis.proxy(RemoteEcho)
    memory_proxy = on_memory.proxy(RemoteEcho)
    lat = Figure("tactor proxy call over NATS (JetStream mailbox)", "us")
    memory_lat = Figure("the same with storage=memory", "us")
    raw_lat = Figure("raw nats-py request/reply, core NATS (baseline)", "us")
    floor_lat = Figure("raw nats-py over a JetStream work queue (the floor)", "us")
    redis_lat = Figure("tactor proxy call over Redis (same run)", "us")
    thr = Figure("tactor proxy calls over NATS, 1 provider", "ops/s")
    memory_thr = Figure("the same with storage=memory", "ops/s")
    raw_thr = Figure("raw nats-py requests, 1 server (baseline)", "ops/s")
    floor_thr = Figure("raw nats-py over a JetStream work queue, 1 server (the floor)", "ops/s")
    redis_thr = Figure("tactor proxy calls over Redis, 1 provider (same run)", "ops/s")
    assert await nats_proxy.echo(7) == 7 and await redis_proxy.echo(7) == 7
    assert await memory_proxy.echo(7) == 7
    assert await raw_call() == b"1"
    await floor()
    total = calls_for_rate(settings)
    ops = settings.warmup + settings.iterations
    cpu: dict[str, list[float]] = {}
    nats_server = listening_pid(settings.nats_url or "")  # when it runs on this machine

    async def timed(name: str, fig: Figure, op: Op) -> None:
        """Latency samples into ``fig``; the CPU per call of this process, of the provider
        and of the NATS server."""
        others: dict[str, Server | int] = {"provider": answering[name]}
        if nats_server is not None:
            others["NATS server"] = nats_server
        run = repeat_latency(fig, one, op)
        _, each, caller = await cpu_each(list(others.values()), ops, lambda: run)
        cpu.setdefault(f"{name}: caller", []).append(caller)
        for who, spent in zip(others, each, strict=True):
            if spent is not None:
                cpu.setdefault(f"{name}: {who}", []).append(spent)

    for _ in range(settings.repeats):  # interleaved, so drift hits every subject alike
        await timed("tactor", lat, lambda: nats_proxy.echo(1))
        await repeat_latency(memory_lat, one, lambda: memory_proxy.echo(1))
        await timed("raw", raw_lat, raw_call)
        await timed("floor", floor_lat, floor)
        await repeat_latency(redis_lat, one, lambda: redis_proxy.echo(1))
        thr.medians.append(await rate([lambda: nats_proxy.echo(1)] * IN_FLIGHT, total))
        memory_thr.medians.append(await rate([lambda: memory_proxy.echo(1)] * IN_FLIGHT, total))
        raw_thr.medians.append(await rate([raw_call] * IN_FLIGHT, total))
        floor_thr.medians.append(await rate([floor] * IN_FLIGHT, total))
        redis_thr.medians.append(await rate([lambda: redis_proxy.echo(1)] * IN_FLIGHT, total))
    latency_row = Row(
        "NATS call round trip, 1 in flight",
        [lat, raw_lat, floor_lat, redis_lat, memory_lat],
        target="≤ 1.3× raw nats-py request/reply",
    )
    latency_row.judge(("≤ 1.3× raw nats-py", latency_row.ratios()[raw_lat.name] <= 1.3))
    latency_row.finding = (
        "the raw baseline stores nothing; tactor's request is stored in a stream and "
        "acknowledged (publish → stream ack, pull, reply, ack); the floor does the same "
        "JetStream steps in plain nats-py, so its ratio to the raw baseline is what the "
        "guarantee costs on NATS; with storage=memory (streams in the server's memory, lost "
        f"at its restart) tactor's call is {memory_lat.median / raw_lat.median:.2f}× the raw "
        f"baseline. CPU time per call, one in flight (median): {cpu_medians(cpu)} (the "
        "NATS server's where it runs on this machine)"
    )
    throughput_row = Row(
        f"NATS call throughput, {IN_FLIGHT} in flight",
        [thr, raw_thr, floor_thr, redis_thr, memory_thr],
    )
    return [latency_row, throughput_row]


async def _broadcast(settings: Settings, on_nats: ActorSystem, on_redis: ActorSystem) -> Row:
    one = replace(settings, repeats=1)
    figures = []
    for system, name in ((on_nats, "NATS"), (on_redis, "Redis (same run)")):
        deadline = time.monotonic() + 15
        while len(await system.providers(RemoteEcho)) < PROVIDERS:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{PROVIDERS} providers did not register on {name}")
            await asyncio.sleep(0.05)

        async def broadcast(system: ActorSystem = system) -> None:
            result = await system.broadcast(RemoteEcho.echo, 1, timeout=10)
            assert result.complete

        figures.append(
            await repeat_latency(
                Figure(f"tactor broadcast to {PROVIDERS} processes over {name}", "us"),
                replace(one, repeats=settings.repeats),
                broadcast,
            )
        )
    return Row(f"NATS broadcast to {PROVIDERS} provider processes", figures)


async def _events(
    settings: Settings,
    on_nats: ActorSystem,
    on_redis: ActorSystem,
    client: aioredis.Redis,
    tag: str,
) -> list[Row]:
    subjects = []
    for system, key in ((on_nats, "nats"), (on_redis, "redis")):

        async def publish(run: int, sent: float, batch: int, system: ActorSystem = system) -> None:
            await system.publish(Ping(run, sent, batch))

        subject = Subject(publish, client, f"{tag}:report:{key}")
        await subject.wait_subscribed()
        subjects.append(subject)
    lat = Figure("tactor publish → handler in another process, over NATS", "us")
    redis_lat = Figure("the same over Redis (same run)", "us")
    thr = Figure("tactor events handled in another process, over NATS", "ops/s")
    redis_thr = Figure("the same over Redis (same run)", "ops/s")
    one = replace(settings, repeats=1)
    batch, batches = (50, 4) if settings.quick else (400, max(4, settings.iterations * 5 // 400))
    for _ in range(settings.repeats):
        for subject, fig in zip(subjects, (lat, redis_lat), strict=True):
            median, p99 = await subject.latency(one)
            fig.medians.append(median)
            fig.p99s.append(p99)
        for subject, fig in zip(subjects, (thr, redis_thr), strict=True):
            fig.medians.append(await subject.rate(batches, batch))
    return [
        Row("NATS event publish → handler across processes", [lat, redis_lat]),
        Row("NATS events delivered across processes", [thr, redis_thr]),
    ]
