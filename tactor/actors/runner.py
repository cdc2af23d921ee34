"""Mailbox runners: each actor instance handles one message at a time.

A runner merges its sources — the transport consumer of its mailboxes and one
subscription per event pattern — through a rendezvous :class:`Handoff`, so a
busy actor holds at most one waiting message per source and leaves the rest in
the shared mailbox for idle providers. A runner with one source (a mailbox, no
events) reads it directly and in push mode: it has a task only while something
is ready — an idle provider costs a parked consumer, no task (see
:meth:`~tactor.transports.consumer.MailboxConsumer.receive_or_park`). Each request is handled (see
:mod:`~tactor.actors.requests`) and only then acknowledged — or, for a
message attempted too often or that cannot be read, moved to the endpoint's
dead letters (see :mod:`~tactor.actors.dead_letters`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import DecodeError, TransportClosed, TransportError
from ..transports.channel import settle
from ..transports.consumer import Delivery, MailboxConsumer
from ..transports.subscription import Subscription
from .dead_letters import Aside
from .envelope import parse_event
from .handoff import Handoff
from .requests import Requests, RunnerConfig
from .schema import ActorSchema, HandlerSchema

__all__ = ["ActorRunner"]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(slots=True)
class _EventItem:
    handler: int
    topic: str
    payload: bytes


#: Unexpected errors in a row from a consumer's ``receive`` before the runner gives up.
_RECEIVE_RETRIES = 3
_STOP = object()
_PARKED = object()  # direct mode: nothing ready, the consumer parked (see _run_direct)
_Item = Delivery | _EventItem | object
#: Called with the runner's name and why it failed (see ``_ended``).
OnFailure = Callable[[str, BaseException], None]
Handlers = Sequence[tuple[HandlerSchema, Callable[[Any], Awaitable[Any]]]]


class ActorRunner:
    """Runs one actor instance (or one plain event function) over its sources.

    A node may hold thousands, idle: what an idle one holds is kept small (slots, the
    config and handlers shared, no task, its :class:`Requests` made when it is needed).
    """

    __slots__ = (
        "_consumer",
        "_direct",
        "_failed",
        "_idle",
        "_inbox",
        "_left",
        "_lingering",
        "_loop_task",
        "_on_failure",
        "_pumps",
        "_requests",
        "_stopping",
        "_subscriptions",
        "config",
        "handlers",
        "instance",
        "name",
        "schema",
    )  # fmt: skip

    def __init__(
        self,
        config: RunnerConfig,
        *,
        name: str,
        instance: object | None,
        schema: ActorSchema | None,
        handlers: Handlers = (),
        on_failure: OnFailure | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self.instance = instance
        self.schema = schema
        self._requests: Requests | None = None  # while it serves (see _serving)
        self.handlers = handlers
        self._inbox: Handoff[_Item]  # made by start() unless the runner reads its one source
        self._consumer: MailboxConsumer | None = None
        self._subscriptions: Sequence[Subscription] = ()
        self._pumps: tuple[asyncio.Task[Any], ...] = ()
        self._loop_task: asyncio.Task[Any] | None = None  # direct mode: None while parked
        self._direct = False  # one source, read by the runner itself (no pump, no hand-off)
        self._idle = False  # direct mode: waiting for a message, not handling one
        self._lingering: asyncio.Future[bool] | None = None  # direct mode: see _linger
        self._stopping = False
        self._left = False  # a handler raised SystemExit or its kind (see _leave)
        self._on_failure = on_failure  # called once if a source's task ends while serving
        self._failed = False

    async def start(
        self, consumer: MailboxConsumer | None, subscriptions: Sequence[Subscription]
    ) -> None:
        tasks = self.config.tasks
        self._consumer = consumer
        self._subscriptions = subscriptions
        if consumer is not None and not subscriptions:
            # One source: read it directly, without a pump and a hand-off in between.
            self._direct = True
            self._serve()
            return
        self._inbox = Handoff()
        self._loop_task = tasks.spawn(self._run(), f"tactor-runner-{self.name}")
        pumps = [tasks.spawn(self._pump_topic(i, sub), f"tactor-sub-{self.name}")
                 for i, sub in enumerate(subscriptions)]  # fmt: skip
        if consumer is not None:
            pumps.append(tasks.spawn(self._pump_mailbox(consumer), f"tactor-pump-{self.name}"))
        self._pumps = tuple(pumps)
        for task in (self._loop_task, *self._pumps):
            task.add_done_callback(self._ended)

    def _serve(self) -> None:
        """Direct mode: a task that handles what is ready, and ends when nothing is."""
        assert self._consumer is not None
        task = self.config.tasks.spawn(
            self._run_direct(self._consumer), f"tactor-runner-{self.name}"
        )
        self._loop_task = task
        task.add_done_callback(self._ended)

    def _wake(self) -> None:
        """The parked consumer may have something (or was closed, or failed): serve it."""
        if self._stopping or self._left or self._failed:
            return
        lingering = self._lingering
        if lingering is not None and not lingering.done():
            lingering.set_result(True)  # its task waits for this: no new one
        elif self._loop_task is None or self._loop_task.done():
            self._serve()  # (else its task, about to end, looks once more: see _run_direct)

    def _ended(self, task: asyncio.Task[Any]) -> None:
        """A task of this runner ended while it was serving: the runner has failed —
        unless it parked (direct mode, nothing ready).

        It no longer reads a source (or handles what is read), so its owner must not
        keep it registered: ``on_failure`` is told, once.
        """
        if self._stopping or self._left or self._failed or task.cancelled():
            return
        error = task.exception()
        if error is None and task.result() is _PARKED:
            if self._loop_task is task:
                self._loop_task = None  # a finished task holds memory: let it go
            return
        self._failed = True
        error = error or TransportClosed(f"{task.get_name()} ended: its source closed")
        if self._on_failure is not None:
            self._on_failure(self.name, error)

    def _serving(self) -> Requests:
        """The handling of requests, made when a message comes (an idle runner has none)."""
        requests = self._requests
        if requests is None:
            requests = Requests(self.config, self.name, self.instance, self.schema)
            self._requests = requests
        return requests

    async def stop(self, grace: float) -> None:
        """Stop taking messages, finish the one in hand (up to ``grace`` seconds), close sources."""
        tasks = self.config.tasks
        await tasks.cancel(*self._pumps)
        self._stopping = True  # a parked runner is not woken again
        loop_task = self._loop_task
        if loop_task is not None and self._idle:
            await tasks.cancel(loop_task)  # waiting for a message: receiving is cancel-safe
        if loop_task is not None and not loop_task.done():
            try:
                async with asyncio.timeout(grace):
                    if not self._direct:  # (direct mode: it stops after the message in hand)
                        await self._inbox.put(_STOP)
                    # Waited for, not awaited: at the timeout, awaiting it would cancel it
                    # too, and wait for as long as its handler ignores that.
                    await asyncio.wait([loop_task])
            except TimeoutError:
                log.warning(
                    "%s did not finish %s within %.1fs; cancelled",
                    self.name, self._last(), grace,
                )  # fmt: skip
                await tasks.cancel(loop_task)
        if self._consumer is not None:
            await self._consumer.close()  # unacknowledged deliveries go back to the mailbox
        for sub in self._subscriptions:
            await sub.close()

    # -- sources ---------------------------------------------------------------

    async def _receive(
        self, consumer: MailboxConsumer, park: bool = False
    ) -> Delivery | object | None:
        """The next delivery, riding out transport errors; None once the consumer is closed;
        with ``park``, ``_PARKED`` where it would wait (the consumer wakes the runner).

        Any other error is a fault in the transport: logged and retried, at a growing
        pace, a few times; raised when it persists (the runner has then failed).
        """
        unexpected = 0
        while True:
            try:
                if not park:
                    return await consumer.receive()
                delivery = await consumer.receive_or_park(self._wake)
                return _PARKED if delivery is None else delivery
            except TransportClosed:
                return None
            except TransportError as exc:
                log.warning("%s: mailbox receive failed: %s", self.name, exc)
                await asyncio.sleep(0.1)
            except Exception:
                if unexpected == _RECEIVE_RETRIES:
                    raise
                log.exception("%s: unexpected error receiving a message; retrying", self.name)
                await asyncio.sleep(0.1 * 2**unexpected)
                unexpected += 1

    async def _pump_mailbox(self, consumer: MailboxConsumer) -> None:
        # A message is taken only for a runner that waits for one: a provider busy with a
        # message (or an event) holds no other that an idle provider could take. (One
        # taken as an event comes in waits for that event's handling.)
        while True:
            await self._inbox.wanted()
            if (delivery := await self._receive(consumer)) is None:
                return
            await self._inbox.put(delivery)

    async def _pump_topic(self, index: int, sub: Subscription) -> None:
        while True:
            try:
                topic, payload = await sub.receive()
            except TransportClosed:
                return
            await self._inbox.put(_EventItem(index, topic, payload))

    async def _run_direct(self, consumer: MailboxConsumer) -> object:
        """Handle what is ready; ``_PARKED`` once nothing is (the consumer wakes the runner
        when something may be), None when the source closed."""
        looked_again = False
        while not (self._stopping or self._left):
            self._idle = True
            try:
                delivery = await self._receive(consumer, park=True)
            finally:
                self._idle = False
            if delivery is _PARKED and not looked_again:
                # Look once more a loop turn later (what came meanwhile, the next call of a
                # caller in this process, is served by this task, not by a new one), or
                # after the consumer's linger: woken within it, this task serves on.
                looked_again = True
                if consumer.linger:
                    looked_again = not await self._linger(consumer.linger)
                else:
                    await asyncio.sleep(0)
                continue  # (a wake as the linger ended found this task alive: look again)
            if delivery is _PARKED:
                self._requests = None  # made again at the next message
                return _PARKED
            looked_again = False
            if not isinstance(delivery, Delivery):
                return None
            try:
                await self._handle_delivery(delivery)
            except Exception:  # a bug in tactor itself: never let it kill the actor
                log.exception("%s: unexpected error handling %s", self.name, self._last())
        return None

    async def _linger(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the parked consumer's wake (see
        ``MailboxConsumer.linger``); True if it came."""
        loop = asyncio.get_running_loop()
        lingering: asyncio.Future[bool] = loop.create_future()
        self._lingering = lingering
        timer = loop.call_later(seconds, settle, lingering, False)
        self._idle = True  # stop() may cancel it here, as in a receive
        try:
            return await lingering
        finally:
            self._idle = False
            timer.cancel()
            self._lingering = None

    async def _run(self) -> None:
        while not self._left and (item := await self._inbox.get()) is not _STOP:
            await self._handle(item)

    async def _handle(self, item: _Item) -> None:
        try:
            if isinstance(item, _EventItem):
                await self._handle_event(item)
            elif isinstance(item, Delivery):
                await self._handle_delivery(item)
        except Exception:  # a bug in tactor itself: never let it kill the actor
            log.exception("%s: unexpected error handling %s", self.name, self._last())

    # -- events ----------------------------------------------------------------

    async def _handle_event(self, item: _EventItem) -> None:
        handler, fn = self.handlers[item.handler]
        codec = self.config.codec
        try:
            event = parse_event(codec.loads(item.payload))
            value = codec.from_wire(event.body, handler.decode_type(event.type_name))
        except DecodeError as exc:
            log.warning(
                "%s.%s: dropped an event on %r (events have no id): %s",
                self.name, handler.name, item.topic, exc,
            )  # fmt: skip
            return
        telemetry = self.config.telemetry
        token = telemetry.receiving(item.topic, self.name, event.trace)
        try:
            await fn(value)
        except Exception as exc:
            telemetry.received(token, exc)
            log.exception(
                "%s.%s raised while handling an event %s on %r",
                self.name, handler.name, event.type_name, item.topic,
            )  # fmt: skip
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # SystemExit and its kind
            telemetry.received(token, exc)
            self._leave(exc)
        else:
            telemetry.received(token, None)

    # -- requests --------------------------------------------------------------

    async def _handle_delivery(self, delivery: Delivery) -> None:
        if self.config.dead_letters.exhausted(delivery):
            await self._set_aside(delivery)
            return
        try:
            assert self._loop_task is not None  # the task that runs every handler
            aside = await self._serving().handle(delivery, self._loop_task)
        except asyncio.CancelledError:
            raise  # stopped mid-message: not acknowledged, it goes back to the mailbox
        except BaseException as exc:  # SystemExit and its kind: its caller was answered
            await self._ack(delivery)
            self._leave(exc)
            return
        if aside is not None:
            await self._set_aside(delivery, aside)
        else:
            await self._ack(delivery)

    def _leave(self, exc: BaseException) -> None:
        """A handler raised ``exc``, a ``BaseException`` that is no cancellation: raised on
        (it ends the program), or handed to the system's ``leaving`` (a process provider's
        child), this runner taking no more messages."""
        leaving = self.config.leaving
        if leaving is None:
            raise exc
        self._left = True
        leaving(self.name, exc)

    async def _ack(self, delivery: Delivery) -> None:
        try:
            await delivery.ack()
        except TransportError as exc:
            log.warning(
                "%s: could not acknowledge %s (may be delivered again): %s",
                self.name, self._last(), exc,
            )  # fmt: skip

    def _last(self) -> object:
        """The message handled last, for logs (a request names endpoint, method and id)."""
        requests = self._requests
        return (requests.current if requests else None) or "a message"

    async def _set_aside(self, delivery: Delivery, aside: Aside | None = None) -> None:
        assert self.schema is not None  # only actors have mailboxes
        policy, codec, endpoint = self.config.dead_letters, self.config.codec, self.schema.endpoint
        detail = await policy.set_aside(delivery, endpoint, codec, self.name, aside)
        if detail is not None and aside is None:  # (one set aside for a reason was answered)
            message = f"moved to the dead letters of {endpoint!r}: {detail}"
            await self._serving().answer_unhandled(delivery.payload, "dead_letter", message)
