"""Row 3: broadcast to 3 provider processes over Redis; and a broadcast after one was SIGKILLed.

Beside tactor's broadcast: one tactor call to the same providers (the target
is stated against it), pymq 0.7's ``multi=True`` stub with 3 server
processes, and raw redis-py gathering 3 replies (one pipelined RPUSH onto each
of 3 servers' request lists, then 3 BLPOPs of the caller's reply list).

The providers run with ``ttl=1`` (heartbeat every 1/3 s). After a provider is
SIGKILLed, a broadcast sent while the registry still lists it waits for it
until the deadline (2 s) and returns then, never later; once its heartbeat
has expired the registry drops it and a broadcast goes to the live ones only.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import redis.asyncio as aioredis

from tactor import ActorSystem

from .harness import Figure, Row, Settings, repeat_latency
from .redis_calls import PYMQ_CHANNEL, PymqCaller, sync_samples
from .servers import (
    RemoteEcho,
    Server,
    cpu_medians,
    cpu_per_op,
    delete_keys,
    start_all,
    stop_all,
    tactor_url,
)

PROVIDERS = 3
DEADLINE = 2.0
TTL = 1


class RawGather:
    """Raw redis-py: one request onto each server's list (one pipelined round trip), 3 replies."""

    def __init__(self, base: str, request_keys: list[str], reply_key: str) -> None:
        self.redis = aioredis.Redis.from_url(base)
        self.request_keys = request_keys
        self.reply_key = reply_key
        self.request = f"{reply_key}|1".encode()

    async def __call__(self) -> list[int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in self.request_keys:
                pipe.rpush(key, self.request)
            await pipe.execute()
        replies = []
        for _ in self.request_keys:
            item = await self.redis.blpop([self.reply_key], timeout=10)
            if item is None:
                raise TimeoutError("a raw redis-py server did not answer within 10 s")
            replies.append(int(item[1]))
        return replies

    async def close(self) -> None:
        await self.redis.aclose()


async def run(settings: Settings) -> list[Row]:
    assert settings.redis_url is not None
    base = settings.redis_url
    tag = f"bench-{uuid.uuid4().hex[:12]}"
    url = tactor_url(base, tag, ttl=TTL)
    request_keys = [f"{tag}:raw:req:{n}" for n in range(PROVIDERS)]
    tactor_spec = ("tactor", url, "echo", "1", base, "-")
    servers: list[Server] = []
    raw: RawGather | None = None
    pymq: PymqCaller | None = None
    try:
        servers = await start_all(
            *[tactor_spec] * PROVIDERS,
            *[("raw", base, key) for key in request_keys],
            *[("pymq", base, tag, PYMQ_CHANNEL)] * PROVIDERS,
        )
        raw = RawGather(base, request_keys, f"{tag}:raw:reply")
        pymq = PymqCaller(base, tag, providers=PROVIDERS, multi=True)
        await asyncio.to_thread(pymq.wait_ready)
        async with ActorSystem(url, timeout=30) as system:
            row, live = await _broadcast_row(settings, system, raw, pymq, servers[:PROVIDERS])
            # servers[0] is a tactor server: killed, and restarted in place for each repeat
            kill_row = await _kill_row(settings, system, servers, tactor_spec, live)
        return [row, kill_row]
    finally:
        await stop_all(servers)
        if raw is not None:
            await raw.close()
        if pymq is not None:
            pymq.close()
        await delete_keys(base, f"{tag}:*", f"__eventbus:{tag}:*")


async def _broadcast_row(
    settings: Settings,
    system: ActorSystem,
    raw: RawGather,
    pymq: PymqCaller,
    providers: list[Server],
) -> tuple[Row, Figure]:
    one = replace(settings, repeats=1)
    ours = Figure(f"tactor broadcast to {PROVIDERS} provider processes", "us")
    call = Figure(f"one tactor proxy call, same {PROVIDERS} providers", "us")
    raw_fig = Figure(f"raw redis-py: RPUSH to {PROVIDERS} servers, gather 3 replies", "us")
    pymq_fig = Figure(f"pymq 0.7 multi=True stub, {PROVIDERS} server processes (peer)", "us")
    proxy = system.proxy(RemoteEcho)

    async def broadcast() -> None:
        result = await system.broadcast(RemoteEcho.echo, 1, timeout=DEADLINE)
        if not result.complete or len(result) != PROVIDERS:
            raise RuntimeError(f"incomplete broadcast: {result!r}")

    await _wait_providers(system, PROVIDERS)
    await broadcast()
    assert await raw() == [1] * PROVIDERS
    assert await asyncio.to_thread(pymq.call) == [1] * PROVIDERS
    ops = one.warmup + one.iterations
    cpu: dict[str, list[float]] = {}

    async def measured(what: str, measure: Callable[[], Awaitable[Any]]) -> None:
        _, spent, caller = await cpu_per_op(providers, ops, measure)
        if spent is not None:
            cpu.setdefault(f"{what}: providers in all", []).append(spent)
        cpu.setdefault(f"{what}: caller", []).append(caller)

    for _ in range(settings.repeats):
        await measured("broadcast", lambda: repeat_latency(ours, one, broadcast))
        await measured("call", lambda: repeat_latency(call, one, lambda: proxy.echo(1)))
        await repeat_latency(raw_fig, one, raw)
        median, p99 = await asyncio.to_thread(sync_samples, pymq.call, settings)
        pymq_fig.medians.append(median)
        pymq_fig.p99s.append(p99)
    row = Row(
        f"broadcast to {PROVIDERS} processes over Redis",
        [ours, call, raw_fig, pymq_fig],
        target="≤ 1.5× one tactor call",
        finding=_cpu_finding(cpu),
    )
    row.met = row.ratios()[call.name] <= 1.5
    return row, ours


def _cpu_finding(cpu: dict[str, list[float]]) -> str:
    return (
        f"CPU time per operation (median): {cpu_medians(cpu)}"
        f" — {PROVIDERS} provider processes, the caller and Redis share {os.cpu_count()} cores"
    )


async def _kill_row(
    settings: Settings,
    system: ActorSystem,
    servers: list[Server],
    spec: tuple[str, ...],
    live: Figure,
) -> Row:
    """Per repeat: SIGKILL one provider, broadcast at once (it is still registered), wait
    until the registry drops it, measure broadcasts to the survivors, then restart it."""
    one = replace(settings, repeats=1, iterations=max(10, settings.iterations // 4))
    dropped = Figure(
        f"killed 1 of {PROVIDERS}, dropped from the registry (ttl={TTL} s): broadcast", "us"
    )
    registered = Figure(
        f"killed 1 of {PROVIDERS}, still registered: broadcast returns at the deadline "
        f"(timeout={DEADLINE:g} s)",
        "us",
    )
    waits: list[float] = []
    problems: list[str] = []

    async def broadcast() -> None:
        result = await system.broadcast(RemoteEcho.echo, 1, timeout=DEADLINE)
        if not result.complete or len(result) != PROVIDERS - 1:
            raise RuntimeError(f"unexpected broadcast result: {result!r}")

    for n in range(settings.repeats):
        if n:
            servers[0] = await Server.start(*spec)
            await _wait_providers(system, PROVIDERS)
        victim = servers[0]
        await victim.kill()
        killed_at = time.perf_counter()
        # How long the registry keeps listing the dead provider, watched meanwhile.
        watch = asyncio.create_task(_wait_providers(system, PROVIDERS - 1))
        try:
            start = time.perf_counter()
            result = await system.broadcast(RemoteEcho.echo, 1, timeout=DEADLINE)
            took = time.perf_counter() - start
            waits.append(await watch - killed_at)
        finally:
            watch.cancel()
        registered.medians.append(took * 1e6)
        registered.p99s.append(took * 1e6)
        if result.missing != victim.ids or len(result) != PROVIDERS - 1:
            problems.append(f"unexpected result while registered: {result!r}")
        if not DEADLINE - 0.05 <= took <= DEADLINE + 0.1:
            problems.append(f"returned after {took:.3f} s with timeout={DEADLINE:g} s")
        await repeat_latency(dropped, one, broadcast)
    dropped.note = f"the registry dropped it {min(waits):.2f}–{max(waits):.2f} s after the kill"
    row = Row(
        f"broadcast after SIGKILL of 1 of {PROVIDERS} providers",
        [dropped, live, registered],
        target=f"dropped: ≤ 1.5× a broadcast to {PROVIDERS} live; registered: at the deadline",
        finding="; ".join(problems),
    )
    row.met = not problems and row.ratios()[live.name] <= 1.5
    return row


async def _wait_providers(system: ActorSystem, count: int, timeout: float = 15.0) -> float:
    """Poll the registry until it lists ``count`` providers; returns when (perf_counter)."""
    deadline = time.monotonic() + timeout
    while len(await system.providers(RemoteEcho)) != count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the registry did not reach {count} providers of RemoteEcho")
        await asyncio.sleep(0.01)
    return time.perf_counter()
