"""The parent's side of a child process's transport: a memory hub's verbs, served over a channel.

A child process holds no copy of the hub. Its
:class:`~tactor.transports.hub_client.HubClient` forwards each verb as a
request frame; a :class:`HubServer` runs it on a
:class:`~tactor.transports.memory.MemoryTransport` of its own over the
parent's hub, and answers. Everything the child opened — consumers,
registrations, subscriptions, inboxes — belongs to that transport, so when
the channel closes (the child exited, or died) closing it puts back what the
child had taken and not acknowledged and drops its providers from the
registry at once.

Frames (``header[0]``): from the child ``q`` (a request: id, verb, args),
``c`` (cancel request id), ``n`` (a consumer is ready for its next
delivery), ``a`` (acknowledge a delivery), ``p`` (post to an inbox), ``pa``
(a call's reply: post, acknowledge its delivery and, if it names its consumer,
``n`` for it), ``g``
(give back a queue item taken for a get cancelled meanwhile); to the child
``r`` (the answer: id, error type or null, result; a cancelled request is
answered too, so the child can tell what is still on its way), ``d`` (a delivery,
one per ``n``: consumers take one payload at a time, as in-process ones do),
``i`` (a payload for an open inbox), ``e`` (an event for a subscription).

A delivery goes out within the ``deliver`` that put it into the mailbox (the
consumer hands it over at once, :meth:`MemoryConsumer.hand_next`), and the
frames the child waits for are written at once; a child's reply comes back at
once, in one frame with its acknowledgement and next ``n``. A consumer's close names
the deliveries the child began: any other it was handed goes back as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import TactorError, TransportClosed
from .channel import Channel
from .inbox import Inbox
from .memory import MemoryTransport
from .memory_consumer import MemoryConsumer, MemoryDelivery
from .memory_hub import MemoryHub
from .subscription import Subscription

__all__ = ["HubServer"]

log = logging.getLogger(__name__)

#: What a verb answers: a JSON-able result and payloads.
Answer = tuple[Any, tuple[bytes, ...]]
Verb = Callable[[list[Any], list[bytes]], Awaitable[Answer]]


class HubServer:
    """Serves one child's transport verbs on ``hub`` until the channel closes."""

    def __init__(self, hub: MemoryHub, channel: Channel) -> None:
        self.transport = MemoryTransport(hub)
        self.channel = channel
        self._ids = itertools.count(1)
        self._consumers: dict[int, tuple[MemoryConsumer, Callable[[MemoryDelivery], None]]] = {}
        self._deliveries: dict[int, tuple[int, MemoryDelivery]] = {}
        self._subscriptions: dict[int, tuple[Subscription, asyncio.Task[None]]] = {}
        self._inboxes: dict[str, Inbox] = {}
        self._requests: dict[int, asyncio.Task[None]] = {}
        self._verbs: dict[str, Verb] = {
            name[3:]: getattr(self, name) for name in dir(self) if name.startswith("_v_")
        }
        self.closing: asyncio.Task[None] | None = None
        channel.handlers.update(q=self._request, c=self._cancel, a=self._ack, p=self._post)
        channel.handlers.update(pa=self._reply, n=self._next, g=self._give_back)
        channel.on_close.append(self._channel_closed)

    async def start(self) -> None:
        await self.transport.start()

    # -- frames ------------------------------------------------------------------

    def _request(self, header: list[Any], payloads: list[bytes]) -> None:
        rid, verb = header[1], self._verbs.get(header[2])
        if verb is None:  # a child of another tactor version
            self._send(["r", rid, "TransportError", f"the parent has no verb {header[2]!r}"])
            return
        task = asyncio.get_running_loop().create_task(self._answer(rid, verb(header[3:], payloads)))
        self._requests[rid] = task

    async def _answer(self, rid: int, work: Awaitable[Answer]) -> None:
        try:
            result, payloads = await work
            self._send(["r", rid, None, result], *payloads, now=True)
        except asyncio.CancelledError:  # the child gave up on it: answered all the same, so
            self._send(["r", rid, "CancelledError", "cancelled"])  # it knows nothing more comes
        except (TactorError, ValueError) as exc:
            self._send(["r", rid, type(exc).__name__, str(exc)], now=True)
        except Exception as exc:
            log.exception("hub server: a child's request failed")
            self._send(["r", rid, "TransportError", f"{type(exc).__name__}: {exc}"], now=True)
        finally:
            self._requests.pop(rid, None)

    def _send(self, header: list[Any], *payloads: bytes, now: bool = False) -> None:
        """Send a frame unless the channel closed; ``now``: the child waits for it, write it
        at once rather than at the end of this turn."""
        if not self.channel.closed.is_set():
            self.channel.send(header, *payloads, flush=now)

    def _cancel(self, header: list[Any], payloads: list[bytes]) -> None:
        task = self._requests.get(header[1])
        if task is not None:
            task.cancel()

    def _ack(self, header: list[Any], payloads: list[bytes]) -> None:
        self._acknowledge(header[1])

    def _acknowledge(self, did: int) -> None:
        held = self._deliveries.pop(did, None)
        if held is not None:
            held[1].acknowledge()  # at once: no task

    def _give_back(self, header: list[Any], payloads: list[bytes]) -> None:
        """An item the child took for a get it cancelled: back to the front of its queue."""
        self.transport.hub.queue(header[1]).hand_over(payloads[0], front=True)

    def _post(self, header: list[Any], payloads: list[bytes]) -> None:
        self._post_to(header[1], payloads[0])

    def _post_to(self, inbox: str, payload: bytes) -> None:
        handler = self.transport.hub.inboxes.get(inbox)
        if handler is not None:
            handler(payload)

    def _reply(self, header: list[Any], payloads: list[bytes]) -> None:
        """A reply that ends a delivery's handling: posted, the delivery acknowledged, and its
        consumer's next delivery asked for if the header names the consumer."""
        _, inbox, did, cid = header
        self._post_to(inbox, payloads[0])
        self._acknowledge(did)
        if cid is not None:
            self._hand_next(cid)

    def _channel_closed(self) -> None:
        for task in self._requests.values():
            task.cancel()
        self.closing = asyncio.get_running_loop().create_task(self._close())

    async def _close(self) -> None:
        for _, forward in self._subscriptions.values():
            forward.cancel()
        # Consumers close here: what the child took and did not acknowledge goes back.
        await self.transport.close()

    # -- mailboxes -------------------------------------------------------------------

    async def _v_deliver(self, args: list[Any], payloads: list[bytes]) -> Answer:
        mailbox, endpoint, provider = args
        await self.transport.deliver(mailbox, payloads[0], endpoint=endpoint, provider=provider)
        return None, ()

    async def _v_deliver_to_providers(self, args: list[Any], payloads: list[bytes]) -> Answer:
        return list(await self.transport.deliver_to_providers(args[0], payloads[0])), ()

    async def _v_consume(self, args: list[Any], payloads: list[bytes]) -> Answer:
        mailboxes, name, private = args
        cid = next(self._ids)
        consumer = await self.transport.consume(mailboxes, name, private=private)
        assert isinstance(consumer, MemoryConsumer)
        self._consumers[cid] = (consumer, functools.partial(self._push, cid))
        return cid, ()

    def _next(self, header: list[Any], payloads: list[bytes]) -> None:
        self._hand_next(header[1])

    def _hand_next(self, cid: int) -> None:
        """The child's consumer ``cid`` is ready: hand it the next delivery, now or within
        the ``deliver`` that puts one."""
        held = self._consumers.get(cid)
        if held is not None:
            consumer, push = held
            with contextlib.suppress(TransportClosed):  # its close_consumer comes next
                consumer.hand_next(push)

    def _push(self, cid: int, delivery: MemoryDelivery) -> None:
        did = next(self._ids)
        self._deliveries[did] = (cid, delivery)
        self._send(["d", cid, did, delivery.mailbox, delivery.attempts], delivery.payload, now=True)

    async def _v_dead_letter(self, args: list[Any], payloads: list[bytes]) -> Answer:
        did, reason, attempts, into, keep = args
        held = self._deliveries.pop(did, None)
        if held is None:
            return 0, ()
        return await held[1].dead_letter(reason, attempts=attempts, into=into, keep=keep), ()

    async def _v_close_consumer(self, args: list[Any], payloads: list[bytes]) -> Answer:
        cid, begun = args
        held = self._consumers.pop(cid, None)
        if held is not None:
            handed = [d for d, (c, _) in self._deliveries.items() if c == cid]
            for did in reversed(handed):  # newest first, each to the front
                delivery = self._deliveries.pop(did)[1]
                if did not in begun:  # handed over, never begun: back as it was
                    delivery.give_back(attempted=False)
            await held[0].close()  # the rest, begun and not acknowledged, counted
        return None, ()

    async def _v_delete_mailbox(self, args: list[Any], payloads: list[bytes]) -> Answer:
        await self.transport.delete_mailbox(args[0])
        return None, ()

    async def _v_dead_letters(self, args: list[Any], payloads: list[bytes]) -> Answer:
        entries = await self.transport.dead_letters(args[0])
        meta = [[e.id, e.attempts, e.reason, e.at] for e in entries]
        return meta, tuple(e.payload for e in entries)

    async def _v_replay_dead_letter(self, args: list[Any], payloads: list[bytes]) -> Answer:
        return await self.transport.replay_dead_letter(args[0], args[1]), ()

    async def _v_discard_dead_letter(self, args: list[Any], payloads: list[bytes]) -> Answer:
        return await self.transport.discard_dead_letter(args[0], args[1]), ()

    # -- inboxes and topics ----------------------------------------------------------

    async def _v_open_inbox(self, args: list[Any], payloads: list[bytes]) -> Answer:
        name = args[0]

        def forward(payload: bytes) -> None:
            self._send(["i", name], payload)

        self._inboxes[name] = await self.transport.open_inbox(name, forward, lambda _: None)
        return None, ()

    async def _v_close_inbox(self, args: list[Any], payloads: list[bytes]) -> Answer:
        inbox = self._inboxes.pop(args[0], None)
        if inbox is not None:
            await inbox.close()
        return None, ()

    async def _v_publish(self, args: list[Any], payloads: list[bytes]) -> Answer:
        return await self.transport.publish(args[0], payloads[0]), ()

    async def _v_subscribe(self, args: list[Any], payloads: list[bytes]) -> Answer:
        subscription = await self.transport.subscribe(args[0])
        sid = next(self._ids)
        forward = asyncio.get_running_loop().create_task(self._forward(sid, subscription))
        self._subscriptions[sid] = (subscription, forward)
        return sid, ()

    async def _forward(self, sid: int, subscription: Subscription) -> None:
        while True:
            topic, payload = await subscription.receive()  # TransportClosed ends it
            self._send(["e", sid, topic], payload)
            await self.channel.drain()

    async def _v_unsubscribe(self, args: list[Any], payloads: list[bytes]) -> Answer:
        held = self._subscriptions.pop(args[0], None)
        if held is not None:
            held[1].cancel()
            await held[0].close()
        return None, ()

    # -- registry and queues ---------------------------------------------------------

    async def _v_register(self, args: list[Any], payloads: list[bytes]) -> Answer:
        await self.transport.register(args[0], args[1], payloads[0] if payloads else b"")
        return None, ()

    async def _v_unregister(self, args: list[Any], payloads: list[bytes]) -> Answer:
        await self.transport.unregister(args[0], args[1])
        return None, ()

    async def _v_providers(self, args: list[Any], payloads: list[bytes]) -> Answer:
        return await self.transport.providers(args[0]), ()

    async def _v_provider_entries(self, args: list[Any], payloads: list[bytes]) -> Answer:
        entries = await self.transport.provider_entries(args[0])
        return [e.provider for e in entries], tuple(e.info for e in entries)

    async def _v_endpoints(self, args: list[Any], payloads: list[bytes]) -> Answer:
        return await self.transport.endpoints(), ()

    async def _v_queue_put(self, args: list[Any], payloads: list[bytes]) -> Answer:
        return await self.transport.queue_put(args[0], payloads[0], args[1]), ()

    async def _v_queue_get(self, args: list[Any], payloads: list[bytes]) -> Answer:
        payload = await self.transport.queue_get(args[0], args[1])
        return payload is not None, (() if payload is None else (payload,))

    async def _v_queue_size(self, args: list[Any], payloads: list[bytes]) -> Answer:
        return await self.transport.queue_size(args[0]), ()

    async def _v_queue_task_done(self, args: list[Any], payloads: list[bytes]) -> Answer:
        return await self.transport.queue_task_done(args[0]), ()

    async def _v_queue_unfinished(self, args: list[Any], payloads: list[bytes]) -> Answer:
        return await self.transport.queue_unfinished(args[0]), ()

    async def _v_queue_delete(self, args: list[Any], payloads: list[bytes]) -> Answer:
        await self.transport.queue_delete(args[0])
        return None, ()
