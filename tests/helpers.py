"""Small test helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, TypeVar

import pytest
import redis

if TYPE_CHECKING:
    from tactor.transports.nats import NatsTransport

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], timeout: float = 5.0
) -> T:
    """Poll ``probe`` until ``check`` holds for its value; fail at ``timeout`` with the last one."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        value = await probe()
        if check(value):
            return value
        if loop.time() > end:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(0.01)


class ProviderProcess:
    """A real OS process serving providers (see ``tests/procs.py``)."""

    def __init__(self, process: asyncio.subprocess.Process, ids: list[str]) -> None:
        self.process = process
        self.ids = ids

    @classmethod
    async def start(
        cls, url: str, kind: str, count: int, arg: str, *, env: dict[str, str] | None = None
    ) -> ProviderProcess:
        import os
        import sys

        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.procs", url, kind, str(count), arg,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), 30)
        except TimeoutError:
            process.kill()
            raise
        words = line.decode().split()
        if not words or words[0] != "ready":
            process.kill()
            raise RuntimeError(f"provider process did not start: {line!r}")
        return cls(process, words[1:])

    @property
    def pid(self) -> int:
        return self.process.pid

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind happens in the process."""
        self.process.kill()
        await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM and wait: the process closes its system cleanly."""
        if self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 20)


@asynccontextmanager
async def processes(*specs: tuple[str, str, int, str]) -> AsyncIterator[list[ProviderProcess]]:
    """Start provider processes (url, kind, count, arg); stop (or reap) them all at the end."""
    started: list[ProviderProcess] = []
    try:
        for url, kind, count, arg in specs:
            started.append(await ProviderProcess.start(url, kind, count, arg))
        yield started
    finally:
        for proc in started:
            if proc.process.returncode is None:
                await proc.stop()


class JobLog:
    """Reads what worker processes (``tests/procs.py``) recorded: (job, pid) started and done."""

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

    def delete(self) -> None:
        self.client.delete(f"{self.key}:started", f"{self.key}:done")


@asynccontextmanager
async def nats_nodes_one_hanging(
    url: str, monkeypatch: pytest.MonkeyPatch, step: str
) -> AsyncIterator[tuple[NatsTransport, NatsTransport]]:
    """Two started NATS transports on ``url``; the first one's registry ``step``
    (``"beat"``, ``"sweep"``) hangs until the block is left. Both are closed after."""
    from tactor.transports import open_transport
    from tactor.transports.nats import NatsTransport

    hanging, other = open_transport(url), open_transport(url)
    assert isinstance(hanging, NatsTransport) and isinstance(other, NatsTransport)
    await hanging.start()
    await other.start()
    released = asyncio.Event()

    async def hang() -> None:
        await released.wait()

    try:
        monkeypatch.setattr(hanging.registry, step, hang)
        yield hanging, other
    finally:
        released.set()
        await hanging.close()
        await other.close()
