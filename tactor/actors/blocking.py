"""The blocking facade: the async system, driven from synchronous code.

A :class:`BlockingSystem` owns a background thread running an event loop, in
which its :class:`~tactor.ActorSystem` lives; every blocking method submits
the async one to that loop and waits. There is no second implementation.

Safety rules: a blocking method called from inside a running event loop
raises :class:`~tactor.errors.WouldBlock` instead of stalling or deadlocking
it; after ``fork`` the child inherits no loop thread (threads do not survive
``fork``), so every system made before the fork is marked closed in the child
and the child starts its own.
"""

from __future__ import annotations

import atexit
import contextlib
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from types import TracebackType
from typing import Any, Generic, ParamSpec, TypeVar, TypeVarTuple, overload

from ..errors import NotRunning
from ..transports import Transport
from .actor import Actor, ActorRef
from .broadcast import BroadcastResult
from .dead_letters import DeadLetter
from .loop_thread import LoopThread
from .operating import EndpointInfo
from .queues import AsyncQueue
from .stats import SystemStats
from .supervision import Processes, RestartPolicy
from .system import ActorSystem, EventSubscription

__all__ = ["BlockingProcesses", "BlockingQueue", "BlockingSystem", "LoopThread"]

A = TypeVar("A", bound=Actor)
R = TypeVar("R")
T = TypeVar("T")
P = ParamSpec("P")
Ts = TypeVarTuple("Ts")


class BlockingSystem:
    """An :class:`~tactor.ActorSystem` for synchronous code (scripts, WSGI workers, notebooks).

    ``with BlockingSystem("redis://...") as system: system.call(Pricing.quote, items)``.
    Takes the same arguments as ``ActorSystem``. ``aio`` is the async system
    itself, for code running inside its loop (actor methods). Actors spawned
    here run in the system's loop thread.
    """

    def __init__(self, transport: str | Transport = "memory://", **options: Any) -> None:
        self._transport = transport
        self._options = options
        self._thread = LoopThread()
        self._system: ActorSystem | None = None

    @property
    def aio(self) -> ActorSystem:
        """The async system this facade drives."""
        if self._system is None or not self._thread.running:
            raise NotRunning("the blocking system is not started (or this is a forked child)")
        return self._system

    def start(self) -> BlockingSystem:
        """Start the loop thread and the system; idempotent."""
        if self._system is not None and self._thread.running:
            return self
        self._thread.start()

        async def make() -> ActorSystem:
            return await ActorSystem(self._transport, **self._options).start()

        try:
            self._system = self._thread.run(make())
        except BaseException:
            self._thread.stop()
            raise
        _OPEN.add(self)
        return self

    def close(self) -> None:
        """Stop every actor, close the transport and end the loop thread."""
        _OPEN.discard(self)
        system, self._system = self._system, None
        if system is not None and self._thread.running:
            try:
                self._thread.run(system.close())
            finally:
                self._thread.stop()

    def __enter__(self) -> BlockingSystem:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run any coroutine in the system's loop and wait for it."""
        return self._thread.run(coro)

    # -- the async API, blocking ------------------------------------------------

    def spawn(self, cls: Callable[P, A], /, *args: P.args, **kwargs: P.kwargs) -> ActorRef[A]:
        return self.run(self.aio.spawn(cls, *args, **kwargs))

    def processes(
        self,
        *,
        restart: RestartPolicy = "on-failure",
        max_restarts: int = 5,
        restart_window: float = 60.0,
    ) -> BlockingProcesses:
        """Spawn providers in supervised child processes (see :meth:`ActorSystem.processes`)."""
        processes = self.aio.processes(
            restart=restart, max_restarts=max_restarts, restart_window=restart_window
        )
        return BlockingProcesses(self, processes)

    def stop(self, ref: ActorRef[Any]) -> None:
        self.run(self.aio.stop(ref))

    def providers(self, cls: type[Actor]) -> list[str]:
        return self.run(self.aio.providers(cls))

    def dead_letters(self, endpoint: type[Actor] | str) -> list[DeadLetter]:
        return self.run(self.aio.dead_letters(endpoint))

    def endpoints(self) -> list[EndpointInfo]:
        return self.run(self.aio.endpoints())

    def endpoint_info(self, endpoint: str | type[Actor]) -> EndpointInfo:
        return self.run(self.aio.endpoint_info(endpoint))

    def call_json(
        self,
        endpoint: str,
        method: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        provider: str | None = None,
    ) -> Any:
        return self.run(
            self.aio.call_json(endpoint, method, args, kwargs, timeout=timeout, provider=provider)
        )

    def tell_json(
        self,
        endpoint: str,
        method: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        provider: str | None = None,
    ) -> None:
        self.run(
            self.aio.tell_json(endpoint, method, args, kwargs, timeout=timeout, provider=provider)
        )

    def broadcast_json(
        self,
        endpoint: str,
        method: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> BroadcastResult[Any]:
        return self.run(self.aio.broadcast_json(endpoint, method, args, kwargs, timeout=timeout))

    def publish_json(self, topic: str, event: Any, *, type_name: str | None = None) -> int | None:
        return self.run(self.aio.publish_json(topic, event, type_name=type_name))

    def stats(self) -> SystemStats:
        """This node's counters and gauges (see :meth:`ActorSystem.stats`)."""
        return self.run(self.aio.stats())

    def replay(self, letter: DeadLetter) -> bool:
        return self.run(self.aio.replay(letter))

    def discard(self, letter: DeadLetter) -> bool:
        return self.run(self.aio.discard(letter))

    def call(
        self,
        method: Callable[[Any, *Ts], Awaitable[R]],
        /,
        *args: *Ts,
        timeout: float | None = None,
        provider: str | ActorRef[Any] | None = None,
    ) -> R:
        return self.run(self.aio.call(method, *args, timeout=timeout, provider=provider))

    def broadcast(
        self,
        method: Callable[[Any, *Ts], Awaitable[R]],
        /,
        *args: *Ts,
        timeout: float | None = None,
    ) -> BroadcastResult[R]:
        return self.run(self.aio.broadcast(method, *args, timeout=timeout))

    def tell(
        self,
        method: Callable[[Any, *Ts], Awaitable[object]],
        /,
        *args: *Ts,
        timeout: float | None = None,
        provider: str | ActorRef[Any] | None = None,
    ) -> None:
        self.run(self.aio.tell(method, *args, timeout=timeout, provider=provider))

    def publish(self, event: object, *, topic: str | None = None) -> int | None:
        return self.run(self.aio.publish(event, topic=topic))

    def subscribe(
        self, handler: Callable[[Any], Any], pattern: str | None = None
    ) -> EventSubscription:
        """Subscribe a function; a plain ``def`` runs in a worker thread for each event."""
        from .functions import as_async

        return self.run(self.aio.subscribe(as_async(handler), pattern))

    @overload
    def queue(self, name: str, item_type: type[T], *, maxsize: int = 0) -> BlockingQueue[T]: ...
    @overload
    def queue(
        self, name: str, item_type: None = None, *, maxsize: int = 0
    ) -> BlockingQueue[Any]: ...
    def queue(
        self, name: str, item_type: type[T] | None = None, *, maxsize: int = 0
    ) -> BlockingQueue[T] | BlockingQueue[Any]:
        """The named distributed queue, with the interface of ``queue.Queue``."""
        return BlockingQueue(self, self.aio.queue(name, item_type, maxsize=maxsize))


class BlockingProcesses:
    """Spawns providers of a :class:`BlockingSystem` in supervised child processes
    (``system.processes()``); ``aio`` is the :class:`~tactor.Processes` it drives."""

    def __init__(self, system: BlockingSystem, processes: Processes) -> None:
        self._system = system
        self.aio = processes

    def spawn(self, cls: Callable[P, A], /, *args: P.args, **kwargs: P.kwargs) -> ActorRef[A]:
        """Start one provider of ``cls(*args, **kwargs)`` in a child process; returns its ref."""
        return self._system.run(self.aio.spawn(cls, *args, **kwargs))

    def spawn_many(
        self, n: int, cls: Callable[P, A], /, *args: P.args, **kwargs: P.kwargs
    ) -> list[ActorRef[A]]:
        """Start ``n`` providers of ``cls(*args, **kwargs)``, each in a child process of its own."""
        return self._system.run(self.aio.spawn_many(n, cls, *args, **kwargs))


class BlockingQueue(Generic[T]):
    """A distributed FIFO queue with the interface of :class:`queue.Queue`.

    Drop-in for code written against ``queue.Queue``: ``put``, ``get`` (with
    ``block`` and ``timeout``), ``put_nowait``, ``get_nowait``, ``qsize``,
    ``empty``, ``full``, ``maxsize``, ``task_done``, ``join``; raises
    ``queue.Empty`` and ``queue.Full``. ``aio`` is the async queue it drives.
    """

    def __init__(self, system: BlockingSystem, queue: AsyncQueue[T]) -> None:
        self._system = system
        self.aio = queue

    @property
    def name(self) -> str:
        return self.aio.name

    @property
    def maxsize(self) -> int:
        return self.aio.maxsize

    def __repr__(self) -> str:
        return f"<BlockingQueue {self.name!r} maxsize={self.maxsize}>"

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        self._system.run(self.aio.put(item, block, timeout))

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        return self._system.run(self.aio.get(block, timeout))

    def put_nowait(self, item: T) -> None:
        self._system.run(self.aio.put_nowait(item))

    def get_nowait(self) -> T:
        return self._system.run(self.aio.get_nowait())

    def qsize(self) -> int:
        return self._system.run(self.aio.qsize())

    def empty(self) -> bool:
        return self._system.run(self.aio.empty())

    def full(self) -> bool:
        return self._system.run(self.aio.full())

    def task_done(self) -> None:
        self._system.run(self.aio.task_done())

    def join(self) -> None:
        self._system.run(self.aio.join())

    def delete(self) -> None:
        """Remove the queue and everything in it, for every node."""
        self._system.run(self.aio.delete())


_OPEN: weakref.WeakSet[BlockingSystem] = weakref.WeakSet()


@atexit.register
def _close_forgotten() -> None:
    """Systems nobody closed: close them at exit so their providers leave the registry."""
    for system in list(_OPEN):
        with contextlib.suppress(Exception):  # at exit there is nobody left to tell
            system.close()
