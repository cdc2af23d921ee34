"""The registry's listing on Redis after a provider process is SIGKILLed: it drops out of
the endpoints and providers at its TTL, and what it registered with is dropped too."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from tactor import ActorSystem
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
