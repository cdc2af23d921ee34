"""Events and queues of :class:`ActorSystem`: ``publish``, ``subscribe`` (plain functions) and
``queue``."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from ..codecs import Codec
from ..errors import SchemaError
from ..transports import Subscription, Transport
from .events import encode_event, event_topic
from .queues import AsyncQueue
from .requests import RunnerConfig
from .runner import ActorRunner
from .schema import HandlerSchema, handler_for_function
from .telemetry import Telemetry

if TYPE_CHECKING:
    from .system import ActorSystem

__all__ = ["EventSubscription", "Publishing"]

T = TypeVar("T")


class EventSubscription:
    """A plain function subscribed with :meth:`ActorSystem.subscribe`; ``close()`` ends it."""

    def __init__(self, system: Publishing, runner: ActorRunner, patterns: tuple[str, ...]) -> None:
        self._system = system
        self._runner = runner
        self.patterns = patterns

    async def close(self) -> None:
        """Unsubscribe, after the event in hand (if any) is handled."""
        if self._system._sinks.pop(id(self), None) is not None:
            await self._runner.stop(self._system.stop_grace)


class Publishing:
    """The event and queue verbs of :class:`ActorSystem` (a mixin: the system provides the
    attributes below)."""

    transport: Transport
    codec: Codec
    max_payload: int
    stop_grace: float
    _telemetry: Telemetry
    _checked: set[type]
    _sinks: dict[int, EventSubscription]
    _runner_config: RunnerConfig

    if TYPE_CHECKING:

        def _check_running(self) -> None: ...

    async def publish(self, event: object, *, topic: str | None = None) -> int | None:
        """Publish ``event`` on its type's topic (or ``topic``).

        Returns how many subscriptions it reached where the transport can know, else None.
        """
        self._check_running()
        cls = type(event)
        if cls not in self._checked:
            self.codec.json_schema(cls)  # raises SchemaError for a type that cannot be sent
            self._checked.add(cls)
        name = event_topic(event, topic)
        token, trace = self._telemetry.publishing(name, cls.__name__)
        try:
            payload = encode_event(self.codec, event, name, self.max_payload, trace)
            reached = await self.transport.publish(name, payload)
        except BaseException as exc:
            self._telemetry.published(token, exc)
            raise
        self._telemetry.published(token, None)
        return reached if self.transport.counts_subscribers else None

    @overload
    def queue(self, name: str, item_type: type[T], *, maxsize: int = 0) -> AsyncQueue[T]: ...

    @overload
    def queue(self, name: str, item_type: None = None, *, maxsize: int = 0) -> AsyncQueue[Any]: ...

    def queue(
        self, name: str, item_type: type[T] | None = None, *, maxsize: int = 0
    ) -> AsyncQueue[T] | AsyncQueue[Any]:
        """The named FIFO queue ``name``, shared by every node of this system's transport.

        Items are encoded as ``item_type`` (``get`` returns that type), or,
        without one, by their runtime type (``get`` returns JSON data: dict,
        list, str, …). ``maxsize`` > 0 bounds the queue. Names are letters,
        digits, ``_ . -`` (else ``ConfigError``). Making the handle does no I/O;
        the queue outlives this system (see :class:`AsyncQueue`).
        """
        return AsyncQueue(cast("ActorSystem", self), name, item_type, maxsize=maxsize)

    async def subscribe(
        self, handler: Callable[[Any], Awaitable[Any]], pattern: str | None = None
    ) -> EventSubscription:
        """Subscribe a plain ``async def handler(event: T)`` to ``T``'s topic (or ``pattern``).

        Its events are handled one at a time, in order. Returns a handle to ``close()``.
        """
        self._check_running()
        schema: HandlerSchema = handler_for_function(handler, pattern)
        for tp in schema.custom_types:
            if not self.codec.knows(tp):
                raise SchemaError(
                    f"{handler.__qualname__} takes {tp.__qualname__}, which has no codec"
                )
        subs: list[Subscription] = [await self.transport.subscribe(p) for p in schema.patterns]
        name = f"{handler.__qualname__}@{uuid.uuid4().hex[:8]}"
        runner = ActorRunner(
            self._runner_config,
            name=name,
            instance=None,
            schema=None,
            handlers=[(schema, handler)] * len(subs),
        )
        await runner.start(None, subs)
        sink = EventSubscription(self, runner, schema.patterns)
        self._sinks[id(sink)] = sink
        return sink
