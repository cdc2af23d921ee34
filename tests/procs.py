"""Provider processes for the multi-process tests: ``python -m tests.procs URL KIND COUNT [ARG]``.

Starts a system on URL, spawns COUNT providers of KIND, prints one line
``ready ID ID ...`` and serves until SIGTERM or until stdin closes.
KIND ``pricing``: ``Pricing(ARG)``; ``worker``: ``Worker(record_key=ARG)``; ``bomb``:
``Bomb(record_key=ARG)``; ``stalling``: ``Stalling()``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import redis.asyncio as aioredis

from tactor import Actor, ActorSystem
from tests.model import Pricing, Stalling


class Worker(Actor, name="worker"):
    """Records each job it starts and finishes in Redis lists, so a test can count them."""

    def __init__(self, record_key: str, redis_url: str) -> None:
        self.key = record_key
        self.redis = aioredis.Redis.from_url(redis_url)
        self.pid = os.getpid()

    async def on_stop(self) -> None:
        await self.redis.aclose()

    async def work(self, job: int, seconds: float) -> None:
        await self.redis.rpush(f"{self.key}:started", f"{job}:{self.pid}")
        await asyncio.sleep(seconds)
        await self.redis.rpush(f"{self.key}:done", f"{job}:{self.pid}")

    async def pid_of(self) -> int:
        return self.pid


class Bomb(Actor, name="bomb"):
    """``explode`` SIGKILLs its own process until the Redis key ``KEY:fixed`` exists.

    Records in Redis lists: ``KEY:exploding`` each start of ``explode``, ``KEY:done``
    each tag handled to the end.
    """

    def __init__(self, record_key: str, redis_url: str) -> None:
        self.key = record_key
        self.redis = aioredis.Redis.from_url(redis_url)

    async def on_stop(self) -> None:
        await self.redis.aclose()

    async def explode(self, tag: str) -> None:
        await self.redis.rpush(f"{self.key}:exploding", f"{tag}:{os.getpid()}")
        if not await self.redis.exists(f"{self.key}:fixed"):
            os.kill(os.getpid(), signal.SIGKILL)
        await self.redis.rpush(f"{self.key}:done", tag)

    async def record(self, tag: str) -> None:
        await self.redis.rpush(f"{self.key}:done", tag)

    async def pid_of(self) -> int:
        return os.getpid()


async def serve(url: str, kind: str, count: int, arg: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.read(1) else None)
    async with ActorSystem(url) as system:
        ids = []
        for n in range(count):
            if kind == "pricing":
                ref = await system.spawn(Pricing, f"{arg}{n}" if count > 1 else arg)
            elif kind == "stalling":
                ref = await system.spawn(Stalling)
            elif kind == "bomb":
                ref = await system.spawn(Bomb, arg, os.environ["TACTOR_REDIS_URL"])
            else:
                ref = await system.spawn(Worker, arg, os.environ["TACTOR_REDIS_URL"])
            ids.append(ref.id)
        print("ready", *ids, flush=True)
        await stop.wait()


if __name__ == "__main__":
    url, kind, count, arg = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    asyncio.run(serve(url, kind, count, arg))
