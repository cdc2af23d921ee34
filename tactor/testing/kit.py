"""An actor test kit: a system for one test, actors stopped at its end, waiting until all is
idle, captured events, and the failures actors logged, to report. It uses tactor's public API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, ParamSpec, TypeVar

from tactor import (
    Actor,
    ActorRef,
    ActorSystem,
    EventSubscription,
    NoProvider,
    NotRunning,
    SystemStats,
)

__all__ = ["ActorTestKit", "ActorFailed", "Captured"]

A = TypeVar("A", bound=Actor)
E = TypeVar("E")
P = ParamSpec("P")


class ActorFailed(AssertionError):
    """Actors failed during the test (a tell or event handler raised, a provider stopped
    serving): what tactor logged at ERROR, with the message's endpoint, method and id."""


class Captured(Generic[E]):
    """The events of one type published during a test, in arrival order."""

    def __init__(self, event_type: type[E]) -> None:
        self.event_type = event_type
        self.events: list[E] = []
        self._arrived = asyncio.Event()

    def _add(self, event: E) -> None:
        self.events.append(event)
        self._arrived.set()

    async def wait(self, count: int = 1, *, timeout: float = 10.0) -> list[E]:
        """The events once at least ``count`` arrived; AssertionError after ``timeout`` s."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.events) < count:
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            raise AssertionError(
                f"{len(self.events)} {self.event_type.__qualname__} event(s) within "
                f"{timeout}s, expected {count}: {self.events!r}"
            ) from None
        return list(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def __repr__(self) -> str:
        return f"<Captured {self.event_type.__qualname__} {self.events!r}>"


class _Failures(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class ActorTestKit:
    """A test's view of a system: ``async with ActorTestKit(system):`` (the pytest plugin's
    ``tactor_kit`` fixture does this around the test).

    Starts the system if it is not running and closes it at the end if it started it;
    stops the actors spawned through :meth:`spawn`; collects what tactor logs at ERROR
    meanwhile (:meth:`check` raises :class:`ActorFailed` with it).
    """

    def __init__(self, system: ActorSystem) -> None:
        self.system = system
        self._spawned: list[ActorRef[Any]] = []
        self._subscriptions: list[EventSubscription] = []
        self._owned = False
        self._failures = _Failures()

    async def __aenter__(self) -> ActorTestKit:
        logging.getLogger("tactor").addHandler(self._failures)
        try:
            running = await self.system.stats()
        except NotRunning:
            running = None
        if running is None:
            await self.system.start()
            self._owned = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            for sub in self._subscriptions:
                await sub.close()
            for ref in reversed(self._spawned):
                with contextlib.suppress(NoProvider, NotRunning):  # stopped, or system closed
                    await self.system.stop(ref)
            if self._owned:
                await self.system.close()
        finally:
            logging.getLogger("tactor").removeHandler(self._failures)

    async def spawn(self, cls: Callable[P, A], /, *args: P.args, **kwargs: P.kwargs) -> ActorRef[A]:
        """``system.spawn``, and the actor is stopped when the test ends."""
        ref = await self.system.spawn(cls, *args, **kwargs)
        self._spawned.append(ref)
        return ref

    async def capture(self, event_type: type[E], pattern: str | None = None) -> Captured[E]:
        """Collect the events of ``event_type`` published from now on (on its type's topic,
        or ``pattern``), by any node of the system's transport."""
        captured: Captured[E] = Captured(event_type)

        async def record(event: Any) -> None:
            captured._add(event)

        record.__annotations__ = {"event": event_type, "return": None}
        record.__qualname__ = f"capture[{event_type.__qualname__}]"
        self._subscriptions.append(await self.system.subscribe(record, pattern))
        return captured

    async def idle(self, *, quiet: float = 0.05, timeout: float = 10.0) -> SystemStats:
        """Wait until this node is idle: no message waits in the mailboxes of the endpoints
        it serves, none is being handled, none it sent is in flight, and nothing was handled
        or sent for ``quiet`` seconds (the time an event takes to reach its subscriptions).
        AssertionError, saying what is busy, after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        since, last = loop.time(), None
        while True:
            stats = await self.system.stats()
            now = loop.time()
            busy = stats.in_flight or stats.handling or any(stats.mailbox_depth.values())
            moved = _activity(stats)
            if busy or moved != last:
                since, last = now, moved
            elif now - since >= quiet:
                return stats
            if now > end:
                raise AssertionError(f"not idle within {timeout}s: {_busy(stats)}")
            await asyncio.sleep(0.005)

    @property
    def failures(self) -> list[str]:
        """What tactor logged at ERROR so far in this kit's time: actors that failed."""
        return [_describe(record) for record in self._failures.records]

    def check(self) -> None:
        """Raise :class:`ActorFailed` if an actor failed (see :attr:`failures`)."""
        if self._failures.records:
            raise ActorFailed("actors failed during the test:\n" + "\n".join(self.failures))


def _activity(stats: SystemStats) -> tuple[int, ...]:
    return (
        sum(m.sent + m.handled for m in stats.methods),
        sum(stats.events_published.values()),
        sum(stats.events_handled.values()),
    )


def _busy(stats: SystemStats) -> str:
    waiting = {name: depth for name, depth in stats.mailbox_depth.items() if depth}
    return f"in flight {stats.in_flight}, handling {stats.handling}, waiting {waiting}"


def _describe(record: logging.LogRecord) -> str:
    text = f"{record.name}: {record.getMessage()}"
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        text += f" ({type(exc).__qualname__}: {exc})"
    return text
