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
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..codecs import Codec
from ..errors import (
    CallTimeout,
    DecodeError,
    MailboxFull,
    PayloadTooLarge,
    TransportClosed,
    TransportError,
)
from ..transports.base import Inbox, Transport
from .broadcast import BroadcastResult, Outcome
from .envelope import Reply, Request, parse_reply
from .failures import error_from_wire
from .schema import ActorSchema, MethodSchema

__all__ = ["Calls", "Outgoing", "endpoint_mailbox", "provider_mailbox"]

log = logging.getLogger("tactor")


def endpoint_mailbox(endpoint: str) -> str:
    """The mailbox every provider of ``endpoint`` competes on."""
    return f"ep:{endpoint}"


def provider_mailbox(provider: str) -> str:
    """The mailbox only ``provider`` consumes (direct calls and broadcasts)."""
    return f"pv:{provider}"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A call, tell or broadcast ready to send: its target, wire arguments and deadline."""

    schema: ActorSchema
    method: MethodSchema
    args: dict[str, Any]
    positional: list[Any] | None
    deadline: float

    @property
    def what(self) -> str:
        return f"{self.schema.endpoint}.{self.method.name}"


class _Pending:
    """Replies awaited for one message id: one for a call, one per provider for a broadcast."""

    __slots__ = ("done", "expected", "replies")

    def __init__(self, expected: frozenset[str] | None) -> None:
        self.expected = expected
        self.replies: dict[str, Reply] = {}
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def add(self, reply: Reply) -> None:
        if self.expected is not None and reply.provider not in self.expected:
            return
        self.replies.setdefault(reply.provider, reply)
        self._check()

    def forget(self, providers: Iterable[str]) -> None:
        """Stop waiting for providers the request never reached."""
        if self.expected is not None:
            self.expected = self.expected.difference(providers)
            self._check()

    def _check(self) -> None:
        if not self.done.done() and (self.expected is None or self.expected.issubset(self.replies)):
            self.done.set_result(None)


class Calls:
    """Sends requests and matches replies for one node."""

    def __init__(
        self,
        node: str,
        transport: Transport,
        codec: Codec,
        *,
        max_payload: int,
        providers: Callable[[str], Awaitable[list[str]]],
    ) -> None:
        self.node = node
        self.reply_inbox = f"node.{node}"
        self._transport = transport
        self._codec = codec
        self._max_payload = max_payload
        self._providers = providers
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count()
        self._inbox: Inbox | None = None

    async def start(self) -> None:
        self._inbox = await self._transport.open_inbox(
            self.reply_inbox, self._on_reply, self._fail_pending
        )

    def _fail_pending(self, exc: TransportError) -> None:
        """The transport lost replies: fail every waiting call now instead of at its deadline."""
        if self._pending:
            log.warning("node %s: %d call(s) failed: %s", self.node, len(self._pending), exc)
        for pending in self._pending.values():
            if not pending.done.done():
                pending.done.set_exception(
                    TransportError(f"{exc}; the call may or may not have been handled")
                )

    async def close(self) -> None:
        if self._inbox is not None:
            await self._inbox.close()
        for pending in self._pending.values():
            if not pending.done.done():
                pending.done.set_exception(TransportClosed("the actor system was closed"))

    def _on_reply(self, payload: bytes) -> None:
        """Match a reply to its waiting call (called by the transport for each reply)."""
        try:
            reply = parse_reply(self._codec.loads(payload))
        except DecodeError as exc:
            log.warning("node %s: dropped a malformed reply: %s", self.node, exc)
            return
        pending = self._pending.get(reply.id)
        if pending is None:
            log.debug("node %s: late reply %s from %s dropped", self.node, reply.id, reply.provider)
        else:
            pending.add(reply)

    # -- sending ---------------------------------------------------------------

    def _request(self, kind: str, out: Outgoing) -> tuple[str, bytes]:
        msg_id = f"{self.node}.{next(self._ids)}"  # unique: the node id is random
        request = Request(
            kind=kind,
            id=msg_id,
            endpoint=out.schema.endpoint,
            method=out.method.name,
            args=out.args,
            reply_to=self.reply_inbox if kind == "call" else None,
            deadline=out.deadline if kind == "call" else None,  # an accepted tell never expires
            sender=self.node,
            positional=out.positional,
        )
        payload = self._codec.dumps(request.to_wire())
        if len(payload) > self._max_payload:
            raise PayloadTooLarge(
                f"the request to {out.what} is {len(payload)} bytes, "
                f"over max_payload={self._max_payload}; send less or raise the limit"
            )
        return msg_id, payload

    async def _send(
        self, endpoint: str, provider: str | None, payload: bytes, deadline: float, what: str
    ) -> None:
        """Deliver to the endpoint's mailbox (or the provider's) if it is live, by the deadline."""
        remaining = self._remaining(deadline, what)
        try:
            async with asyncio.timeout(remaining):
                await self._deliver(endpoint, provider, payload)
        except TimeoutError:
            raise MailboxFull(f"{what}: the mailbox stayed full until the deadline") from None

    def _deliver(self, endpoint: str, provider: str | None, payload: bytes) -> Awaitable[None]:
        mailbox = endpoint_mailbox(endpoint) if provider is None else provider_mailbox(provider)
        return self._transport.deliver(mailbox, payload, endpoint=endpoint, provider=provider)

    @staticmethod
    def _remaining(deadline: float, what: str) -> float:
        remaining = deadline - time.time()
        if remaining <= 0:
            raise CallTimeout(f"{what}: the deadline passed before it was sent")
        return remaining

    def _result(self, schema: ActorSchema, method: MethodSchema, reply: Reply) -> Any:
        if reply.ok:
            if method.untyped:
                return reply.result  # a caller without the interface gets the JSON data
            return self._codec.from_wire(reply.result, method.result_type)
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
        msg_id, payload = self._request("call", out)
        pending = self._pending[msg_id] = _Pending(None)
        sent = False
        try:
            # One deadline covers both the wait for room in the mailbox and the reply.
            async with asyncio.timeout(self._remaining(out.deadline, "call")):
                await self._deliver(out.schema.endpoint, provider, payload)
                sent = True
                await pending.done
        except TimeoutError:
            if not sent:
                raise MailboxFull(
                    f"call {out.what}: the mailbox stayed full until the deadline"
                ) from None
            raise CallTimeout(f"call {out.what}: no reply within the deadline") from None
        finally:
            del self._pending[msg_id]
        reply = next(iter(pending.replies.values()))
        return self._result(out.schema, out.method, reply)

    async def tell(self, out: Outgoing, provider: str | None) -> None:
        """Put a one-way message into the mailbox; returns once the transport accepted it."""
        _, payload = self._request("tell", out)
        await self._send(out.schema.endpoint, provider, payload, out.deadline, f"tell {out.what}")

    async def broadcast(self, out: Outgoing) -> BroadcastResult[Any]:
        """Call every live provider; return when all have answered or at the deadline."""
        schema, method, deadline = out.schema, out.method, out.deadline
        live = await self._providers(schema.endpoint)
        if not live:
            return BroadcastResult([])
        msg_id, payload = self._request("call", out)
        pending = self._pending[msg_id] = _Pending(frozenset(live))
        what = f"broadcast {out.what}"
        unsent: dict[str, BaseException] = {}
        try:
            async with asyncio.timeout(deadline - time.time()):
                sent = await asyncio.gather(
                    *(self._send(schema.endpoint, p, payload, deadline, what) for p in live),
                    return_exceptions=True,
                )
                unsent = {p: e for p, e in zip(live, sent, strict=True) if e is not None}
                pending.forget(unsent)  # gone since the registry read: do not wait for them
                await pending.done
        except TimeoutError:
            answered = len(pending.replies)
            log.debug("%s: %d of %d answered by the deadline", what, answered, len(live))
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
        pending: _Pending,
        unsent: dict[str, BaseException],
    ) -> Outcome[Any]:
        reply = pending.replies.get(provider)
        if reply is None:
            return Outcome(provider, answered=False, error=unsent.get(provider))
        try:
            return Outcome(provider, answered=True, value=self._result(schema, method, reply))
        except Exception as exc:
            return Outcome(provider, answered=True, error=exc)
