"""The heartbeat thread's liveness entries against a real Redis."""

from __future__ import annotations

import uuid

import pytest
import redis

from tactor.transports.redis.heartbeat import Heartbeat
from tests.conftest import drop_keys, require_redis

pytestmark = pytest.mark.redis


def test_an_entry_removed_during_a_beat_stays_removed() -> None:
    url = require_redis()
    prefix = f"tactor-test:{uuid.uuid4().hex[:12]}"
    key = f"{prefix}:live"
    client = redis.Redis.from_url(url)

    class Racing(Heartbeat):
        """Removes the entry (as a closing system does) after the beat took its snapshot."""

        def args(self) -> tuple[list[str], list[object]]:
            snapshot = super().args()
            self.discard(key, "node-a")
            client.zrem(key, "node-a")
            return snapshot

    heartbeat = Racing(redis.Redis.from_url(url), ttl=3.0, interval=60.0)
    try:
        heartbeat.add(key, "node-a")
        heartbeat.add(key, "node-b")
        heartbeat.own(key)
        heartbeat.beat()  # its script re-adds node-a from the stale snapshot...
        assert client.zscore(key, "node-a") is None  # ...and the beat removes it again
        assert client.zscore(key, "node-b") is not None
        assert client.pttl(key) > 0  # the set itself expires if every node dies
    finally:
        heartbeat.stop()
        drop_keys(url, prefix)
        client.close()


def test_the_up_key_follows_the_entries_it_stands_for() -> None:
    """A beat extends a sorted set's up key with its entry, not when the entry was not
    extended (the key it needs is gone); an entry removed during a beat cuts it back."""
    url = require_redis()
    prefix = f"tactor-test:{uuid.uuid4().hex[:12]}"
    nodes, who, up = f"{prefix}:reg:e", f"{prefix}:who:e", f"{prefix}:up:e"
    client = redis.Redis.from_url(url)

    class Racing(Heartbeat):
        racing = False  # removes node-a after the beat took its snapshot

        def args(self) -> tuple[list[str], list[object]]:
            snapshot = super().args()
            if self.racing:
                self.discard(nodes, "node-a")
            return snapshot

    heartbeat = Racing(redis.Redis.from_url(url), ttl=3.0, interval=60.0)
    try:
        heartbeat.add(nodes, "node-a")
        heartbeat.needs(nodes, who)  # (no fields kept: nothing to write it again with)
        heartbeat.up(nodes, up)
        heartbeat.beat()
        assert client.zscore(nodes, "node-a") is None and not client.exists(up)

        client.hset(who, "p1", "node-a")
        heartbeat.beat()
        assert client.zscore(nodes, "node-a") is not None
        assert 2000 < client.pttl(up) <= 3000

        heartbeat.racing = True
        heartbeat.beat()  # re-adds node-a from its snapshot, then removes it: the last one
        assert client.zscore(nodes, "node-a") is None
        assert not client.exists(up)
    finally:
        heartbeat.stop()
        drop_keys(url, prefix)
        client.close()
