"""Dead letters on Redis with real faults: a message that SIGKILLs every provider process
that handles it, the claims of a dead consumer's entries, and letters that outlive every node."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator

import pytest
import redis

from tactor import ActorSystem, DeadLetter
from tactor.transports import open_transport
from tactor.transports.base import endpoint_mailbox
from tests.conftest import drop_keys, require_redis, with_query
from tests.helpers import ProviderProcess, eventually
from tests.procs import Bomb

pytestmark = [pytest.mark.redis, pytest.mark.slow]

GROUP = "tactor"


@pytest.fixture
def fast_url() -> Iterator[str]:
    """A Redis URL with a namespace of this test's own and short liveness timings."""
    base = require_redis()
    prefix = f"tactor-test:{uuid.uuid4().hex[:12]}"
    yield with_query(base, prefix=prefix, ttl="1", block="0.2", claim_idle="0.2")
    drop_keys(base, prefix)


def prefix_of(url: str) -> str:
    return url.split("prefix=")[1].split("&")[0]


def texts(client: redis.Redis, key: str) -> list[str]:
    return [item.decode() for item in client.lrange(key, 0, -1)]


async def test_a_message_that_kills_every_provider_goes_to_the_dead_letters(
    fast_url: str,
) -> None:
    """Each provider process that takes the poison dies by SIGKILL; replacements start as
    each dies; after max_deliveries attempts it is a dead letter, delivered no more, and
    other tells and calls are handled all along. Replayed once fixed, it is handled."""
    base = require_redis()
    env = {"TACTOR_REDIS_URL": base}
    key = f"{prefix_of(fast_url)}:record"
    url = with_query(fast_url, max_deliveries="3")  # the URL option, in the provider processes
    client = redis.Redis.from_url(base)
    procs = [await ProviderProcess.start(url, "bomb", 1, key, env=env) for _ in range(2)]
    try:
        async with ActorSystem(fast_url) as me:  # it only calls: it serves no Bomb
            await me.tell(Bomb.explode, "poison")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 90
            deaths, tells, answered_after_a_death = 0, [], 0
            letters: list[DeadLetter] = []
            while not letters:
                for index, proc in enumerate(procs):
                    if proc.process.returncode is not None:  # it died: start a replacement
                        assert proc.process.returncode == -9
                        deaths += 1
                        procs[index] = await ProviderProcess.start(url, "bomb", 1, key, env=env)
                tells.append(f"t{len(tells)}")
                await me.tell(Bomb.record, tells[-1])
                await me.call(Bomb.pid_of, timeout=30)
                answered_after_a_death += deaths > 0
                assert loop.time() < deadline, f"no dead letter after {deaths} deaths"
                letters = await me.dead_letters(Bomb)

            (letter,) = letters
            assert (letter.reason, letter.attempts, letter.method) == (
                "max_deliveries",
                3,
                "explode",
            )
            assert (letter.kind, letter.args) == ("tell", {"tag": "poison"})
            exploding = texts(client, f"{key}:exploding")
            assert [e.split(":")[0] for e in exploding] == ["poison"] * 3
            assert len({e.split(":")[1] for e in exploding}) == 3  # three processes died of it
            assert answered_after_a_death > 0  # calls were handled while it went on
            # Every other tell was handled; the poison was not delivered again.
            await eventually(recorded(client, f"{key}:done"), lambda d: set(d) == set(tells))
            assert await me.call(Bomb.pid_of, timeout=10) in {p.pid for p in procs}
            assert len(texts(client, f"{key}:exploding")) == 3
            assert all(p.process.returncode is None for p in procs)
            assert deaths <= 3

            # Fixed, then replayed: handled once, and out of the dead letters.
            client.set(f"{key}:fixed", 1)
            assert await me.replay(letter)
            done = await eventually(
                recorded(client, f"{key}:done"), lambda d: "poison" in d, timeout=20
            )
            assert done.count("poison") == 1
            assert await me.dead_letters(Bomb) == []
            assert not await me.replay(letter)
    finally:
        for proc in procs:
            if proc.process.returncode is None:
                await proc.kill()
        client.delete(*(f"{key}:{name}" for name in ("exploding", "done", "fixed")))
        client.close()


def recorded(client: redis.Redis, key: str) -> Callable[[], Awaitable[list[str]]]:
    async def probe() -> list[str]:
        return texts(client, key)

    return probe


async def test_a_dead_consumers_entries_are_claimed_one_at_a_time(fast_url: str) -> None:
    """What a claimer handles before it dies is not counted again: entries of a dead
    consumer are claimed oldest first, one at a time, the acknowledgements due sent first."""
    url = with_query(fast_url, claim_idle="0")
    box = endpoint_mailbox("svc")
    key = f"{prefix_of(fast_url)}:mb:{box}"
    client = redis.Redis.from_url(require_redis())
    transport = open_transport(url)
    await transport.start()
    try:
        for payload in (b"a", b"b", b"c"):
            await transport.deliver(box, payload)
        client.xgroup_create(key, GROUP, id="0", mkstream=True)
        client.xreadgroup(GROUP, "ghost", {key: ">"})  # took all three, then died (never live)

        def owners() -> dict[bytes, str]:
            pending = client.xpending_range(key, GROUP, "-", "+", 10)
            return {p["message_id"]: p["consumer"].decode() for p in pending}

        consumer = await transport.consume([box], "live")
        got = []
        for expected in (b"a", b"b", b"c"):
            delivery = await consumer.receive()
            assert (delivery.payload, delivery.attempts) == (expected, 2)
            # Only the one in hand is pending with the live node (its consumers read under it).
            assert sorted(owners().values()).count(transport.node) == 1  # type: ignore[attr-defined]
            got.append(delivery.payload)
            await delivery.ack()
        assert got == [b"a", b"b", b"c"]
        await transport.deliver(box, b"d")
        fresh = await consumer.receive()
        assert (fresh.payload, fresh.attempts) == (b"d", 1)
        await fresh.ack()
        await consumer.close()
        assert client.xlen(key) == 0
    finally:
        await transport.close()
        client.close()


async def test_dead_letters_outlive_every_system(fast_url: str) -> None:
    """Dead letters are Redis keys: closing every system leaves them; a new one lists them."""
    async with ActorSystem(fast_url) as system:
        await system.spawn(Bomb, "unused", require_redis())
        await system.transport.deliver(endpoint_mailbox("bomb"), b"\xff not a message")
        (letter,) = await eventually(lambda: system.dead_letters(Bomb), lambda ls: len(ls) == 1)
    async with ActorSystem(fast_url) as later:
        assert await later.dead_letters(Bomb) == [letter]
        assert await later.discard(letter)
        assert await later.dead_letters(Bomb) == []
