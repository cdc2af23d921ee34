"""Provider processes over NATS: what only NATS shows (its streams, consumers and keys). The
behaviour that every transport shares is in ``test_provider_processes.py``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tactor import ActorSystem
from tactor.transports.nats.bucket_reads import read_keys
from tests.conftest import drop_nats, require_nats, with_query
from tests.model import Pricing

pytestmark = [pytest.mark.slow]

TTL = 1.0  # seconds a silent node stays in the registry (fast, for tests)


@pytest.fixture
def fast_url() -> Iterator[str]:
    """A NATS URL with a namespace of this test's own and short liveness timings."""
    base = require_nats()
    prefix = f"tactor-test-{uuid.uuid4().hex[:12]}"
    yield with_query(base, prefix=prefix, ttl=str(TTL), block="1")
    drop_nats(base, prefix)


async def test_a_closed_system_leaves_nothing_of_its_own(fast_url: str) -> None:
    """As a clean close leaves nothing under a Redis prefix, it leaves nothing of its nodes in
    the namespace's streams and buckets: no registry key, no consumer (an endpoint's, a
    provider's, a queue's), no message, no unfinished count. The streams and buckets stay."""
    async with ActorSystem(fast_url) as server, ActorSystem(fast_url) as caller:
        ref = await server.spawn(Pricing, "eu")
        assert await caller.call(Pricing.where, provider=ref) == "eu"
        await caller.tell(Pricing.restock, "a", 7)
        assert await caller.proxy(Pricing).stock_of("a") == 7  # the tell was handled
        await caller.broadcast(Pricing.where)
        jobs = caller.queue("jobs", int)
        await jobs.put(1)
        assert await jobs.get() == 1
        await jobs.task_done()
        transport = server.transport
    base = require_nats()
    prefix = fast_url.split("prefix=")[1].split("&")[0]
    import nats

    from tactor.transports.nats.names import Names

    names = Names(prefix)
    nc = await nats.connect(base)
    try:
        js = nc.jetstream()
        for bucket in (names.registry, names.registered, names.unfinished):
            entries = await read_keys(nc, bucket)
            assert [k for k, e in entries.items() if e.operation is None] == [], bucket
        for stream in (names.mailboxes, names.queues):
            assert [c.name for c in await js.consumers_info(stream)] == [], stream
            assert (await js.stream_info(stream)).state.messages == 0, stream
    finally:
        await nc.close()
    assert getattr(transport, "_closed", False)
