"""Liveness heartbeats from a thread of their own, so user code cannot starve them.

An actor method that blocks the event loop (CPU work, a blocking call) must
not make its provider look dead and have its messages taken by others; so the
beats come from a daemon thread with its own synchronous connection. The
thread re-creates every entry at each beat, which also re-registers the
providers after a Redis restart.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis

from .connection import text
from .scripts import HEARTBEAT

__all__ = ["OWNED_LIFETIME", "Heartbeat"]

#: An owned key (a provider's private mailbox) outlives its last beat by this many TTLs.
OWNED_LIFETIME = 20

log = logging.getLogger(__name__)


class Heartbeat:
    """Keeps ``(zset key, member)`` entries alive with a server-time expiry of ``ttl`` seconds."""

    def __init__(self, client: redis.Redis, ttl: float, interval: float) -> None:
        self._client = client
        self._ttl_ms = int(ttl * 1000)
        self._interval = interval
        self._entries: set[tuple[str, str]] = set()
        self._owned: set[str] = set()  # keys that expire when their owner stops beating
        self._beating = False
        self._removed: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._script: Any = client.register_script(HEARTBEAT)
        self._failing = False
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

    def args(self) -> tuple[list[str], list[object]]:
        """The keys and arguments of one beat (see the HEARTBEAT script)."""
        with self._lock:
            entries, owned = sorted(self._entries), sorted(self._owned)
        keys = [key for key, _ in entries] + owned
        members = [member for _, member in entries]
        return keys, [self._ttl_ms, len(entries), *members, self._ttl_ms * OWNED_LIFETIME]

    def beat(self) -> dict[str, str]:
        """Extend every entry now (called by the thread); return the sorted sets Redis
        refused (another type of key under the name: WRONGTYPE) and why."""
        with self._lock:
            self._beating = True
        try:
            keys, args = self.args()
            refused = self._script(keys=keys, args=args) if keys else []
        finally:
            with self._lock:
                self._beating = False
                removed, self._removed = self._removed, set()
            for key, member in removed:  # discarded while the beat was in flight
                self._client.zrem(key, member)
        return {text(k): text(e) for k, e in zip(refused[::2], refused[1::2], strict=True)}

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                refused = self.beat()
                if self._failing:
                    log.warning("tactor heartbeat: Redis is reachable again")
                self._failing = False
                self._log_refused(refused)
            except redis.RedisError as exc:
                if not self._failing:
                    log.warning("tactor heartbeat failed, retrying: %s", exc)
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
