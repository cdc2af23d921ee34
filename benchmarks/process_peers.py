"""What the process rows measure against: a CPU-bound actor, raw socketpair echo children,
a ``multiprocessing`` manager proxy and a Ray actor (each a peer started on demand).

``python -m benchmarks.process_peers FD MODE`` is a raw echo child: it answers each
length-prefixed frame on the socket ``FD`` with the same frame. ``protocol`` is the
baseline, built as tactor's channel is (the same framing, read into a buffer of its
own by an asyncio protocol, one task on each side woken per message, as tactor's
runner and caller are); ``streams`` is the same echo over asyncio streams (each read
allocates 256 KiB, and the reading task wakes per frame).
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing import get_context
from multiprocessing.managers import BaseManager
from typing import Any

from tactor import Actor

SIZE = struct.Struct("!I")
#: As long as the envelope of a call to ``Burner.echo``: the same bytes on the socket.
BODY = b"x" * 192


class Burner(Actor, name="bench-burner"):
    """CPU-bound work, in pure Python: it holds the GIL of the process it runs in."""

    async def burn(self, n: int) -> int:
        total = 0
        for i in range(n):
            total += i * i % 7
        return total

    async def echo(self, value: int) -> int:
        return value


class Frames(asyncio.BufferedProtocol):
    """Length-prefixed frames read into one buffer, each handed to ``on_frame``."""

    def __init__(self, on_frame: Callable[[bytes], None], on_lost: Callable[[], None]) -> None:
        self.on_frame, self.on_lost = on_frame, on_lost
        self.buffer = bytearray(1 << 16)
        self.end = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self.buffer)[self.end :]

    def buffer_updated(self, nbytes: int) -> None:
        buffer, at, end = self.buffer, 0, self.end + nbytes
        while end - at >= 4 and end - at - 4 >= (size := SIZE.unpack_from(buffer, at)[0]):
            self.on_frame(bytes(buffer[at + 4 : at + 4 + size]))
            at += 4 + size
        buffer[: end - at] = buffer[at:end]  # the same length: no resize while it is lent
        self.end = end - at

    def send(self, frame: bytes) -> None:
        assert self.transport is not None
        self.transport.write(SIZE.pack(len(frame)) + frame)

    def connection_lost(self, exc: Exception | None) -> None:
        self.on_lost()


class RawEcho:
    """The parent side of a raw echo: one frame out, the same frame back."""

    def __init__(self, mode: str = "protocol") -> None:
        self.mode = mode
        self.process: asyncio.subprocess.Process | None = None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.frames: Frames | None = None
        self.waiter: asyncio.Future[bytes] | None = None

    async def start(self) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "benchmarks.process_peers", str(theirs.fileno()), self.mode,
                pass_fds=(theirs.fileno(),),
            )  # fmt: skip
        loop = asyncio.get_running_loop()
        if self.mode == "streams":
            self.reader, self.writer = await asyncio.open_unix_connection(sock=ours)
        else:
            _, self.frames = await loop.create_unix_connection(
                lambda: Frames(self._answered, lambda: None), sock=ours
            )

    def _answered(self, frame: bytes) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(frame)

    async def call(self) -> bytes:
        if self.frames is not None:
            self.waiter = asyncio.get_running_loop().create_future()
            self.frames.send(BODY)
            return await self.waiter
        assert self.reader is not None and self.writer is not None
        self.writer.write(SIZE.pack(len(BODY)) + BODY)
        size = SIZE.unpack(await self.reader.readexactly(4))[0]
        return await self.reader.readexactly(size)

    async def stop(self) -> None:
        assert self.process is not None
        if self.frames is not None and self.frames.transport is not None:
            self.frames.transport.close()
        if self.writer is not None:
            self.writer.close()
        await self.process.wait()  # it exits at EOF


async def _echo_child(fd: int, mode: str) -> None:
    sock = socket.socket(fileno=fd)
    if mode == "streams":
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        try:
            while True:
                size = await reader.readexactly(4)
                writer.write(size + await reader.readexactly(SIZE.unpack(size)[0]))
        except asyncio.IncompleteReadError:
            writer.close()
        return
    loop = asyncio.get_running_loop()
    answerer = _Answerer(loop)
    _, frames = await loop.create_unix_connection(
        lambda: Frames(answerer.arrived, answerer.gone), sock=sock
    )
    await answerer.run(frames)


class _Answerer:
    """The echo child's task, woken per message (as tactor's runner is) to send it back."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.ready: deque[bytes] = deque()
        self.waiter: asyncio.Future[None] = loop.create_future()
        self.lost = False

    def arrived(self, frame: bytes) -> None:
        self.ready.append(frame)
        self._wake()

    def gone(self) -> None:
        self.lost = True
        self._wake()

    def _wake(self) -> None:
        if not self.waiter.done():
            self.waiter.set_result(None)

    async def run(self, frames: Frames) -> None:
        while not self.lost:
            await self.waiter
            self.waiter = self.loop.create_future()
            while self.ready:
                frames.send(self.ready.popleft())


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
    asyncio.run(_echo_child(int(sys.argv[1]), sys.argv[2]))
