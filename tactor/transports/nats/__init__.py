"""The NATS transport: ``nats://[user:password@]host:4222[,host:port...]?prefix=tactor``,
``nats://TOKEN@host``, or ``tls://…`` for TLS (see :mod:`.connection`). Needs JetStream.

The mapping (``P`` is the prefix, each name one token, see :mod:`.names`):
mailboxes are subjects ``P.mb.NAME.m`` of the work-queue stream ``P_mb`` (a
replayed dead letter goes to ``P.mb.NAME.rID``, see :mod:`.names`), each with a
durable pull consumer ``mb_NAME`` over ``P.mb.NAME.>`` that its providers share
(explicit acknowledgement; redelivered ``ttl`` after a holder died), and a keeper
message (see :mod:`.streams`); inboxes are core
subjects ``P.in.NAME``; events are core subjects ``P.ev.TOPIC`` (see
:mod:`.events`); the registry is the KV buckets ``P_reg``, one key per node
(its beat), and ``P_pv``, one key per provider (see :mod:`.registry`); dead
letters are subjects ``P.dl.NAME`` of the stream ``P_dl``; queues are subjects
``P.q.NAME`` of the work-queue stream ``P_q`` with unfinished counts in the KV
bucket ``P_qc``.

URL options: ``prefix`` (``tactor``), ``mailbox_size`` (1024 messages: the
stream's per-subject limit, with new messages refused when full, so senders
wait), ``ttl`` (3 s: the registry's age limit and the consumers' ``ack_wait``),
``heartbeat`` (``ttl``/3), ``subscription_buffer`` (1024), ``block`` (5 s: how
long a pull request waits at the server before it is sent again), ``replicas``
(1: JetStream replicas of the streams and buckets tactor makes; 3 on a
cluster), ``storage`` (``file``: where JetStream keeps the streams tactor makes;
``memory`` is quicker and loses what they hold when a server restarts, see
docs/transports.md), ``prefetch`` (32: the most messages a provider takes in one pull) and
``prefetch_window`` (0.002 s: a provider takes several only where they wait in its
mailbox, and only as many as it expects to handle within this time; see
:mod:`.consumer`), and ``tls_ca``, ``tls_cert``, ``tls_key``, ``tls_hostname``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

from nats.aio.client import Client
from nats.js.kv import KeyValue

from ...errors import TransportClosed, TransportError
from ..base import Transport
from ..consumer import MailboxConsumer
from ..endpoints import ProviderEntry, provider_mailbox
from ..inbox import Inbox, InboxHandler, InboxLostHandler
from ..options import (
    COUNT,
    PREFIX,
    SECONDS,
    SECONDS_OR_ZERO,
    SYSTEM_OPTIONS,
    TEXT,
    check,
    one_of,
    split_options,
)
from ..prefetch import PREFETCH, PREFETCH_WINDOW
from ..subscription import Subscription
from ..waiting_room import WaitingRoom
from .appends import Appends
from .connection import FULL, ApiError, api, check_tls, location_of, stop_task, translated
from .consumer import NatsConsumer
from .dead_letters import NatsDeadLetters
from .delivering import CheckedDeliveries
from .events import NatsSubscriptionBuffer
from .inbox import NatsInbox
from .names import Names
from .queues import NatsQueues
from .registry import Entries, Registry
from .streams import Streams

__all__ = ["NatsTransport"]

log = logging.getLogger(__name__)

#: How long the first connection may take, every server tried (seconds).
CONNECT_TIMEOUT = 10.0
#: Room kept in the server's max_payload for what tactor adds to a payload: headers
#: (Tactor-Attempted, a queue's expected sequence), a dead letter's reason.
HEADERS_ROOM = 1024

_TLS = {"tls_ca": TEXT, "tls_cert": TEXT, "tls_key": TEXT, "tls_hostname": TEXT}
_OPTIONS = {
    "prefix": PREFIX,
    "mailbox_size": COUNT,
    "ttl": SECONDS,
    "heartbeat": SECONDS,
    "subscription_buffer": COUNT,
    "block": SECONDS,
    "replicas": COUNT,
    "storage": one_of("file", "memory"),
    "prefetch": COUNT,
    "prefetch_window": SECONDS_OR_ZERO,
    **_TLS,
    **SYSTEM_OPTIONS,
}


class NatsTransport(NatsQueues, NatsDeadLetters, CheckedDeliveries, Streams, Transport):
    """Mailboxes on JetStream work queues, inboxes and events on subjects, a registry in KV."""

    def __init__(self, url: str, **options: Any) -> None:
        scheme = urlsplit(url).scheme or "nats"
        for name, value in options.items():
            check(scheme, name, value, _OPTIONS[name])
        self.url, self.options = url, dict(options)  # what a child process opens (serve_child)
        tls = {name: options.pop(name) for name in list(options) if name in _TLS}
        self.location = location_of(url, tls)
        self.names = Names(options.get("prefix", "tactor"))
        self.mailbox_size: int = options.get("mailbox_size", 1024)
        self.ttl: float = options.get("ttl", 3.0)
        self.heartbeat_interval: float = options.get("heartbeat", self.ttl / 3)
        self.subscription_buffer: int = options.get("subscription_buffer", 1024)
        self.block: float = options.get("block", 5.0)
        self.replicas: int = options.get("replicas", 1)
        self.storage: str = options.get("storage", "file")
        self.prefetch: int = options.get("prefetch", PREFETCH)
        self.prefetch_window: float = options.get("prefetch_window", PREFETCH_WINDOW)
        self.node = uuid.uuid4().hex
        self.consumers: set[NatsConsumer] = set()
        self.inboxes: set[NatsInbox] = set()
        self.subscriptions: set[NatsSubscriptionBuffer] = set()
        self._private: set[str] = set()
        self._shared: set[str] = set()  # the shared mailboxes this node consumed
        self._queue_consumers: set[str] = set()
        self._getters: set[asyncio.Queue[Any]] = set()
        self.drains: set[asyncio.Task[None]] = set()  # closed consumers' last pull requests
        self.appends = Appends()
        self.waiting_room = WaitingRoom()  # senders waiting for room in full mailboxes
        self._nc: Client | None = None
        self._counts: KeyValue | None = None
        self._beating: asyncio.Task[None] | None = None  # the registry's beat (_beat)
        self._sweeping: asyncio.Task[None] | None = None  # dead nodes dropped (_sweep)
        self._tending: asyncio.Task[None] | None = None  # the consumers' upkeep (_tend)
        # What nats-py reported while connecting (distinct, in order), for a failed connect: a
        # refusal ('Authorization Violation') is often followed by a reset of the retry.
        self._connect_errors: list[str] = []
        self._closed = False
        self.registry = Registry(self.node, self.ttl, self._forget_dead)

    @classmethod
    def from_url(cls, url: str) -> NatsTransport:
        ours, _ = split_options(url, _OPTIONS)
        system = {name: ours.pop(name) for name in SYSTEM_OPTIONS if name in ours}
        transport = cls(urlsplit(url)._replace(query="").geturl(), **ours)
        transport.take_system_options(system)
        return transport

    def __repr__(self) -> str:
        return f"<NatsTransport {self.location} prefix={self.names.prefix!r}>"

    async def serve_child(self, channel: Any) -> str | None:
        """A child process opens the same NATS with the same options: a node like any other."""
        return urlsplit(self.url)._replace(query=urlencode(self.options)).geturl()

    @property
    def nc(self) -> Client:
        if self._nc is None or self._closed:
            raise TransportClosed("the NATS transport is closed" if self._closed else "not started")
        return self._nc

    @property
    def counts(self) -> KeyValue:
        assert self._counts is not None
        return self._counts

    # -- lifecycle -------------------------------------------------------------

    @property
    def payload_limit(self) -> int | None:
        """The server's ``max_payload`` (from its INFO; 1 MB unless configured), less room
        for the headers tactor adds to a mailbox message."""
        nc = self._nc
        return None if nc is None else max(nc.max_payload - HEADERS_ROOM, 0)

    async def start(self) -> None:
        if self._nc is not None:
            return
        if self._closed:
            raise TransportClosed("the NATS transport is closed and cannot be restarted")
        await check_tls(self.location, 2.0)
        nc = Client()
        try:
            # Bounded: nats-py may retry a failed TLS handshake for ever at the first connect.
            with translated(f"connect to {self.location}"):
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    await nc.connect(
                        servers=self.location.servers,
                        name=f"tactor-{self.node[:8]}",
                        connect_timeout=2,
                        reconnect_time_wait=0.25,  # type: ignore[arg-type]  # seconds (it sleeps them)
                        max_reconnect_attempts=1,  # the first connection: try each server twice
                        error_cb=self._on_error,
                        disconnected_cb=self._on_disconnected,
                        reconnected_cb=self._on_reconnected,
                        **self.location.options,
                    )
        except BaseException as exc:
            # A connect cut short (our bound, a cancelled start) leaves nats-py's socket open.
            with contextlib.suppress(Exception):
                await nc.close()
            if not isinstance(exc, TransportError) or not self._connect_errors:
                raise
            raise TransportError(f"{exc} ({'; '.join(self._connect_errors)})") from None
        nc.options["max_reconnect_attempts"] = -1  # once connected, reconnect for ever
        self._nc = nc
        try:
            with translated("subscribe"):
                await self.appends.open(nc)
            await self.ensure_streams()
            js = nc.jetstream()
            self._counts = await self.key_value(js, self.names.unfinished, None)
            beats, providers = await self.registry_buckets(js)
            names = self.names
            await self.registry.start(
                nc,
                (names.registry, beats),
                (names.registered, providers),
                self.purge_registered,
                functools.partial(self.appends.key_present, nc),
            )
        except BaseException:
            self._closed = True
            with contextlib.suppress(Exception):
                await nc.close()
            raise
        self._beating = asyncio.create_task(self._beat(), name=f"tactor-nats-beat-{self.node}")
        self._sweeping = asyncio.create_task(self._sweep(), name=f"tactor-nats-sweep-{self.node}")
        self._tending = asyncio.create_task(self._tend(), name=f"tactor-nats-tend-{self.node}")

    async def _on_error(self, exc: Exception) -> None:
        said = str(exc)
        if self._nc is None and said not in self._connect_errors:  # still connecting
            self._connect_errors.append(said)
        log.debug("NATS: %s: %s", type(exc).__name__, exc)

    async def _on_disconnected(self) -> None:
        if self._closed:
            return
        log.warning("NATS %s: disconnected; reconnecting", self.location)
        lost = TransportError(f"the connection to NATS at {self.location} was lost")
        for inbox in list(self.inboxes):
            inbox.on_lost(lost)

    async def _on_reconnected(self) -> None:
        log.warning("NATS %s: reconnected", self.location)
        for consumer in list(self.consumers):
            consumer.pull_again()  # a restarted server forgot the pull requests
        with contextlib.suppress(Exception):
            await self.registry.beat()

    async def _tend(self) -> None:
        """Every heartbeat interval: fail the appends that waited too long, and the
        consumers' upkeep (messages in hand told in progress, a pull whose answer is overdue
        sent again). Apart from the registry's beat (:meth:`_beat`): while a cluster
        re-elects the leader of the registry's stream, a beat waits out its timeout, and
        its recovery its own; the mailboxes' upkeep must not wait behind them."""
        while not self._closed:
            await asyncio.sleep(self.heartbeat_interval)
            self.appends.expire()
            for consumer in list(self.consumers):
                try:
                    await consumer.keep_working()
                except TransportError as exc:
                    log.warning("NATS upkeep of %s failed: %s", consumer.name, exc)

    async def _beat(self) -> None:
        """Every heartbeat interval, the node's beat, and nothing else: the beat's key ages
        out ``ttl`` after it was last written, and then the other nodes drop this one's
        providers as a dead node's. What may take a while (dropping dead nodes and what
        they left, the stream's keeper) runs in :meth:`_sweep`, not before the next beat."""
        while not self._closed:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                await self.registry.beat()
            except TransportError as exc:
                log.warning("NATS heartbeat failed: %s", exc)
                with contextlib.suppress(TransportError):  # a server that lost its store
                    await self.ensure_streams()
                    await self.registry_buckets(self.nc.jetstream())

    async def _sweep(self) -> None:
        """Every heartbeat interval: drop the nodes whose beat aged out (their providers'
        keys, their private mailboxes), and renew the mailbox stream's keeper."""
        while not self._closed:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                await self.registry.sweep()
                await self.renew_keeper()
            except TransportError as exc:
                log.warning("NATS registry sweep failed: %s", exc)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await stop_task(self._beating)
        await stop_task(self._sweeping)
        await stop_task(self._tending)
        for getter in self._getters:
            getter.put_nowait(None)  # wakes a waiting get: TransportClosed
        nc = self._nc
        if nc is None:
            return
        self._closed = False  # the verbs below still need the connection
        # The server away (reconnecting): each request would wait out its timeout. What
        # they would remove is left to expire, or to the next node that sweeps (a dead
        # node's mailboxes); what is only published goes out with the reconnection, if any.
        away = not nc.is_connected
        try:
            for consumer in list(self.consumers):
                await consumer.close()
            for drain in list(self.drains):
                await stop_task(drain)  # unsubscribes: a late message is redelivered after ttl
            for mailbox in list(self._private):
                with contextlib.suppress(TransportError):
                    await self.delete_mailbox(mailbox)  # (refused at once while away)
            if not away:
                with contextlib.suppress(TransportError):  # what nobody uses goes (drop_unused)
                    names = self.names
                    mailboxes = [(names.mailboxes, names.durable("mb", m)) for m in self._shared]
                    await self.drop_unused(
                        mailboxes + [(names.queues, d) for d in self._queue_consumers]
                    )
            for subscription in list(self.subscriptions):
                await subscription.close()
            for inbox in list(self.inboxes):
                await inbox.close()
            await self.registry.close(reachable=not away)
            if self.kept and not away:
                with contextlib.suppress(TransportError):
                    await self.drop_keeper()
        finally:
            self._closed = True
            with contextlib.suppress(Exception):
                await nc.close()
            self.appends.close()

    # -- mailboxes -------------------------------------------------------------

    async def deliver(
        self,
        mailbox: str,
        payload: bytes,
        *,
        endpoint: str | None = None,
        provider: str | None = None,
    ) -> None:
        self.nc  # noqa: B018 - raises TransportClosed
        if endpoint is None:
            await self.append(mailbox, payload)
        else:
            await self.deliver_checked(mailbox, payload, endpoint, provider)

    async def append(self, mailbox: str, payload: bytes) -> int:
        """Publish into ``mailbox``, waiting for room (in line: see waiting_room.py; the
        caller's deadline bounds it); the message's stream sequence."""
        subject = self.names.mailbox(mailbox)

        async def attempt() -> int | None:
            try:
                return await self.publish_to_stream(subject, payload)
            except ApiError as exc:
                if exc.code != FULL:
                    raise
                return None

        return await self.waiting_room.send(subject, attempt)

    async def consume(
        self, mailboxes: Sequence[str], consumer: str, *, private: Sequence[str] = ()
    ) -> MailboxConsumer:
        result = NatsConsumer(self, list(mailboxes), consumer, set(private))
        await result.open()
        self._private.update(private)
        self._shared.update(m for m in mailboxes if m not in private)
        self.consumers.add(result)
        return result

    async def delete_mailbox(self, mailbox: str) -> None:
        self._private.discard(mailbox)
        if not self.nc.is_connected:  # (a request would wait out its timeout)
            raise TransportError(f"NATS at {self.location} is not connected: left to the sweep")
        durable = self.names.durable("mb", mailbox)
        with contextlib.suppress(ApiError):
            await api(self.nc, f"CONSUMER.DELETE.{self.names.mailboxes}.{durable}")
        await api(
            self.nc,
            f"STREAM.PURGE.{self.names.mailboxes}",
            {"filter": self.names.every_subject_of(mailbox)},
        )

    async def _forget_dead(self, entries: Entries) -> None:
        """Drop the private mailboxes of a node that died (what it left behind)."""
        for providers in entries.values():
            for provider in providers:
                with contextlib.suppress(TransportError):
                    await self.delete_mailbox(provider_mailbox(provider))

    # -- inboxes ---------------------------------------------------------------

    async def open_inbox(
        self, inbox: str, on_payload: InboxHandler, on_lost: InboxLostHandler
    ) -> Inbox:
        return await NatsInbox.open(
            self.nc, self.names.inbox(inbox), on_payload, on_lost, self.inboxes
        )

    async def post(self, inbox: str, payload: bytes) -> None:
        with translated("reply to", inbox):
            await self.nc.publish(self.names.inbox(inbox), payload)

    # -- topics ----------------------------------------------------------------

    async def publish(self, topic: str, payload: bytes) -> int | None:
        with translated("publish on", topic):
            await self.nc.publish(f"{self.names.events()}.{topic}", payload)
        return None  # NATS does not count tactor's subscriptions

    async def subscribe(self, pattern: str) -> Subscription:
        root, buffer = self.names.events(), self.subscription_buffer
        subscription = NatsSubscriptionBuffer(root, pattern, buffer, self.subscriptions)
        await subscription.attach(self.nc)
        return subscription

    # -- registry --------------------------------------------------------------

    async def register(self, endpoint: str, provider: str, info: bytes = b"") -> None:
        self.nc  # noqa: B018 - raises TransportClosed
        await self.registry.register(endpoint, provider, info)

    async def unregister(self, endpoint: str, provider: str) -> None:
        await self.registry.unregister(endpoint, provider, reachable=self.nc.is_connected)

    async def providers(self, endpoint: str) -> list[str]:
        await self._refresh(f"providers of {endpoint}", endpoint)
        return self.registry.live(endpoint)

    async def provider_entries(self, endpoint: str) -> list[ProviderEntry]:
        await self._refresh(f"providers of {endpoint}", endpoint)
        return self.registry.provider_entries(endpoint)

    async def endpoints(self) -> list[str]:
        await self._refresh("endpoints")
        return self.registry.endpoints()

    async def _refresh(self, what: str, endpoint: str | None = None) -> None:
        self.nc  # noqa: B018 - raises TransportClosed
        try:
            await self.registry.refresh(endpoint)  # read afresh: the copy may lag a moment behind
        except TransportError as exc:  # JetStream busy (an election): the watched copy
            log.warning("%s from this node's copy: %s", what, exc)
