"""Named queues on a JetStream work-queue stream: the queue verbs of the NATS transport.

Queue ``NAME`` is the subject ``P.q.NAME`` of the stream ``P_q`` with a
durable pull consumer of its own, shared by every getter on every node: a get
is a pull request for one message, acknowledged (and so removed) before it is
returned, so each item goes to exactly one getter, and JetStream serves
waiting pull requests in the order they came. A get cancelled after its item
arrived gives it back (NAK); one cancelled while its pull request is open stays
subscribed until the request ends, and gives back what it brings. ``maxsize``
is checked and the item appended in one step: the put says which last sequence
it expects the subject to have (``Nats-Expected-Last-Subject-Sequence``) and is
tried again if another put came first. Unfinished counts are keys of a KV
bucket, changed by compare-and-set.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import orjson
from nats.aio.msg import Msg

from ...errors import TransportClosed
from .connection import NOT_FOUND, WRONG_LAST_SEQUENCE, ApiError, api, request, translated
from .direct import subscribe_direct
from .names import token

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.subscription import Subscription
    from nats.js.kv import KeyValue

    from .names import Names

__all__ = ["NatsQueues"]

#: How long a waiting get's pull request lasts before it is sent again (seconds). Short,
#: because a get cancelled with its request open keeps listening until the request ends
#: (JetStream cannot withdraw one), and an item that comes to it meanwhile goes back.
PULL_EXPIRES = 1.0


class NatsQueues:
    """The transport's queue verbs (a mixin: the transport provides the attributes below)."""

    names: Names
    ttl: float
    _closed: bool
    _queue_consumers: set[str]
    #: Tasks that wait for the last answers to a closed consumer's (or a left get's) pulls.
    drains: set[asyncio.Task[None]]
    #: The waiting gets' queues: closing the transport wakes each with None.
    _getters: set[asyncio.Queue[Msg | None]]

    if TYPE_CHECKING:

        @property
        def nc(self) -> Client: ...

        @property
        def counts(self) -> KeyValue: ...

        async def ensure_consumer(
            self, stream: str, durable: str, subject: str, *, inactive: float | None = None
        ) -> None: ...

    def _check_queues_open(self) -> None:
        if self._closed:
            raise TransportClosed("the NATS transport is closed")

    async def _subject_state(self, subject: str) -> tuple[int, int]:
        """How many items the subject holds, and its last sequence (0 if none)."""
        info = await api(self.nc, f"STREAM.INFO.{self.names.queues}", {"subjects_filter": subject})
        count = int((info.get("state", {}).get("subjects") or {}).get(subject, 0))
        if count == 0:
            return 0, 0
        try:
            last = await api(
                self.nc, f"STREAM.MSG.GET.{self.names.queues}", {"last_by_subj": subject}
            )
        except ApiError as exc:
            if exc.code in NOT_FOUND:
                return 0, 0
            raise
        return count, int(last["message"]["seq"])

    async def queue_put(self, queue: str, payload: bytes, maxsize: int) -> bool:
        self._check_queues_open()
        subject = self.names.queue(queue)
        await self._count(queue, +1)
        try:
            while True:
                headers = None
                if maxsize > 0:
                    count, last = await self._subject_state(subject)
                    if count >= maxsize:
                        await self._count(queue, -1)
                        return False
                    headers = {"Nats-Expected-Last-Subject-Sequence": str(last)}
                try:
                    with translated("put on queue", queue):
                        await request(self.nc, subject, payload, 5.0, headers)
                    return True
                except ApiError as exc:
                    if exc.code != WRONG_LAST_SEQUENCE:
                        raise
        except BaseException:
            with contextlib.suppress(Exception):
                await self._count(queue, -1)
            raise

    async def _queue_consumer(self, queue: str) -> str:
        durable = self.names.durable("q", queue)
        if durable not in self._queue_consumers:
            idle = 100 * max(self.ttl, PULL_EXPIRES)  # dropped by the server once unused
            subject = self.names.queue(queue)
            await self.ensure_consumer(self.names.queues, durable, subject, inactive=idle)
            self._queue_consumers.add(durable)
        return f"$JS.API.CONSUMER.MSG.NEXT.{self.names.queues}.{durable}"

    async def queue_get(self, queue: str, timeout: float | None) -> bytes | None:
        self._check_queues_open()
        pull = await self._queue_consumer(queue)
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0)
        got: asyncio.Queue[Msg | None] = asyncio.Queue()
        nc = self.nc
        inbox = nc.new_inbox()
        with translated("get from queue", queue):
            sub = await subscribe_direct(nc, inbox, got.put_nowait)
        self._getters.add(got)
        open_until = 0.0  # when the pull request sent last ends, until its answer came
        try:
            while True:
                left = PULL_EXPIRES if deadline is None else deadline - time.monotonic()
                body: dict[str, Any] = {"batch": 1}
                if left <= 0.001:
                    body["no_wait"] = True
                else:
                    body["expires"] = int(min(left, PULL_EXPIRES) * 1e9)
                wait = min(max(left, 0), PULL_EXPIRES) + 2.0  # answered by its expiry
                open_until = time.monotonic() + wait
                with translated("get from queue", queue):
                    await nc.publish(pull, orjson.dumps(body), reply=inbox)
                try:
                    msg, gone = await self._answer(got, wait)
                except TransportClosed:
                    open_until = 0.0  # the connection closes: nothing more will come
                    raise
                open_until = 0.0
                if msg is not None:
                    return await self._take_item(queue, msg)
                if gone:  # dropped by a node's close (see drop_unused): made again
                    self._queue_consumers.discard(self.names.durable("q", queue))
                    pull = await self._queue_consumer(queue)
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                self._check_queues_open()
        finally:
            self._getters.discard(got)
            # Left (cancelled) with a pull request open at the server: JetStream has no way
            # to withdraw one, and what it brings after an unsubscribe would be lost until
            # the ack wait. Stay subscribed until it ends, giving back what comes.
            left = open_until - time.monotonic()
            if left > 0 and not self._closed:
                task = asyncio.create_task(self._linger(sub, got, left), name="tactor-nats-get")
                self.drains.add(task)
                task.add_done_callback(self.drains.discard)
            else:
                await self._unsubscribe(sub, got)

    async def _linger(self, sub: Subscription, got: asyncio.Queue[Msg | None], left: float) -> None:
        """Wait (at most ``left`` seconds) for the answer of a left get's pull request."""
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    answer = await got.get()  # an item, or the status that ends it
                    got.put_nowait(answer)  # for _unsubscribe, which gives an item back
        finally:
            await self._unsubscribe(sub, got)

    @staticmethod
    async def _unsubscribe(sub: Subscription, got: asyncio.Queue[Msg | None]) -> None:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        while not got.empty():  # arrived as the get was leaving: give it back
            late = got.get_nowait()
            if late is not None and not (late.headers or {}).get("Status"):
                with contextlib.suppress(Exception):
                    await late.nak()

    async def _take_item(self, queue: str, msg: Msg) -> bytes:
        """Acknowledge (remove) the item; a get cancelled meanwhile puts it back."""
        ack = asyncio.ensure_future(msg.ack_sync())
        try:
            with translated("get from queue", queue):
                await asyncio.shield(ack)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await ack
            if ack.done() and not ack.cancelled() and ack.exception() is None:
                with contextlib.suppress(Exception):  # taken: it goes back, at the end
                    await request(self.nc, msg.subject, msg.data, 5.0)
            else:
                with contextlib.suppress(Exception):
                    await msg.nak()
            raise
        return msg.data

    @staticmethod
    async def _answer(got: asyncio.Queue[Msg | None], wait: float) -> tuple[Msg | None, bool]:
        """The item a pull brought, or None when it ended empty; and whether the queue's
        consumer may be gone (deleted: 409, or no answer at all)."""
        try:
            async with asyncio.timeout(wait):  # not wait_for: it can swallow a cancellation
                msg = await got.get()
        except TimeoutError:
            return None, True
        if msg is None:
            raise TransportClosed("the NATS transport is closed")
        status = (msg.headers or {}).get("Status")
        if status:
            return None, status == "409"
        return msg, False

    async def queue_size(self, queue: str) -> int:
        self._check_queues_open()
        count, _ = await self._subject_state(self.names.queue(queue))
        return count

    async def _count(self, queue: str, change: int) -> int:
        """Add ``change`` to the queue's unfinished count by compare-and-set; the new count.
        ValueError (nothing changed) if it would go below zero. A count back at 0 is deleted:
        a queue drained and done leaves no key, as on Redis."""
        key = token(queue)
        while True:
            with translated("count tasks of", queue):
                value, revision = await self._read_count(key)
                if change == 0:
                    return value
                if value + change < 0:
                    raise ValueError("task_done() called too many times")
                try:
                    await self._write_count(key, value + change, revision)
                    return value + change
                except Exception as exc:
                    if (
                        "wrong last sequence" not in str(exc).lower()
                        and "exists" not in str(exc).lower()
                    ):
                        raise

    async def _read_count(self, key: str) -> tuple[int, int]:
        """A count and its revision (0 where there is no key)."""
        try:
            entry = await self.counts.get(key)
        except Exception as exc:
            if "not found" not in str(exc).lower() and "deleted" not in str(exc).lower():
                raise
            deleted = getattr(exc, "entry", None)  # a delete marker: its revision to write over
            return 0, int(getattr(deleted, "revision", 0) or 0)
        return int(entry.value or b"0"), int(entry.revision or 0)

    async def _write_count(self, key: str, count: int, revision: int) -> None:
        if count == 0 and revision:
            await self.counts.delete(key, last=revision)
        elif revision:
            await self.counts.update(key, b"%d" % count, last=revision)
        else:
            await self.counts.create(key, b"%d" % count)

    async def queue_task_done(self, queue: str) -> int:
        self._check_queues_open()
        return await self._count(queue, -1)

    async def queue_unfinished(self, queue: str) -> int:
        self._check_queues_open()
        return await self._count(queue, 0)

    async def queue_delete(self, queue: str) -> None:
        self._check_queues_open()
        subject = self.names.queue(queue)
        await api(self.nc, f"STREAM.PURGE.{self.names.queues}", {"filter": subject})
        with translated("delete queue", queue):
            await self.counts.delete(token(queue))
