"""Mailbox runners: each actor instance handles one message at a time.

A runner merges its sources — the transport consumer of its mailboxes and one
subscription per event pattern — through a rendezvous :class:`Handoff`, so a
busy actor holds at most one waiting message per source and leaves the rest in
the shared mailbox for idle providers. For each request it decodes, checks
the deadline, invokes, encodes the result or the error, replies, and only then
acknowledges the delivery — or, for a message attempted too often or that
cannot be read, moves it to the endpoint's dead letters (see ``dead_letters``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..codecs import Codec, type_name
from ..errors import DecodeError, EncodeError, TransportClosed, TransportError
from ..transports.base import Delivery, MailboxConsumer, Subscription, Transport
from .cancellation import Cancellations, Watch
from .dead_letters import DeadLetterPolicy
from .deadline import running_deadline
from .envelope import Reply, Request, parse_event, parse_request
from .failures import error_to_wire, failure
from .schema import ActorSchema, HandlerSchema
from .tasks import TaskSet

__all__ = ["ActorRunner", "Handoff", "RunnerConfig"]

log = logging.getLogger("tactor")
T = TypeVar("T")


class Handoff(Generic[T]):
    """A rendezvous channel: ``put`` returns once a ``get`` has taken the item."""

    def __init__(self) -> None:
        self._putters: deque[tuple[T, asyncio.Future[None]]] = deque()
        self._getter: asyncio.Future[T] | None = None

    async def put(self, item: T) -> None:
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(item)
            self._getter = None
            return
        taken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (item, taken)
        self._putters.append(entry)
        try:
            await taken
        finally:
            if not taken.done():
                self._putters.remove(entry)

    async def get(self) -> T:
        while self._putters:
            item, taken = self._putters.popleft()
            if not taken.done():
                taken.set_result(None)
                return item
        getter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._getter = getter
        return await getter


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """What a runner needs from its system."""

    transport: Transport
    codec: Codec
    max_payload: int
    tasks: TaskSet
    cancellations: Cancellations
    dead_letters: DeadLetterPolicy


@dataclass(slots=True)
class _EventItem:
    handler: int
    topic: str
    payload: bytes


#: Unexpected errors in a row from a consumer's ``receive`` before the runner gives up.
_RECEIVE_RETRIES = 3
_STOP = object()
_Item = Delivery | _EventItem | object


class ActorRunner:
    """Runs one actor instance (or one plain event function) over its sources."""

    def __init__(
        self,
        config: RunnerConfig,
        *,
        name: str,
        instance: object | None,
        schema: ActorSchema | None,
        handlers: Sequence[tuple[HandlerSchema, Callable[[Any], Awaitable[Any]]]],
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self.instance = instance
        self.schema = schema
        self.handlers = list(handlers)
        self._inbox: Handoff[_Item] = Handoff()
        self._consumer: MailboxConsumer | None = None
        self._subscriptions: list[Subscription] = []
        self._pumps: list[asyncio.Task[Any]] = []
        self._loop_task: asyncio.Task[Any] | None = None
        self._direct = False  # one source, read by the runner itself (no pump, no hand-off)
        self._idle = False  # direct mode: waiting for a message, not handling one
        self._stopping = False
        self._on_failure = on_failure  # called once if a source's task ends while serving
        self._failed = False

    async def start(
        self, consumer: MailboxConsumer | None, subscriptions: list[Subscription]
    ) -> None:
        tasks = self.config.tasks
        self._consumer = consumer
        self._subscriptions = subscriptions
        if consumer is not None and not subscriptions:
            # One source: read it directly, without a pump and a hand-off in between.
            self._direct = True
            self._loop_task = tasks.spawn(self._run_direct(consumer), f"tactor-runner-{self.name}")
        else:
            self._loop_task = tasks.spawn(self._run(), f"tactor-runner-{self.name}")
            if consumer is not None:
                self._pumps.append(
                    tasks.spawn(self._pump_mailbox(consumer), f"tactor-pump-{self.name}")
                )
            for index, sub in enumerate(subscriptions):
                self._pumps.append(
                    tasks.spawn(self._pump_topic(index, sub), f"tactor-sub-{self.name}")
                )
        for task in (self._loop_task, *self._pumps):
            task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[Any]) -> None:
        """A task of this runner ended while it was serving: the runner has failed.

        It no longer reads a source (or handles what is read), so its owner must not
        keep it registered: ``on_failure`` is told, once.
        """
        if self._stopping or self._failed or task.cancelled():
            return
        self._failed = True
        error = task.exception() or TransportClosed(f"{task.get_name()} ended: its source closed")
        if self._on_failure is not None:
            self._on_failure(error)

    async def stop(self, grace: float) -> None:
        """Stop taking messages, finish the one in hand (up to ``grace`` seconds), close sources."""
        tasks = self.config.tasks
        await tasks.cancel(*self._pumps)
        self._stopping = True
        loop_task = self._loop_task
        if loop_task is not None and self._idle:
            await tasks.cancel(loop_task)  # waiting for a message: receiving is cancel-safe
        if loop_task is not None and not loop_task.done():
            try:
                async with asyncio.timeout(grace):
                    if self._direct:
                        await loop_task  # direct mode: it stops after the message in hand
                    else:
                        await self._inbox.put(_STOP)
                        await loop_task
            except TimeoutError:
                log.warning(
                    "%s did not finish its message within %.1fs; cancelled", self.name, grace
                )
                await tasks.cancel(loop_task)
        if self._consumer is not None:
            await self._consumer.close()  # unacknowledged deliveries go back to the mailbox
        for sub in self._subscriptions:
            await sub.close()

    # -- sources ---------------------------------------------------------------

    async def _receive(self, consumer: MailboxConsumer) -> Delivery | None:
        """The next delivery, riding out transport errors; None once the consumer is closed.

        Any other error is a fault in the transport: logged and retried, at a growing
        pace, a few times; raised when it persists (the runner has then failed).
        """
        unexpected = 0
        while True:
            try:
                return await consumer.receive()
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
        while (delivery := await self._receive(consumer)) is not None:
            await self._inbox.put(delivery)

    async def _pump_topic(self, index: int, sub: Subscription) -> None:
        while True:
            try:
                topic, payload = await sub.receive()
            except TransportClosed:
                return
            await self._inbox.put(_EventItem(index, topic, payload))

    async def _run_direct(self, consumer: MailboxConsumer) -> None:
        while not self._stopping:
            self._idle = True
            try:
                delivery = await self._receive(consumer)
            finally:
                self._idle = False
            if delivery is None:
                return
            try:
                await self._handle_delivery(delivery)
            except Exception:  # a bug in tactor itself: never let it kill the actor
                log.exception("%s: unexpected error while handling a message", self.name)

    async def _run(self) -> None:
        while (item := await self._inbox.get()) is not _STOP:
            await self._handle(item)

    async def _handle(self, item: _Item) -> None:
        try:
            if isinstance(item, _EventItem):
                await self._handle_event(item)
            elif isinstance(item, Delivery):
                await self._handle_delivery(item)
        except Exception:  # a bug in tactor itself: never let it kill the actor
            log.exception("%s: unexpected error while handling a message", self.name)

    # -- events ----------------------------------------------------------------

    async def _handle_event(self, item: _EventItem) -> None:
        handler, fn = self.handlers[item.handler]
        codec = self.config.codec
        try:
            event = parse_event(codec.loads(item.payload))
            value = codec.from_wire(event.body, handler.decode_type(event.type_name))
        except DecodeError as exc:
            log.warning(
                "%s.%s: dropped an event on %r: %s", self.name, handler.name, item.topic, exc
            )
            return
        try:
            await fn(value)
        except Exception:
            log.exception(
                "%s.%s raised while handling an event on %r", self.name, handler.name, item.topic
            )

    # -- requests --------------------------------------------------------------

    async def _handle_delivery(self, delivery: Delivery) -> None:
        if self.config.dead_letters.exhausted(delivery):
            await self._set_aside(delivery)
            return
        try:
            unreadable = await self._handle_request(delivery.payload)
        except asyncio.CancelledError:
            raise  # stopped mid-message: not acknowledged, it goes back to the mailbox
        except BaseException:
            await self._ack(delivery)
            raise
        if unreadable is not None:
            await self._set_aside(delivery, f"{unreadable} ({len(delivery.payload)} bytes)")
        else:
            await self._ack(delivery)

    async def _ack(self, delivery: Delivery) -> None:
        try:
            await delivery.ack()
        except TransportError as exc:
            log.warning("%s: could not acknowledge (may be delivered again): %s", self.name, exc)

    async def _set_aside(self, delivery: Delivery, unreadable: str | None = None) -> None:
        assert self.schema is not None  # only actors have mailboxes
        policy, codec = self.config.dead_letters, self.config.codec
        await policy.set_aside(delivery, self.schema.endpoint, codec, self.name, unreadable)

    async def _handle_request(self, payload: bytes) -> DecodeError | None:
        """Handle one request; return why it cannot be read, if it cannot (to set it aside)."""
        codec = self.config.codec
        data: Any = None
        try:
            data = codec.loads(payload)
            request = parse_request(data)
        except DecodeError as exc:
            await self._answer_malformed(data, exc)
            return exc
        if len(payload) > self.config.max_payload:
            limit = self.config.max_payload
            await self._fail(
                request,
                "payload_too_large",
                f"request is {len(payload)} bytes, over max_payload={limit}",
            )
            return None
        if request.deadline is not None and request.deadline <= time.time():
            await self._fail(
                request, "deadline", "the deadline passed before the message was handled"
            )
            return None
        watch: Watch | None = None
        if request.reply_to is not None:  # a call: cancelled at its deadline or by its caller
            cancellations = self.config.cancellations
            if cancellations.called_off(request.id):
                self._log_cancelled(request, "its caller gave up before it was taken")
                return None
            assert self._loop_task is not None  # the task that runs every handler
            watch = cancellations.watch(request.id, request.deadline, self._loop_task)
        try:
            reply = await self._invoke(request)
        except asyncio.CancelledError:
            if watch is None or not watch.absorb():
                raise  # the runner itself is being cancelled (stopping)
            self._log_cancelled(request, f"cancelled ({watch.fired})")
            return None  # nobody waits for it any more: no reply
        except Exception as exc:  # a fault in tactor itself: the caller still gets its reply
            log.exception(
                "%s: internal error handling %s.%s", self.name, request.endpoint, request.method
            )
            reply = self._failure(request, "internal", f"internal error in the provider: {exc!r}")
        finally:
            if watch is not None:
                watch.close()
        await self._reply(request, reply)
        return None

    def _log_cancelled(self, request: Request, what: str) -> None:
        where = f"{request.endpoint}.{request.method}"
        log.info("%s: %s from %s: %s", self.name, where, request.sender, what)

    async def _answer_malformed(self, data: Any, exc: DecodeError) -> None:
        """Answer a request that could not be read, if it says where to (an id and a reply
        address): a caller of another envelope version hears why instead of waiting."""
        if not isinstance(data, dict):
            return
        ident, reply_to = data.get("id"), data.get("r")
        if not (isinstance(ident, str) and isinstance(reply_to, str)):
            return
        message = f"the provider could not read the request: {exc}"
        reply = Reply(ident, self.name, False, error=failure("malformed", message))
        try:
            await self.config.transport.post(reply_to, self.config.codec.dumps(reply.to_wire()))
        except (TransportError, EncodeError) as failed:
            log.warning("%s: could not answer a malformed request: %r", self.name, failed)

    async def _invoke(self, request: Request) -> Reply:
        assert self.schema is not None
        codec = self.config.codec
        method = self.schema.methods.get(request.method)
        if method is None:
            return self._failure(
                request,
                "unknown_method",
                f"{self.schema.cls.__qualname__} has no endpoint method {request.method!r}",
            )
        data = request.args
        if request.positional is not None:
            names = [name for name, _ in method.by_position]
            if len(request.positional) > len(names):
                return self._failure(
                    request,
                    "invalid_arguments",
                    f"{method.qualname} takes {len(names)} positional arguments "
                    f"but {len(request.positional)} were given",
                )
            data = {**dict(zip(names, request.positional, strict=False)), **data}
        try:
            decoded = codec.from_wire(data, method.args_type)
        except DecodeError as exc:
            return self._failure(request, "invalid_arguments", str(exc), errors=list(exc.errors))
        args, kwargs = method.call_args(decoded)
        try:
            with running_deadline(request.deadline):
                result = await method.function(self.instance, *args, **kwargs)
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise  # this runner is being cancelled (stopping): not the handler's outcome
            return self._raised(request, exc)  # the handler raised it itself
        except Exception as exc:
            return self._raised(request, exc)
        try:
            return Reply(
                request.id, self.name, True, result=codec.to_wire(result, method.result_type)
            )
        except EncodeError as exc:
            return self._bad_result(request, exc)

    def _raised(self, request: Request, exc: BaseException) -> Reply:
        assert self.schema is not None
        if request.kind == "tell":
            log.error(
                "%s.%s raised while handling a tell",
                self.name,
                request.method,
                exc_info=(type(exc), exc, exc.__traceback__),
            )
        error = error_to_wire(exc, self.schema.errors, self.config.codec)
        return Reply(request.id, self.name, False, error=error)

    def _bad_result(self, request: Request, exc: EncodeError) -> Reply:
        """The failure sent when a handler's result cannot be sent as its declared type."""
        assert self.schema is not None
        method = self.schema.methods[request.method]
        declared = type_name(method.result_type)
        message = f"{method.qualname} returned a value that does not fit '-> {declared}': {exc}"
        return self._failure(request, "encode", message)

    def _failure(self, request: Request, code: str, message: str, **extra: Any) -> Reply:
        log.warning(
            "%s: %s.%s from %s: %s",
            self.name,
            request.endpoint,
            request.method,
            request.sender,
            message,
        )
        return Reply(request.id, self.name, False, error=failure(code, message, **extra))

    async def _fail(self, request: Request, code: str, message: str) -> None:
        await self._reply(request, self._failure(request, code, message))

    async def _reply(self, request: Request, reply: Reply) -> None:
        if request.reply_to is None:
            return  # a tell: nobody waits
        payload = self._reply_bytes(request, reply)
        if len(payload) > self.config.max_payload:
            limit = self.config.max_payload
            message = f"the reply is {len(payload)} bytes, over max_payload={limit}"
            failed = self._failure(request, "payload_too_large", message)
            payload = self.config.codec.dumps(failed.to_wire())
        if request.deadline is not None and request.deadline <= time.time():
            log.info(
                "%s: %s.%s finished after its deadline; reply dropped",
                self.name,
                request.endpoint,
                request.method,
            )
            return
        try:
            await self.config.transport.post(request.reply_to, payload)  # never waits for room
        except TransportError as exc:
            log.warning("%s: could not reply to %s: %r", self.name, request.sender, exc)

    def _reply_bytes(self, request: Request, reply: Reply) -> bytes:
        """The reply's bytes; a reply that cannot be encoded becomes a failure that can.

        Every request gets exactly one reply: a result that passed ``to_wire`` but
        that JSON cannot hold (an int over 64 bits, an object left unconverted)
        becomes an ``encode`` failure; an error whose details cannot be encoded
        is sent with its type and message only.
        """
        codec = self.config.codec
        try:
            return codec.dumps(reply.to_wire())
        except EncodeError as exc:
            if reply.ok:
                reply = self._bad_result(request, exc)
            else:
                error = reply.error or {}
                reply = self._failure(
                    request,
                    "remote",
                    f"{error.get('message', '')} (details not sent: {exc})",
                    type=str(error.get("type", "Exception")),
                )
        try:
            return codec.dumps(reply.to_wire())
        except EncodeError:  # e.g. lone surrogates in a message: send it escaped
            wire = reply.to_wire()
            escaped = str(wire["e"]).encode("utf-8", "backslashreplace").decode("ascii")
            return codec.dumps({**wire, "e": failure("remote", escaped)})
