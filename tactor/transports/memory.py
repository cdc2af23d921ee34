"""The in-process transport: ``memory://`` (private) or ``memory://NAME`` (shared).

A real transport, on the same code path as every other: payloads are bytes,
mailboxes are bounded and push back on the sender, a payload taken and not
acknowledged goes back to its mailbox when its consumer closes. Systems in one
process that open the same ``memory://NAME`` share one hub, so they can serve
and call each other like nodes on a network; plain ``memory://`` gets a hub of
its own. A hub belongs to one event loop.

Guarantees: mailbox payloads are delivered at least once to the consumers of
that hub while the process lives (nothing survives the process); events reach
every subscription that existed when they were published, exactly once.
Queues live in the hub, not in a transport: closing a transport leaves them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from urllib.parse import urlsplit

from ..errors import ConfigError, NoProvider, TransportClosed
from .base import Transport
from .channel import Channel
from .consumer import DeadLetterEntry, MailboxConsumer
from .endpoints import ProviderEntry, no_provider_message, provider_mailbox
from .inbox import Inbox, InboxHandler, InboxLostHandler
from .memory_consumer import MemoryConsumer
from .memory_hub import (
    DEFAULT_MAILBOX_SIZE,
    DEFAULT_SUBSCRIPTION_BUFFER,
    NAMED_HUBS,
    Getter,
    MemoryHub,
)
from .options import COUNT, SYSTEM_OPTIONS, check, split_options
from .subscription import BufferedSubscription, Subscription
from .topics import check_pattern, topic_matches

__all__ = ["MemoryHub", "MemoryTransport"]

_OPTIONS = {"mailbox_size": COUNT, "subscription_buffer": COUNT, **SYSTEM_OPTIONS}


class _MemoryInbox(Inbox):
    def __init__(self, hub: MemoryHub, name: str) -> None:
        self._hub = hub
        self._name = name

    async def close(self) -> None:
        self._hub.inboxes.pop(self._name, None)


class _MemorySubscription(BufferedSubscription):
    def __init__(self, transport: MemoryTransport, pattern: str, buffer: int) -> None:
        super().__init__(pattern, buffer)
        self._transport = transport

    async def detach(self) -> None:
        hub = self._transport.hub
        if self in hub.subscriptions:
            hub.subscriptions.remove(self)
        self._transport.subscriptions.discard(self)


class MemoryTransport(Transport):
    """In-process transport over a :class:`MemoryHub`.

    ``MemoryTransport()`` has a private hub; ``MemoryTransport.from_url("memory://x")``
    shares the hub named ``x`` with every other transport of this process opened
    with that name. ``mailbox_size`` bounds each mailbox (default 1024); a
    sender waits while a mailbox is full.
    """

    counts_subscribers = True

    def __init__(
        self,
        hub: MemoryHub | None = None,
        *,
        mailbox_size: int = DEFAULT_MAILBOX_SIZE,
        subscription_buffer: int = DEFAULT_SUBSCRIPTION_BUFFER,
    ) -> None:
        check("memory", "mailbox_size", mailbox_size, COUNT)
        check("memory", "subscription_buffer", subscription_buffer, COUNT)
        self.hub = hub if hub is not None else MemoryHub(mailbox_size)
        self.subscription_buffer = subscription_buffer
        self.consumers: set[MemoryConsumer] = set()
        self.subscriptions: set[_MemorySubscription] = set()
        self._inboxes: set[_MemoryInbox] = set()
        self._registered: set[tuple[str, str]] = set()
        self._getters: set[Getter] = set()
        self._started = False
        self._closed = False

    @classmethod
    def from_url(cls, url: str) -> MemoryTransport:
        """Open ``memory://`` or ``memory://NAME?mailbox_size=N&subscription_buffer=N``."""
        parts = urlsplit(url)
        if parts.scheme != "memory":
            raise ConfigError(f"not a memory:// URL: {url!r}")
        query, _ = split_options(url, _OPTIONS)
        size = query.get("mailbox_size", DEFAULT_MAILBOX_SIZE)
        buffer = query.get("subscription_buffer", DEFAULT_SUBSCRIPTION_BUFFER)
        name = parts.netloc + parts.path
        hub: MemoryHub | None = None
        if name:
            hub = NAMED_HUBS.get(name)
            if hub is None:
                hub = NAMED_HUBS[name] = MemoryHub(size)
        transport = cls(hub, mailbox_size=size, subscription_buffer=buffer)
        transport.take_system_options(query)
        return transport

    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosed("memory transport is closed")
        if not self._started:
            raise TransportClosed("memory transport is not started")

    async def start(self) -> None:
        if self._closed:
            raise TransportClosed("memory transport is closed and cannot be restarted")
        self._started = True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for consumer in list(self.consumers):
            await consumer.close()
        for subscription in list(self.subscriptions):
            await subscription.close()
        for inbox in self._inboxes:
            await inbox.close()
        for endpoint, provider in list(self._registered):
            await self._unregister(endpoint, provider)
        # Wake this transport's waiting getters; the queues themselves stay in the hub.
        for getter in self._getters:
            if not getter.done():
                getter.set_exception(TransportClosed("memory transport is closed"))

    async def deliver(
        self,
        mailbox: str,
        payload: bytes,
        *,
        endpoint: str | None = None,
        provider: str | None = None,
    ) -> None:
        self._check_open()
        if endpoint is not None:
            live = self.hub.registry.get(endpoint)
            if not live or (provider is not None and provider not in live):
                raise NoProvider(no_provider_message(endpoint, provider))
        box = self.hub.mailbox(mailbox)
        while box.full() and not box.has_waiter():
            putter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            box.putters.append(putter)
            try:
                await putter
            except asyncio.CancelledError:
                if putter.done() and not putter.cancelled():
                    box.wake_putter()  # our turn came as we were cancelled: pass it on
                raise
            finally:
                if putter in box.putters:
                    box.putters.remove(putter)
            self._check_open()
        box.hand_over(payload)

    async def deliver_to_providers(
        self, endpoint: str, payload: bytes
    ) -> tuple[list[str], list[str]]:
        self._check_open()
        reached: list[str] = []
        full: list[str] = []
        for provider in self.hub.registry.get(endpoint, ()):
            box = self.hub.mailbox(provider_mailbox(provider))
            if box.full() and not box.has_waiter():
                full.append(provider)
            else:
                box.hand_over(payload)
                reached.append(provider)
        return reached, full

    async def consume(
        self, mailboxes: Sequence[str], consumer: str, *, private: Sequence[str] = ()
    ) -> MailboxConsumer:
        self._check_open()
        result = MemoryConsumer(self, [self.hub.mailbox(name) for name in mailboxes])
        self.consumers.add(result)
        return result

    async def delete_mailbox(self, mailbox: str) -> None:
        box = self.hub.mailboxes.pop(mailbox, None)
        if box is not None:
            for putter in box.putters:
                if not putter.done():
                    putter.set_result(None)

    async def mailbox_depth(self, mailbox: str) -> int:
        box = self.hub.mailboxes.get(mailbox)
        return 0 if box is None else len(box.items)

    async def dead_letters(self, mailbox: str) -> list[DeadLetterEntry]:
        self._check_open()
        letters = self.hub.dead_letters.get(mailbox)
        return [] if letters is None else letters.entries()

    async def replay_dead_letter(self, mailbox: str, letter: str) -> bool:
        self._check_open()
        entry = self.hub.take_dead_letter(mailbox, letter)
        if entry is not None:
            self.hub.mailbox(mailbox).hand_over(entry.payload)
        return entry is not None

    async def discard_dead_letter(self, mailbox: str, letter: str) -> bool:
        self._check_open()
        return self.hub.take_dead_letter(mailbox, letter) is not None

    async def open_inbox(
        self, inbox: str, on_payload: InboxHandler, on_lost: InboxLostHandler
    ) -> Inbox:
        self._check_open()
        self.hub.inboxes[inbox] = on_payload
        result = _MemoryInbox(self.hub, inbox)
        self._inboxes.add(result)
        return result

    async def post(self, inbox: str, payload: bytes) -> None:
        handler = self.hub.inboxes.get(inbox)
        if handler is not None:
            handler(payload)  # in-process: straight to the reader, nothing to buffer

    async def serve_child(self, channel: Channel) -> str | None:
        """Serve this hub's verbs to a child process over ``channel`` (see hub_server)."""
        from .hub_server import HubServer  # imports this module

        self._check_open()
        await HubServer(self.hub, channel).start()
        return None

    async def publish(self, topic: str, payload: bytes) -> int:
        self._check_open()
        matching = [s for s in self.hub.subscriptions if topic_matches(s.pattern, topic)]
        for subscription in matching:
            await subscription.put(topic, payload)
        return len(matching)

    async def subscribe(self, pattern: str) -> Subscription:
        self._check_open()
        subscription = _MemorySubscription(self, check_pattern(pattern), self.subscription_buffer)
        self.hub.subscriptions.append(subscription)
        self.subscriptions.add(subscription)
        return subscription

    async def register(self, endpoint: str, provider: str, info: bytes = b"") -> None:
        self._check_open()
        self.hub.registry.setdefault(endpoint, {})[provider] = info
        self._registered.add((endpoint, provider))

    async def unregister(self, endpoint: str, provider: str) -> None:
        await self._unregister(endpoint, provider)

    async def _unregister(self, endpoint: str, provider: str) -> None:
        providers = self.hub.registry.get(endpoint)
        if providers is not None:
            providers.pop(provider, None)
            if not providers:
                del self.hub.registry[endpoint]
        self._registered.discard((endpoint, provider))

    async def providers(self, endpoint: str) -> list[str]:
        self._check_open()
        return list(self.hub.registry.get(endpoint, ()))

    async def provider_entries(self, endpoint: str) -> list[ProviderEntry]:
        self._check_open()
        found = self.hub.registry.get(endpoint, {})
        return [ProviderEntry(provider, info) for provider, info in found.items()]

    async def endpoints(self) -> list[str]:
        self._check_open()
        return sorted(endpoint for endpoint, found in self.hub.registry.items() if found)

    # -- queues ----------------------------------------------------------------

    async def queue_put(self, queue: str, payload: bytes, maxsize: int) -> bool:
        self._check_open()
        q = self.hub.queue(queue)
        if maxsize > 0 and len(q.items) >= maxsize:
            return False
        q.unfinished += 1
        q.hand_over(payload)
        return True

    async def queue_get(self, queue: str, timeout: float | None) -> bytes | None:
        self._check_open()
        q = self.hub.queue(queue)
        if q.items:
            return q.items.popleft()
        if timeout is not None and timeout <= 0:
            self.hub.forget_queue(queue)
            return None
        loop = asyncio.get_running_loop()
        getter: Getter = loop.create_future()
        q.getters.append(getter)
        self._getters.add(getter)
        # The timeout resolves the getter with None rather than cancelling this
        # task: no payload can be handed over and lost in between.
        timer = None if timeout is None else loop.call_later(timeout, _expire, getter)
        try:
            return await getter
        except asyncio.CancelledError:
            if getter.done() and not getter.cancelled() and getter.exception() is None:
                payload = getter.result()
                if payload is not None:  # handed a payload as we were cancelled: give it back
                    self.hub.queue(queue).hand_over(payload, front=True)
            raise
        finally:
            if timer is not None:
                timer.cancel()
            self._getters.discard(getter)
            if getter in q.getters:
                q.getters.remove(getter)
            self.hub.forget_queue(queue)

    async def queue_size(self, queue: str) -> int:
        self._check_open()
        q = self.hub.queues.get(queue)
        return 0 if q is None else len(q.items)

    async def queue_task_done(self, queue: str) -> int:
        self._check_open()
        q = self.hub.queues.get(queue)
        if q is None or q.unfinished <= 0:
            raise ValueError("task_done() called too many times")
        q.unfinished -= 1
        self.hub.forget_queue(queue)
        return q.unfinished

    async def queue_unfinished(self, queue: str) -> int:
        self._check_open()
        q = self.hub.queues.get(queue)
        return 0 if q is None else q.unfinished

    async def queue_delete(self, queue: str) -> None:
        self._check_open()
        q = self.hub.queues.get(queue)
        if q is not None:
            q.items.clear()
            q.unfinished = 0
            self.hub.forget_queue(queue)


def _expire(getter: Getter) -> None:
    if not getter.done():
        getter.set_result(None)
