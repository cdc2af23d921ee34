"""The caller's side: send requests, route replies, gather broadcasts, all under one deadline.

A node has one reply inbox. Each call registers a pending entry under its
message id; the reply router resolves it. A broadcast registers one entry
that expects a reply from each provider live at send time and completes as
soon as all have answered — or the deadline passes, whichever comes first.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from ..codecs import Codec, type_name
from ..errors import (
    CallTimeout,
    DecodeError,
    EncodeError,
    MailboxFull,
    NoProvider,
    PayloadTooLarge,
    TransportClosed,
    TransportError,
)
from ..transports.base import Transport
from ..transports.endpoints import endpoint_mailbox, no_provider_message, provider_mailbox
from ..transports.inbox import Inbox
from .broadcast import BroadcastResult, Outcome
from .cancellation import Cancellations
from .deadline import DeadlineTimer
from .envelope import Reply, parse_reply, request_wire
from .failures import error_from_wire
from .pending import Pending
from .schema import ActorSchema, MethodSchema
from .telemetry import Telemetry

__all__ = ["Calls", "Outgoing"]

log = logging.getLogger(__name__)


@dataclass(slots=True)  # not frozen: built for every message, and frozen init is slow
class Outgoing:
    """A call, tell or broadcast ready to send: its target, wire arguments and deadline."""

    schema: ActorSchema
    method: MethodSchema
    args: dict[str, Any]
    positional: list[Any] | None
    deadline: float
    made: float  # when it was made (time.time()): the deadline's start, for messages

    @property
    def what(self) -> str:
        return f"{self.schema.endpoint}.{self.method.name}"

    @property
    def budget(self) -> str:
        """The deadline, for messages: ``"deadline 2.0 s"``."""
        return f"deadline {round(self.deadline - self.made, 6):g} s"


class Calls:
    """Sends requests and matches replies for one node.

    Deadlines cost no timer per call: one timer, armed for the nearest
    deadline of the calls in flight, sweeps the expired ones and re-arms.
    Calls usually share a timeout, so a new call rarely touches the timer.
    """

    def __init__(
        self,
        node: str,
        transport: Transport,
        codec: Codec,
        cancellations: Cancellations,
        *,
        max_payload: int,
        telemetry: Telemetry,
    ) -> None:
        self.node = node
        self.telemetry = telemetry
        self._cancellations = cancellations
        self.reply_inbox = f"node.{node}"
        self._transport = transport
        self._codec = codec
        self.max_payload = max_payload  # lowered at start to what the transport carries
        self._pending: dict[str, Pending] = {}
        self._sending: dict[str, Pending] = {}  # tells being delivered (no reply awaited)
        self._ids = itertools.count()
        self._inbox: Inbox | None = None
        self._timer = DeadlineTimer(self._expire)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._inbox = await self._transport.open_inbox(
            self.reply_inbox, self._on_reply, self._fail_pending
        )

    def _fail_pending(self, exc: TransportError) -> None:
        """The transport lost replies: fail every waiting call now instead of at its deadline."""
        if self._pending:
            log.warning("node %s: %d call(s) failed: %s", self.node, len(self._pending), exc)
        for pending in self._pending.values():
            pending.fail(TransportError(f"{exc}; the call may or may not have been handled"))

    async def close(self) -> None:
        if self._inbox is not None:
            await self._inbox.close()
        for pending in self._pending.values():
            pending.fail(TransportClosed("the actor system was closed"))
        self._timer.cancel()

    def _on_reply(self, payload: bytes) -> None:
        """Match a reply to its waiting call (called by the transport for each reply)."""
        try:
            reply = parse_reply(self._codec.loads(payload))
        except DecodeError as exc:
            log.warning("node %s: dropped a malformed reply: %s", self.node, exc)
            return
        pending = self._pending.get(reply.id)
        if pending is None:
            log.debug(
                "node %s: late reply to message %s from %s dropped (its caller is gone)",
                self.node, reply.id, reply.provider,
            )  # fmt: skip
        else:
            pending.add(reply)

    # -- deadlines -------------------------------------------------------------

    def _track(self, table: dict[str, Pending], msg_id: str, pending: Pending) -> None:
        table[msg_id] = pending
        self._timer.track(pending.deadline)

    def _expire(self, now: float) -> float | None:
        """Expire the calls and tells whose deadline passed; the nearest one ahead."""
        nearest: float | None = None
        for table in (self._pending, self._sending):
            for pending in table.values():
                if pending.deadline <= now:
                    pending.expire()
                elif not pending.done.done() and (nearest is None or pending.deadline < nearest):
                    nearest = pending.deadline
        return nearest

    @staticmethod
    async def _deliver_by(pending: Pending, deliver: Awaitable[Any]) -> Any:
        """Await a delivery that the deadline timer may cancel; TimeoutError if it did."""
        task = pending.sender = asyncio.current_task()
        assert task is not None
        cancelling = task.cancelling()
        try:
            return await deliver
        except asyncio.CancelledError:
            if pending.expired and task.uncancel() <= cancelling:
                raise TimeoutError from None
            raise
        finally:
            pending.sender = None

    # -- sending ---------------------------------------------------------------

    def _request(self, kind: str, out: Outgoing, label: str) -> tuple[str, bytes, Any]:
        """The message's id and bytes, and its telemetry token (``label``: call, tell or
        broadcast); the token is ended here if the message cannot be sent."""
        msg_id = f"{self.node}.{next(self._ids)}"  # unique: the node id is random
        token, trace = self.telemetry.sending(label, out.schema.endpoint, out.method.name, msg_id)
        call = kind == "call"
        wire = request_wire(
            kind,
            msg_id,
            out.schema.endpoint,
            out.method.name,
            out.args,
            self.reply_inbox if call else None,
            out.deadline if call else None,  # an accepted tell never expires
            self.node,
            out.positional,
            trace,
        )
        try:
            payload = self._codec.dumps(wire)
        except EncodeError as exc:
            failed: Exception = self._unsendable(out, exc)
        else:
            if len(payload) <= self.max_payload:
                return msg_id, payload, token
            failed = PayloadTooLarge(
                f"the request to {out.what} is {len(payload)} bytes, "
                f"over max_payload={self.max_payload}; send less or raise the limit"
            )
        self.telemetry.sent(token, failed)
        raise failed from None

    def _unsendable(self, out: Outgoing, exc: EncodeError) -> EncodeError:
        """An EncodeError naming the argument JSON cannot hold (an int over 64 bits, say)."""
        named = [(repr(name), value) for name, value in out.args.items()]
        numbered = [(f"#{i}", value) for i, value in enumerate(out.positional or ())]
        for name, value in [*named, *numbered]:
            try:
                self._codec.dumps(value)
            except EncodeError as culprit:
                return EncodeError(f"{out.what}: argument {name}: {culprit}")
        return EncodeError(f"{out.what}: {exc}")

    def _deliver(self, endpoint: str, provider: str | None, payload: bytes) -> Awaitable[None]:
        mailbox = endpoint_mailbox(endpoint) if provider is None else provider_mailbox(provider)
        return self._transport.deliver(mailbox, payload, endpoint=endpoint, provider=provider)

    @staticmethod
    def _check_deadline(out: Outgoing, what: str) -> None:
        if out.deadline <= time.time():
            raise CallTimeout(
                f"{what}: the deadline passed before it was sent ({out.budget}, "
                "inherited from the message being handled or from tactor.deadline())"
            )

    def _result(self, schema: ActorSchema, method: MethodSchema, reply: Reply) -> Any:
        if reply.ok:
            if method.untyped:
                return reply.result  # a caller without the interface gets the JSON data
            try:
                return self._codec.from_wire(reply.result, method.result_type)
            except DecodeError as exc:
                declared = type_name(method.result_type)
                raise DecodeError(
                    f"the result of {schema.endpoint}.{method.name} from provider "
                    f"{reply.provider} does not fit '-> {declared}' (a wrong value, or the "
                    "provider runs another version of the interface)",
                    exc.errors,
                ) from None
        raise error_from_wire(
            reply.error or {},
            schema.errors,
            self._codec,
            endpoint=schema.endpoint,
            method=method.name,
            provider=reply.provider,
        )

    async def call(self, out: Outgoing, provider: str | None) -> Any:
        """Send one call and return its decoded result, or raise what the provider raised."""
        self._check_deadline(out, "call")
        msg_id, payload, token = self._request("call", out, "call")
        pending = Pending(self._loop, out.deadline)
        self._track(self._pending, msg_id, pending)
        try:
            # One deadline covers both the wait for room in the mailbox and the reply.
            sending = self._deliver(out.schema.endpoint, provider, payload)
            try:
                await self._deliver_by(pending, sending)
            except TimeoutError:
                raise MailboxFull(
                    f"call {out.what}: the mailbox stayed full until the deadline ({out.budget})"
                ) from None
            try:
                await pending.done
            except asyncio.CancelledError:
                self._cancellations.give_up(msg_id, out.deadline)  # the caller gave up
                raise
            except TimeoutError:
                raise CallTimeout(
                    f"call {out.what}: no reply within the deadline ({out.budget}); "
                    "the provider may be slow, overloaded or gone"
                ) from None
            (reply,) = pending.replies.values()
            result = self._result(out.schema, out.method, reply)
        except BaseException as exc:
            self.telemetry.sent(token, exc)
            raise
        finally:
            del self._pending[msg_id]
            if pending.done.done() and not pending.done.cancelled():
                pending.done.exception()  # failed while we were still sending: seen, not lost
        self.telemetry.sent(token, None)
        return result

    async def tell(self, out: Outgoing, provider: str | None) -> None:
        """Put a one-way message into the mailbox; returns once the transport accepted it."""
        what = f"tell {out.what}"
        self._check_deadline(out, what)
        msg_id, payload, token = self._request("tell", out, "tell")
        pending = Pending(self._loop, out.deadline)
        self._track(self._sending, msg_id, pending)
        try:
            sending = self._deliver(out.schema.endpoint, provider, payload)
            try:
                await self._deliver_by(pending, sending)
            except TimeoutError:
                raise MailboxFull(
                    f"{what}: the mailbox stayed full until the deadline ({out.budget})"
                ) from None
        except BaseException as exc:
            self.telemetry.sent(token, exc)
            raise
        finally:
            del self._sending[msg_id]
        self.telemetry.sent(token, None)

    async def _send_waiting(
        self, endpoint: str, provider: str, payload: bytes, deadline: float, what: str
    ) -> None:
        """Deliver to a provider whose mailbox was full, waiting for room until the deadline."""
        try:
            async with asyncio.timeout(deadline - time.time()):
                await self._deliver(endpoint, provider, payload)
        except TimeoutError:
            raise MailboxFull(f"{what}: the mailbox stayed full until the deadline") from None

    async def broadcast(self, out: Outgoing) -> BroadcastResult[Any]:
        """Call every live provider; return when all have answered or at the deadline."""
        self._check_deadline(out, f"broadcast {out.what}")
        msg_id, payload, token = self._request("call", out, "broadcast")
        try:
            result = await self._broadcast(out, msg_id, payload)
        except BaseException as exc:
            self.telemetry.sent(token, exc)
            raise
        self.telemetry.sent(token, None)
        return result

    async def _broadcast(self, out: Outgoing, msg_id: str, payload: bytes) -> BroadcastResult[Any]:
        schema, method, deadline = out.schema, out.method, out.deadline
        what = f"broadcast {out.what}"
        pending = Pending(self._loop, deadline, broadcast=True)
        self._track(self._pending, msg_id, pending)
        live: list[str] = []
        unsent: dict[str, BaseException] = {}
        try:
            # One step puts the request into every live provider's mailbox that has room.
            deliver = self._transport.deliver_to_providers(schema.endpoint, payload)
            reached, full = await self._deliver_by(pending, deliver)
            live = [*reached, *full]
            if not live:  # as for a call: nobody to answer is an error, not an empty success
                raise NoProvider(f"{what}: {no_provider_message(schema.endpoint, None)}")
            pending.settle(live)
            if full:  # rare: wait for room in those mailboxes, within the deadline
                sent = await asyncio.gather(
                    *(
                        self._send_waiting(schema.endpoint, p, payload, deadline, what)
                        for p in full
                    ),
                    return_exceptions=True,
                )
                unsent = {p: e for p, e in zip(full, sent, strict=True) if e is not None}
                pending.forget(unsent)  # gone since the registry read: do not wait for them
            await pending.done
        except asyncio.CancelledError:
            if live:
                self._cancellations.give_up(msg_id, deadline)  # the caller gave up
            raise
        except TimeoutError:
            answered = len(pending.replies)
            log.debug(
                "%s (message %s): %d of %d answered by the deadline",
                what, msg_id, answered, len(live),
            )  # fmt: skip
        except TransportError as exc:  # replies were lost: the silent ones get this error
            unsent.update({p: exc for p in live if p not in pending.replies and p not in unsent})
        finally:
            del self._pending[msg_id]
        return BroadcastResult([self._outcome(schema, method, p, pending, unsent) for p in live])

    def _outcome(
        self,
        schema: ActorSchema,
        method: MethodSchema,
        provider: str,
        pending: Pending,
        unsent: dict[str, BaseException],
    ) -> Outcome[Any]:
        reply = pending.replies.get(provider)
        if reply is None:
            return Outcome(provider, answered=False, error=unsent.get(provider))
        try:
            return Outcome(provider, answered=True, value=self._result(schema, method, reply))
        except Exception as exc:
            return Outcome(provider, answered=True, error=exc)
