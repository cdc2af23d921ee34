"""Redis refusing (WRONGTYPE, READONLY) or gone, on the paths beside a provider's consumer.

The consumer and the reply inbox ride out refusals (``test_redis_runner_faults.py``);
here: closing and stopping, the heartbeat thread, dead letters and queues. No redis-py
exception reaches the user, no reader dies, and nothing is lost on the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
import redis

from tactor import Actor, ActorSystem, TactorError, TransportError
from tests.conftest import drop_keys, require_redis, with_query
from tests.helpers import eventually
from tests.model import PriceChanged, Pricing
from tests.servers import redis_server

pytestmark = [pytest.mark.redis]

OPTIONS = {"ttl": "1", "block": "0.2", "claim_idle": "0.2"}


@pytest.fixture
def prefix() -> Iterator[str]:
    prefix = f"tactor-test:{uuid.uuid4().hex[:12]}"
    yield prefix
    drop_keys(require_redis(), prefix)


def heartbeats() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "tactor-heartbeat")


def live(client: redis.Redis, key: str) -> list[bytes]:
    """The members of sorted set ``key`` whose expiry (server time) has not passed."""
    seconds, micros = client.time()
    return list(client.zrangebyscore(key, seconds * 1000 + micros // 1000, "+inf"))


async def on_price(event: PriceChanged) -> None:
    pass


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["read-only", "down"])
async def test_close_ends_cleanly_while_redis_refuses_or_is_gone(fault: str) -> None:
    """close() raises nothing, ends the heartbeat thread and closes the transport — it
    left the system half-closed (its thread beating, a second close() doing nothing)."""
    with redis_server() as server, redis_server() as primary:
        url = with_query(server.url, prefix="closing", **OPTIONS)
        admin = server.client()
        try:
            before = heartbeats()
            node = await ActorSystem(url).start()
            await node.spawn(Pricing, "eu")
            await node.subscribe(on_price)
            assert await node.proxy(Pricing).where() == "eu"
            if fault == "read-only":
                admin.replicaof("127.0.0.1", primary.port)
            else:
                server.kill()
            await node.close()
            assert "closed" in repr(node) and heartbeats() == before
            # Writable again: nothing of the closed system beats its entries back.
            if fault == "read-only":
                admin.replicaof("NO", "ONE")
            else:
                server.start()
            await asyncio.sleep(1.5)  # several heartbeat intervals (ttl/3)
            assert live(admin, "closing:live") == []
        finally:
            admin.close()


@pytest.mark.slow
async def test_stop_while_redis_refuses_writes_stops_the_provider(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    with redis_server() as server, redis_server() as primary:
        url = with_query(server.url, prefix="stopping", **OPTIONS)
        admin = server.client()
        try:
            async with ActorSystem(url) as node:
                ref = await node.spawn(Pricing, "eu")
                admin.replicaof("127.0.0.1", primary.port)
                await node.stop(ref)  # raised TransportError after stopping it all the same
                assert node.refs() == []
                assert "its private mailbox was not deleted" in caplog.text
                admin.replicaof("NO", "ONE")
        finally:
            admin.close()


class Other(Actor, name="refusals-other"):
    async def hello(self) -> str:
        return "hello"


async def test_a_registry_key_of_another_type_leaves_the_nodes_other_providers_live(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """One beat keeps every entry of a node alive: a WRONGTYPE on one endpoint's registry
    failed it whole, so every provider of the node left the registry (and its consumers
    looked dead to the others). Now only that endpoint's entry is refused, and logged."""
    caplog.set_level(logging.WARNING)
    base = require_redis()
    client = redis.Redis.from_url(base)
    url = with_query(base, prefix=prefix, **OPTIONS)
    broken = f"{prefix}:reg:refusals-other"
    try:
        async with ActorSystem(url) as node, ActorSystem(url) as caller:
            ref = await node.spawn(Pricing, "eu")
            other = await node.spawn(Other)
            client.delete(broken)
            client.set(broken, "not a sorted set")
            await asyncio.sleep(2.5)  # well past the ttl (1 s): an entry not beaten is gone
            assert f"Redis refused {broken} (WRONGTYPE" in caplog.text
            assert await caller.providers(Pricing) == [ref.id]
            assert await caller.call(Pricing.where, timeout=2) == "eu"
            client.delete(broken)
            await eventually(lambda: caller.providers(Other), lambda p: p == [other.id])
            assert await caller.call(Other.hello, timeout=2) == "hello"

            async def logged() -> str:  # said once the beat that took it is done
                return caplog.text

            await eventually(logged, lambda text: f"Redis takes {broken} again" in text)
    finally:
        client.close()


async def test_a_spawn_that_cannot_register_leaves_nothing_running(prefix: str) -> None:
    base = require_redis()
    client = redis.Redis.from_url(base)
    try:
        client.set(f"{prefix}:reg:refusals-other", "not a sorted set")
        async with ActorSystem(with_query(base, prefix=prefix, **OPTIONS)) as node:
            with pytest.raises(TransportError, match="WRONGTYPE"):
                await node.spawn(Other)
            assert node.refs() == []  # it was left serving the endpoint's mailbox, unlisted
    finally:
        client.close()


async def test_a_dead_letter_key_of_another_type_loses_no_message(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Moving a message aside acknowledged and deleted it before Redis refused to add it
    to dead letters of another type: it was lost. Now it stays in the mailbox, and is
    set aside once Redis takes it."""
    caplog.set_level(logging.WARNING)
    base = require_redis()
    client = redis.Redis.from_url(base)
    url = with_query(base, prefix=prefix, **OPTIONS)
    mailbox, letters = f"{prefix}:mb:ep:pricing", f"{prefix}:dl:ep:pricing"
    try:
        async with ActorSystem(url) as node:
            await node.spawn(Pricing, "eu")
            client.set(letters, "not a stream")
            client.xadd(mailbox, {"p": b"not a tactor message"})  # malformed: set aside
            await eventually(lambda: log_text(caplog), lambda t: "could not move" in t)
            assert client.xlen(mailbox) == 1
        # The provider stopped; its pending message went back to the mailbox.
        client.delete(letters)
        async with ActorSystem(url) as node:
            await node.spawn(Pricing, "eu")
            found = await eventually(lambda: node.dead_letters(Pricing), lambda d: len(d) == 1)
            assert found[0].reason == "malformed" and found[0].payload == b"not a tactor message"
    finally:
        client.close()


async def log_text(caplog: pytest.LogCaptureFixture) -> str:
    return caplog.text


@pytest.mark.parametrize("broken", ["counter", "list"])
async def test_a_queue_put_that_fails_puts_nothing(prefix: str, broken: str) -> None:
    """A counter of unfinished tasks of another type failed the put after the item was
    appended: put() raised, yet the item was in the queue (twice, once put again)."""
    base = require_redis()
    client = redis.Redis.from_url(base)
    key = f"{prefix}:q:jobs"
    try:
        async with ActorSystem(with_query(base, prefix=prefix)) as node:
            jobs = node.queue("jobs", int)
            await jobs.put(1)
            client.set(f"{key}:unfinished" if broken == "counter" else key, "not it")
            with pytest.raises(TransportError):
                await jobs.put(2)
            if broken == "counter":
                assert client.lrange(key, 0, -1) == [b"1"]
            else:
                assert client.get(f"{key}:unfinished") == b"1"
    finally:
        client.close()


@pytest.mark.slow
async def test_every_public_method_during_a_read_only_flip_fails_typed_or_works() -> None:
    """REPLICAOF host port, then REPLICAOF NO ONE under a running system: while the server
    refuses writes, each method works or raises a TactorError (never redis-py's); after,
    every one works again — events, queues, dead letters, the registry."""
    with redis_server() as server, redis_server() as primary:
        url = with_query(server.url, prefix="flip", **OPTIONS)
        admin = server.client()
        try:
            async with ActorSystem(url) as node, ActorSystem(url) as caller:
                await node.spawn(Pricing, "eu")
                events: list[PriceChanged] = []

                async def on_event(event: PriceChanged) -> None:
                    events.append(event)

                jobs = caller.queue("jobs", int)
                await jobs.put(1)
                admin.replicaof("127.0.0.1", primary.port)
                await eventually(lambda: answers(caller), lambda r: r != "eu", timeout=10)
                attempts = [
                    caller.providers(Pricing),
                    caller.dead_letters(Pricing),
                    caller.publish(PriceChanged("a", Decimal(1))),
                    jobs.put(2),
                    jobs.get(timeout=0.2),
                    jobs.qsize(),
                    jobs.task_done(),
                    jobs.delete(),
                ]
                for attempt in attempts:
                    with contextlib.suppress(TactorError):  # not redis-py's errors
                        await attempt
                subscription = await caller.subscribe(on_event)  # works on a replica
                admin.replicaof("NO", "ONE")

                await eventually(lambda: answers(caller), lambda r: r == "eu", timeout=15)
                await jobs.delete()  # what it holds depends on when the flip synced
                await jobs.put(3)
                assert await jobs.get(timeout=2) == 3
                assert await caller.dead_letters(Pricing) == []

                async def publish_and_count() -> int:
                    await node.publish(PriceChanged("a", Decimal(2)))
                    await asyncio.sleep(0.05)
                    return len(events)

                await eventually(publish_and_count, lambda n: n > 0, timeout=10)
                await subscription.close()
        finally:
            admin.close()


async def answers(caller: ActorSystem) -> object:
    try:
        return await caller.call(Pricing.where, timeout=1.0)
    except TactorError as exc:
        return exc
