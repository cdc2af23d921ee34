"""Providers in child processes: start, watch, restart, drain.

A child is forked by the fork server (:mod:`tactor.actors.forkserver`: a
clean interpreter started once; the parent itself is never forked) and holds
one end of a socketpair; the parent's transport serves it over that channel
(``memory://``: the hub's verbs) or names a URL it opens itself (Redis).
Nothing is pickled: the class and the system's codecs travel by import path
(:mod:`tactor.actors.import_paths`), the constructor arguments in the
codec's wire form. What a child counts reaches its parent's ``stats()``
(:mod:`tactor.actors.child_stats`).

A child that exits is noticed by its channel closing — the transport then
releases what it held: its providers leave the registry, what it took and did
not acknowledge goes back to its mailbox — and by its process ending, which
the :class:`Supervisor` answers by the child's restart policy, with an
exponential back-off and a cap of restarts within a window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar

from ..codecs import Codec, JsonCodec, TypeCodec
from ..errors import ConfigError, NoProvider, SpawnError, TransportError
from ..transports import Transport
from ..transports.channel import Channel, settle
from .actor import Actor, ActorRef, schema_of
from .child_stats import ChildStats
from .forkserver import ChildProcess, fork_server
from .import_paths import class_path, main_script, object_path
from .schema import constructor_schema
from .stats import Stats, SystemStats
from .tasks import TaskSet

if TYPE_CHECKING:
    from .system import ActorSystem

__all__ = ["Processes", "RestartPolicy", "Supervisor"]

log = logging.getLogger(__name__)

A = TypeVar("A", bound=Actor)
P = ParamSpec("P")

RestartPolicy = Literal["on-failure", "always", "never"]
_POLICIES = ("on-failure", "always", "never")
#: The first restart waits this long; each further one within the window twice as long.
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 10.0
#: How long a child may take to import its class and serve before spawn gives up.
START_TIMEOUT = 60.0
#: How long the channel of a process that ended is read for its last frames.
EOF_WAIT = 1.0


def exit_reason(code: int) -> str:
    """``exit code 3`` or ``signal SIGKILL``, for a process's return code."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class _Child:
    """One supervised provider process; restarted in place, keeping its provider id."""

    def __init__(
        self, supervisor: Supervisor, ref: ActorRef[Any], spec: dict[str, Any], policy: _Policy
    ) -> None:
        self.supervisor, self.ref, self.spec, self.policy = supervisor, ref, spec, policy
        self.process: ChildProcess | None = None
        self.channel: Channel | None = None
        self.stopping = False
        self.restarts: list[float] = []
        self.counts = ChildStats()

    async def start(self) -> None:
        """Start the process and wait until it serves; SpawnError if it cannot."""
        ours, theirs = socket.socketpair()
        with theirs:
            self.process = await fork_server().fork(theirs.fileno())
        self.channel = channel = await Channel.open(ours)
        self.counts.attach(channel)
        answer: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        channel.handlers["ready"] = lambda _, __: settle(answer, None)
        channel.handlers["failed"] = lambda h, _: settle(answer, h[1])
        url = await self.supervisor.transport.serve_child(channel)
        self.supervisor.tasks.spawn(channel.run(), f"tactor-channel-{self.ref.id}")
        channel.send(["start", {**self.spec, "url": url}])
        problem = await self._answer(answer)
        if problem is None and self.stopping:  # stopped while it started: it must not stay
            problem = "stopped while it was starting"
        if problem is not None:
            await self.kill()
            raise SpawnError(f"{self.ref.id}: {problem}")

    async def _answer(self, answer: asyncio.Future[str | None]) -> str | None:
        assert self.process is not None and self.channel is not None
        exited = asyncio.ensure_future(self.process.wait())
        closed = asyncio.ensure_future(self.channel.closed.wait())
        try:
            waits: list[asyncio.Future[Any]] = [answer, exited, closed]
            await asyncio.wait(waits, timeout=START_TIMEOUT, return_when="FIRST_COMPLETED")
        finally:
            exited.cancel()
            closed.cancel()
        if not answer.done() and self.process.returncode is not None:
            # It exited: what it wrote before is still to be read (its "ready" among it).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.channel.closed.wait(), EOF_WAIT)
        if answer.done():
            return answer.result()
        if self.process.returncode is not None or self.channel.closed.is_set():
            code = await self.process.wait()
            return f"the process exited before it served ({exit_reason(code)})"
        return f"the process did not serve within {START_TIMEOUT:.0f}s"

    async def watch(self) -> None:
        """Wait for the process to end; restart it as the policy says."""
        while True:
            assert self.process is not None
            code = await self.process.wait()
            await self.released()
            if self.stopping:
                return
            delay = self.policy.restart_delay(self, code)
            if delay is None:
                return
            await asyncio.sleep(delay)
            if self.stopping:
                return
            try:
                await self.start()
            except SpawnError as exc:
                log.error("%s: restart failed: %s", self.ref.id, exc)

    async def released(self) -> None:
        """The process ended: its channel closes, and its provider leaves the registry
        (at once on the hub, when its channel closed; on Redis, here rather than at its TTL)."""
        await self._read_to_end()
        with contextlib.suppress(TransportError):
            await self.supervisor.transport.unregister(self.ref.endpoint, self.ref.id)

    async def stop(self, grace: float) -> None:
        """Drain (the message in hand is finished), then SIGTERM, then SIGKILL."""
        self.stopping = True
        process = self.process
        if process is None or process.returncode is not None:
            return
        if self.channel is not None and not self.channel.closed.is_set():
            self.channel.send(["drain"])
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(process.wait()), grace)
                return await self._read_to_end()
            log.warning("%s did not exit within %.1fs: sending %s", self.ref.id, grace, sig.name)
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
        await process.wait()
        await self._read_to_end()

    async def _read_to_end(self) -> None:
        """Close the channel of a process that ended once its frames are read (its last
        stats come just before it exits), or after ``EOF_WAIT`` seconds."""
        if self.channel is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.channel.closed.wait(), EOF_WAIT)
            self.channel.close()

    async def kill(self) -> None:
        self.stopping = True
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        if self.channel is not None:
            self.channel.close()


class _Policy:
    """When a child that exited starts again, and after how long."""

    def __init__(self, restart: str, max_restarts: int, window: float) -> None:
        if restart not in _POLICIES:
            raise ConfigError(f"restart={restart!r}: expected one of {', '.join(_POLICIES)}")
        if max_restarts < 0 or not window > 0:
            raise ConfigError("max_restarts must be >= 0 and restart_window > 0 seconds")
        self.restart, self.max_restarts, self.window = restart, max_restarts, window

    def restart_delay(self, child: _Child, code: int) -> float | None:
        """Seconds to wait before restarting ``child``, or None: it stays down."""
        reason, name = exit_reason(code), child.ref.id
        if self.restart == "never" or (self.restart == "on-failure" and code == 0):
            log.warning("%s exited (%s); not restarted (restart=%r)", name, reason, self.restart)
            return None
        now = time.monotonic()
        child.restarts = [t for t in child.restarts if now - t < self.window]
        if len(child.restarts) >= self.max_restarts:
            log.error(
                "%s exited (%s); it was restarted %d times within %.0fs: it stays down",
                name, reason, len(child.restarts), self.window,
            )  # fmt: skip
            return None
        delay: float = min(BACKOFF_FIRST * 2 ** len(child.restarts), BACKOFF_MAX)
        child.restarts.append(now)
        log.warning("%s exited (%s); restarting in %.1fs", name, reason, delay)
        return delay


class Supervisor:
    """Owns a system's child processes."""

    def __init__(self, transport: Transport, tasks: TaskSet, grace: float) -> None:
        self.transport, self.tasks, self.grace = transport, tasks, grace
        self._children: dict[str, _Child] = {}
        self._retired = Stats()  # what children that were stopped counted

    def supervises(self, provider: str) -> bool:
        return provider in self._children

    def refs(self) -> list[ActorRef[Any]]:
        return [child.ref for child in self._children.values()]

    async def add(self, child: _Child) -> None:
        await child.start()
        self._children[child.ref.id] = child
        self.tasks.spawn(child.watch(), f"tactor-watch-{child.ref.id}")

    async def stop(self, provider: str) -> None:
        child = self._children.pop(provider, None)
        if child is None:
            raise NoProvider(f"provider {provider!r} is not running on this system")
        await child.stop(self.grace)
        child.counts.retire(self._retired)

    async def ask_stats(self) -> None:
        """Have every child report what it counted (see :mod:`~tactor.actors.child_stats`)."""
        await asyncio.gather(*(child.counts.ask() for child in self._children.values()))

    def counted(self, own: SystemStats) -> SystemStats:
        """``own`` (this node's stats) with what its children reported counted in."""
        children = {ident: child.counts.snapshot() for ident, child in self._children.items()}
        total = Stats()
        for stats in (own, self._retired.snapshot("", {}), *children.values()):
            total.add(stats)
        return replace(total.snapshot(own.node, own.mailbox_depth), children=children)

    async def close(self) -> None:
        children, self._children = list(self._children.values()), {}
        await asyncio.gather(*(child.stop(self.grace) for child in children))


class Processes:
    """Spawns providers of a system in supervised child processes (``system.processes()``)."""

    def __init__(
        self,
        system: ActorSystem,
        supervisor: Supervisor,
        restart: RestartPolicy,
        max_restarts: int,
        restart_window: float,
    ) -> None:
        self._system, self._supervisor = system, supervisor
        self._policy = _Policy(restart, max_restarts, restart_window)
        self._codecs: dict[str, Any] | None = None  # their import paths, found at the first spawn

    async def spawn(self, cls: Callable[P, A], /, *args: P.args, **kwargs: P.kwargs) -> ActorRef[A]:
        """Start one provider of ``cls(*args, **kwargs)`` in a child process; returns its ref.

        The class must be importable by its module path, and so must the
        system's codecs (each ``TypeCodec``, and ``codec=``: a module-level name,
        or an item of a module-level list or tuple): the child imports them. The
        arguments are sent through the system's codec, as the constructor's type
        hints say. Raises :class:`~tactor.errors.SchemaError` for a constructor
        parameter without a hint, :class:`~tactor.errors.SpawnError` for a class
        or codec that has no such name, or when the child cannot import or
        construct them, or exits before it serves.
        """
        system = self._system
        system._check_running()
        actor_class: type[A] = cls  # type: ignore[assignment]
        schema = schema_of(actor_class)
        system._check_codecs(schema)
        system._claim_endpoint(actor_class)
        path = _class_path(actor_class)
        if self._codecs is None:
            self._codecs = _codec_paths(*system._codecs_given)
        wire = constructor_schema(actor_class).encode_args(system.codec, args, kwargs)
        ref = ActorRef(f"{schema.endpoint}@{os.urandom(6).hex()}", schema.endpoint, actor_class)
        spec = {"cls": path, **self._codecs, "args": wire, "provider": ref.id}
        spec.update(options=_options(system), path=sys.path)
        named = [path, self._codecs["codec"], *self._codecs["codecs"]]
        if any(str(p).startswith("__main__:") for p in named):
            spec["main"] = main_script()  # the child runs the script to find them
        await self._supervisor.add(_Child(self._supervisor, ref, spec, self._policy))
        return ref

    async def spawn_many(
        self, n: int, cls: Callable[P, A], /, *args: P.args, **kwargs: P.kwargs
    ) -> list[ActorRef[A]]:
        """Start ``n`` providers of ``cls(*args, **kwargs)``, each in a child process of its own."""
        if n < 1:
            raise ConfigError(f"spawn_many(n={n!r}): expected n >= 1")
        started = await asyncio.gather(
            *(self.spawn(cls, *args, **kwargs) for _ in range(n)), return_exceptions=True
        )
        refs = [r for r in started if isinstance(r, ActorRef)]
        failed = [r for r in started if not isinstance(r, ActorRef)]
        if failed:
            for ref in refs:  # all or nothing: a pool half started is not what was asked
                await self._supervisor.stop(ref.id)
            raise failed[0]
        return refs


_WHERE = (
    "bind it to a name at the top level of a module or of the script you run "
    "(MONEY = TypeCodec(...)), or put it in a list or tuple bound so (CODECS = [...]); "
    "not in a function or an interactive session"
)


def _class_path(cls: type) -> str:
    path = class_path(cls)
    if path is None:
        raise SpawnError(
            f"{cls.__qualname__} cannot be imported by a child process: define it at the "
            "top level of a module or script (not inside a function or an interactive session)"
        )
    return path


def _codec_paths(codec: Codec | None, codecs: Sequence[TypeCodec]) -> dict[str, Any]:
    """How a child makes the system's codec: the import path of each codec it was given
    (see :mod:`~tactor.actors.import_paths`); SpawnError naming one that has none."""
    if type(codec) is JsonCodec and not object_path(codec):
        # The JSON codec itself, made in place: the child makes its own, with the
        # same user types' codecs (those it was given, then those of the system).
        codecs = (*codec.type_codecs, *codecs)
        codec = None
    paths = []
    for type_codec in codecs:
        parts = (type_codec.type, type_codec.to_wire, type_codec.from_wire)
        near = [m for m in (getattr(p, "__module__", None) for p in parts) if isinstance(m, str)]
        path = object_path(type_codec, near)
        if path is None:
            raise SpawnError(
                f"the TypeCodec of {type_codec.type.__qualname__} cannot be imported by a "
                f"child process, which needs the system's codecs: {_WHERE}"
            )
        paths.append(path)
    named = None if codec is None else object_path(codec, [type(codec).__module__])
    if codec is not None and named is None:
        raise SpawnError(
            f"ActorSystem(codec=...), a {type(codec).__name__}, cannot be imported by a "
            f"child process, which needs the system's codecs: {_WHERE}"
        )
    return {"codecs": paths, "codec": named}


def _options(system: ActorSystem) -> dict[str, Any]:
    return {
        "timeout": system.timeout,
        "max_payload": system.max_payload,
        "stop_grace": system.stop_grace,
        "max_deliveries": system.max_deliveries,
        "max_dead_letters": system.max_dead_letters,
    }
