"""No zombie providers on Redis: a fault at any step of a consumer's start and read loop.

After each fault Redis is healthy again, and the provider must serve again —
or, when it cannot, leave the registry so that calls go elsewhere or fail
fast with NoProvider. Faults are real Redis actions where the moment can be
hit from outside (a stream deleted or replaced while its consumer waits, a
server made a replica and back); where it cannot, they run at the consumer's
step itself through :class:`tests.faults.FaultyRedisTransport`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from tactor import ActorRef, ActorSystem, CallTimeout, NoProvider, TransportError
from tests.conftest import drop_keys, require_redis, with_query
from tests.faults import Action, FaultyRedisTransport, deleting, raising, replacing
from tests.helpers import eventually
from tests.model import Pricing
from tests.servers import redis_server

pytestmark = [pytest.mark.redis]

OPTIONS = {"ttl": 1.0, "block": 0.2, "claim_idle": 0.2}


@pytest.fixture
def prefix() -> Iterator[str]:
    prefix = f"tactor-test:{uuid.uuid4().hex[:12]}"
    yield prefix
    drop_keys(require_redis(), prefix)


def url_of(base: str, prefix: str) -> str:
    return with_query(base, prefix=prefix, **{k: str(v) for k, v in OPTIONS.items()})


async def answer(caller: ActorSystem, ref: ActorRef[Pricing] | None = None) -> object:
    """What a call to ``ref`` (or to any provider) ends with: its result or its error."""
    try:
        return await caller.call(Pricing.where, provider=ref, timeout=1.0)
    except (CallTimeout, NoProvider, TransportError) as exc:
        return exc


async def serves_again(caller: ActorSystem, ref: ActorRef[Pricing]) -> None:
    """The provider answers calls addressed to it and to its endpoint, and handles tells."""
    await eventually(lambda: answer(caller, ref), lambda r: r == "eu", timeout=10)
    assert await answer(caller) == "eu"
    assert await caller.providers(Pricing) == [ref.id]
    before = await caller.call(Pricing.stock_of, "a", provider=ref)
    await caller.tell(Pricing.restock, "a", 1)
    await eventually(
        lambda: caller.call(Pricing.stock_of, "a", provider=ref), lambda n: n == before + 1
    )


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    """Whether a record (its message or its exception) mentions ``text``."""
    for record in caplog.records:
        exc = record.exc_info[1] if record.exc_info else None
        if text in record.getMessage() or (exc is not None and text in repr(exc)):
            return True
    return False


async def seen(caplog: pytest.LogCaptureFixture, text: str) -> None:
    async def probe() -> bool:
        return logged(caplog, text)

    await eventually(probe, bool, timeout=10)


@asynccontextmanager
async def faulty_provider(
    prefix: str,
) -> AsyncIterator[tuple[FaultyRedisTransport, ActorRef[Pricing], ActorSystem]]:
    """A provider on a node whose consumers meet armed faults, and a caller on a plain node."""
    base = require_redis()
    transport = FaultyRedisTransport(base, prefix=prefix, **OPTIONS)
    async with ActorSystem(transport) as node, ActorSystem(url_of(base, prefix)) as caller:
        ref = await node.spawn(Pricing, "eu")
        assert await answer(caller, ref) == "eu"
        yield transport, ref, caller


async def is_set(event: asyncio.Event) -> bool:
    return event.is_set()


async def make_ghost_entry(client: aioredis.Redis, key: str) -> None:
    """An entry pending with a consumer that is not alive: a live one claims it."""
    script = (
        "redis.call('XADD', KEYS[1], '*', 'p', 'ghost');"
        "return redis.call('XREADGROUP', 'GROUP', 'tactor', 'ghost', 'COUNT', 1,"
        " 'STREAMS', KEYS[1], '>')"
    )
    await client.eval(script, 1, key)


STEPS = [
    # step, what it does there, what makes the consumer reach the step
    ("xgroup_create", "replace", "regroup"),
    ("xgroup_createconsumer", "delete", "regroup"),  # issue 11: DEL between the two
    ("xpending_range", "replace", None),
    ("xreadgroup", "replace", "lost"),
    ("live_members", "replace-live", "ghost"),
    ("xclaim", "delete", "ghost"),
]


@pytest.mark.parametrize(("step", "fault", "trigger"), STEPS)
async def test_a_fault_at_each_consumer_step_leaves_a_serving_provider(
    prefix: str, caplog: pytest.LogCaptureFixture, step: str, fault: str, trigger: str | None
) -> None:
    caplog.set_level(logging.WARNING)
    client = aioredis.Redis.from_url(require_redis())
    endpoint_key, live_key = f"{prefix}:mb:ep:pricing", f"{prefix}:live"
    broken = live_key if fault == "replace-live" else endpoint_key
    try:
        async with faulty_provider(prefix) as (transport, ref, caller):
            action: Action = (
                deleting(client, broken) if fault == "delete" else replacing(client, broken)
            )
            hit = transport.faults.arm(
                step, action, key=endpoint_key if step != "live_members" else None
            )
            if trigger == "regroup":  # the stream vanishes under a waiting read: make it again
                await client.delete(endpoint_key)
            elif trigger == "lost":  # a lost connection: read back what it had taken
                transport.faults.arm("xpending_range", raising(RedisConnectionError("injected")))
            elif trigger == "ghost":
                await make_ghost_entry(client, endpoint_key)
            await eventually(lambda: is_set(hit), bool, timeout=10)
            if fault != "delete":  # the consumer meets the wrong type, then Redis is healthy
                await seen(caplog, "refused a mailbox read (WRONGTYPE")
                await client.delete(broken)
            await serves_again(caller, ref)
    finally:
        await client.aclose()


async def test_a_stream_replaced_by_another_type_then_deleted(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Real Redis actions only: the endpoint's stream becomes a string under a waiting read."""
    caplog.set_level(logging.WARNING)
    base = require_redis()
    client = aioredis.Redis.from_url(base)
    endpoint_key = f"{prefix}:mb:ep:pricing"
    try:
        async with (
            ActorSystem(url_of(base, prefix)) as node,
            ActorSystem(url_of(base, prefix)) as caller,
        ):
            ref = await node.spawn(Pricing, "eu")
            assert await answer(caller, ref) == "eu"
            await client.set(endpoint_key, "not a stream")
            await seen(caplog, "refused a mailbox read (WRONGTYPE")
            await client.delete(endpoint_key)
            await serves_again(caller, ref)
    finally:
        await client.aclose()


@pytest.mark.slow
async def test_a_server_made_a_replica_and_back_is_served_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """REPLICAOF host port, then REPLICAOF NO ONE: the server refuses writes (READONLY) and
    loses its keys to the primary's, then is a healthy primary again."""
    caplog.set_level(logging.WARNING)
    with redis_server() as server, redis_server() as primary:
        url = with_query(server.url, prefix="replica", ttl="1", block="0.2", claim_idle="0.2")
        admin = server.client()
        try:
            async with ActorSystem(url) as node, ActorSystem(url) as caller:
                ref = await node.spawn(Pricing, "eu")
                assert await answer(caller, ref) == "eu"
                admin.replicaof("127.0.0.1", primary.port)
                await seen(caplog, "refused a mailbox read (You can't write against a read only")
                admin.replicaof("NO", "ONE")
                await serves_again(caller, ref)
                assert await answer(node, ref) == "eu"  # both nodes' reply inboxes read again
        finally:
            admin.close()
