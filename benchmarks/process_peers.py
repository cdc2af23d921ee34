"""What the process rows measure against: a CPU-bound actor, a raw socketpair echo child,
a ``multiprocessing`` manager proxy and a Ray actor (each a peer started on demand).

``python -m benchmarks.process_peers FD`` is the raw echo child: it answers each
length-prefixed frame on the socket ``FD`` with the same frame (asyncio streams,
as tactor's channel uses).
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing import get_context
from multiprocessing.managers import BaseManager
from typing import Any

from tactor import Actor

SIZE = struct.Struct("!I")


class Burner(Actor, name="bench-burner"):
    """CPU-bound work, in pure Python: it holds the GIL of the process it runs in."""

    async def burn(self, n: int) -> int:
        total = 0
        for i in range(n):
            total += i * i % 7
        return total

    async def echo(self, value: int) -> int:
        return value


class RawEcho:
    """The parent side of the raw echo: one frame out, the same frame back."""

    def __init__(self) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def start(self) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "benchmarks.process_peers", str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
            )  # fmt: skip
        self.reader, self.writer = await asyncio.open_unix_connection(sock=ours)

    async def call(self) -> bytes:
        assert self.reader is not None and self.writer is not None
        body = b'{"v":1}'
        self.writer.write(SIZE.pack(len(body)) + body)
        size = SIZE.unpack(await self.reader.readexactly(4))[0]
        return await self.reader.readexactly(size)

    async def stop(self) -> None:
        assert self.writer is not None and self.process is not None
        self.writer.close()
        await self.process.wait()  # it exits at EOF


async def _echo_child(fd: int) -> None:
    reader, writer = await asyncio.open_unix_connection(sock=socket.socket(fileno=fd))
    try:
        while True:
            size = await reader.readexactly(4)
            writer.write(size + await reader.readexactly(SIZE.unpack(size)[0]))
    except asyncio.IncompleteReadError:
        writer.close()


class ManagedEcho:
    def echo(self, value: int) -> int:
        return value


class EchoManager(BaseManager):
    pass


EchoManager.register("Echo", ManagedEcho)


@contextmanager
def manager_echo() -> Iterator[Callable[[], Any]]:
    """A ``multiprocessing`` manager proxy's call, in a spawned server process."""
    manager = EchoManager(ctx=get_context("spawn"))
    manager.start()
    try:
        proxy: Any = manager.Echo()  # type: ignore[attr-defined]
        yield lambda: proxy.echo(1)
    finally:
        manager.shutdown()


@contextmanager
def ray_echo() -> Iterator[Callable[[], Any] | None]:
    """A Ray actor's call (``ray.get(actor.echo.remote(1))``); None when Ray is absent."""
    try:
        import ray
    except ImportError:
        yield None
        return
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:

        @ray.remote
        class RayEcho:
            def echo(self, value: int) -> int:
                return value

        actor = RayEcho.remote()  # type: ignore[attr-defined]
        yield lambda: ray.get(actor.echo.remote(1))
    finally:
        ray.shutdown()


def sync_samples(op: Callable[[], Any], iterations: int, warmup: int) -> tuple[float, float]:
    """Median and p99 of a blocking call, in microseconds."""
    for _ in range(warmup):
        op()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        op()
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    return samples[len(samples) // 2], samples[min(len(samples) - 1, int(len(samples) * 0.99))]


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(_echo_child(int(sys.argv[1])))
