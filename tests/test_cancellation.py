"""Cancellation: a handler stops at its call's deadline, or when its caller gives up."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from tactor import Actor, ActorSystem, CallTimeout
from tactor.actors import tasks
from tests.conftest import drop_keys, require_redis, with_query
from tests.helpers import ProviderProcess
from tests.model import Relay, Stalling, StallStarted

LONG = 60.0  # a handler that ran this long was not cancelled: the test would time out


class Deaf(Actor, name="deaf"):
    """Catches its handler's cancellation and carries on: a bug tactor's stop must outlast."""

    holding: asyncio.Event
    released: asyncio.Event

    async def hold(self) -> str:
        Deaf.holding.set()
        while not Deaf.released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await Deaf.released.wait()
        return "released"


class SlowToStop(Actor, name="slow-to-stop"):
    """An ``on_stop`` that never finishes (until it is cancelled)."""

    async def on_stop(self) -> None:
        await asyncio.Event().wait()

    async def ping(self) -> str:
        return "pong"


@asynccontextmanager
async def watching(system: ActorSystem) -> AsyncIterator[asyncio.Queue[str]]:
    """The providers whose stall handler started, in order."""
    started: asyncio.Queue[str] = asyncio.Queue()

    async def on_started(event: StallStarted) -> None:
        started.put_nowait(event.provider)

    subscription = await system.subscribe(on_started)
    try:
        yield started
    finally:
        await subscription.close()


async def test_the_handler_is_cancelled_at_the_deadline(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Stalling)
        with pytest.raises(CallTimeout):
            await system.call(Stalling.stall, LONG, timeout=0.3)
        # The one provider answers at once: it is free, and its clean-up ran.
        assert await system.call(Stalling.counts, timeout=5) == [1, 0, 1]


async def test_a_caller_that_gives_up_cancels_the_handler(url: str) -> None:
    async with ActorSystem(url) as system, watching(system) as started:
        await system.spawn(Stalling)
        call = asyncio.create_task(system.call(Stalling.stall, LONG, timeout=LONG))
        await asyncio.wait_for(started.get(), 10)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert await system.call(Stalling.counts, timeout=5) == [1, 0, 1]


async def test_wait_for_around_a_call_cancels_the_handler(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Stalling)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(system.call(Stalling.stall, LONG, timeout=LONG), 0.3)
        assert await system.call(Stalling.counts, timeout=5) == [1, 0, 1]


async def test_a_finished_handler_is_not_affected(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Stalling)
        assert await system.call(Stalling.stall, 0.0, timeout=5) == "finished"
        assert await system.call(Stalling.counts) == [1, 1, 1]


async def test_every_broadcast_handler_is_cancelled_at_the_deadline(url: str) -> None:
    async with ActorSystem(url) as system:
        await system.spawn(Stalling)
        await system.spawn(Stalling)
        result = await system.broadcast(Stalling.stall, LONG, timeout=0.3)
        assert not result.complete and len(result.missing) == 2
        counts = await system.broadcast(Stalling.counts, timeout=5)
        assert counts.complete and list(counts) == [[1, 0, 1], [1, 0, 1]]


async def test_a_broadcast_the_caller_gives_up_is_cancelled_everywhere(url: str) -> None:
    async with ActorSystem(url) as system, watching(system) as started:
        await system.spawn(Stalling)
        await system.spawn(Stalling)
        gather = asyncio.create_task(system.broadcast(Stalling.stall, LONG, timeout=LONG))
        await asyncio.wait_for(started.get(), 10)
        await asyncio.wait_for(started.get(), 10)
        gather.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gather
        counts = await system.broadcast(Stalling.counts, timeout=5)
        assert counts.complete and list(counts) == [[1, 0, 1], [1, 0, 1]]


async def test_nested_calls_of_a_cancelled_handler_are_cancelled(url: str) -> None:
    async with ActorSystem(url) as system, watching(system) as started:
        await system.spawn(Stalling)
        await system.spawn(Relay)
        call = asyncio.create_task(system.call(Relay.relay, LONG, timeout=LONG))
        await asyncio.wait_for(started.get(), 10)  # the nested handler runs
        call.cancel()  # not a deadline: the cancellation travels through Relay to Stalling
        with pytest.raises(asyncio.CancelledError):
            await call
        assert await system.call(Stalling.counts, timeout=5) == [1, 0, 1]
        assert await system.call(Relay.relay, 0.0, timeout=5) == "finished"


async def test_a_tell_outlives_the_default_timeout(url: str) -> None:
    async with ActorSystem(url, timeout=0.2) as system:
        await system.spawn(Stalling)
        await system.tell(Stalling.stall, 0.5)  # no deadline of its own: never cancelled
        # Queued behind the tell on the one provider: answered once the tell finished.
        assert await system.call(Stalling.counts, timeout=5) == [1, 1, 1]


@pytest.mark.redis
@pytest.mark.slow
async def test_cancellation_across_processes() -> None:
    base, prefix = require_redis(), f"tactor-test:{uuid.uuid4().hex[:12]}"
    url = with_query(base, prefix=prefix)
    provider = await ProviderProcess.start(url, "stalling", 1, "-")
    try:
        async with ActorSystem(url) as system, watching(system) as started:
            with pytest.raises(CallTimeout):  # at the deadline
                await system.call(Stalling.stall, LONG, timeout=0.5)
            call = asyncio.create_task(system.call(Stalling.stall, LONG, timeout=LONG))
            await asyncio.wait_for(started.get(), 10)
            await asyncio.wait_for(started.get(), 10)  # the second call's handler
            call.cancel()  # the caller gives up
            with pytest.raises(asyncio.CancelledError):
                await call
            assert await system.call(Stalling.counts, timeout=5) == [2, 0, 2]
    finally:
        await provider.stop()
        drop_keys(base, prefix)


@pytest.mark.in_process  # (what a child process logs is not captured here)
async def test_a_handler_that_ignores_its_cancellation_does_not_hold_up_a_close(
    url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, leaving ``async with`` waited for such a handler for ever."""
    monkeypatch.setattr(tasks, "CANCEL_PATIENCE", 0.5)
    Deaf.holding, Deaf.released = asyncio.Event(), asyncio.Event()
    async with ActorSystem(url, stop_grace=0.3) as system:
        await system.spawn(Deaf)
        held = asyncio.ensure_future(system.call(Deaf.hold, timeout=LONG))
        await asyncio.wait_for(Deaf.holding.wait(), 10)
        closing = time.monotonic()
    assert time.monotonic() - closing < 0.3 + 0.5 + 2  # grace, patience, and slack
    (stuck,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "tactor-runner-deaf@" in stuck.getMessage()
    assert "did not end within 0.5s of being cancelled" in stuck.getMessage()
    assert "left running" in stuck.getMessage()
    with contextlib.suppress(Exception):
        await held  # (failed: its system is closed)
    Deaf.released.set()  # the handler left running ends


@pytest.mark.in_process
async def test_an_on_stop_that_does_not_finish_does_not_hold_up_a_close(
    url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It gets stop_grace, or CANCEL_PATIENCE where that is longer (here it is)."""
    monkeypatch.setattr(tasks, "CANCEL_PATIENCE", 0.5)
    async with ActorSystem(url, stop_grace=0.1) as system:
        ref = await system.spawn(SlowToStop)
        assert await system.call(SlowToStop.ping) == "pong"
        closing = time.monotonic()
    assert 0.5 <= time.monotonic() - closing < 0.5 + 2
    (stuck,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert stuck.getMessage() == f"{ref.id}.on_stop did not finish within 0.5s; cancelled"
