"""The :class:`ActorSystem`: spawns providers; calls, broadcasts, tells and publishes."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import uuid
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TypeVar, TypeVarTuple

from ..codecs import Codec, JsonCodec, TypeCodec
from ..errors import ConfigError, NotRunning, SchemaError, TransportError
from ..transports import Transport, open_transport
from ..transports.endpoints import endpoint_mailbox, provider_mailbox
from . import tasks
from .actor import Actor
from .calls import Calls
from .cancellation import Cancellations
from .dead_letters import DeadLetterPolicy
from .messaging import Messaging
from .operating import Operating
from .publishing import EventSubscription, Publishing
from .queues import queue_waiting_room
from .requests import RunnerConfig
from .runner import ActorRunner
from .schema import ActorSchema, member_name
from .serving import wait_for_signal
from .spawning import Spawning, _actor_of
from .stats import Stats, SystemStats
from .supervision import Supervisor
from .tasks import TaskSet
from .telemetry import Telemetry, with_tracing

__all__ = ["ActorSystem", "EventSubscription"]

log = logging.getLogger(__name__)

R = TypeVar("R")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")

DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_PAYLOAD = 1 << 20


class ActorSystem(Spawning, Messaging, Publishing, Operating):
    """A node: hosts providers, and calls, broadcasts to, tells and publishes to any node.

    ``ActorSystem()`` runs on the embedded ``memory://`` transport;
    ``ActorSystem("redis://localhost:6379/0")`` on Redis; a :class:`Transport`
    object may be passed instead of a URL (the system starts and closes it).

    Options: ``timeout`` is the default deadline of calls, tells and
    broadcasts in seconds; ``max_payload`` the largest message in bytes
    (lowered at start to what the transport carries: a NATS server's limit);
    ``codecs`` user types' codecs (this system only; ``codec`` replaces the
    JSON codec itself); child processes (:meth:`processes`) import them by
    name, so each must be bound to a module-level name or be an item of a
    module-level list or tuple (else ``SpawnError`` at their spawn, saying so).
    ``stop_grace`` is how long stopping waits for a message in hand before
    cancelling it. A message whose handling was attempted ``max_deliveries``
    times (5) without an acknowledgement, or that cannot be read, goes to its
    endpoint's dead letters, which keep the newest ``max_dead_letters`` (1000);
    these two may also come from the transport URL (``?max_deliveries=3``),
    overridden here.
    ``tracing``: OpenTelemetry spans for every message when ``opentelemetry-api``
    is installed (``tactor[otel]``; None, the default), never (False), or
    ConfigError if it is not installed (True); see docs/operating.md.
    """

    def __init__(
        self,
        transport: str | Transport = "memory://",
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        codecs: Sequence[TypeCodec] = (),
        codec: Codec | None = None,
        stop_grace: float = 10.0,
        max_deliveries: int | None = None,
        max_dead_letters: int | None = None,
        tracing: bool | None = None,
    ) -> None:
        if not timeout > 0:
            raise ConfigError(f"ActorSystem(timeout={timeout!r}): expected seconds > 0")
        if not max_payload > 0:
            raise ConfigError(f"ActorSystem(max_payload={max_payload!r}): expected bytes > 0")
        self.transport = open_transport(transport) if isinstance(transport, str) else transport
        policy = DeadLetterPolicy.of(self.transport, max_deliveries, max_dead_letters)
        self.max_deliveries, self.max_dead_letters = policy.max_deliveries, policy.max_dead_letters
        self.node = uuid.uuid4().hex[:16]
        self.timeout = timeout
        self.max_payload = max_payload
        self.stop_grace = stop_grace
        self._queue_room = queue_waiting_room()  # putters waiting for room in full queues
        self.codec = (codec or JsonCodec()).copy()
        self._codecs_given = (codec, tuple(codecs))  # for child processes, to import by name
        for type_codec in codecs:
            self.codec.register(type_codec)
        self._stats = Stats()
        self._telemetry: Telemetry = with_tracing(self._stats, tracing)
        self._tasks = TaskSet()
        self._cancellations = Cancellations(self.transport, self.codec, self._tasks)
        self._calls = Calls(
            self.node,
            self.transport,
            self.codec,
            self._cancellations,
            max_payload=max_payload,
            telemetry=self._telemetry,
        )
        self._runner_config = RunnerConfig(
            self.transport,
            self.codec,
            max_payload,
            self._tasks,
            self._cancellations,
            policy,
            self._telemetry,
        )
        self._on_runner_failure = self._runner_failed  # one bound method for every runner
        self._actors: dict[str, ActorRunner] = {}  # the providers of this node, by id
        self._sinks: dict[int, EventSubscription] = {}
        self._checked: set[type] = set()
        self._origins: dict[str, str] = {}
        self._looked: set[str] = set()
        self._supervisor = Supervisor(self.transport, self._tasks, stop_grace)
        self._state = "new"

    def __repr__(self) -> str:
        return f"<ActorSystem node={self.node} {self._state} transport={self.transport!r}>"

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> ActorSystem:
        """Start the transport and the reply router; idempotent."""
        if self._state == "running":
            return self
        if self._state == "closed":
            raise NotRunning("this ActorSystem is closed; make a new one")
        await self.transport.start()
        self._fit_payloads()
        try:
            await self._calls.start()
        except BaseException:
            # Do not leave connections or threads behind when starting fails half-way.
            await self._tasks.cancel_all()
            await self.transport.close()
            self._state = "closed"
            raise
        self._state = "running"
        return self

    def _fit_payloads(self) -> None:
        """Lower ``max_payload`` to what the started transport carries (a NATS server's
        limit): a message that passes the check must not be refused on the way."""
        carried = self.transport.payload_limit
        if carried is None or carried >= self.max_payload:
            return
        if self.max_payload != DEFAULT_MAX_PAYLOAD:
            log.warning(
                "ActorSystem(max_payload=%d) is more than %r carries: messages are limited "
                "to %d bytes (raise the server's own max_payload to carry more)",
                self.max_payload, self.transport, carried,
            )  # fmt: skip
        self.max_payload = self._calls.max_payload = carried
        self._runner_config = dataclasses.replace(self._runner_config, max_payload=carried)

    async def close(self, *, drain_timeout: float | None = None) -> None:
        """Stop every actor, then close the transport.

        Each provider takes no new message, finishes and acknowledges the one in hand
        (cancelled after ``drain_timeout`` seconds, default ``stop_grace``: then it goes
        back to the mailbox), and leaves the registry. The transport is closed even if
        a step before fails (the error is raised after): a system half-closed would keep
        its connections, and its heartbeats on Redis.
        """
        if self._state != "running":
            self._state = "closed"
            return
        self._state = "closing"
        grace = self.stop_grace if drain_timeout is None else drain_timeout
        try:
            await self._supervisor.close()  # children drain into this node's transport
            await asyncio.gather(*(self._stop(ref, grace) for ref in list(self._actors)))
            await asyncio.gather(*(sink.close() for sink in list(self._sinks.values())))
            await self._cancellations.close()
            await self._calls.close()
        finally:
            await self._tasks.cancel_all()
            await self.transport.close()
            self._state = "closed"

    async def serve(
        self,
        *,
        drain_timeout: float | None = None,
        on_serving: Callable[[], object] | None = None,
    ) -> signal.Signals:
        """Serve until the process receives SIGINT or SIGTERM, then drain and close.

        Starts the system if need be. ``on_serving`` is called once the signal
        handlers are in place (the moment to say "ready": a signal from then on drains).
        After the signal every provider leaves the registry, finishes and acknowledges
        its message in hand (within ``drain_timeout`` seconds, default ``stop_grace``),
        and the transport is closed: nothing of this node is left on it. Returns the
        signal. Call it from the main thread (else ``ConfigError``).
        """
        await self.start()
        received = await wait_for_signal(on_waiting=on_serving)
        grace = self.stop_grace if drain_timeout is None else drain_timeout
        log.info(
            "%s: draining %d provider(s) (up to %.1f s)", received.name, len(self.refs()), grace
        )
        await self.close(drain_timeout=grace)
        log.info("closed after %s", received.name)
        return received

    async def __aenter__(self) -> ActorSystem:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _check_running(self) -> None:
        if self._state != "running":
            raise NotRunning(f"the ActorSystem is {self._state}: use 'async with ActorSystem()'")

    def _check_codecs(self, schema: ActorSchema) -> None:
        if schema.cls in self._checked:
            return
        where: list[tuple[str, frozenset[type]]] = [
            *((m.name, m.custom_types) for m in schema.methods.values()),
            *((h.name, h.custom_types) for h in schema.handlers),
        ]
        for name, types in where:
            for tp in types:
                if not self.codec.knows(tp):
                    raise SchemaError(
                        f"{member_name(schema.cls, name)} uses {tp.__qualname__}, which has "
                        f"no codec: pass ActorSystem(codecs=[TypeCodec({tp.__name__}, ...)])"
                    )
        self._checked.add(schema.cls)

    # -- stopping providers ----------------------------------------------------
    # (here, not in spawning.py: what they log is logged as tactor.actors.system)

    def _runner_failed(self, provider: str, error: BaseException) -> None:
        """A provider's runner failed: it serves nothing, so it must not stay registered.

        It is unregistered and stopped at once, so calls go to other providers or
        fail fast with NoProvider instead of waiting for their deadlines.
        """
        if self._state != "running" or provider not in self._actors:
            return
        log.error(
            "%s stopped serving (%s: %s): it is unregistered and stopped",
            provider,
            type(error).__name__,
            error,
        )
        self._tasks.spawn(self._remove_failed(provider), f"tactor-remove-{provider}")

    async def _remove_failed(self, provider: str) -> None:
        try:
            await self._stop(provider)
        except Exception:  # unregistered first: what is left is clean-up
            log.exception("%s: stopping the failed provider did not finish", provider)

    async def _stop(self, provider: str, grace: float | None = None) -> None:
        runner = self._actors.pop(provider, None)
        if runner is None:
            return  # stopped meanwhile (it failed, and the system is closing)
        actor = _actor_of(runner)
        await self.transport.unregister(actor.ref.endpoint, provider)
        await runner.stop(self.stop_grace if grace is None else grace)
        await self._on_stop(actor, provider)
        try:
            await self.transport.delete_mailbox(provider_mailbox(provider))
        except TransportError as exc:  # stopped all the same (on Redis the mailbox expires)
            log.warning("%s: stopped; its private mailbox was not deleted: %s", provider, exc)

    async def _on_stop(self, instance: Actor, provider: str) -> None:
        """Run ``on_stop`` for ``stop_grace`` seconds, or ``CANCEL_PATIENCE`` if longer (a
        short grace is for handlers, not for clean-up); then it is cancelled: a stop and a
        close must end."""
        hook = asyncio.ensure_future(instance.on_stop())
        bound = max(self.stop_grace, tasks.CANCEL_PATIENCE)
        done, _ = await asyncio.wait([hook], timeout=bound)
        if not done:
            log.error("%s.on_stop did not finish within %.1fs; cancelled", provider, bound)
            await self._tasks.cancel(hook)
        elif not hook.cancelled() and (error := hook.exception()) is not None:
            log.error("%s.on_stop raised", provider, exc_info=error)

    # -- stats -----------------------------------------------------------------

    async def stats(self) -> SystemStats:
        """This node's counters and gauges: messages by endpoint and method, handling
        times, calls in flight, events by topic, and the depth of the mailboxes of the
        endpoints it serves (asked of the transport: one round trip on Redis). Its
        process providers' counts are in them: each child is asked for its own (see
        :class:`SystemStats`; a child that does not answer within a second counts as
        it last did)."""
        self._check_running()
        await self._supervisor.ask_stats()
        depths = {}
        for endpoint in sorted({ref.endpoint for ref in self.refs()}):
            depth = await self.transport.mailbox_depth(endpoint_mailbox(endpoint))
            if depth is not None:
                depths[endpoint] = depth
        return self._counted(depths)

    def _counted(self, depths: dict[str, int]) -> SystemStats:
        """This node's stats, with what its children last reported counted in."""
        return self._supervisor.counted(self._stats.snapshot(self.node, depths))
