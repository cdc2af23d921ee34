"""A child process's transport: every verb forwarded to the parent's hub over a channel.

The parent serves the verbs (:mod:`tactor.transports.hub_server`); this side
holds no state of the hub, only what waits for answers and the local buffers
of consumers and subscriptions. A request is one frame and its answer one
frame; acknowledgements and posts are one-way frames (order on the socket
keeps them in sequence with what follows); a call's reply is one frame with the
acknowledgement of its message and the consumer's ask for the next
(``Delivery.reply_and_ack``). A queue item that comes for a get cancelled
meanwhile goes back to the front of its queue (a ``g`` frame).

Guarantees are the parent hub's: at-least-once mailboxes while the parent
lives; what the child took and did not acknowledge goes back to the hub when
the child closes or dies (on a close, counted as attempted only if the child
began it). Events are forwarded into a bounded buffer per
subscription (``subscription_buffer``); when it is full, events are dropped
rather than stall the channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from .. import errors
from ..errors import TransportClosed, TransportError
from .base import Transport
from .channel import Channel
from .consumer import DeadLetterEntry, Delivery, MailboxConsumer
from .endpoints import ProviderEntry
from .inbox import Inbox, InboxHandler, InboxLostHandler
from .memory_hub import DEFAULT_SUBSCRIPTION_BUFFER
from .subscription import BufferedSubscription, Subscription

__all__ = ["HubClient"]

Answer = tuple[Any, list[bytes]]


def _error(name: str, message: str) -> Exception:
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, errors.TactorError):
        return cls(message)
    if name == "ValueError":
        return ValueError(message)
    return TransportError(message)


class _ClientDelivery(Delivery):
    __slots__ = ("_acked", "_client", "_consumer", "_id")

    def __init__(
        self,
        consumer: _ClientConsumer,
        ident: int,
        mailbox: str,
        payload: bytes,
        attempts: int,
    ) -> None:
        super().__init__(mailbox, payload, attempts)
        self._consumer, self._client, self._id = consumer, consumer.client, ident
        self._acked = False

    def _settle(self) -> bool:
        """Mark it settled (acknowledged or set aside); False if it was already."""
        if self._acked:
            return False
        self._acked = True
        self._consumer.begun.pop(self._id, None)
        return True

    async def ack(self) -> None:
        if self._settle():
            self._client.channel.send(["a", self._id])

    def reply_and_ack(self, inbox: str, payload: bytes) -> bool:
        """One frame, written at once: the reply, this delivery's acknowledgement and, for
        its consumer, the ask for its next delivery (which the runner would ask next), so
        that the parent reads one frame per call and the child writes one."""
        if self._client.channel.closed.is_set() or not self._settle():
            return False
        ask = self._consumer.ask_ahead()
        self._client.channel.send(["pa", inbox, self._id, ask], payload, flush=True)
        return True

    async def dead_letter(self, reason: str, *, attempts: int, into: str, keep: int) -> int:
        self._settle()
        dropped, _ = await self._client.request(
            "dead_letter", self._id, reason, attempts, into, keep
        )
        return int(dropped)


class _ClientConsumer(MailboxConsumer):
    """Asks the parent for one delivery at a time (an ``n`` frame); the parent pushes it.

    A ``receive`` cancelled while waiting loses nothing: the delivery it asked
    for is kept for the next one. It has no push mode (``receive_or_park``
    waits as ``receive`` does): a child process serves one provider, so the
    runner's task waiting here costs nothing worth saving, where parking would
    cost a task per message, and loop turns, on every call (~15% of the child's CPU
    per call, measured).
    """

    __slots__ = ("_asked", "_closed", "_id", "_ready", "_waiter", "begun", "client")

    def __init__(self, client: HubClient, ident: int) -> None:
        self.client, self._id = client, ident
        self._ready: deque[_ClientDelivery] = deque()
        #: received (handed to the runner), not settled yet: id -> delivery
        self.begun: dict[int, _ClientDelivery] = {}
        self._waiter: asyncio.Future[None] | None = None
        self._asked = False
        self._closed = False

    def delivered(self, delivery: _ClientDelivery) -> None:
        self._ready.append(delivery)
        self._asked = False
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def lost(self, error: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)

    def ask_ahead(self) -> int | None:
        """This consumer's id if it is to ask for its next delivery now (with a reply that
        ends the handling of the last), else None: it asked already, has one waiting, or
        is closed."""
        if self._asked or self._closed or self._ready:
            return None
        self._asked = True
        return self._id

    async def receive(self) -> Delivery:
        while not self._ready:
            if self._closed or self.client.channel.closed.is_set():
                raise TransportClosed("mailbox consumer is closed")
            # Written at once, with what this turn sent before it (a reply, an ack).
            if not self._asked:
                self.client.channel.send(["n", self._id], flush=True)
                self._asked = True
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        delivery = self._ready.popleft()
        self.begun[delivery._id] = delivery
        return delivery

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.lost(TransportClosed("mailbox consumer is closed"))
        self.client.consumers.pop(self._id, None)
        if not self.client.channel.closed.is_set():
            # What it handed over and was not settled goes back; only what was begun counts
            # as attempted (a delivery asked for ahead may come as it stops).
            await self.client.request("close_consumer", self._id, list(self.begun))


class _ClientInbox(Inbox):
    def __init__(self, client: HubClient, name: str) -> None:
        self._client, self._name = client, name

    async def close(self) -> None:
        if self._client.inboxes.pop(self._name, None) is not None:
            await self._client.request("close_inbox", self._name)


class _ClientSubscription(BufferedSubscription):
    def __init__(self, client: HubClient, pattern: str, ident: int, buffer: int) -> None:
        super().__init__(pattern, buffer)
        self._client, self._id = client, ident

    def end(self) -> None:
        """The channel closed: a waiting ``receive`` and every later one raise TransportClosed."""
        self._closed = True
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(self._CLOSED)

    async def detach(self) -> None:
        if self._client.subscriptions.pop(self._id, None) is not None:
            await self._client.request("unsubscribe", self._id)


class HubClient(Transport):
    """The transport of a provider process whose parent hosts a memory hub."""

    counts_subscribers = True

    def __init__(self, channel: Channel, *, subscription_buffer: int = DEFAULT_SUBSCRIPTION_BUFFER):
        self.channel = channel
        self.subscription_buffer = subscription_buffer
        self.inboxes: dict[str, InboxHandler] = {}
        self.subscriptions: dict[int, _ClientSubscription] = {}
        self.consumers: dict[int, _ClientConsumer] = {}
        self._waiting: dict[int, asyncio.Future[Answer]] = {}
        #: cancelled requests whose answer is still due -> what takes it
        self._late: dict[int, Callable[[Answer], None]] = {}
        self._ids = itertools.count(1)
        channel.handlers.update(r=self._answered, d=self._delivery, i=self._inbox, e=self._event)
        channel.on_close.append(self._channel_closed)

    # -- frames ------------------------------------------------------------------

    async def request(
        self,
        verb: str,
        *args: Any,
        payload: bytes | None = None,
        late: Callable[[Answer], None] | None = None,
    ) -> Answer:
        """Run ``verb`` at the parent and return its answer; cancelling cancels it there.

        ``late`` is given the answer of a request cancelled here that the parent had
        answered already (every request is answered, a cancelled one too).
        """
        rid = next(self._ids)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = future
        if late is not None:
            self._late[rid] = late  # until its answer comes, wherever it finds the request
        try:
            payloads = () if payload is None else (payload,)
            self.channel.send(["q", rid, verb, *args], *payloads, flush=True)
            return await future
        except asyncio.CancelledError:
            answered = future.done() and not future.cancelled() and future.exception() is None
            if late is not None and answered:
                late(future.result())  # answered, then cancelled before it was taken
            if not self.channel.closed.is_set():
                self.channel.send(["c", rid])
            raise
        finally:
            self._waiting.pop(rid, None)
            if not future.cancelled():  # cancelled while it waited: its answer is still due
                self._late.pop(rid, None)

    def _answered(self, header: list[Any], payloads: list[bytes]) -> None:
        rid = header[1]
        late = self._late.pop(rid, None)
        future = self._waiting.get(rid)
        if future is None or future.done():  # cancelled: what came goes to ``late``
            if late is not None and header[2] is None:
                late((header[3], payloads))
            return
        if header[2] is None:
            future.set_result((header[3], payloads))
        else:
            future.set_exception(_error(header[2], header[3]))

    def _delivery(self, header: list[Any], payloads: list[bytes]) -> None:
        _, cid, did, mailbox, attempts = header
        consumer = self.consumers.get(cid)
        if consumer is not None:
            consumer.delivered(_ClientDelivery(consumer, did, mailbox, payloads[0], attempts))

    def _inbox(self, header: list[Any], payloads: list[bytes]) -> None:
        handler = self.inboxes.get(header[1])
        if handler is not None:
            handler(payloads[0])

    def _event(self, header: list[Any], payloads: list[bytes]) -> None:
        subscription = self.subscriptions.get(header[1])
        if subscription is not None:
            subscription.offer(header[2], payloads[0])

    def _channel_closed(self) -> None:
        self._late.clear()
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(TransportClosed("the parent process is gone"))
        for subscription in self.subscriptions.values():
            subscription.end()
        for consumer in self.consumers.values():
            consumer.lost(TransportClosed("the parent process is gone"))

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        if self.channel.closed.is_set():
            raise TransportClosed("the channel to the parent process is closed")

    async def close(self) -> None:
        """Nothing to release here: the parent releases what this child opened when the
        channel closes (the child's exit closes it)."""

    # -- verbs -------------------------------------------------------------------

    async def deliver(
        self,
        mailbox: str,
        payload: bytes,
        *,
        endpoint: str | None = None,
        provider: str | None = None,
    ) -> None:
        await self.request("deliver", mailbox, endpoint, provider, payload=payload)

    async def deliver_to_providers(
        self, endpoint: str, payload: bytes
    ) -> tuple[list[str], list[str]]:
        (reached, full), _ = await self.request("deliver_to_providers", endpoint, payload=payload)
        return reached, full

    async def consume(
        self, mailboxes: Sequence[str], consumer: str, *, private: Sequence[str] = ()
    ) -> MailboxConsumer:
        ident, _ = await self.request("consume", list(mailboxes), consumer, list(private))
        result = self.consumers[ident] = _ClientConsumer(self, ident)
        return result

    async def delete_mailbox(self, mailbox: str) -> None:
        await self.request("delete_mailbox", mailbox)

    async def dead_letters(self, mailbox: str) -> list[DeadLetterEntry]:
        meta, payloads = await self.request("dead_letters", mailbox)
        pairs = zip(meta, payloads, strict=True)
        return [DeadLetterEntry(i, p, n, r, at) for (i, n, r, at), p in pairs]

    async def replay_dead_letter(self, mailbox: str, letter: str) -> bool:
        return bool((await self.request("replay_dead_letter", mailbox, letter))[0])

    async def discard_dead_letter(self, mailbox: str, letter: str) -> bool:
        return bool((await self.request("discard_dead_letter", mailbox, letter))[0])

    async def open_inbox(
        self, inbox: str, on_payload: InboxHandler, on_lost: InboxLostHandler
    ) -> Inbox:
        self.inboxes[inbox] = on_payload
        await self.request("open_inbox", inbox)
        return _ClientInbox(self, inbox)

    async def post(self, inbox: str, payload: bytes) -> None:
        if not self.channel.closed.is_set():  # at-most-once: nobody to post to otherwise
            # At once, not with the acknowledgement and the ask for the next message
            # that follow: a caller waits for it (~7 µs less per call, measured).
            self.channel.send(["p", inbox], payload, flush=True)

    async def publish(self, topic: str, payload: bytes) -> int:
        return int((await self.request("publish", topic, payload=payload))[0])

    async def subscribe(self, pattern: str) -> Subscription:
        ident, _ = await self.request("subscribe", pattern)
        subscription = _ClientSubscription(self, pattern, ident, self.subscription_buffer)
        self.subscriptions[ident] = subscription
        return subscription

    async def register(self, endpoint: str, provider: str, info: bytes = b"") -> None:
        await self.request("register", endpoint, provider, payload=info)

    async def unregister(self, endpoint: str, provider: str) -> None:
        await self.request("unregister", endpoint, provider)

    async def providers(self, endpoint: str) -> list[str]:
        return list((await self.request("providers", endpoint))[0])

    async def provider_entries(self, endpoint: str) -> list[ProviderEntry]:
        names, infos = await self.request("provider_entries", endpoint)
        return [ProviderEntry(n, i) for n, i in zip(names, infos, strict=True)]

    async def endpoints(self) -> list[str]:
        return list((await self.request("endpoints"))[0])

    async def queue_put(self, queue: str, payload: bytes, maxsize: int) -> bool:
        return bool((await self.request("queue_put", queue, maxsize, payload=payload))[0])

    async def queue_get(self, queue: str, timeout: float | None) -> bytes | None:
        def give_back(answer: Answer) -> None:  # taken for a get cancelled meanwhile
            got, payloads = answer
            if got and not self.channel.closed.is_set():
                self.channel.send(["g", queue], payloads[0])

        got, payloads = await self.request("queue_get", queue, timeout, late=give_back)
        return payloads[0] if got else None

    async def queue_size(self, queue: str) -> int:
        return int((await self.request("queue_size", queue))[0])

    async def queue_task_done(self, queue: str) -> int:
        return int((await self.request("queue_task_done", queue))[0])

    async def queue_unfinished(self, queue: str) -> int:
        return int((await self.request("queue_unfinished", queue))[0])

    async def queue_delete(self, queue: str) -> None:
        await self.request("queue_delete", queue)
