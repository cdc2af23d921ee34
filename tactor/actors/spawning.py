"""Providers of :class:`~tactor.actors.system.ActorSystem`: ``spawn`` (in this process, or in
supervised child processes with ``processes``), ``stop``, and which providers are live
(``providers``) or run on this node (``refs``)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from ..codecs import Codec
from ..errors import NoProvider, SchemaError, TransportError
from ..transports.base import Transport
from ..transports.consumer import MailboxConsumer
from ..transports.endpoints import endpoint_mailbox, provider_mailbox
from ..transports.subscription import Subscription
from .actor import Actor, ActorRef, actor_name, endpoint_origin, kin, schema_of
from .cancellation import Cancellations
from .operating import registered_origin
from .requests import RunnerConfig
from .runner import ActorRunner, OnFailure
from .schema import ActorSchema, served_function
from .supervision import Processes, RestartPolicy, Supervisor

if TYPE_CHECKING:
    from .system import ActorSystem

__all__ = ["Spawning"]

log = logging.getLogger(__name__)

A = TypeVar("A", bound=Actor)
P = ParamSpec("P")


#: Options of process providers that a ``spawn`` given them meant for ``processes()``.
_PROCESS_OPTIONS = frozenset({"process", "restart", "max_restarts", "restart_window"})


def _actor_of(runner: ActorRunner) -> Actor:
    """The actor a provider's runner runs (the runner is all a node keeps of a provider)."""
    assert isinstance(runner.instance, Actor)
    return runner.instance


class Spawning:
    """The provider verbs of :class:`ActorSystem` (a mixin: the system provides the attributes
    below, and stops providers: what that logs is the system's)."""

    transport: Transport
    codec: Codec
    node: str
    _cancellations: Cancellations
    _runner_config: RunnerConfig
    _on_runner_failure: OnFailure
    _actors: dict[str, ActorRunner]
    _supervisor: Supervisor
    _origins: dict[str, str]  # endpoint -> the class that names it (its name), as served here
    _looked: set[str]  # endpoints whose providers on other nodes were looked at

    if TYPE_CHECKING:

        def _check_running(self) -> None: ...

        def _check_codecs(self, schema: ActorSchema) -> None: ...

        def _registration(self, cls: type[Actor]) -> bytes: ...

        async def _stop(self, provider: str, grace: float | None = None) -> None: ...

        async def _on_stop(self, instance: Actor, provider: str) -> None: ...

    async def spawn(self, cls: Callable[P, A], /, *args: P.args, **kwargs: P.kwargs) -> ActorRef[A]:
        """Create an actor and serve it as a provider of its endpoint; returns its ref.

        To serve it in a child process instead, see :meth:`processes`.
        """
        return await self._spawn_as(None, None, cls, *args, **kwargs)

    def processes(
        self,
        *,
        restart: RestartPolicy = "on-failure",
        max_restarts: int = 5,
        restart_window: float = 60.0,
    ) -> Processes:
        """Spawn providers in supervised child processes: ``.spawn(cls, ...)``,
        ``.spawn_many(n, cls, ...)`` (see :class:`~tactor.actors.supervision.Processes`).

        ``restart`` is when a child that exited is started again (``"on-failure"``:
        when it crashed or exited non-zero; ``"always"``; ``"never"``), with a growing
        back-off, at most ``max_restarts`` times within ``restart_window`` seconds.
        The children use this system's codecs, which they import by name (see :class:`ActorSystem`).
        """
        return Processes(
            cast("ActorSystem", self), self._supervisor, restart, max_restarts, restart_window
        )

    async def _spawn_as(
        self,
        ident: str | None,
        serving: Callable[[], None] | None,
        cls: Callable[P, A],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> ActorRef[A]:
        """Spawn with the id ``ident`` (None: a new one); ``serving`` is called just before
        the provider takes its first message (a child process tells its parent so)."""
        self._check_running()
        actor_class: type[A] = cls  # type: ignore[assignment]
        schema = schema_of(actor_class)
        self._check_codecs(schema)
        self._claim_endpoint(actor_class)
        await self._look_elsewhere(actor_class)
        await self._cancellations.listen()  # a node with providers hears callers give up
        try:
            instance = cls(*args, **kwargs)
        except TypeError as exc:
            if not any(f"'{name}'" in str(exc) for name in _PROCESS_OPTIONS.intersection(kwargs)):
                raise  # not about an option of processes() that the constructor does not take
            raise TypeError(
                f"{exc}: spawn's keyword arguments go to the constructor; to serve it in a "
                f"child process, use system.processes().spawn({actor_class.__name__}, ...)"
            ) from exc
        ident = ident or f"{schema.endpoint}@{uuid.uuid4().hex[:12]}"
        ref = ActorRef(ident, schema.endpoint, actor_class)
        instance._tactor_system, instance._tactor_ref = cast("ActorSystem", self), ref
        transport = self.transport
        mailboxes = [provider_mailbox(ref.id), endpoint_mailbox(schema.endpoint)]
        consumer = await transport.consume(mailboxes, ref.id, private=mailboxes[:1])
        pairs = [(h, p) for h in schema.handlers for p in h.patterns]
        # Tuples: an actor without event handlers shares the empty one.
        subscriptions = tuple([await transport.subscribe(p) for _, p in pairs])
        handlers = tuple((h, getattr(instance, h.name)) for h, _ in pairs)
        runner = ActorRunner(
            self._runner_config,
            name=ref.id,
            instance=instance,
            schema=schema,
            handlers=handlers,
            on_failure=self._on_runner_failure,
        )
        try:
            await instance.on_start()
        except BaseException:
            await _close_sources(consumer, subscriptions)
            raise
        try:
            await transport.register(schema.endpoint, ref.id, self._registration(actor_class))
        except BaseException:  # not to serve the endpoint's mailbox unregistered
            await _close_sources(consumer, subscriptions)
            await self._on_stop(instance, ref.id)
            raise
        # Listed, and taking messages from here on (what came meanwhile waits for it).
        if serving is not None:
            serving()
        await runner.start(consumer, subscriptions)
        self._actors[ref.id] = runner
        return ref

    def _claim_endpoint(self, cls: type[Actor]) -> None:
        """Refuse to serve an endpoint here with a class unrelated to the one that serves it
        here already: two classes that happen to share a name would answer each other's
        calls (a SchemaError; a subclass of the class that names the endpoint may serve it).
        """
        endpoint, origin = schema_of(cls).endpoint, actor_name(endpoint_origin(cls))
        if kin(self._origins.setdefault(endpoint, origin), origin):
            return
        serving = (r.actor_class for r in self.refs() if r.endpoint == endpoint)
        other = next((c for c in serving if not kin(actor_name(endpoint_origin(c)), origin)), None)
        if other is None:  # whatever served it here before is gone
            self._origins[endpoint] = origin
            return
        mine, theirs = actor_name(cls), actor_name(other)
        advice = "Name one endpoint differently (name=...)"
        if served_function(cls) is None and served_function(other) is None:
            advice += f", or make {mine} a subclass of {actor_name(endpoint_origin(other))}"
        raise SchemaError(
            f"{mine} cannot serve the endpoint {endpoint!r}: {theirs} serves it here, and "
            f"the two are unrelated, so each would answer calls meant for the other. {advice}"
        )

    async def _look_elsewhere(self, cls: type[Actor]) -> None:
        """Warn, once per endpoint, when another node serves it with a class of another
        origin (the registry says what each provider runs). It cannot be refused from
        here (a deployment may rename a class), but each would answer calls meant for
        the other."""
        endpoint = schema_of(cls).endpoint
        if endpoint in self._looked:
            return
        self._looked.add(endpoint)
        mine = actor_name(endpoint_origin(cls))
        try:
            entries = await self.transport.provider_entries(endpoint)
        except TransportError:
            return  # (spawning fails on it next, or it was a passing fault)
        for entry in entries:
            node, origin = registered_origin(self.codec, entry)
            if node not in (None, self.node) and origin is not None and not kin(origin, mine):
                log.warning(
                    "%s serves the endpoint %r that %s serves on node %s (provider %s): "
                    "the two are unrelated, so each would answer calls meant for the "
                    "other, unless one is a renamed version of the other",
                    actor_name(cls), endpoint, origin, node, entry.provider,
                )  # fmt: skip
                return

    async def stop(self, ref: ActorRef[Any]) -> None:
        """Drain a provider and remove it: it takes no new message, finishes the one in hand."""
        self._check_running()
        if self._supervisor.supervises(ref.id):
            return await self._supervisor.stop(ref.id)
        if ref.id not in self._actors:
            raise NoProvider(f"provider {ref.id!r} is not running on this system")
        await self._stop(ref.id)

    async def providers(self, cls: type[Actor]) -> list[str]:
        """The ids of the live providers of ``cls``'s endpoint, on every node."""
        self._check_running()
        return await self.transport.providers(schema_of(cls).endpoint)

    def refs(self) -> list[ActorRef[Any]]:
        """The providers running on this node (and in its child processes)."""
        return [_actor_of(r).ref for r in self._actors.values()] + self._supervisor.refs()


async def _close_sources(consumer: MailboxConsumer, subscriptions: Sequence[Subscription]) -> None:
    """Close the sources of a provider that did not start."""
    await consumer.close()
    for sub in subscriptions:
        await sub.close()
