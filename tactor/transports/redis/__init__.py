"""The Redis transport: ``redis://[user:password@]host:port/db?prefix=tactor``, ``rediss://``,
or ``redis+sentinel://`` through Redis Sentinel (see :mod:`.location`).

Keys (``P`` is the prefix): mailboxes are streams ``P:mb:NAME`` with one
consumer group, read under the names of nodes; a node's bell is a stream
``P:bell:NODE``; inboxes are lists ``P:in:NAME``; the registry of an endpoint
is a sorted set ``P:reg:ENDPOINT`` of the nodes serving it scored by their
expiry, a hash ``P:who:ENDPOINT`` of its providers and their nodes and a hash
``P:pi:ENDPOINT`` of what each registered with; the endpoints with providers are in
``P:eps``; live
nodes and inboxes are in ``P:live``; events go to channels ``P:ev:TOPIC``;
a queue is a list ``P:q:NAME`` with its count of unfinished tasks in
``P:q:NAME:unfinished``; the dead letters of a mailbox are a stream ``P:dl:NAME``.

URL options (beside redis-py's own): ``prefix`` (``tactor``), ``mailbox_size``
(1024 entries), ``ttl`` (3 s: the providers of a node that stops beating drop
out of the registry after this), ``heartbeat`` (``ttl``/3), ``subscription_buffer``
(1024), ``block`` (1 s, how long an idle read waits before looking for
orphaned messages), ``claim_idle`` (1 s: a message must be this old before it
is taken from a dead consumer), ``prefetch`` (32: the most entries a provider
reads per round trip) and ``prefetch_window`` (0.002 s: a provider reads only
as many entries as it expects to handle within this time, so a slow handler
reads one at a time and never holds messages an idle provider could take for
longer than the window; ``prefetch=1`` reads one at a time always).

Guarantees: mailboxes are at-least-once — a message taken by a provider that
dies before acknowledging it is claimed by a live one once the dead
provider's heartbeat has expired; they survive a Redis restart only with
persistence (AOF) enabled on the server. Replies and events are at-most-once.
Queue items are popped by exactly one getter (BLPOP), so processing them is
at-most-once: an item popped by a process that dies is gone. Queues are shared
state and outlive the nodes that use them; closing a transport leaves them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ...errors import NoProvider, TransportClosed, TransportError
from ..base import Transport
from ..consumer import MailboxConsumer
from ..endpoints import no_provider_message, provider_mailbox
from ..inbox import Inbox, InboxHandler, InboxLostHandler
from ..options import (
    COUNT,
    PREFIX,
    SECONDS,
    SECONDS_OR_ZERO,
    SYSTEM_OPTIONS,
    check,
    split_options,
)
from ..prefetch import PREFETCH, PREFETCH_WINDOW
from ..subscription import Subscription
from ..waiting_room import WaitingRoom
from . import scripts
from .connection import LOST, commands, text, tls_hint, translated
from .consumer import GROUP, RedisConsumer
from .dead_letters import RedisDeadLetters
from .events import RedisEvents
from .heartbeat import OWNED_LIFETIME, Heartbeat
from .inbox import RedisInbox
from .location import location_of
from .pipeliner import Pipeliner
from .queues import RedisQueues
from .reader import NodeReader
from .registry import RedisRegistry
from .wire import quiet_allowed

__all__ = ["RedisTransport"]

log = logging.getLogger(__name__)

_OPTIONS = {
    "prefix": PREFIX,
    "mailbox_size": COUNT,
    "ttl": SECONDS,
    "heartbeat": SECONDS,
    "subscription_buffer": COUNT,
    "block": SECONDS,
    "claim_idle": SECONDS_OR_ZERO,
    "prefetch": COUNT,
    "prefetch_window": SECONDS_OR_ZERO,
    **SYSTEM_OPTIONS,
}


class RedisTransport(RedisQueues, RedisDeadLetters, RedisRegistry, Transport):
    """Mailboxes on Redis Streams, inboxes on lists, events on pub/sub, a registry with TTLs."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "tactor",
        mailbox_size: int = 1024,
        ttl: float = 3.0,
        heartbeat: float | None = None,
        subscription_buffer: int = 1024,
        block: float = 1.0,
        claim_idle: float = 1.0,
        prefetch: int = PREFETCH,
        prefetch_window: float = PREFETCH_WINDOW,
    ) -> None:
        given = {"prefix": prefix, "mailbox_size": mailbox_size, "ttl": ttl, "block": block}
        given.update(subscription_buffer=subscription_buffer, claim_idle=claim_idle)
        given.update(prefetch=prefetch, prefetch_window=prefetch_window)
        if heartbeat is not None:
            given["heartbeat"] = heartbeat
        for name, value in given.items():
            check(urlsplit(url).scheme or "redis", name, value, _OPTIONS[name])
        self.url, self.options = url, given
        self.location = location_of(url, _OPTIONS)  # checks redis-py's options in the URL
        self.prefix = prefix
        self.mailbox_size = mailbox_size
        self.ttl = ttl
        self.heartbeat_interval = heartbeat if heartbeat is not None else ttl / 3
        self.subscription_buffer = subscription_buffer
        self.block = block
        self.claim_idle = claim_idle
        self.prefetch = prefetch
        self.prefetch_window = prefetch_window
        self.reclaim_every = max(ttl / 2, block)
        #: A dead provider's consumer leaves its groups this long after its last read.
        self.forget_dead_after = max(10 * ttl, 3 * block)
        self.live_key = self.key("live")
        #: This node's name: its consumers read under it, its providers are live while it is.
        self.node = uuid.uuid4().hex[:16]
        #: A private mailbox outlives the last delivery to it (or the node) by this long (ms).
        self.private_lifetime = int(ttl * 1000 * OWNED_LIFETIME)
        self.consumers: set[RedisConsumer] = set()
        self.waiting_room = WaitingRoom()  # senders waiting for room in full mailboxes
        self._reader: NodeReader | None = None
        self._inboxes: set[RedisInbox] = set()
        self._registered: dict[str, set[str]] = {}  # endpoint -> this node's providers
        self._give_backs: set[asyncio.Task[None]] = set()
        self._redis: aioredis.Redis | None = None
        self._heartbeat: Heartbeat | None = None  # see registry.py
        self._events: RedisEvents | None = None
        self.scripts: dict[str, Any] = {}
        self._pipeliner: Pipeliner | None = None
        self._watcher: asyncio.Task[None] | None = None  # follows the primary (Sentinel)
        #: Replies to callers and acknowledgements go without an answer from Redis
        #: (``CLIENT REPLY SKIP``); False where Redis refuses that (checked at start).
        self.quiet = True
        self._closed = False

    @classmethod
    def from_url(cls, url: str) -> RedisTransport:
        """Split tactor's options off the URL; the rest goes to redis-py."""
        ours, theirs = split_options(url, _OPTIONS, others=True)
        rest = urlunsplit(urlsplit(url)._replace(query=urlencode(theirs)))
        system = {name: ours.pop(name) for name in SYSTEM_OPTIONS if name in ours}
        transport = cls(rest, **ours)
        transport.take_system_options(system)
        return transport

    def __repr__(self) -> str:
        return f"<RedisTransport {self.location} prefix={self.prefix!r}>"

    # -- names -----------------------------------------------------------------

    def key(self, kind: str, name: str | None = None) -> str:
        return f"{self.prefix}:{kind}" if name is None else f"{self.prefix}:{kind}:{name}"

    def mailbox_key(self, mailbox: str) -> str:
        return self.key("mb", mailbox)

    def mailbox_of(self, key: str) -> str:
        """The mailbox whose key is ``key`` (see :meth:`mailbox_key`)."""
        return key[len(self.prefix) + 4 :]

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            raise TransportClosed("the Redis transport is not started")
        return self._redis

    @property
    def pipeliner(self) -> Pipeliner:
        if self._pipeliner is None:
            raise TransportClosed("the Redis transport is not started")
        return self._pipeliner

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        if self._redis is not None:
            return
        if self._closed:
            raise TransportClosed("the Redis transport is closed and cannot be restarted")
        try:
            client = await self._connect()
        except BaseException:
            await self.location.aclose()
            raise
        self._redis = client
        self._heartbeat = Heartbeat(
            self.location.sync_client(socket_timeout=2.0), self.ttl, self.heartbeat_interval
        )
        self._heartbeat.start()
        self._events = RedisEvents(self)
        self._pipeliner = Pipeliner(client, self.load_scripts)
        self._pipeliner.start()
        # Where the client connected (a Sentinel-managed pool knows; a server's has no such).
        first = getattr(client.connection_pool, "master_address", None)
        self._watcher = asyncio.get_running_loop().create_task(
            self.location.watch(self._primary_moved, first), name="tactor-redis-primary"
        )

    async def _primary_moved(self, where: str) -> None:
        """The primary moved (a failover): drop every connection, in use or not, so that
        each connects again to the new one. The old primary may take writes for a while
        yet (until it is demoted): nothing of this node is to go there."""
        log.warning("Redis primary moved (%s): connecting again", where)
        if self._heartbeat is not None:
            self._heartbeat.reconnect()
        if self._redis is not None:
            try:
                await self._redis.connection_pool.disconnect(inuse_connections=True)
            except Exception:  # (each connection that stays connects again at its next error)
                log.exception("dropping the connections to the old Redis primary failed")

    async def _connect(self) -> aioredis.Redis:
        """The asyncio client, once Redis answered, the scripts are loaded and it is known
        whether commands may go without a reply; closed again if any of that fails."""
        # No socket timeout on the asyncio client: redis-py would wrap every write in a
        # task with a timer (about a third of a provider's CPU per message, profiled).
        # Blocking reads end at their BLOCK time on a live server; a dead peer that never
        # closed the connection is found by TCP keepalive within ~8 s; calls have deadlines.
        client = self.location.async_client(socket_timeout=None)
        try:
            try:
                with translated(f"connect to {self!r}"):
                    await commands(client).ping()
            except TransportError as exc:  # (with what to check if TLS is on one side only)
                raise TransportError(f"{exc}{tls_hint(self.location.tls, exc)}") from exc.__cause__
            self.scripts = {name: client.register_script(s) for name, s in scripts.BY_NAME.items()}
            with translated("load scripts"):
                for script in self.scripts.values():
                    await client.script_load(script.script)
            with translated("check permissions"):
                refused = await quiet_allowed(client)
        except BaseException:
            await client.aclose()
            raise
        self.quiet = refused is None
        if refused is not None:
            log.warning(
                "Redis refused a command without a reply (%s): replies to callers and "
                "acknowledgements will be sent with one, which costs each provider CPU per "
                "message; allow +client|reply to send them without",
                refused,
            )
        return client

    async def serve_child(self, channel: Any) -> str | None:
        """A child process opens the same Redis with the same options: a node like any other."""
        parts = urlsplit(self.url)
        query = "&".join(q for q in (parts.query, urlencode(self.options)) if q)
        return urlunsplit(parts._replace(query=query))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._redis is None:
            return
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for consumer in list(self.consumers):
            await consumer.close()
        if self._reader is not None:
            await self._reader.close()
        for inbox in list(self._inboxes):
            await inbox.close()
        if self._events is not None:
            await self._events.close()
        for endpoint, providers in list(self._registered.items()):
            for provider in list(providers):
                await self.unregister(endpoint, provider)
        if self._pipeliner is not None:
            await self._pipeliner.close()  # replies still queued go out first
        if self._give_backs:  # cancelled gets: let what their pops took go back first
            await asyncio.wait(self._give_backs, timeout=self.block + 2.0)
        if self._heartbeat is not None:
            await asyncio.to_thread(self._heartbeat.stop)
        await self._redis.aclose()
        await self.location.aclose()

    async def load_scripts(self) -> None:
        """Load every script, so pipelines may use EVALSHA (again after a Redis restart)."""
        for script in self.scripts.values():
            await self.redis.script_load(script.script)

    # -- liveness --------------------------------------------------------------

    async def keep_alive(self, key: str, member: str) -> None:
        """Mark ``member`` alive in the sorted set ``key`` now, and keep it so."""
        assert self._heartbeat is not None
        self._heartbeat.add(key, member)
        self._heartbeat.own(key)  # if every node dies, the sorted set itself expires too
        with translated("heartbeat"):
            refused, _ = await self.scripts["heartbeat"](
                keys=[key], args=[int(self.ttl * 1000), 1, member, 0, "", ""]
            )
        if refused:  # another type of key under the name (WRONGTYPE)
            raise TransportError(f"Redis heartbeat failed: {text(refused[1])} (on {key})")

    def own(self, key: str) -> None:
        """Keep ``key`` alive while this node beats (see :meth:`Heartbeat.own`)."""
        if self._heartbeat is not None:
            self._heartbeat.own(key)

    def disown(self, key: str) -> None:
        if self._heartbeat is not None:
            self._heartbeat.disown(key)

    def disown_all(self, keys: Iterable[str]) -> None:
        if self._heartbeat is not None:
            self._heartbeat.disown_all(keys)

    async def forget(self, key: str, member: str) -> None:
        if self._heartbeat is not None:
            self._heartbeat.discard(key, member)
        with contextlib.suppress(*LOST, RedisError):
            await self.redis.zrem(key, member)

    async def live_members(self, key: str, members: Iterable[str] = ()) -> list[str]:
        found = await self.scripts["live"](keys=[key], args=list(members))
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in found)

    # -- mailboxes -------------------------------------------------------------

    async def deliver(
        self,
        mailbox: str,
        payload: bytes,
        *,
        endpoint: str | None = None,
        provider: str | None = None,
    ) -> None:
        check = "" if endpoint is None else (provider or "any")
        sha = self.scripts["deliver"].sha
        keys = (
            self.mailbox_key(mailbox),
            *self._registry(endpoint or "-"),
            self._up(endpoint or "-"),
        )
        args = (self.mailbox_size, payload, check, GROUP, self.key("bell", ""))

        async def attempt() -> bool | None:
            with translated("deliver to", mailbox):  # batched (see pipeliner.py)
                result = await self.pipeliner.execute(
                    "EVALSHA", sha, 4, *keys, *args, self.private_lifetime
                )
            if result == -1:
                raise NoProvider(no_provider_message(endpoint or mailbox, provider))
            return True if result == 1 else None  # None: full

        # Full: wait for room in line (see waiting_room.py; the caller's deadline bounds it).
        await self.waiting_room.send(mailbox, attempt)

    async def deliver_to_providers(
        self, endpoint: str, payload: bytes
    ) -> tuple[list[str], list[str]]:
        sha = self.scripts["deliver_to_providers"].sha
        prefix = self.mailbox_key(provider_mailbox(""))
        args = (self.mailbox_size, payload, prefix, GROUP, self.key("bell", ""))
        with translated(f"broadcast to {endpoint}"):
            found = await self.pipeliner.execute(
                "EVALSHA", sha, 2, *self._registry(endpoint), *args, self.private_lifetime
            )
        names = [text(name) for name in found]
        split = names.index("")
        return sorted(names[:split]), sorted(names[split + 1 :])

    async def consume(
        self, mailboxes: Sequence[str], consumer: str, *, private: Sequence[str] = ()
    ) -> MailboxConsumer:
        if self._redis is None or self._closed:
            raise TransportClosed("the Redis transport is closed")
        if self._reader is None:
            self._reader = NodeReader(self)
        # A private mailbox is made by the first delivery to it (which rings this node's
        # bell) and expires some time after the last one, or after the node died.
        result = RedisConsumer(self, self._reader, consumer, private)
        with translated("open a consumer"):
            await self._reader.start()
            await result.open([mailbox for mailbox in mailboxes if mailbox not in private])
        self.consumers.add(result)
        return result

    async def ack(self, key: str, entry_ids: list[str]) -> None:
        with translated("acknowledge"):
            await self.scripts["ack"](keys=[key], args=[GROUP, *entry_ids])

    async def delete_mailbox(self, mailbox: str) -> None:
        self.disown(self.mailbox_key(mailbox))
        with translated(f"delete {mailbox}"):  # batched: a node may stop thousands at once
            await self.pipeliner.execute("DEL", self.mailbox_key(mailbox))

    # -- inboxes ---------------------------------------------------------------

    async def open_inbox(
        self, inbox: str, on_payload: InboxHandler, on_lost: InboxLostHandler
    ) -> Inbox:
        result = RedisInbox(self, inbox, on_payload, on_lost)
        await self.keep_alive(self.live_key, self.key("in", inbox))
        result.start()
        self._inboxes.add(result)
        return result

    async def post(self, inbox: str, payload: bytes) -> None:
        """Send the payload with the next pipelined write, not waiting for it: at most once.

        Without an answer from Redis where it allows (see ``quiet``), and by plain
        commands, not a script: a script that writes costs Redis 7 several times the
        commands it runs, a lost script would go unnoticed, and every call has a
        reply. A reply to a node that is gone waits in its inbox until the inbox
        expires, ``ttl`` after the last reply.
        """
        if self._redis is None or self._closed:
            raise TransportClosed("the Redis transport is closed")
        key = self.key("in", inbox)
        push, expire = ("RPUSH", key, payload), ("PEXPIRE", key, int(self.ttl * 1000))
        self.pipeliner.send(f"reply to {inbox}", push, expire, quiet=self.quiet)

    # -- topics ----------------------------------------------------------------

    async def publish(self, topic: str, payload: bytes) -> int | None:
        assert self._events is not None
        with translated(f"publish on {topic}"):  # batched (see pipeliner.py)
            await self.pipeliner.execute("PUBLISH", self._events.channel(topic), payload)
        return None  # Redis counts pattern matches per connection, not subscriptions

    async def subscribe(self, pattern: str) -> Subscription:
        assert self._events is not None
        with translated(f"subscribe to {pattern}"):
            return await self._events.add(pattern, self.subscription_buffer)
