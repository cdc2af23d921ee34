"""Automatic pipelining and adaptive prefetch on a real Redis."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from tactor import Actor, ActorSystem, TransportError
from tactor.transports.base import provider_mailbox
from tactor.transports.redis import RedisTransport
from tactor.transports.redis.wire import HeldConnection, quietly
from tests.conftest import require_redis, with_query
from tests.helpers import eventually
from tests.servers import redis_server

pytestmark = pytest.mark.redis


class Slow(Actor, name="pipelining-slow"):
    async def work(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "done"


def _url(**options: str) -> str:
    return with_query(require_redis(), prefix=f"tactor-test:pipe-{time.monotonic_ns()}", **options)


async def test_commands_of_one_moment_share_a_round_trip_and_keep_their_order() -> None:
    transport = RedisTransport.from_url(_url())
    await transport.start()
    try:
        held = transport.pipeliner._connection
        trips = 0
        real = held.execute_many

        async def counted(commands: list[tuple[object, ...]], *, written: int = 0) -> list[object]:
            nonlocal trips
            trips += 1
            return await real(commands, written=written)

        held.execute_many = counted  # type: ignore[method-assign]
        mailbox = provider_mailbox("p")
        await asyncio.gather(*(transport.deliver(mailbox, str(i).encode()) for i in range(200)))
        assert trips <= 3  # 200 deliveries in a few batches, not 200 round trips
        consumer = await transport.consume([mailbox], "p")
        got = []
        for _ in range(200):
            delivery = await consumer.receive()
            got.append(int(delivery.payload))
            await delivery.ack()
        assert got == list(range(200))  # in the order they were sent
        await consumer.close()
        await transport.delete_mailbox(mailbox)
    finally:
        await transport.close()


async def test_a_redis_that_lost_its_scripts_is_served_again() -> None:
    """After SCRIPT FLUSH (what a restart does to scripts) pipelined EVALSHAs reload and retry."""
    with redis_server() as server:
        url = with_query(server.url, prefix="flush")
        async with ActorSystem(url) as node:
            await node.spawn(Slow)
            assert await node.proxy(Slow).work(0) == "done"
            server.client().script_flush()
            assert await node.proxy(Slow, timeout=5).work(0) == "done"
            result = await node.broadcast(Slow.work, 0)
            assert list(result) == ["done"] and result.complete


async def test_a_dropped_connection_fails_the_batch_and_the_next_one_reconnects() -> None:
    with redis_server() as server:
        url = with_query(server.url, prefix="kill")
        async with ActorSystem(url) as node:
            await node.spawn(Slow)
            proxy = node.proxy(Slow, timeout=5)
            assert await proxy.work(0) == "done"
            admin = server.client()
            for client in admin.client_list():  # cut every connection of the node
                if client["cmd"] != "client|list":
                    admin.client_kill_filter(_id=client["id"])
            outcomes = await asyncio.gather(
                *(proxy.work(0) for _ in range(20)), return_exceptions=True
            )
            for outcome in outcomes:
                assert outcome == "done" or isinstance(outcome, TransportError), outcome
            assert await proxy.work(0) == "done"


async def test_fast_handlers_read_many_per_round_trip() -> None:
    url = _url()
    async with ActorSystem(url) as node, ActorSystem(url) as caller:
        await node.spawn(Slow)
        proxy = caller.proxy(Slow, timeout=10)
        await asyncio.gather(*(proxy.work(0) for _ in range(500)))
        transport = node.transport
        assert isinstance(transport, RedisTransport)
        counts = Counter(consumer._count() for consumer in transport.consumers)
        assert max(counts) > 1, counts  # learned that messages are quick: reads several


async def test_prefetch_one_reads_one_at_a_time() -> None:
    transport = RedisTransport.from_url(_url(prefetch="1"))
    assert transport.prefetch == 1
    with pytest.raises(ValueError, match="prefetch_window"):
        RedisTransport.from_url(_url(prefetch_window="-1"))


def test_commands_are_packed_as_redis_py_packs_them() -> None:
    from redis.asyncio.connection import Connection

    from tactor.transports.redis.wire import pack

    commands: list[tuple[object, ...]] = [
        ("EVALSHA", "f" * 40, 2, "k:1", "ключ", 1024, b"\x00\r\n{}", "any"),
        ("PING",),
        ("SET", "x", 1.25, -3, 2**63),
    ]
    expected = b"".join(Connection().pack_commands(commands))
    assert pack(commands) == expected
    assert pack(commands) == expected  # again, from the packed forms kept
    many = [("SET", f"key-{i}", i) for i in range(10_000)]  # more than are kept
    assert pack(many) == b"".join(Connection().pack_commands(many))
    pack([("SET", "x", 1)])
    assert pack([("SET", "x", 1.0)]).endswith(b"$3\r\n1.0\r\n")  # 1.0 == 1: packed as itself
    for bad in (None, True, False):  # True == 1, and 1 was packed above: still refused
        with pytest.raises(TypeError, match="cannot send"):
            pack([("SET", "x", bad)])


async def test_a_command_queued_while_idle_is_not_overtaken() -> None:
    """When one command had to queue (the socket was busy), the next one queues behind it."""
    transport = RedisTransport.from_url(_url())
    await transport.start()
    try:
        mailbox = provider_mailbox("q")
        await transport.deliver(mailbox, b"warm")  # connected, and idle again
        held = transport.pipeliner._connection
        real = held.write_now
        calls = 0

        def busy_once(commands: list[tuple[object, ...]]) -> bool:
            nonlocal calls
            calls += 1
            return False if calls == 1 else real(commands)  # the first finds the socket busy

        held.write_now = busy_once  # type: ignore[method-assign]
        first = asyncio.ensure_future(transport.deliver(mailbox, b"1"))
        second = asyncio.ensure_future(transport.deliver(mailbox, b"2"))
        await asyncio.gather(first, second)
        consumer = await transport.consume([mailbox], "q")
        got = []
        for _ in range(3):
            delivery = await consumer.receive()
            got.append(delivery.payload)
            await delivery.ack()
        assert got == [b"warm", b"1", b"2"]
        await consumer.close()
        await transport.delete_mailbox(mailbox)
    finally:
        await transport.close()


class Flusher(Actor, name="pipelining-flusher"):
    """Makes Redis lose its scripts while a message is in hand (what a restart does)."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def flush_scripts(self) -> str:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port)
        client.script_flush()
        client.close()
        return "flushed"


@pytest.mark.parametrize("quiet", [True, False], ids=["without answers", "answered"])
async def test_a_reply_and_an_acknowledgement_after_lost_scripts_still_count(quiet: bool) -> None:
    """The reply and the acknowledgement of a message handled while Redis lost its scripts
    still count, with or without answers: they are plain commands (no script to lose, which
    nothing would tell without an answer); the next delivery meets NOSCRIPT and loads the
    scripts again."""
    with redis_server() as server:
        url = with_query(server.url, prefix="reply-noscript")
        async with ActorSystem(url) as node, ActorSystem(url) as caller:
            node.transport.quiet = quiet  # type: ignore[attr-defined]
            await node.spawn(Flusher, server.port)
            proxy = caller.proxy(Flusher, timeout=5)
            assert await proxy.flush_scripts() == "flushed"
            assert await proxy.flush_scripts() == "flushed"  # and again: nothing left stuck
            admin = server.client()
            stream = "reply-noscript:mb:ep:pipelining-flusher"
            assert admin.exists(stream)  # the provider's mailbox, still there
            await eventually(lambda: asyncio.to_thread(admin.xlen, stream), lambda n: n == 0)
            admin.close()


async def test_commands_without_a_reply_leave_the_replies_in_step() -> None:
    """Commands sent quietly get no reply; the others still get their own, in order."""
    transport = RedisTransport.from_url(_url())
    await transport.start()
    key = f"{transport.prefix}:counter"
    try:
        held = HeldConnection(transport.redis)
        replies = await held.execute_many(
            [*quietly(("INCR", key)), ("INCR", key), *quietly(("INCR", key)), ("GET", key)]
        )
        assert replies == [2, b"3"]
        assert await held.execute("PING") in (b"PONG", "PONG", True)  # nothing left unread
        await held.close()
        # Through the pipeliner: quiet and answered commands mixed in one moment, so most go
        # in batches (only an idle pipeliner writes at once).
        pipeliner = transport.pipeliner
        answers = []
        for _ in range(50):
            pipeliner.send("count", ("INCR", key))
            answers.append(pipeliner.execute("INCR", key))
        got = await asyncio.gather(*answers)
        assert got == list(range(5, 105, 2))  # each answer is its own command's, in order
        # Several commands in one send go in order, in one write, with no reply either.
        pipeliner.send("count twice", ("INCR", key), ("INCRBY", key, 10))
        assert await pipeliner.execute("GET", key) == b"114"
    finally:
        await transport.redis.delete(key)
        await transport.close()


async def test_a_reply_to_an_inbox_nobody_reads_expires_after_ttl() -> None:
    """A reply is appended to its inbox without a reply from Redis, and the inbox expires
    ``ttl`` after the last one: a dead node's inbox does not stay."""
    import redis.asyncio as aioredis

    transport = RedisTransport.from_url(_url(ttl="3"))
    await transport.start()
    admin = aioredis.from_url(require_redis())
    key = transport.key("in", "nobody")
    try:
        await transport.post("nobody", b"first")
        await transport.post("nobody", b"second")
        await eventually(lambda: admin.llen(key), lambda n: n == 2)
        assert await admin.lrange(key, 0, -1) == [b"first", b"second"]
        assert 2000 < await admin.pttl(key) <= 3000
    finally:
        await admin.delete(key)
        await admin.aclose()
        await transport.close()


@pytest.mark.parametrize("peer", [False, True], ids=["alone", "beside a waiting peer"])
async def test_an_acknowledgement_applies_at_once_whatever_the_reader_does(peer: bool) -> None:
    """An acknowledgement goes with the node reader's next read when that read is on its
    way, and at once when the reader is blocked (beside a peer waiting on the same
    mailbox): never ``block`` seconds later."""
    import redis.asyncio as aioredis

    from tactor.transports.base import endpoint_mailbox

    transport = RedisTransport.from_url(_url(block="30"))
    await transport.start()
    admin = aioredis.from_url(require_redis())
    mailbox = endpoint_mailbox("acked")
    key = transport.mailbox_key(mailbox)
    consumers = [await transport.consume([mailbox], f"p{i}") for i in range(1 + peer)]
    waits: list[asyncio.Task[object]] = []
    try:

        async def pending() -> int:
            return int((await admin.xpending(key, "tactor"))["pending"])

        async def blocked_on_the_mailbox() -> bool:
            await asyncio.sleep(0.01)
            return key in (transport._reader._blocked_on or ())

        for _ in range(1 if peer else 5):  # beside a peer, the next message would be its
            await transport.deliver(mailbox, b"x")
            delivery = await consumers[0].receive()
            if peer:
                waits.append(asyncio.create_task(consumers[1].receive()))
                await eventually(blocked_on_the_mailbox, bool)  # the peer waits on it
            await delivery.ack()
            waits.append(asyncio.create_task(consumers[0].receive()))  # waits: sends the ack
            await eventually(pending, lambda n: n == 0, timeout=2.0)  # not block=30 s later
            assert await admin.xlen(key) == 0  # deleted too: the stream holds unfinished work
            waits.pop().cancel()
    finally:
        for wait in waits:
            wait.cancel()
        for consumer in consumers:
            await consumer.close()
        await admin.delete(key)
        await admin.aclose()
        await transport.close()
