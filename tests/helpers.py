"""Small test helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

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
