"""Mailboxes on a JetStream work-queue stream: durable pull consumers, explicit acknowledgement.

Each mailbox is a subject of the namespace's mailbox stream with a durable
consumer of its own, shared by every provider that consumes it (they compete:
JetStream hands each message to one pull request). A consumer of several
mailboxes keeps at most one pull request outstanding per mailbox (one message,
or several that wait: see below), on one inbox subscription, and hands out the
earliest mailbox's message first. A message taken and not acknowledged stays
pending on the server: when its holder dies, JetStream redelivers it once
``ack_wait`` (the transport's ``ttl``) passed; holders in good health tell the
server they are still working on it (``+WPI``) on every heartbeat.

A consumer asks for a mailbox's next message only when it wants one: as it
acknowledges the message before it (JetStream's ``+NXT``: one message to the
server for both), or by a pull request of its own. While it
waits, its pull request (one message) waits at the server (``block`` seconds),
so a message is pushed to it as it arrives; the server answers an unused one
when it expires, and the heartbeat sends again one whose answer never came.
Where messages wait in the mailbox (each message says how many are left behind
it: ``num_pending``) and the provider's handler is fast, it takes several in one
pull — as many as it expects to handle within the transport's
``prefetch_window`` (a moving average of its handling time decides), at most
``prefetch``, at most those waiting — by a pull that does not wait at the server
(``no_wait``), so it is never handed a message that comes later while an idle
provider waits. A slow handler takes one at a time. Messages taken ahead are
told in progress on the next heartbeat, as the one in hand is; those still
waiting at the one after (the handler in hand turned slow) are given back to
the mailbox, their attempts unchanged, for an idle provider to take.

Attempts are JetStream's own count (``num_delivered``), plus the count a
message put back at a close carries in the ``Tactor-Attempted`` header: the
oldest message a closing consumer holds goes back by NAK (its attempt counts);
the ones behind it, not begun, are published again with their count and the
originals acknowledged, so they go back as they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription

from ...errors import TransportClosed, TransportError
from ..consumer import Delivery, ParkingConsumer
from ..prefetch import averaged, prefetch_count
from .connection import translated
from .direct import subscribe_direct

if TYPE_CHECKING:
    from . import NatsTransport

__all__ = ["ATTEMPTED", "NatsConsumer", "NatsDelivery"]

log = logging.getLogger(__name__)

#: The header of a message put back by a closing consumer: its attempts before.
ATTEMPTED = "Tactor-Attempted"


def _counts(msg: Msg) -> tuple[int, int]:
    """How often JetStream delivered ``msg``, and how many messages wait behind it: from
    its reply subject, ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer
    seq>.<time>.<pending>`` (a server with a domain puts ``<domain>.<account hash>`` after
    ``$JS.ACK`` and a token at the end). What nats-py's ``msg.metadata`` reads, without
    the objects and the datetime it makes for each message."""
    tokens = (msg.reply or "").split(".")
    if tokens[0] == "$JS" and tokens[1:2] == ["ACK"]:
        if len(tokens) == 9:
            return int(tokens[4]), int(tokens[8])
        if len(tokens) >= 11:
            return int(tokens[6]), int(tokens[10])
    metadata = msg.metadata  # raises nats-py's NotJSMessageError, as before
    return metadata.num_delivered, metadata.num_pending


class NatsDelivery(Delivery):
    __slots__ = ("_consumer", "_index", "msg")

    def __init__(self, consumer: NatsConsumer, index: int, msg: Msg) -> None:
        before = int((msg.headers or {}).get(ATTEMPTED, 0))
        super().__init__(consumer.mailboxes[index], msg.data, before + _counts(msg)[0])
        self._consumer, self._index = consumer, index
        self.msg = msg

    async def ack(self) -> None:
        if self._consumer.held.pop(id(self), None) is not None:
            with translated("acknowledge", self.mailbox):
                await self._consumer.acknowledge(self.msg, self._index)

    async def dead_letter(self, reason: str, *, attempts: int, into: str, keep: int) -> int:
        if self._consumer.held.pop(id(self), None) is None:
            return 0
        transport = self._consumer.transport
        dropped = await transport.add_dead_letter(into, self.payload, reason, attempts, keep)
        with translated("acknowledge", self.mailbox):
            await self.msg.ack()
        return dropped


def _take_waiting(count: int) -> bytes:
    """The body of a pull of up to ``count`` messages that does not wait at the server."""
    return orjson.dumps({"batch": count, "no_wait": True})


class NatsConsumer(ParkingConsumer):
    """Pulls from each of its mailboxes' durable consumers: one message at a time, or a
    few that wait in the mailbox for a fast handler."""

    linger = 0.05  # see MailboxConsumer.linger

    def __init__(
        self, transport: NatsTransport, mailboxes: list[str], name: str, private: set[str]
    ) -> None:
        self.transport = transport
        self.name = name
        self.mailboxes = mailboxes
        self._private = private
        names = transport.names
        self._index = {names.mailbox_of(names.mailbox(m)): i for i, m in enumerate(mailboxes)}
        self._arrived: list[deque[Msg]] = [deque() for _ in mailboxes]
        self._pull_until = [0.0 for _ in mailboxes]  # when each outstanding pull expires
        self._pulls = [transport.pull_subject(m) for m in mailboxes]
        self._pull_body = orjson.dumps({"batch": 1, "expires": int(transport.block * 1e9)})
        self._expect = [0 for _ in mailboxes]  # messages still to come for each open pull
        self._behind = [0 for _ in mailboxes]  # how many waited behind the last one that came
        self._handed_at = 0.0  # when the last delivery was handed out
        self._handling = transport.prefetch_window  # moving average of the time per message
        self._waiting_ahead: set[str] = set()  # ack subjects: taken ahead, waiting at the last beat
        self._wake = asyncio.Event()
        self._parked: Callable[[], None] | None = None  # parked (receive_or_park): whom to wake
        self._expiry: asyncio.TimerHandle | None = None  # parked: when its pulls end
        self._sub: NatsSubscription | None = None
        self._inbox = ""
        self._ensure = True  # make the stream's consumers (again) before the next pull
        self.held: dict[int, NatsDelivery] = {}  # handed out, not acknowledged, oldest first
        self._closed = False

    async def open(self) -> None:
        nc = self.transport.nc
        self._inbox = nc.new_inbox()
        with translated("open a consumer", self.name):
            self._sub = await subscribe_direct(nc, f"{self._inbox}.*", self._on_msg)
        await self._ensure_consumers()

    async def _ensure_consumers(self) -> None:
        for mailbox in self.mailboxes:
            await self.transport.ensure_mailbox_consumer(mailbox, mailbox in self._private)
        self._ensure = False

    def _on_msg(self, msg: Msg) -> None:
        # A message comes with its own subject, a pull's status with the pull's reply subject.
        index = self._index.get(self.transport.names.mailbox_of(msg.subject))
        if index is None:
            index = int(msg.subject.rsplit(".", 1)[1])
        status = (msg.headers or {}).get("Status")
        if status is None:
            self._behind[index] = _counts(msg)[1]
            self._expect[index] -= 1
        else:
            self._behind[index] = self._expect[index] = 0
        if self._expect[index] <= 0:
            self._expect[index] = 0
            self._pull_until[index] = 0.0  # answered: the pull is over
        if status is None:  # (one that outlived its consumer is put back as it unsubscribes)
            self._arrived[index].append(msg)
        elif status in ("503", "409"):  # no consumer (a restart without its state, or deleted)
            self._ensure = True
        elif status not in ("404", "408"):  # 404, 408: nothing came before it expired
            log.debug("%s: pull answered %s %s", self.name, status, msg.headers)
        self._ring()

    def pull_again(self) -> None:
        """Send the pull requests again now (the server that had them may be gone)."""
        self._pull_until = [0.0 for _ in self.mailboxes]
        self._expect = [0 for _ in self.mailboxes]
        self._ensure = True
        self._ring()

    def _ring(self) -> None:
        """Something came (or a pull ended): a waiting receive looks, a parked one is woken."""
        self._wake.set()
        wake, self._parked = self._parked, None
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if wake is not None:
            wake()

    def _next(self) -> NatsDelivery | None:
        for index, arrived in enumerate(self._arrived):
            if arrived:
                delivery = NatsDelivery(self, index, arrived.popleft())
                self.held[id(delivery)] = delivery
                self._handed_at = time.monotonic()
                return delivery
        return None

    def _count(self, index: int) -> int:
        """Messages to pull from mailbox ``index``: one, or (where messages wait and the
        handler is fast) what we expect to handle within the prefetch window."""
        behind, transport = self._behind[index], self.transport
        if behind == 0:
            return 1
        most = prefetch_count(self._handling, transport.prefetch_window, transport.prefetch)
        return min(behind, most)

    def _pulling(self, index: int, now: float) -> bytes:
        """Count a pull of mailbox ``index`` as sent now; the body to send it with."""
        self._pull_until[index] = now + self.transport.block + 0.5  # answered 408 at expiry
        count = self._expect[index] = self._count(index)
        # Several: only those waiting now (answered at once, 408 if fewer were left).
        return self._pull_body if count == 1 else _take_waiting(count)

    async def _pull(self) -> None:
        """Send a pull request for each mailbox without one."""
        now = time.monotonic()
        for index, subject in enumerate(self._pulls):
            if self._pull_until[index] > now or self._arrived[index]:
                continue
            if self._pull_until[index]:  # the last pull went unanswered: no consumer to answer
                mailbox = self.mailboxes[index]
                await self.transport.ensure_mailbox_consumer(mailbox, mailbox in self._private)
            body = self._pulling(index, now)
            with translated("pull from", self.mailboxes[index]):
                await self.transport.nc.publish(subject, body, reply=f"{self._inbox}.{index}")

    async def acknowledge(self, msg: Msg, index: int) -> None:
        """Acknowledge ``msg``, of mailbox ``index``; where that mailbox has no pull open and
        nothing taken ahead, ask for its next message in the same message (JetStream's
        ``+NXT``, answered as a pull is): the runner wants the next one as soon as this one
        is done, and the server handles one message where it handled two."""
        if self._closed or self._ensure or self._pull_until[index] or self._arrived[index]:
            await msg.ack()
            return
        now = time.monotonic()
        self._handled(now)  # (the pull's size depends on it)
        body = b"+NXT " + self._pulling(index, now)
        await self.transport.nc.publish(msg.reply, body, reply=f"{self._inbox}.{index}")

    def _handled(self, now: float) -> None:
        """Fold the time since the last hand-out into how long one message takes."""
        if self._handed_at:
            self._handling = averaged(self._handling, self._handed_at, now)
            self._handed_at = 0.0

    async def _receive(self, wake: Callable[[], None] | None) -> Delivery | None:
        if wake is not None and self._parked is not None and not self._wake.is_set():
            return None  # parked already, and nothing came: its wake is still due
        self._handled(time.monotonic())
        delay = 0.05
        while True:
            if self._closed:
                raise TransportClosed("mailbox consumer is closed")
            delivery = self._next()
            if delivery is not None:
                return delivery
            self._wake.clear()
            try:
                if self._ensure:
                    await self._ensure_consumers()
                await self._pull()
            except TransportClosed:
                raise
            except TransportError as exc:  # NATS is away: try again at a growing pace
                log.warning("%s: %s; retrying", self.name, exc)
                self._ensure = True
                retry: float | None = delay
                delay = min(delay * 2, 2.0)
            else:
                delay, retry = 0.05, None
            # No timer per message: the server answers each pull by its expiry, and the
            # heartbeat (keep_working) sends again one whose answer never came; a timer
            # only to try again after a failure.
            if wake is not None and not self._wake.is_set():  # park until a pull ends
                self._parked = wake
                if retry is not None:
                    self._expiry = asyncio.get_running_loop().call_later(retry, self._ring)
                return None
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(retry):
                    await self._wake.wait()

    async def keep_working(self) -> None:
        """Tell the server the messages in hand are still being worked on (``+WPI``), and
        those taken ahead too, or give them back (see :meth:`_give_back_waiting`); send
        again a pull request whose answer is overdue (lost with a server that failed)."""
        for delivery in list(self.held.values()):
            with contextlib.suppress(Exception):
                await delivery.msg.in_progress()
        await self._give_back_waiting()
        now = time.monotonic()
        if any(0 < until <= now for until in self._pull_until):
            self._pull_until = [0.0 if until <= now else until for until in self._pull_until]
            self._ensure = True  # unanswered: its consumer may be gone (deleted, or lost)
            self._ring()

    async def _give_back_waiting(self) -> None:
        """Messages taken ahead of the one in hand, from a shared mailbox, that waited since
        the last heartbeat (the handler in hand turned slow) go back to the mailbox as they
        were (their attempts unchanged, behind what waits there), for an idle provider to
        take; the others are told in progress."""
        waited, self._waiting_ahead = self._waiting_ahead, set()
        back: list[Msg] = []
        ahead: list[Msg] = []
        for index, arrived in enumerate(self._arrived):  # sorted out before any await
            if self.mailboxes[index] in self._private:
                ahead += arrived
                continue
            for msg in list(arrived):
                if msg.reply in waited:
                    arrived.remove(msg)
                    back.append(msg)
                else:
                    self._waiting_ahead.add(msg.reply)
                    ahead.append(msg)
        for msg in back:
            with contextlib.suppress(Exception):
                await self._put_back(msg)
        for msg in ahead:
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._ring()
        self.transport.consumers.discard(self)
        held = [d.msg for d in self.held.values()]
        self.held.clear()
        behind = [msg for arrived in self._arrived for msg in arrived]
        for arrived in self._arrived:
            arrived.clear()
        with contextlib.suppress(Exception):
            if held:
                await held[0].nak()  # in hand: its attempt counts
            for msg in held[1:] + behind:  # not begun: back as they were
                await self._put_back(msg)
        # A pull request still open at the server can be answered after this (JetStream has
        # no way to withdraw one): stay subscribed until each ends, putting back what comes.
        left = max(self._pull_until) - time.monotonic()
        if left > 0 and self._sub is not None:
            task = asyncio.create_task(self._drain(left), name=f"tactor-nats-drain-{self.name}")
            self.transport.drains.add(task)
            task.add_done_callback(self.transport.drains.discard)
        else:
            await self._unsubscribe()

    async def _drain(self, left: float) -> None:
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    while max(self._pull_until) > 0:  # each answer zeroes its entry
                        self._wake.clear()
                        await self._wake.wait()
        finally:
            await self._unsubscribe()

    async def _unsubscribe(self) -> None:
        if self._sub is not None:
            sub, self._sub = self._sub, None
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            for arrived in self._arrived:  # came in meanwhile: back as they were
                while arrived:
                    with contextlib.suppress(Exception):
                        await self._put_back(arrived.popleft())

    async def _put_back(self, msg: Msg) -> None:
        before = int((msg.headers or {}).get(ATTEMPTED, 0)) + _counts(msg)[0] - 1
        try:
            await self.transport.publish_to_stream(msg.subject, msg.data, before)
        except TransportError:
            await msg.nak()  # no room (or NATS away): back with this attempt counted
            return
        await msg.ack()
