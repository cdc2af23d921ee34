"""The registry on Redis: the listing after a provider process is SIGKILLed (it drops out
of the endpoints and providers at its TTL, and what it registered with is dropped too), and
the endpoint's up key that deliveries test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from tactor import ActorSystem
from tactor.errors import NoProvider
from tactor.transports.base import endpoint_mailbox
from tactor.transports.redis import RedisTransport
from tests.conftest import drop_keys, require_redis, with_query
from tests.helpers import ProviderProcess, eventually

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def prefixed() -> Iterator[tuple[str, str, str]]:
    base = require_redis()
    prefix = f"tactor-test:{uuid.uuid4().hex[:12]}"
    yield base, prefix, with_query(base, prefix=prefix, ttl="0.5", block="0.2", claim_idle="0.2")
    drop_keys(base, prefix)


async def test_a_killed_provider_leaves_the_listing_and_its_info(
    prefixed: tuple[str, str, str],
) -> None:
    base, prefix, url = prefixed
    proc = await ProviderProcess.start(url, "pricing", 1, "far")
    try:
        async with ActorSystem(url) as me:
            (listed,) = await me.endpoints()
            assert [p.id for p in listed.providers] == proc.ids
            assert listed.providers[0].pid == proc.pid
            await proc.kill()
            await eventually(me.endpoints, lambda found: found == [], timeout=10)
            assert (await me.endpoint_info("pricing")).providers == ()
            client = redis.Redis.from_url(base)
            try:
                assert client.hkeys(f"{prefix}:pi:pricing") == []  # the listing dropped it
            finally:
                client.close()
    finally:
        if proc.process.returncode is None:
            await proc.kill()


async def test_an_endpoint_is_up_while_any_of_its_nodes_is(
    prefixed: tuple[str, str, str],
) -> None:
    """A delivery to any provider needs a live node of the endpoint (its up key): one node
    leaving cleanly leaves the endpoint up while another is live; the last one leaving takes
    it down at once; a node that stops beating takes it down when its entry expires."""
    base, prefix, url = prefixed
    first, second = RedisTransport.from_url(url), RedisTransport.from_url(url)
    await first.start()
    await second.start()
    mailbox = endpoint_mailbox("upness")
    client = redis.Redis.from_url(base)
    try:
        await first.register("upness", "p1")
        await second.register("upness", "p2")
        await first.deliver(mailbox, b"1", endpoint="upness")
        await first.unregister("upness", "p1")
        await first.deliver(mailbox, b"2", endpoint="upness")  # the second node is live
        await second.unregister("upness", "p2")
        with pytest.raises(NoProvider):  # at once, not at the second node's expiry
            await first.deliver(mailbox, b"3", endpoint="upness")
        assert not client.exists(f"{prefix}:up:upness")

        await second.register("upness", "p2")
        await first.deliver(mailbox, b"4", endpoint="upness")
        assert second._heartbeat is not None
        second._heartbeat.stop()  # the node hangs: no more beats (ttl 0.5 s)
        pttl = client.pttl(f"{prefix}:up:upness")
        assert 0 < pttl <= 500
        await eventually(lambda: _refused(first, mailbox), lambda refused: refused, timeout=3)
    finally:
        client.close()
        await first.close()
        await second.close()


async def _refused(transport: RedisTransport, mailbox: str) -> bool:
    """Whether a delivery to any provider of the endpoint is refused (no live node)."""
    try:
        await transport.deliver(mailbox, b"x", endpoint="upness")
    except NoProvider:
        return True
    return False
