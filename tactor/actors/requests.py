"""Serving one actor's requests: decode, check, invoke, reply — each gets exactly one reply.

For each request a :class:`Requests` decodes the envelope, checks its size and
deadline, runs the method under the request's deadline (inherited by the
calls it makes) and its cancellation watch, encodes the result or the error,
and replies. Whatever the handler does — returns what JSON cannot hold,
raises an exception whose details cannot be encoded, raises ``CancelledError``
itself — its caller gets one reply, at once; only a cancelled call (its caller
gone) gets none. Acknowledging the delivery is the runner's part.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..codecs import Codec, type_name
from ..errors import DecodeError, EncodeError, TransportError
from ..transports.base import Transport
from ..transports.consumer import Delivery
from .cancellation import Cancellations, Watch
from .dead_letters import MALFORMED, RAISED, REJECTED, Aside, DeadLetterPolicy
from .deadline import running_deadline
from .envelope import Reply, Request, parse_request
from .failures import error_to_wire, failure
from .schema import ActorSchema
from .tasks import TaskSet
from .telemetry import Telemetry

__all__ = ["Requests", "RunnerConfig"]

log = logging.getLogger(__name__)

#: Failures of a tell that its provider rejected unhandled: moved to the dead letters.
_REJECTIONS = frozenset({"unknown_method", "invalid_arguments", "payload_too_large"})
#: The codes of a failure the handler raised (see ``error_to_wire``).
_RAISED = frozenset({"remote", "interface"})


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """What a runner needs from its system."""

    transport: Transport
    codec: Codec
    max_payload: int
    tasks: TaskSet
    cancellations: Cancellations
    dead_letters: DeadLetterPolicy
    telemetry: Telemetry
    #: Where a ``SystemExit``, ``KeyboardInterrupt`` or other ``BaseException`` raised by
    #: a handler goes (after its caller was answered), with the runner's name: None, on up
    #: (it ends the program, as it would any program); a process provider's child takes it
    #: (the runner stops taking messages; the child drains, then exits as it says).
    leaving: Callable[[str, BaseException], None] | None = None


class Requests:
    """Handles the requests of one actor instance (``name`` is its provider id)."""

    def __init__(
        self, config: RunnerConfig, name: str, instance: object | None, schema: ActorSchema | None
    ) -> None:
        self.config = config
        self.name = name
        self.instance = instance
        self.schema = schema
        self.current: Request | None = None  # the request handled last (or now)

    async def handle(self, delivery: Delivery, task: asyncio.Task[Any]) -> Aside | None:
        """Handle the request ``delivery`` holds in ``task`` (the runner's); return why to
        set it aside instead of acknowledging it, if so: it cannot be read, or it is a tell
        rejected unhandled or whose handler raised. A call's reply may acknowledge it
        (``Delivery.reply_and_ack``)."""
        codec, payload = self.config.codec, delivery.payload
        data: Any = None
        try:
            data = codec.loads(payload)
            request = parse_request(data)
        except DecodeError as exc:
            message = f"the provider could not read the request: {exc}"
            await self._answer(data, "malformed", message)
            return Aside(MALFORMED, f"{exc} ({len(payload)} bytes)")
        self.current = request
        telemetry = self.config.telemetry
        token = telemetry.handling(request, self.name)
        failed: str | None = "cancelled"  # unless it ends otherwise
        try:
            outcome = await self._handle(request, delivery, task)
            failed = "cancelled" if outcome is None else outcome.failure_type
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # SystemExit and its kind, named as in their reply
            failed = f"{type(exc).__module__}.{type(exc).__qualname__}"
            raise
        finally:
            telemetry.handled(token, failed)
        if request.reply_to is not None or outcome is None or outcome.error is None:
            return None
        # A tell that failed, which nobody waits to hear of: kept, to be seen and replayed
        # once it fits (rejected) or once what made its handler raise is mended (raised).
        detail = f"{failed}: {outcome.error.get('message', '')}"  # failed: the error's type
        if failed in _REJECTIONS:
            return Aside(REJECTED, detail)
        if outcome.error.get("code") in _RAISED:
            return Aside(RAISED, detail)
        return None

    async def _handle(
        self, request: Request, delivery: Delivery, task: asyncio.Task[Any]
    ) -> Reply | None:
        """Handle a request that could be read; its reply (not sent for a tell), or None if
        it was cancelled (nobody waits for it)."""
        size = len(delivery.payload)
        if size > self.config.max_payload:
            limit = self.config.max_payload
            message = f"request is {size} bytes, over max_payload={limit}"
            reply = self._failure(request, "payload_too_large", message)
        elif request.deadline is not None and request.deadline <= time.time():
            message = "the deadline passed before the message was handled"
            reply = self._failure(request, "deadline", message)
        else:
            ran = await self._run(request, delivery, task)
            if ran is None:
                return None
            reply = ran
        await self._reply(request, reply, delivery)
        return reply

    async def _run(
        self, request: Request, delivery: Delivery, task: asyncio.Task[Any]
    ) -> Reply | None:
        """Run the request's method under its cancellation watch; its reply, or None if it
        was cancelled (its caller gone or its deadline passed)."""
        watch: Watch | None = None
        if request.reply_to is not None:  # a call: cancelled at its deadline or by its caller
            cancellations = self.config.cancellations
            if cancellations.called_off(request.id):
                self._log_cancelled(request, "its caller gave up before it was taken")
                return None
            watch = cancellations.watch(request.id, request.deadline, task)
        try:
            return await self._invoke(request)
        except asyncio.CancelledError:
            if watch is None or not watch.absorb():
                raise  # the runner itself is being cancelled (stopping)
            self._log_cancelled(request, f"cancelled ({watch.fired})")
            return None  # nobody waits for it any more: no reply
        except Exception as exc:  # a fault in tactor itself: the caller still gets its reply
            log.exception("%s: internal error handling %s", self.name, request)
            return self._failure(request, "internal", f"internal error in the provider: {exc!r}")
        except BaseException as exc:
            # SystemExit, KeyboardInterrupt or another BaseException from the handler goes on
            # up (it ends the provider, as it would end a program), after its caller hears of
            # it: a reply now, not a wait until the deadline.
            await self._reply(request, self._raised(request, exc), delivery)
            raise
        finally:
            if watch is not None:
                watch.close()

    def _log_cancelled(self, request: Request, what: str) -> None:
        log.info("%s: %s: %s", self.name, request, what)

    async def answer_unhandled(self, payload: bytes, code: str, message: str) -> None:
        """Answer a request that will not be handled (one set aside) with failure ``code``."""
        try:
            data = self.config.codec.loads(payload)
        except DecodeError:
            return
        await self._answer(data, code, message)

    async def _answer(self, data: Any, code: str, message: str) -> None:
        """Answer the request ``data`` with failure ``code`` if it says where to (an id and a
        reply address), however little else of it can be read: a caller of another envelope
        version, or of a call set aside, hears why instead of waiting for its deadline."""
        if not isinstance(data, dict):
            return
        ident, reply_to = data.get("id"), data.get("r")
        if not (isinstance(ident, str) and isinstance(reply_to, str)):
            return
        reply = Reply(ident, self.name, False, error=failure(code, message))
        try:
            await self.config.transport.post(reply_to, self.config.codec.dumps(reply.to_wire()))
        except (TransportError, EncodeError) as failed:
            log.warning(
                "%s: could not answer %s.%s (message %s) with %s: %r",
                self.name, data.get("ep"), data.get("m"), ident, code, failed,
            )  # fmt: skip

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
                "%s: %s raised while handling a tell",
                self.name,
                request,
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
        log.warning("%s: %s: %s", self.name, request, message)
        return Reply(request.id, self.name, False, error=failure(code, message, **extra))

    async def _reply(self, request: Request, reply: Reply, delivery: Delivery) -> None:
        """Send ``reply`` to a call's caller (with the acknowledgement of ``delivery``, where
        its transport takes both at once)."""
        if request.reply_to is None:
            return  # a tell: nobody waits
        payload = self._reply_bytes(request, reply)
        if len(payload) > self.config.max_payload:
            limit = self.config.max_payload
            message = f"the reply is {len(payload)} bytes, over max_payload={limit}"
            failed = self._failure(request, "payload_too_large", message)
            payload = self.config.codec.dumps(failed.to_wire())
        if request.deadline is not None and request.deadline <= time.time():
            log.info("%s: %s finished after its deadline; reply dropped", self.name, request)
            return
        try:  # (a post never waits for room)
            if not delivery.reply_and_ack(request.reply_to, payload):
                await self.config.transport.post(request.reply_to, payload)
        except TransportError as exc:
            log.warning("%s: could not reply to %s: %r", self.name, request, exc)

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
