"""The registry on two KV buckets: a beat per node, and a key per provider written once.

- ``P_reg`` holds one key per node that hosts providers, ``NODE``, with the bucket's
  age limit set to the transport's ``ttl``: the node writes it again on every beat
  (``ttl``/3), a few bytes however many providers it hosts, so its key ages out ``ttl``
  after its last beat (SIGKILL, a lost machine).
- ``P_pv`` (no age limit) holds one key per provider, ``NODE.ENDPOINT.PROVIDER`` (names as
  tokens, see :mod:`.names`), whose value is the info the provider registered with:
  written once at ``register``, purged at ``unregister``. A provider is live while its key
  is there and its node's beat is.

Each node watches both buckets and keeps the live entries in memory: a look-up
(``deliver`` to an endpoint, a broadcast) costs no round trip. A key that ages
out sends no notice, so a node is live for ``ttl`` after the watcher last heard
its beat. Where the copy finds no provider, it is read afresh from the buckets
before anyone is told there is none (another node may have registered a moment
ago). What a dead node left (its providers' keys, their private mailboxes) is
dropped by the first live node that finds its beat gone; a node that closes
drops its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from nats.aio.client import Client
from nats.js.kv import KeyValue

from ...errors import TransportError
from ..endpoints import ProviderEntry
from .bucket_reads import read_keys
from .connection import stop_task, translated
from .names import token, untoken

__all__ = ["Registry"]

log = logging.getLogger(__name__)

#: A node's entries: endpoint -> provider -> the info it registered with.
Entries = dict[str, dict[str, bytes]]

_GONE = ("DEL", "PURGE")


class Registry:
    """This node's entries in the buckets, and a live copy of every node's."""

    def __init__(
        self,
        node: str,
        ttl: float,
        on_dead: Callable[[Entries], Awaitable[None]],
    ) -> None:
        self.node = node
        self.ttl = ttl
        self._on_dead = on_dead
        self.own: Entries = {}
        self._beats: dict[str, float] = {}  # node -> when its beat was last heard
        self._entries: dict[str, Entries] = {}  # node -> its providers, as the copy has them
        self._revision = 0  # of this node's key, as its last beat wrote it
        self._rewrite = False  # this node's providers' keys are to be written again
        #: Nodes whose providers' keys this node dropped (or may have: a purge that failed
        #: may have been done) and whose beat key it has yet to delete, the node's sign to
        #: write them all again should it be alive after all; each with what it left, its
        #: entries when first dropped (the watchers forget them once its key is deleted).
        self._unsigned: dict[str, Entries] = {}
        self._beating = asyncio.Lock()  # one beat at a time: each expects the last's revision
        self._registered = False  # ever: its providers' keys (or their markers) to drop
        self._nc: Client | None = None
        self._kv: KeyValue | None = None
        self._pv: KeyValue | None = None
        self._kv_name = self._pv_name = ""
        self._purge: Callable[[str], Awaitable[Any]] | None = None
        self._present: Callable[[str, str], Awaitable[bool]] | None = None
        self._watchers: dict[str, Any] = {}  # "beats", "providers" -> the bucket's watcher now
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(
        self,
        nc: Client,
        beats: tuple[str, KeyValue],
        providers: tuple[str, KeyValue],
        purge: Callable[[str], Awaitable[Any]],
        present: Callable[[str, str], Awaitable[bool]],
    ) -> None:
        """``beats`` and ``providers`` are the buckets, each with its name; ``purge(node)``
        removes every key of ``node`` from ``providers`` (with its markers);
        ``present(bucket, key)`` reads whether a key has a value now."""
        self._nc, self._purge, self._present = nc, purge, present
        (self._kv_name, self._kv), (self._pv_name, self._pv) = beats, providers
        await self.refresh()
        self._tasks = [
            asyncio.create_task(self._watch(what, kv, take), name=f"tactor-nats-{what}-{self.node}")
            for what, kv, take in (
                ("beats", self._kv, self._take_beat),
                ("providers", self._pv, self._take_provider),
            )
        ]

    async def close(self, *, reachable: bool = True) -> None:
        """Stop watching; with the server ``reachable``, remove this node's keys (else
        they age out within the TTL)."""
        self._stopping = True
        for watcher in self._watchers.values():
            with contextlib.suppress(Exception):
                await watcher.stop()
        for task in self._tasks:
            await stop_task(task)
        if self._kv is None or self._purge is None or not self._registered or not reachable:
            return
        with contextlib.suppress(Exception):
            if self.own:
                self.own.clear()
                await self._kv.delete(self.node)
            await self._purge(self.node)  # its providers' keys, and the markers unregister left

    # -- this node's entries -----------------------------------------------------

    def _key(self, endpoint: str, provider: str, node: str | None = None) -> str:
        return f"{node or self.node}.{token(endpoint)}.{token(provider)}"

    async def beat(self) -> None:
        """Write this node's key again: its providers stay live for another ``ttl``. A key
        that was gone meanwhile (aged out while the node was cut off, and its providers'
        keys dropped as a dead node's) is written again, and its providers' keys with it."""
        if self._kv is None or not self.own:
            return
        async with self._beating:
            try:
                with translated("heartbeat"):
                    await self._beat(self._kv)
            except BaseException:
                # While beats fail, another node may drop this one's keys and fail to say so
                # (its delete of this node's key failing after its purge, in a leader election
                # of the bucket): the next beat that goes through writes them all again.
                self._rewrite = True
                raise

    async def _beat(self, kv: KeyValue) -> None:
        try:
            self._revision = await kv.update(self.node, b"1", last=self._revision)
        except Exception as exc:
            if "wrong last sequence" not in str(exc).lower():
                raise
            self._rewrite = True  # until every key is written: a beat may fail midway
            self._revision = await kv.put(self.node, b"1")
        if self._rewrite:
            for endpoint, providers in list(self.own.items()):
                for provider, info in list(providers.items()):
                    await self._write(endpoint, provider, info)
            self._rewrite = False

    async def _write(self, endpoint: str, provider: str, info: bytes) -> None:
        assert self._pv is not None
        await self._pv.put(self._key(endpoint, provider), info)

    async def register(self, endpoint: str, provider: str, info: bytes = b"") -> None:
        first = not self.own
        self.own.setdefault(endpoint, {})[provider] = info
        self._registered = True
        if first:
            await self.beat()  # the node's key first: a provider's key never waits without it
        with translated("register"):
            await self._write(endpoint, provider, info)

    async def unregister(self, endpoint: str, provider: str, *, reachable: bool = True) -> None:
        """Forget the provider here; with the server ``reachable``, remove its key at once
        (else it ages out within the TTL, its node's key with it)."""
        providers = self.own.get(endpoint, {})
        providers.pop(provider, None)
        if not providers:
            self.own.pop(endpoint, None)
        if self._kv is None or self._pv is None:
            return
        try:
            if not reachable:  # (a request would wait out its timeout)
                raise TransportError("NATS is not connected")
            with translated("unregister"):
                await self._pv.purge(self._key(endpoint, provider))
                if not self.own:
                    self._revision = 0
                    await self._kv.delete(self.node)
        except TransportError as exc:  # NATS away: the node's key ages out within the TTL
            log.warning("unregister %s of %s: %s; it expires within %.1fs", provider, endpoint,
                        exc, self.ttl)  # fmt: skip

    # -- everyone's --------------------------------------------------------------

    def _heard(self, node: str, now: float) -> bool:
        """Whether ``node`` is another node whose beat was heard within ``ttl`` of ``now``."""
        return node != self.node and now - self._beats.get(node, float("-inf")) < self.ttl

    def _live_entries(self) -> Iterable[Entries]:
        """The entries of this node and of the nodes whose beat was heard within ``ttl``."""
        now = time.monotonic()
        yield self.own
        for node, entries in self._entries.items():
            if self._heard(node, now):
                yield entries

    def serves(self, endpoint: str, provider: str | None = None) -> bool:
        """Whether ``provider`` (without one: any provider) of ``endpoint`` is live as this
        node's copy has it: :meth:`live` without listing and sorting every provider (it is
        asked twice on every call's path)."""
        providers = self.own.get(endpoint)
        if providers and (provider is None or provider in providers):
            return True
        now = None
        for node, entries in self._entries.items():
            providers = entries.get(endpoint)
            if not providers or (provider is not None and provider not in providers):
                continue
            now = time.monotonic() if now is None else now
            if self._heard(node, now):
                return True
        return False

    def live(self, endpoint: str) -> list[str]:
        """The live providers of ``endpoint`` as this node's copy has them, sorted."""
        found: set[str] = set()
        for entries in self._live_entries():
            found.update(entries.get(endpoint, ()))
        return sorted(found)

    def provider_entries(self, endpoint: str) -> list[ProviderEntry]:
        """:meth:`live`, with what each provider registered with."""
        infos: dict[str, bytes] = {}
        for entries in self._live_entries():
            infos.update(entries.get(endpoint, {}))
        return [ProviderEntry(provider, infos[provider]) for provider in sorted(infos)]

    def endpoints(self) -> list[str]:
        """The endpoints with a live provider, as this node's copy has them, sorted."""
        return sorted({e for entries in self._live_entries() for e, p in entries.items() if p})

    async def refresh(self, endpoint: str | None = None) -> None:
        """Read the buckets afresh (the copy may lag behind a registration): every node's
        beat, and every provider's key (with ``endpoint``, that endpoint's only)."""
        assert self._nc is not None
        with translated("read the registry"):
            pattern = ">" if endpoint is None else f"*.{token(endpoint)}.*"
            beats, providers = map(
                _present,
                await asyncio.gather(
                    read_keys(self._nc, self._kv_name), read_keys(self._nc, self._pv_name, pattern)
                ),
            )
        now = time.monotonic()
        self._beats = dict.fromkeys(beats, now)
        for entries in self._entries.values():
            if endpoint is None:
                entries.clear()
            else:
                entries.pop(endpoint, None)
        for entry in providers.values():
            self._take_provider(entry)

    def _take_beat(self, entry: Any) -> None:
        if entry.operation not in _GONE:
            self._beats[entry.key] = time.monotonic()
        elif entry.key != self.node:  # it left (unregistered its last provider, or closed)
            self._beats.pop(entry.key, None)
            self._entries.pop(entry.key, None)

    def _take_provider(self, entry: Any) -> None:
        try:
            node, endpoint, provider = entry.key.split(".")
        except ValueError:
            log.warning("registry: a key that is not tactor's: %r", entry.key)
            return
        endpoint, provider = untoken(endpoint), untoken(provider)
        entries = self._entries.setdefault(node, {})
        if entry.operation in _GONE:
            entries.get(endpoint, {}).pop(provider, None)
            if not entries.get(endpoint, True):
                del entries[endpoint]
        else:
            entries.setdefault(endpoint, {})[provider] = bytes(entry.value or b"")

    async def _watch(self, what: str, kv: KeyValue, take: Callable[[Any], None]) -> None:
        while not self._stopping:
            try:
                self._watchers[what] = watcher = await kv.watchall()
                if self._stopping:
                    break
                async for entry in watcher:
                    if entry is not None:
                        take(entry)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS away: watch again once it is back
                log.debug("registry watch ended (%s); watching again", exc)
                await asyncio.sleep(0.5)

    async def still_listed(self, endpoint: str, providers: list[str]) -> set[str]:
        """Those of ``providers`` of ``endpoint`` that the buckets list now: this node's own
        entries, else one read of each one's key and of its node's beat, concurrently (a
        provider the copy no longer has is not listed)."""
        mine = self.own.get(endpoint, {})
        found = {p for p in providers if p in mine}
        where = {
            p: node
            for node, entries in self._entries.items()
            for p in entries.get(endpoint, ())
            if node != self.node and p in providers and p not in found
        }
        nodes = sorted(set(where.values()))
        present = self._present
        assert present is not None
        keys = [self._key(endpoint, p, node) for p, node in where.items()]
        with translated("read the registry"):
            read = await asyncio.gather(
                *(present(self._kv_name, node) for node in nodes),
                *(present(self._pv_name, key) for key in keys),
            )
        beating = {node for node, there in zip(nodes, read[: len(nodes)], strict=True) if there}
        listed = zip(where, read[len(nodes) :], strict=True)
        found.update(p for p, there in listed if there and where[p] in beating)
        return found

    async def sweep(self) -> None:
        """Drop nodes whose beat is gone, and what they left (their providers' keys and
        private mailboxes)."""
        assert self._present is not None
        for node in sorted(self._unsigned):  # dropped, but their key not deleted yet
            try:
                left = await self._drop(node)
            except Exception:
                return  # NATS away: sweep later
            await self._on_dead(left)
        now = time.monotonic()
        for node in list(self._entries):
            if node == self.node or now - self._beats.get(node, float("-inf")) < self.ttl:
                continue
            # This node's copy may be stale (it was cut off): only the bucket says "dead".
            try:
                if await self._present(self._kv_name, node):
                    self._beats[node] = now
                    continue
                left = await self._drop(node)
            except Exception:
                return  # NATS away: sweep later
            await self._on_dead(left)

    async def _drop(self, node: str) -> Entries:
        """Drop a node whose beat is gone: its providers' keys, then its key; returns what
        it left, for ``on_dead``."""
        assert self._purge is not None and self._kv is not None
        left = self._unsigned.setdefault(node, copy.deepcopy(self._entries.get(node, {})))
        await self._purge(node)
        # Then its key, even gone: were the verdict wrong (a read from a replica behind),
        # the node's next beat finds its key changed and writes it all again. Until that
        # delete is done, the node stays in _unsigned: each sweep tries it first.
        await self._kv.delete(node)
        del self._unsigned[node]
        self._entries.pop(node, None)
        self._beats.pop(node, None)
        return left


def _present(entries: dict[str, Any]) -> dict[str, Any]:
    """``entries`` without the deleted keys."""
    return {key: entry for key, entry in entries.items() if entry.operation not in _GONE}
