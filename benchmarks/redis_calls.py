"""Row 2: calls over Redis between processes, against raw redis-py lists and pymq 0.7 RPC.

Every server is its own OS process; the caller is this process (asyncio).

The raw redis-py baseline is the least a request/reply over Redis costs: the
caller RPUSHes ``REPLY_KEY|BODY`` onto a request list, a server process BLPOPs
it and RPUSHes the body onto the caller's reply list, which the caller
BLPOPs — two commands per side, like tactor's call (deliver script, then the
reply read) and provider (read, then reply script). It is measured with a
synchronous redis-py server (the cheapest) and with an asyncio one (what
tactor's providers run on). With 64 in flight each of the 64 callers has its
own reply list (and, since BLPOP holds a connection, its own connection from
redis-py's pool), while one server process answers them one at a time — as
one tactor provider handles one message at a time. A second tactor figure
spreads the same load over 2 processes × 2 providers, to show whether the
provider is what limits throughput.

pymq 0.7 (the peer): its stub publishes the request on a pub/sub channel and
BRPOPs a fresh reply list; the server's bus thread hands it to a one-thread
executor which LPUSHes the reply. pymq is blocking, so it is called from
threads (64 threads for 64 in flight).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import redis.asyncio as aioredis

from tactor import ActorSystem

from .harness import Figure, Row, Settings, repeat_latency, summarise
from .servers import (
    RemoteEcho,
    Server,
    cpu_medians,
    cpu_per_op,
    delete_keys,
    pymq_bus,
    start_all,
    stop_all,
    tactor_url,
)

IN_FLIGHT = 64
PREFETCH = 1  # the prefetch figure: a provider that reads one entry per round trip
PYMQ_CHANNEL = "bench.echo"

Op = Callable[[], Awaitable[Any]]


def calls_for_rate(settings: Settings) -> int:
    """How many calls a throughput sample makes (several per caller; a few seconds' worth)."""
    return IN_FLIGHT * 4 if settings.quick else max(settings.iterations * 4, IN_FLIGHT * 20)


async def rate(ops: list[Op], total: int) -> float:
    """Operations per second with one caller per op in ``ops``, each looping on its own op."""
    per_caller = max(1, total // len(ops))

    async def caller(op: Op) -> None:
        for _ in range(per_caller):
            await op()

    await asyncio.gather(*(op() for op in ops))  # warm: every connection open
    start = time.perf_counter()
    await asyncio.gather(*(caller(op) for op in ops))
    return per_caller * len(ops) / (time.perf_counter() - start)


def sync_samples(op: Callable[[], Any], settings: Settings) -> tuple[float, float]:
    """Median and p99 of a blocking operation (for pymq), one at a time, in microseconds."""
    for _ in range(settings.warmup):
        op()
    samples = []
    for _ in range(settings.iterations):
        start = time.perf_counter()
        op()
        samples.append((time.perf_counter() - start) * 1e6)
    return summarise(samples)


def sync_rate(op: Callable[[], Any], total: int, in_flight: int) -> float:
    """Operations per second of a blocking operation from ``in_flight`` threads."""
    per_thread = max(1, total // in_flight)

    def caller() -> None:
        for _ in range(per_thread):
            op()

    with ThreadPoolExecutor(in_flight) as pool:
        list(pool.map(lambda _: op(), range(in_flight)))  # warm: every connection open
        start = time.perf_counter()
        for future in [pool.submit(caller) for _ in range(in_flight)]:
            future.result()
        return per_thread * in_flight / (time.perf_counter() - start)


class RawCaller:
    """The raw redis-py request/reply baseline's client side."""

    def __init__(self, base: str, request_key: str, reply_prefix: str) -> None:
        self.redis = aioredis.Redis.from_url(base)
        self.request_key = request_key
        self.reply_prefix = reply_prefix

    def op(self, n: int) -> Op:
        reply_key = f"{self.reply_prefix}:{n}"
        request = f"{reply_key}|1".encode()

        async def call() -> int:
            await self.redis.rpush(self.request_key, request)
            item = await self.redis.blpop([reply_key], timeout=10)
            if item is None:
                raise TimeoutError("the raw redis-py server did not answer within 10 s")
            return int(item[1])

        return call

    async def close(self) -> None:
        await self.redis.aclose()


class PymqCaller:
    """A pymq 0.7 stub for ``echo`` (blocking; measured from threads)."""

    def __init__(self, base: str, namespace: str, providers: int = 1, multi: bool = False) -> None:
        self.bus: Any = pymq_bus(base, namespace)
        self.channel = self.bus.channel_prefix + PYMQ_CHANNEL
        self.providers = providers
        self.stub = self.bus.stub(PYMQ_CHANNEL, timeout=10, multi=multi)

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Until every pymq server's pub/sub subscription is in place."""
        deadline = time.monotonic() + timeout
        while self.bus.rds.pubsub_numsub(self.channel)[0][1] < self.providers:
            if time.monotonic() > deadline:
                raise RuntimeError("pymq servers did not subscribe in time")
            time.sleep(0.01)

    def call(self) -> Any:
        return self.stub(1)

    def close(self) -> None:
        self.bus.rds.close()


async def run(settings: Settings) -> list[Row]:
    assert settings.redis_url is not None
    base = settings.redis_url
    tag = f"bench-{uuid.uuid4().hex[:12]}"
    url = tactor_url(base, tag)
    servers = []
    callers: list[RawCaller] = []
    pymq: PymqCaller | None = None
    try:
        # One provider; and, for throughput only, 2 more processes with 2 providers each on
        # a second prefix (so the calls of the first figures reach the single provider).
        url4 = tactor_url(base, f"{tag}-4")
        url_pre = tactor_url(base, f"{tag}-p", prefetch=PREFETCH)
        servers = await start_all(
            ("tactor", url, "echo", "1", base, "-"),
            *[("tactor", url4, "echo", "2", base, "-")] * 2,
            ("tactor", url_pre, "echo", "1", base, "-"),
            ("raw", base, f"{tag}:raw:req"),
            ("rawasync", base, f"{tag}:rawasync:req"),
            ("pymq", base, tag, PYMQ_CHANNEL),
        )
        callers = [
            RawCaller(base, f"{tag}:raw:req", f"{tag}:raw:reply"),
            RawCaller(base, f"{tag}:rawasync:req", f"{tag}:rawasync:reply"),
        ]
        pymq = PymqCaller(base, tag)
        await asyncio.to_thread(pymq.wait_ready)
        async with (
            ActorSystem(url, timeout=30) as system,
            ActorSystem(url4, timeout=30) as four,
            ActorSystem(url_pre, timeout=30) as pre,
        ):
            cpu = {"tactor": servers[0], "raw sync": servers[4], "raw asyncio": servers[5]}
            return await _measure(settings, system, four, pre, *callers, pymq, cpu)
    finally:
        await stop_all(servers)
        for caller in callers:
            await caller.close()
        if pymq is not None:
            pymq.close()
        await delete_keys(base, f"{tag}:*", f"{tag}-4:*", f"{tag}-p:*", f"__eventbus:{tag}:*")


async def _measure(
    settings: Settings,
    system: ActorSystem,
    four: ActorSystem,
    pre: ActorSystem,
    raw: RawCaller,
    raw_async: RawCaller,
    pymq: PymqCaller,
    servers: dict[str, Server],
) -> list[Row]:
    one = replace(settings, repeats=1)
    proxy = system.proxy(RemoteEcho)
    proxy4 = four.proxy(RemoteEcho)
    proxy_pre = pre.proxy(RemoteEcho)
    lat = Figure("tactor proxy call over Redis", "us")
    raw_lat = Figure("raw redis-py RPUSH/BLPOP echo, sync server (baseline)", "us")
    raw_async_lat = Figure("raw redis-py RPUSH/BLPOP echo, asyncio server (baseline)", "us")
    pymq_lat = Figure("pymq 0.7 RPC stub (peer)", "us")
    thr = Figure("tactor proxy calls, 1 provider", "ops/s")
    thr4 = Figure("tactor proxy calls, 2 processes × 2 providers", "ops/s")
    thr_pre = Figure(f"tactor proxy calls, 1 provider, prefetch={PREFETCH} (one per read)", "ops/s")
    raw_thr = Figure("raw redis-py echo, sync server (baseline)", "ops/s")
    raw_thr.note = f"{IN_FLIGHT} callers, each its own reply list and connection"
    raw_async_thr = Figure("raw redis-py echo, asyncio server (baseline)", "ops/s")
    pymq_thr = Figure(f"pymq 0.7 RPC stub from {IN_FLIGHT} threads (peer)", "ops/s")
    total = calls_for_rate(settings)
    assert await proxy.echo(7) == 7 and await proxy4.echo(7) == 7
    assert await proxy_pre.echo(7) == 7
    assert await raw.op(0)() == 1 and await raw_async.op(0)() == 1
    assert await asyncio.to_thread(pymq.call) == 1
    for _ in range(settings.repeats):  # interleaved, so drift hits every subject alike
        await repeat_latency(lat, one, lambda: proxy.echo(1))
        await repeat_latency(raw_lat, one, raw.op(0))
        await repeat_latency(raw_async_lat, one, raw_async.op(0))
        median, p99 = await asyncio.to_thread(sync_samples, pymq.call, settings)
        pymq_lat.medians.append(median)
        pymq_lat.p99s.append(p99)
    cpu: dict[str, list[float]] = {}
    for _ in range(settings.repeats):
        ops: list[Op] = [lambda: proxy.echo(1)] * IN_FLIGHT
        thr.medians.append(await _rate_cpu(ops, total, "tactor", servers, cpu))
        thr4.medians.append(await rate([lambda: proxy4.echo(1)] * IN_FLIGHT, total))
        thr_pre.medians.append(await rate([lambda: proxy_pre.echo(1)] * IN_FLIGHT, total))
        ops = [raw.op(n) for n in range(IN_FLIGHT)]
        raw_thr.medians.append(await _rate_cpu(ops, total, "raw sync", servers, cpu))
        ops = [raw_async.op(n) for n in range(IN_FLIGHT)]
        raw_async_thr.medians.append(await _rate_cpu(ops, total, "raw asyncio", servers, cpu))
        pymq_thr.medians.append(
            await asyncio.to_thread(sync_rate, pymq.call, total // 4, IN_FLIGHT)
        )
    tactor_commands = await commands_per_op(raw.redis, lambda: proxy.echo(1), settings, TACTOR_SENT)
    raw_commands = await commands_per_op(raw.redis, raw.op(0), settings, RAW_SENT)
    latency_row = Row(
        "Redis call round trip, 1 in flight",
        [lat, raw_lat, raw_async_lat, pymq_lat],
        target="≤ 1.3× raw redis-py (sync server); ≥ 3× faster than pymq",
    )
    latency_row.finding = (
        f"Redis commands sent per call, both sides (INFO commandstats): tactor {tactor_commands}; "
        f"raw redis-py {raw_commands}. Cancellation at the deadline adds none: the deadline "
        "travels in the message and the provider keeps its own timer"
    )
    ratios = latency_row.ratios()
    near_raw, beats_pymq = ratios[raw_lat.name] <= 1.3, ratios[pymq_lat.name] <= 1 / 3
    latency_row.judge(
        ("≤ 1.3× raw redis-py (sync server)", near_raw), ("≥ 3× faster than pymq", beats_pymq)
    )
    throughput_row = Row(
        f"Redis call throughput, {IN_FLIGHT} in flight",
        [thr, thr4, thr_pre, raw_thr, raw_async_thr, pymq_thr],
        target="≥ 15,000 calls/s",
    )
    throughput_row.met = thr.median >= 15_000
    throughput_row.finding = _cpu_finding(cpu)
    return [latency_row, throughput_row]


#: The commands tactor's clients send on a call's path; the others that INFO commandstats
#: counts run inside its Lua scripts (XADD, RPUSH, TIME, ...).
TACTOR_SENT = frozenset({"evalsha", "eval", "client|reply", "xreadgroup", "blmpop"})
RAW_SENT = frozenset({"rpush", "blpop"})


async def commands_per_op(
    redis: aioredis.Redis, op: Op, settings: Settings, sent: frozenset[str]
) -> str:
    """Redis commands per ``op`` (one at a time) of the kinds in ``sent``, by command.

    From INFO commandstats, which counts every client's commands: run it while
    nothing else uses the server.
    """
    calls = 200 if settings.quick else 1000

    async def stats() -> dict[str, int]:
        info = await redis.info("commandstats")
        return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()}

    before = await stats()
    for _ in range(calls):
        await op()
    after = await stats()
    used = {k: (n - before.get(k, 0)) / calls for k, n in after.items()}
    mine = sorted(((k, n) for k, n in used.items() if k in sent and n >= 0.05), key=lambda x: -x[1])
    inside = sum(n for k, n in used.items() if k not in sent and k != "info")
    parts = ", ".join(f"{k} {n:.2g}" for k, n in mine)
    scripts = f"; {inside:.2g} more run inside scripts" if inside >= 0.05 else ""
    return f"{sum(n for _, n in mine):.2g} ({parts}){scripts}"


async def _rate_cpu(
    ops: list[Op],
    total: int,
    name: str,
    servers: dict[str, Server],
    cpu: dict[str, list[float]],
) -> float:
    """:func:`rate`, also recording the CPU time per call of this process and of the server."""
    calls = (max(1, total // len(ops)) + 1) * len(ops)  # with the warm-up round
    result, server, caller = await cpu_per_op([servers[name]], calls, lambda: rate(ops, total))
    cpu.setdefault(f"{name}: caller", []).append(caller)
    if server is not None:
        label = "provider" if name == "tactor" else "server"
        cpu.setdefault(f"{name}: {label}", []).append(server)
    return result


def _cpu_finding(cpu: dict[str, list[float]]) -> str:
    if not cpu:
        return ""
    return (
        f"CPU time per call at {IN_FLIGHT} in flight (median): {cpu_medians(cpu)}"
        f" — on {os.cpu_count()} cores shared with Redis and the caller, this bounds throughput"
    )
