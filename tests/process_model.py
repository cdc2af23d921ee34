"""Actors the process-provider tests spawn in child processes (importable by path)."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
import time

from tactor import Actor, JsonCodec, TypeCodec
from tests.model import Item, Pricing


class Crasher(Actor, name="crasher"):
    """Reports its pid; takes jobs (recorded in the shared queue ``queue``); dies on demand.

    With ``die``, a job is recorded as started, then never finishes (``"hang"``), or
    the process dies in hand: ``"exit"`` (``os._exit(3)``) or ``"segfault"``.
    """

    def __init__(self, queue: str, die: str = "") -> None:
        self.queue, self.die = queue, die

    async def pid(self) -> int:
        return os.getpid()

    async def job(self, name: str) -> None:
        records = self.system.queue(self.queue, str)
        await records.put(f"started {name} {os.getpid()}")
        if self.die == "hang":
            await asyncio.Event().wait()
        elif self.die == "exit":
            os._exit(3)
        elif self.die == "segfault":
            ctypes.string_at(0)
        await records.put(f"done {name} {os.getpid()}")

    async def slow(self, seconds: float) -> str:
        await self.system.queue(self.queue, str).put(f"slow {os.getpid()}")
        await asyncio.sleep(seconds)
        return f"slept {os.getpid()}"

    # Faults that strike after the message is acknowledged: a fault in hand would be
    # redelivered to the restarted process, and strike again.
    async def exit_soon(self, code: int) -> None:
        asyncio.get_running_loop().call_later(0.1, os._exit, code)

    async def segfault_soon(self) -> None:
        asyncio.get_running_loop().call_later(0.1, ctypes.string_at, 0)

    async def leave(self, code: int | str) -> None:
        """``sys.exit(code)`` in hand: the caller is answered, then the process exits."""
        sys.exit(code)


class Stubborn(Actor, name="stubborn"):
    """Ignores SIGTERM and blocks its event loop: only SIGKILL ends it."""

    async def on_start(self) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    async def block(self, seconds: float) -> None:
        time.sleep(seconds)  # noqa: ASYNC251  # blocks the loop on purpose: it cannot drain


class Relay(Actor, name="relay"):
    """Calls other providers from inside a child process."""

    async def quote_via(self, provider: str | None) -> str:
        total = await self.system.call(Pricing.quote, [Item("a", 2)], provider=provider)
        return str(total)

    async def pid_of_crasher(self) -> int:
        return await self.system.call(Crasher.pid)


class Unhinted(Actor, name="unhinted"):
    def __init__(self, region) -> None:  # type: ignore[no-untyped-def]
        self.region = region

    async def ping(self) -> None:
        pass


class FailsToStart(Actor, name="fails-to-start"):
    def __init__(self, reason: str) -> None:
        raise RuntimeError(reason)

    async def ping(self) -> None:
        pass


class Burner(Actor, name="burner"):
    """CPU-bound work: what process providers are for."""

    async def burn(self, n: int) -> int:
        total = 0
        for i in range(n):
            total += i * i % 7
        return total


class Cents:
    """A user type tactor has no rule for: its codec, CENTS, is a module-level name."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cents) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"Cents({self.value})"


class Rate:
    """Another one, whose codec is an item of a module-level list (CODECS)."""

    def __init__(self, percent: int) -> None:
        self.percent = percent


CENTS = TypeCodec(
    Cents,
    to_wire=lambda c: f"{c.value}c",
    from_wire=lambda s: Cents(int(s.removesuffix("c"))),
    schema={"type": "string", "pattern": "^-?[0-9]+c$"},
)
CODECS = [TypeCodec(Rate, to_wire=lambda r: r.percent, from_wire=Rate, schema={"type": "integer"})]
#: A whole codec of its own, for ActorSystem(codec=...): it knows both types.
CODEC = JsonCodec([CENTS, *CODECS])


class Till(Actor, name="process-till"):
    """Takes and returns user types, in a child process: the codecs must go with it."""

    def __init__(self, start: Cents) -> None:
        self.total = start

    async def add(self, amount: Cents, rate: Rate) -> Cents:
        self.total = Cents(self.total.value + amount.value * rate.percent // 100)
        return self.total

    async def pid(self) -> int:
        return os.getpid()


class Tally(Actor, name="tally"):
    """Does counted work; its stats are what the tests look at."""

    async def work(self, n: int) -> int:
        if n < 0:
            raise ValueError("negative work")
        return n

    async def pid(self) -> int:
        return os.getpid()
