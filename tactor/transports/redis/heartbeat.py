"""Liveness heartbeats from a thread of their own, so user code cannot starve them.

An actor method that blocks the event loop (CPU work, a blocking call) must
not make its provider look dead and have its messages taken by others; so the
beats come from a daemon thread with its own synchronous connection. The
thread re-creates every entry at each beat, and writes again the fields of a
kept hash that Redis lost, which re-registers the providers after a Redis restart.

A beat is one script whose work grows with the node's endpoints, not with its
providers: a provider's liveness is its node's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

import redis

from .connection import described, text
from .scripts.registry import HEARTBEAT, LEAVE

__all__ = ["OWNED_LIFETIME", "Heartbeat"]

#: An owned key (a provider's private mailbox) outlives its last beat by this many TTLs.
OWNED_LIFETIME = 20
#: Every this many beats, a beat also extends the owned keys and drops expired entries
#: (the others only extend the entries: an idle node costs Redis fewer commands).
FULL_EVERY = 5

log = logging.getLogger(__name__)


class Heartbeat:
    """Keeps ``(zset key, member)`` entries alive with a server-time expiry of ``ttl`` seconds."""

    def __init__(self, client: redis.Redis, ttl: float, interval: float) -> None:
        self._client = client
        self._ttl_ms = int(ttl * 1000)
        self._interval = interval
        self._entries: set[tuple[str, str]] = set()
        self._owned: set[str] = set()  # keys that expire when their owner stops beating
        self._kept: dict[str, dict[str, str]] = {}  # hashes (owned) whose fields it restores
        self._needs: dict[str, str] = {}  # zset -> the kept hash its entries go with
        self._ups: dict[str, str] = {}  # zset -> its up key (see _UP in scripts/registry.py)
        self._beating = False
        self._removed: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._script: Any = client.register_script(HEARTBEAT)
        self._leave: Any = client.register_script(LEAVE)
        self._failing = False
        self._reconnect = False  # drop the connection before the next beat (a failover)
        self._beats = 0
        self._refused: dict[str, str] = {}  # the sorted sets refused at the last beat

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tactor-heartbeat", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._client.close()

    def reconnect(self) -> None:
        """Connect again (to where the primary is now) and beat at once; from any thread."""
        self._reconnect = True
        self._wake.set()

    def add(self, key: str, member: str) -> None:
        with self._lock:
            self._entries.add((key, member))

    def discard(self, key: str, member: str) -> None:
        with self._lock:
            self._entries.discard((key, member))
            if self._beating:  # a beat in flight may re-add it: it removes it again after
                self._removed.add((key, member))

    def own(self, key: str) -> None:
        """Keep ``key`` alive while this node beats; it expires some time after the node dies."""
        with self._lock:
            self._owned.add(key)

    def disown(self, key: str) -> None:
        with self._lock:
            self._owned.discard(key)

    def disown_all(self, keys: Iterable[str]) -> None:
        with self._lock:
            self._owned.difference_update(keys)

    def keep(self, key: str, field: str, value: str) -> None:
        """Own hash ``key`` and write ``field`` again whenever Redis lost the hash."""
        with self._lock:
            self._kept.setdefault(key, {})[field] = value
            self._owned.add(key)

    def needs(self, zset: str, key: str) -> None:
        """Entries of ``zset`` are made again only with hash ``key`` (restored first)."""
        with self._lock:
            self._needs[zset] = key

    def up(self, zset: str, key: str) -> None:
        """``key`` lives until the latest expiry in ``zset`` (each beat sets it again)."""
        with self._lock:
            self._ups[zset] = key

    def unkeep(self, key: str, field: str) -> None:
        with self._lock:
            fields = self._kept.get(key)
            if fields is not None:
                fields.pop(field, None)
                if not fields:
                    del self._kept[key]
                    self._owned.discard(key)

    def args(self) -> tuple[list[str], list[object]]:
        """The keys and arguments of one beat (see the HEARTBEAT script)."""
        with self._lock:
            entries, owned = sorted(self._entries), sorted(self._owned)
        full = self._beats % FULL_EVERY == 0
        keys = [key for key, _ in entries] + (owned if full else [])
        members = [member for _, member in entries]
        lifetime = self._ttl_ms * OWNED_LIFETIME if full else 0
        with self._lock:
            needs = [self._needs.get(key, "") for key, _ in entries]
            ups = [self._ups.get(key, "") for key, _ in entries]
        return keys, [self._ttl_ms, len(entries), *members, lifetime, *needs, *ups]

    def beat(self) -> dict[str, str]:
        """Extend every entry now (called by the thread); return the sorted sets Redis
        refused (another type of key under the name: WRONGTYPE) and why."""
        with self._lock:
            self._beating = True
        try:
            keys, args = self.args()
            self._beats += 1
            refused, gone = self._script(keys=keys, args=args) if keys else ([], [])
            if self._restore([text(key) for key in gone]):
                self._beats = 0  # at once, and in full: entries and owned keys again
                keys, args = self.args()
                self._beats += 1
                refused, _ = self._script(keys=keys, args=args)
        finally:
            with self._lock:
                self._beating = False
                removed, self._removed = self._removed, set()
            for key, member in removed:  # discarded while the beat was in flight
                with self._lock:
                    up = self._ups.get(key)
                if up is None:
                    self._client.zrem(key, member)
                else:
                    self._leave(keys=[key, up], args=[member])
        return {text(k): text(e) for k, e in zip(refused[::2], refused[1::2], strict=True)}

    def _restore(self, gone: list[str]) -> bool:
        """Write again the fields of kept hashes Redis no longer had (a restart without
        persistence), or had dropped as a dead node's (this node was late to beat);
        True if there were any."""
        restored = False
        for key in dict.fromkeys(gone):
            with self._lock:
                # Any: redis-py's hint of the mapping differs between its versions.
                fields: Any = dict(self._kept.get(key, {}))
            if fields:
                self._client.hset(key, mapping=fields)
                self._client.pexpire(key, self._ttl_ms * OWNED_LIFETIME)
                restored = True
        return restored

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                if self._reconnect:
                    self._reconnect = False
                    self._client.connection_pool.disconnect()
                refused = self.beat()
                if self._failing:
                    log.warning("tactor heartbeat: Redis is reachable again")
                self._failing = False
                self._log_refused(refused)
            except redis.RedisError as exc:
                if not self._failing:
                    log.warning("tactor heartbeat failed, retrying: %s", described(exc))
                self._failing = True
            self._wake.wait(self._interval)
            self._wake.clear()

    def _log_refused(self, refused: dict[str, str]) -> None:
        """Say once which sorted sets Redis refuses (the others are kept alive), and when
        it takes them again (a provider there is then registered again)."""
        for key in refused.keys() - self._refused.keys():
            log.warning("tactor heartbeat: Redis refused %s (%s); retrying", key, refused[key])
        for key in self._refused.keys() - refused.keys():
            log.warning("tactor heartbeat: Redis takes %s again", key)
        self._refused = refused
