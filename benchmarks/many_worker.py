"""The processes of the many-providers row, run on a given tactor tree (``PYTHONPATH``).

``python benchmarks/many_worker.py MODE URL ...`` — only tactor's public API, so the
same file runs on this tree and on a baseline's (see ``many_providers.py``):

- ``idle URL N DEADLINE``: spawn N idle providers in this process, then measure what
  they cost while idle (on a Redis server of their own: CLIENT LIST and INFO
  commandstats count this process alone); prints one JSON line.
- ``serve URL ENDPOINT N``: serve N providers of ENDPOINT; prints ``ready``; closes when
  stdin closes.
- ``call URL ITERATIONS``: a broadcast to every provider of ``bench-many``, calls to one
  of them (any, and one by ``provider=``), and calls to ``bench-one`` (one provider),
  the three in turn call by call; prints one JSON line of medians (µs).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import sys
import time

import redis

from tactor import Actor, ActorSystem


class Many(Actor, name="bench-many"):
    def __init__(self, index: int) -> None:
        self.index = index

    async def which(self) -> int:
        return self.index


class One(Actor, name="bench-one"):
    async def which(self) -> int:
        return 0


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def idle_commands(admin: redis.Redis, seconds: float) -> float:
    admin.config_resetstat()
    time.sleep(seconds)
    stats = admin.info("commandstats")
    own = {"cmdstat_info", "cmdstat_config|resetstat", "cmdstat_config", "cmdstat_client|list"}
    return sum(int(s["calls"]) for name, s in stats.items() if name not in own) / seconds


def connections(admin: redis.Redis) -> int:
    own = admin.client_id()
    return sum(1 for client in admin.client_list() if int(client["id"]) != own)


async def idle(url: str, count: int, deadline: float) -> dict[str, object]:
    admin = redis.Redis.from_url(url.split("?")[0])
    result: dict[str, object] = {"providers": count}
    system = await ActorSystem(url, timeout=10).start()
    try:
        await system.spawn(Many, -1)  # warm: the reader, the inbox, the subscriptions
        gc.collect()
        before = rss_kib()
        started = time.perf_counter()
        spawned = 0
        try:
            async with asyncio.timeout(deadline):
                for first in range(0, count, 100):
                    chunk = range(first, min(count, first + 100))
                    await asyncio.gather(*(system.spawn(Many, i) for i in chunk))
                    spawned += len(chunk)
        except Exception as exc:  # today's code: MaxConnectionsError, TransportError, ...
            result["error"] = f"{type(exc).__name__} after {spawned} spawned: {exc}"[:300]
            return result
        result["spawn_s"] = time.perf_counter() - started
        gc.collect()
        result["kib_per_provider"] = (rss_kib() - before) / count
        reply = await system.broadcast(Many.which, timeout=10)
        result["broadcast_complete"] = reply.complete
        await asyncio.sleep(1.0)  # settle: the last acknowledgements, the first idle reads
        result["connections"] = connections(admin)
        result["commands_per_s"] = await asyncio.to_thread(idle_commands, admin, 5.0)
    finally:
        try:
            async with asyncio.timeout(60):
                await system.close()
        except Exception as exc:
            result["close_error"] = f"{type(exc).__name__}: {exc}"[:300]
        admin.close()
    return result


async def serve(url: str, endpoint: str, count: int) -> None:
    async with ActorSystem(url, timeout=30) as system:
        for first in range(0, count, 100):
            chunk = range(first, min(count, first + 100))
            if endpoint == "bench-many":
                await asyncio.gather(*(system.spawn(Many, i) for i in chunk))
            else:
                await asyncio.gather(*(system.spawn(One) for _ in chunk))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def timed(op: object, iterations: int) -> float:
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        await op()  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples)


async def call(url: str, iterations: int) -> dict[str, object]:
    async with ActorSystem(url, timeout=10) as system:
        providers = await system.providers(Many)
        result: dict[str, object] = {"providers": len(providers)}
        complete: list[bool] = []

        async def broadcast() -> None:
            complete.append((await system.broadcast(Many.which, timeout=10)).complete)

        await broadcast()  # warm
        result["broadcast_us"] = await timed(broadcast, max(5, iterations // 50))
        result["broadcast_all_complete"] = all(complete)
        many, one = system.proxy(Many), system.proxy(One)
        addressed = system.proxy(Many, provider=providers[len(providers) // 2])
        for proxy in (many, one, addressed):  # warm
            for _ in range(50):
                await proxy.which()
        names = ("any_us", "one_us", "addressed_us")
        samples: dict[str, list[float]] = {name: [] for name in names}
        # In turn, call by call: a burst of noise (this is a shared VM) hits each the same.
        for _ in range(3 * iterations):
            for name, proxy in zip(names, (many, one, addressed), strict=True):
                started = time.perf_counter()
                await proxy.which()  # type: ignore[union-attr]
                samples[name].append((time.perf_counter() - started) * 1e6)
        for name in names:
            result[name] = statistics.median(samples[name])
        return result


def main() -> None:
    mode, url, *args = sys.argv[1:]
    if mode == "idle":
        print(json.dumps(asyncio.run(idle(url, int(args[0]), float(args[1])))), flush=True)
    elif mode == "serve":
        asyncio.run(serve(url, args[0], int(args[1])))
    elif mode == "call":
        print(json.dumps(asyncio.run(call(url, int(args[0])))), flush=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    os._exit(0)  # today's code may leave threads behind after a failed close


if __name__ == "__main__":
    main()
