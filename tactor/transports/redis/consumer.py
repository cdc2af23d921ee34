"""Mailboxes on Redis Streams: consumer groups, acknowledgement, and redelivery from the dead.

Each mailbox is a stream with one consumer group; a consumer reads with
``XREADGROUP`` under its own name (a provider id), so an entry it took stays
in the group's pending list, owned by it, until acknowledged. Acknowledged
entries are deleted at once (XACK + XDEL), so a stream holds only what is unfinished.

Prefetch: a consumer reads as many entries per round trip as it expects to
handle within ``prefetch_window`` seconds (a moving average of its handling
time decides), at most ``prefetch``. A fast handler reads many per round trip;
a slow one reads one at a time, so it never holds work an idle provider could
have taken for longer than the window.

Redelivery: consumer names are kept alive by the heartbeat thread. When a
consumer is idle (and at least every ``reclaim_every`` seconds) it looks for
pending entries whose owner is no longer alive and claims them — a provider
killed mid-message has that message handled by a live one.

Attempts: a delivery's ``attempts`` is the entry's delivery count in the group
(1 when read, one more per ``XCLAIM``: the count ``XPENDING`` gave before the
claim, plus one) plus the ``n`` field an entry put back at a close carries (its
deliveries before). Both come with the reads and claims there are anyway. Entries
of dead consumers are claimed one at a time, oldest first, with the acknowledgements
due sent before each claim: a message that kills whoever handles it then counts
only its own attempts, not those of the messages around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, ResponseError

from ...errors import TransportClosed, TransportError
from ..base import Delivery, MailboxConsumer
from .connection import LOST, Backoff, check_cancelled, text
from .wire import HeldConnection, quietly

if TYPE_CHECKING:
    from . import RedisTransport

__all__ = ["GROUP", "RedisConsumer"]

log = logging.getLogger(__name__)

GROUP = "tactor"


def _expected(exc: ResponseError) -> bool:
    """Whether Redis said the stream or its group is gone, as after a restart or a deletion."""
    return str(exc).startswith(("NOGROUP", "UNBLOCKED"))


def _field(fields: Any, name: bytes) -> Any:
    """A field of an entry: fields as redis-py parses them (a dict) or raw (a list)."""
    if isinstance(fields, dict):
        return fields.get(name)
    if isinstance(fields, list):
        for i in range(0, len(fields) - 1, 2):
            if fields[i] == name:
                return fields[i + 1]
    return None


class RedisDelivery(Delivery):
    __slots__ = ("_consumer", "entry_id", "key")

    def __init__(
        self,
        consumer: RedisConsumer,
        mailbox: str,
        key: str,
        entry_id: str,
        payload: bytes,
        attempts: int,
    ) -> None:
        super().__init__(mailbox, payload, attempts)
        self._consumer = consumer
        self.key = key
        self.entry_id = entry_id

    async def ack(self) -> None:
        await self._consumer.ack(self)

    async def dead_letter(self, reason: str, *, attempts: int, into: str, keep: int) -> int:
        return await self._consumer.dead_letter(self, reason, attempts, into, keep)


class RedisConsumer(MailboxConsumer):
    """Reads one or more mailbox streams as one consumer of their groups."""

    def __init__(self, transport: RedisTransport, mailboxes: list[str], name: str) -> None:
        self._transport = transport
        self._redis: aioredis.Redis = transport.redis
        self._keys = {transport.mailbox_key(m): m for m in mailboxes}
        self.name = name
        self._buffer: deque[RedisDelivery] = deque()
        self._unacked: dict[tuple[str, str], RedisDelivery] = {}
        self._recover_own = False
        self._regroup = False  # make the streams and groups again before the next read
        self._refused: str | None = None  # the refusal logged last (logged once per kind)
        self._next_reclaim = 0.0
        self._next_sweep = time.monotonic() + self._transport.forget_dead_after
        self._closed = False
        self._to_ack: dict[str, list[str]] = {}
        self._reader = HeldConnection(transport.redis)  # for the blocking reads
        self._handed_at = 0.0  # when the last delivery was handed out
        self._handling = transport.prefetch_window  # moving average of the time per message

    async def open(self) -> None:
        await self._transport.keep_alive(self._transport.live_key, self.name)
        await self._ensure_groups()

    async def _ensure_groups(self) -> None:
        for key in self._keys:
            try:
                await self._redis.xgroup_create(key, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            # Join the group now, not at the first entry read: a consumer that has read
            # nothing yet must still count, or a leaving one would drop the stream under it.
            await self._redis.xgroup_createconsumer(key, GROUP, self.name)

    async def _take(self, key: str, entries: Any, deliveries: int = 1) -> None:
        """Buffer entries read or claimed from ``key`` (delivered ``deliveries`` times to
        this group); drop (and ack) foreign ones."""
        foreign: list[str] = []
        for entry_id, fields in entries:
            entry = text(entry_id)
            if (
                fields is None
                or (key, entry) in self._unacked
                or entry in self._to_ack.get(key, ())
            ):
                continue  # deleted meanwhile, or handed out already (recovered: its ack waits)
            payload = _field(fields, b"p")
            if isinstance(payload, bytes):
                attempts = int(_field(fields, b"n") or 0) + deliveries
                mailbox = self._keys[key]
                self._buffer.append(RedisDelivery(self, mailbox, key, entry, payload, attempts))
            else:
                foreign.append(entry)
        if foreign:
            log.warning("%s: dropped %d foreign entries on %s", self.name, len(foreign), key)
            await self._transport.ack(key, foreign)

    async def _take_all(self, response: Any) -> None:
        # RESP3 answers a map of streams, RESP2 a list of pairs; redis-py passes on either.
        pairs = response.items() if isinstance(response, dict) else response or ()
        for stream, entries in pairs:
            await self._take(text(stream), entries)

    async def receive(self) -> Delivery:
        backoff = Backoff()
        regrouped = False
        while True:
            if self._closed:
                raise TransportClosed("mailbox consumer is closed")
            now = time.monotonic()
            if self._handed_at:  # the time since the last hand-out: how long one message takes
                self._handling += (now - self._handed_at - self._handling) * 0.25
                self._handed_at = 0.0
            if self._buffer:
                self._handed_at = now
                delivery = self._buffer.popleft()
                self._unacked[(delivery.key, delivery.entry_id)] = delivery
                return delivery
            try:
                if self._regroup:
                    await self._ensure_groups()
                    self._regroup = False
                await self._fill()
                check_cancelled()
                backoff.reset()
                regrouped = False
                if self._refused is not None:
                    log.warning("%s: Redis serves the mailbox again", self.name)
                    self._refused = None
            except ResponseError as exc:
                # Every refusal is met by making the streams and groups again, never by
                # ending: a stream deleted (even between XGROUP CREATE and CREATECONSUMER)
                # or replaced by another type, a server turned replica (READONLY) and back.
                # A consumer that gave up here would leave its provider registered by the
                # heartbeat thread while it reads nothing.
                self._regroup = True
                if _expected(exc) and not regrouped:
                    regrouped = True  # at once the first time; if it recurs, at a pace
                    continue  # the stream or group is gone (a restart): make it again now
                if str(exc) != self._refused:
                    log.warning("%s: Redis refused a mailbox read (%s); retrying", self.name, exc)
                    self._refused = str(exc)
                await backoff.wait()
            except LOST as exc:
                log.warning(
                    "%s: Redis connection lost while receiving (%s); retrying", self.name, exc
                )
                self._recover_own = True
                await backoff.wait()

    async def _fill(self) -> None:
        if self._recover_own:
            own = await self._redis.xreadgroup(GROUP, self.name, dict.fromkeys(self._keys, "0"))
            await self._take_all(own)
            self._recover_own = False
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self._transport.forget_dead_after
            await self._forget_dead_consumers()
        if time.monotonic() >= self._next_reclaim:
            self._next_reclaim = time.monotonic() + self._transport.reclaim_every
            await self._reclaim()
            check_cancelled()
            if self._buffer:
                return
        block = int(self._transport.block * 1000)
        check_cancelled()
        try:
            response = await self._read_and_ack(block)
        except asyncio.CancelledError:
            self._recover_own = True  # an entry may have reached our pending list
            raise
        if not response:
            self._next_reclaim = 0.0  # idle: look for orphans at once
        await self._take_all(response)

    async def _reclaim(self) -> None:
        """Claim the oldest entry pending with a consumer that is no longer alive.

        One at a time, after sending the acknowledgements due, and again at the next
        fill (until none is left): what a claimer handles before it dies is not counted
        again, so only the message it died on gains an attempt (see ``attempts``).
        """
        if any(d.attempts > 1 for d in self._unacked.values()):
            self._next_reclaim = 0.0  # a redelivered message is in hand: claim after it
            return
        min_idle = int(self._transport.claim_idle * 1000)
        for key in self._keys:
            pending = await self._redis.xpending_range(key, GROUP, "-", "+", 100, idle=min_idle)
            owners = {text(p["consumer"]) for p in pending} - {self.name}
            if not owners:
                continue
            live = set(await self._transport.live_members(self._transport.live_key, owners))
            dead = [p for p in pending if text(p["consumer"]) in owners - live]
            if dead:
                await self._flush_acks()
                oldest = dead[0]
                claimed = await self._redis.xclaim(
                    key, GROUP, self.name, min_idle, [oldest["message_id"]]
                )
                if claimed:
                    log.warning(
                        "%s: took over entry %s of %s from dead consumer %s",
                        self.name, text(oldest["message_id"]), key, text(oldest["consumer"]),
                    )  # fmt: skip
                self._next_reclaim = 0.0  # the next fill looks for more
                await self._take(key, claimed, int(oldest["times_delivered"]) + 1)
                return

    async def _forget_dead_consumers(self) -> None:
        """Take the consumers of providers that died (killed, never stopped) out of the groups.

        A clean stop removes its consumer; a killed one's stays, one name per kill.
        Only those with nothing pending (claimed already), not live and quiet for
        ``forget_dead_after`` are removed — a live consumer reads at least every ``block``.
        """
        quiet_ms = self._transport.forget_dead_after * 1000
        for key in self._keys:
            consumers = await self._redis.xinfo_consumers(key, GROUP)
            quiet = {
                text(c["name"])
                for c in consumers
                if int(c["pending"]) == 0 and int(c["idle"]) > quiet_ms
            } - {self.name}
            if not quiet:
                continue
            live = set(await self._transport.live_members(self._transport.live_key, quiet))
            for name in sorted(quiet - live):
                await self._redis.xgroup_delconsumer(key, GROUP, name)
                log.info("%s: removed the dead consumer %s from %s", self.name, name, key)

    def _count(self) -> int:
        """Entries to read: what we expect to handle within the prefetch window."""
        window, most = self._transport.prefetch_window, self._transport.prefetch
        if most == 1 or self._handling >= window:
            return 1
        return min(most, max(1, int(window / max(self._handling, 1e-6))))

    async def _read_and_ack(self, block: int) -> Any:
        """Read the next entries; the acknowledgements due go first, in the same write.

        The acknowledgements go without an answer where Redis allows it (EVAL,
        so a script Redis lost cannot fail them unseen): an answer would wake
        this process just to be read. The reply of the message just handled is
        already on the wire (an idle pipeliner writes at once), so it does not
        wait for this read either.
        """
        keys = list(self._keys)
        read = (
            "XREADGROUP", "GROUP", GROUP, self.name, "COUNT", self._count(), "BLOCK", block,
            "STREAMS", *keys, *(">" for _ in keys),
        )  # fmt: skip
        to_ack, self._to_ack = self._to_ack, {}
        quiet = self._transport.quiet
        script = self._transport.unanswered_script("ack")
        acks = [(*script, 1, key, GROUP, *ids) for key, ids in to_ack.items()]
        try:
            replies = await self._reader.execute_many(
                [*(c for ack in acks for c in quietly(ack)), read] if quiet else [*acks, read]
            )
        except BaseException:
            for key, ids in to_ack.items():  # maybe not applied: acknowledging twice is harmless
                self._to_ack.setdefault(key, []).extend(ids)
            raise
        if not quiet:  # answered acknowledgements: take back the failed ones
            for (key, ids), reply in zip(to_ack.items(), replies, strict=False):
                if isinstance(reply, Exception):  # e.g. NOSCRIPT after a Redis restart
                    self._to_ack.setdefault(key, []).extend(ids)
                    if isinstance(reply, NoScriptError):
                        await self._transport.load_scripts()
        if isinstance(replies[-1], ResponseError):
            raise replies[-1]
        return replies[-1]

    async def dead_letter(
        self, delivery: RedisDelivery, reason: str, attempts: int, into: str, keep: int
    ) -> int:
        """Move ``delivery`` to ``into``'s dead letters, acknowledged (one script, at once)."""
        self._unacked.pop((delivery.key, delivery.entry_id), None)
        return await self._transport.set_aside(
            delivery.key, GROUP, delivery.entry_id, delivery.payload, attempts, reason, into, keep
        )

    async def ack(self, delivery: RedisDelivery) -> None:
        """Acknowledge with the next read (one round trip fewer per message).

        Until then the entry stays pending: if this process dies first, the
        message is handled again elsewhere (at-least-once, as documented).
        """
        self._unacked.pop((delivery.key, delivery.entry_id), None)
        self._to_ack.setdefault(delivery.key, []).append(delivery.entry_id)

    async def _flush_acks(self) -> None:
        to_ack, self._to_ack = self._to_ack, {}
        try:
            while to_ack:
                key = next(iter(to_ack))
                await self._transport.ack(key, to_ack[key])  # awaited: none may be left behind
                del to_ack[key]
        finally:
            for key, ids in to_ack.items():  # not sent: keep them for the next write
                self._to_ack.setdefault(key, []).extend(ids)

    async def close(self) -> None:
        """Put back what was taken and not acknowledged, then leave the groups."""
        if self._closed:
            return
        self._closed = True
        self._transport.consumers.discard(self)
        # Deliveries are handled one at a time, in order: only the oldest one handed out
        # and not acknowledged was in hand; the others go back without another attempt.
        in_hand = next(iter(self._unacked.values()), None)
        self._unacked.clear()
        self._buffer.clear()
        await self._reader.close()
        with contextlib.suppress(*LOST, ResponseError, TransportError):
            await self._flush_acks()
            for key in self._keys:
                # Everything still pending with us goes back — what was handed out or
                # buffered, and also what a read cut short by cancellation took.
                while pending := await self._redis.xpending_range(
                    key, GROUP, "-", "+", 500, consumername=self.name
                ):
                    ids = [text(p["message_id"]) for p in pending]
                    held = in_hand.entry_id if in_hand and in_hand.key == key else ""
                    await self._transport.scripts["requeue"](keys=[key], args=[GROUP, held, *ids])
                await self._transport.scripts["cleanup"](keys=[key], args=[GROUP, self.name])
        await self._transport.forget(self._transport.live_key, self.name)
