"""Reading a KV bucket as it is now (the registry's fresh reads), against a real NATS."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tactor.transports.nats.bucket_reads import read_keys
from tactor.transports.nats.connection import api
from tests.conftest import require_nats
from tests.helpers import eventually


@pytest.fixture
def nats_base() -> str:
    return require_nats()


@contextlib.asynccontextmanager
async def a_bucket(nats_base: str) -> AsyncIterator[tuple[Any, str]]:
    """A client and a KV bucket of this test's own, deleted at the end."""
    import nats
    from nats.js.api import KeyValueConfig

    nc = await nats.connect(nats_base)
    name = f"t{uuid.uuid4().hex[:12]}_reads"
    js = nc.jetstream()
    await js.create_key_value(KeyValueConfig(bucket=name, history=1))
    try:
        yield nc, name
    finally:
        await js.delete_key_value(name)
        await nc.close()


async def test_a_read_has_every_key_while_others_are_purged(nats_base: str) -> None:
    """A read has every key the bucket held, however the purge of another node's keys falls
    during it (nats-py's watcher ends such a read early, or never)."""
    async with a_bucket(nats_base) as (nc, name):
        await _read_while_purged(nc, name)


async def _read_while_purged(nc: Any, name: str) -> None:
    kv = await nc.jetstream().key_value(name)
    await asyncio.gather(*(kv.put(f"a.svc.p{i}", b"x") for i in range(300)))
    await kv.delete("a.svc.p0")
    for round_ in range(20):
        await kv.put(f"b.svc.q{round_}", b"y")
        reading = asyncio.create_task(read_keys(nc, name))
        await asyncio.sleep(0.001 * (round_ % 5))
        await api(nc, f"STREAM.PURGE.KV_{name}", {"filter": f"$KV.{name}.b.>"})
        entries = await reading
        present = {key for key, entry in entries.items() if entry.operation is None}
        present.discard(f"b.svc.q{round_}")  # read before its purge, or not
        assert present == {f"a.svc.p{i}" for i in range(1, 300)}, round_
        assert entries["a.svc.p0"].operation == "DEL"
        assert entries["a.svc.p1"].value == b"x"


async def test_a_read_matches_its_pattern_and_leaves_no_consumer(nats_base: str) -> None:
    async with a_bucket(nats_base) as (nc, name):
        await _read_patterns(nc, name)


async def _read_patterns(nc: Any, name: str) -> None:
    kv = await nc.jetstream().key_value(name)
    assert await read_keys(nc, name) == {}
    await kv.put("n1.svc.p1", b"1")
    await kv.put("n1.other.p2", b"2")
    await kv.put("n2.svc.p3", b"3")
    assert sorted(await read_keys(nc, name, "*.svc.*")) == ["n1.svc.p1", "n2.svc.p3"]
    assert sorted(await read_keys(nc, name, "n1.>")) == ["n1.other.p2", "n1.svc.p1"]

    async def consumers() -> int:
        info = await nc.jetstream().stream_info(f"KV_{name}")
        return int(info.state.consumer_count)

    await eventually(consumers, lambda count: count == 0)


async def test_a_key_is_present_while_it_has_a_value_and_not_once_deleted_or_purged(
    nats_base: str,
) -> None:
    """The registry's check after a delivery reads single keys: a key with a value (an empty
    one too) is there; one never written, deleted, purged, or in a bucket that does not
    exist is not; a value written again after a delete is there again."""
    from tactor.transports.nats.appends import Appends

    async with a_bucket(nats_base) as (nc, name):
        asks = Appends()
        await asks.open(nc)
        kv = await nc.jetstream().key_value(name)
        await kv.put("node.a", b"beat")
        await kv.put("node.empty", b"")
        await kv.put("node.deleted", b"x")
        await kv.delete("node.deleted")
        await kv.put("node.purged", b"x")
        await kv.purge("node.purged")
        await kv.put("node.back", b"x")
        await kv.delete("node.back")
        await kv.put("node.back", b"again")
        keys = ["node.a", "node.empty", "node.deleted", "node.purged", "node.never", "node.back"]
        found = await asyncio.gather(*(asks.key_present(nc, name, key) for key in keys))
        assert dict(zip(keys, found, strict=True)) == {
            "node.a": True,
            "node.empty": True,
            "node.deleted": False,
            "node.purged": False,
            "node.never": False,
            "node.back": True,
        }
        assert await asks.key_present(nc, f"{name}_none", "node.a") is False
