"""The registry on a KV bucket: one key per node, renewed by the node's heartbeat.

The bucket's age limit is the transport's ``ttl``: a node's key holds every
``endpoint -> {provider: info}`` entry of the node (the info that the provider
registered with, base64) and is written again on every beat (``ttl``/3), so a
node costs one write per beat however many providers it hosts, and its key ages
out ``ttl`` after its last beat (SIGKILL, a lost machine). Registering and
unregistering write the key at once.

Each node watches the bucket and keeps the live entries in memory: a look-up
(``deliver`` to an endpoint, a broadcast) costs no round trip. A key that
ages out sends no notice, so an entry is live for ``ttl`` after the watcher
last heard of it. Where the copy finds no provider, it is read afresh from
the bucket before anyone is told there is none (another node may have
registered a moment ago).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
from nats.js.kv import KeyValue

from ...errors import TransportError
from ..base import ProviderEntry
from .connection import stop_task, translated

__all__ = ["Registry"]

log = logging.getLogger(__name__)


class Registry:
    """This node's entries in the bucket, and a live copy of every node's."""

    def __init__(
        self,
        node: str,
        ttl: float,
        on_dead: Callable[[dict[str, dict[str, str]]], Awaitable[None]],
    ) -> None:
        self.node = node
        self.ttl = ttl
        self._on_dead = on_dead
        self.own: dict[str, dict[str, str]] = {}  # endpoint -> this node's providers -> info
        #: node -> (when heard, its entries: endpoint -> provider -> info, base64)
        self._nodes: dict[str, tuple[float, dict[str, dict[str, str]]]] = {}
        self._kv: KeyValue | None = None
        self._watcher: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self, kv: KeyValue) -> None:
        self._kv = kv
        await self.refresh()
        self._task = asyncio.create_task(self._watch(), name=f"tactor-nats-registry-{self.node}")

    async def close(self) -> None:
        self._stopping = True
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.stop()
        await stop_task(self._task)
        if self._kv is not None and self.own:
            self.own.clear()
            with contextlib.suppress(Exception):
                await self._kv.delete(self.node)

    # -- this node's entries -----------------------------------------------------

    async def beat(self) -> None:
        """Write this node's key (again): its entries stay live for another ``ttl``."""
        if self._kv is None:
            return
        if not self.own:
            return
        entries = {endpoint: dict(providers) for endpoint, providers in self.own.items()}
        with translated("heartbeat"):
            await self._kv.put(self.node, orjson.dumps(entries))
        self._heard(self.node, entries)

    async def register(self, endpoint: str, provider: str, info: bytes = b"") -> None:
        self.own.setdefault(endpoint, {})[provider] = base64.b64encode(info).decode()
        await self.beat()

    async def unregister(self, endpoint: str, provider: str) -> None:
        providers = self.own.get(endpoint, {})
        providers.pop(provider, None)
        if not providers:
            self.own.pop(endpoint, None)
        try:
            if self.own:
                await self.beat()
            elif self._kv is not None:
                self._nodes.pop(self.node, None)
                with translated("unregister"):
                    await self._kv.delete(self.node)
        except TransportError as exc:  # NATS away: the entry ages out within the TTL
            log.warning("unregister %s of %s: %s; it expires within %.1fs", provider, endpoint,
                        exc, self.ttl)  # fmt: skip

    # -- everyone's --------------------------------------------------------------

    def _heard(self, node: str, entries: dict[str, dict[str, str]], age: float = 0.0) -> None:
        self._nodes[node] = (time.monotonic() - age, entries)

    def _live_entries(self) -> Iterable[dict[str, dict[str, str]]]:
        """The entries of this node and of the nodes heard of within ``ttl``."""
        now = time.monotonic()
        yield self.own
        for heard, entries in self._nodes.values():
            if now - heard < self.ttl:
                yield entries

    def live(self, endpoint: str) -> list[str]:
        """The live providers of ``endpoint`` as this node's copy has them, sorted."""
        found: set[str] = set()
        for entries in self._live_entries():
            found.update(entries.get(endpoint, ()))
        return sorted(found)

    def provider_entries(self, endpoint: str) -> list[ProviderEntry]:
        """:meth:`live`, with what each provider registered with."""
        infos: dict[str, str] = {}
        for entries in self._live_entries():
            infos.update(entries.get(endpoint, {}))
        return [ProviderEntry(provider, _info(infos[provider])) for provider in sorted(infos)]

    def endpoints(self) -> list[str]:
        """The endpoints with a live provider, as this node's copy has them, sorted."""
        return sorted({e for entries in self._live_entries() for e, p in entries.items() if p})

    async def refresh(self) -> None:
        """Read every node's key afresh (the copy may lag behind a registration)."""
        assert self._kv is not None
        seen: set[str] = set()
        with translated("read the registry"):
            watcher = await self._kv.watchall()
            try:
                while True:
                    entry = await watcher.updates(timeout=5.0)  # type: ignore[no-untyped-call]
                    if entry is None:
                        break
                    seen.add(entry.key)
                    self._take(entry)
            finally:
                with contextlib.suppress(Exception):
                    await watcher.stop()  # type: ignore[no-untyped-call]
        for node, (_, entries) in list(self._nodes.items()):
            if node not in seen and node != self.node:  # its key aged out: no longer live
                self._nodes[node] = (float("-inf"), entries)  # the sweep cleans up after it

    def _take(self, entry: Any) -> None:
        if entry.operation in ("DEL", "PURGE") or not entry.value:
            self._nodes.pop(entry.key, None)
            return
        try:
            entries = orjson.loads(entry.value)
        except orjson.JSONDecodeError:
            entries = None
        if not _is_entries(entries):
            log.warning("registry: an entry that is not tactor's under %r", entry.key)
            return
        self._heard(entry.key, entries)

    async def _watch(self) -> None:
        assert self._kv is not None
        while not self._stopping:
            try:
                self._watcher = watcher = await self._kv.watchall()
                if self._stopping:
                    break
                async for entry in watcher:
                    if entry is not None:
                        self._take(entry)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS away: watch again once it is back
                log.debug("registry watch ended (%s); watching again", exc)
                await asyncio.sleep(0.5)

    async def still_listed(self, endpoint: str, providers: list[str]) -> set[str]:
        """Those of ``providers`` of ``endpoint`` that the bucket lists now: this node's own
        entries, else one read of the key of each node the copy has them on (a provider
        the copy no longer has is not listed)."""
        mine = self.own.get(endpoint, {})
        found = {p for p in providers if p in mine}
        wanted = set(providers) - found
        nodes = [
            node
            for node, (_, entries) in self._nodes.items()
            if node != self.node and not wanted.isdisjoint(entries.get(endpoint, ()))
        ]
        with translated("read the registry"):
            keys = await asyncio.gather(*map(self._read, nodes))
        for node, entry in zip(nodes, keys, strict=True):
            if entry is not None:
                self._take(entry)
            elif node in self._nodes:  # its key is gone: not live (the sweep cleans up after it)
                self._nodes[node] = (float("-inf"), self._nodes[node][1])
                continue
            found.update(wanted.intersection(self._nodes.get(node, (0.0, {}))[1].get(endpoint, ())))
        return found

    async def _read(self, node: str) -> Any:
        """``node``'s key as the bucket has it now; None if there is none."""
        assert self._kv is not None
        try:
            return await self._kv.get(node)
        except KeyError:
            return None
        except Exception as exc:
            if "not found" not in str(exc).lower() and "deleted" not in str(exc).lower():
                raise
            return None

    async def sweep(self) -> None:
        """Forget nodes silent for ``ttl``; what they left (private mailboxes) is dropped."""
        now = time.monotonic()
        for node, (heard, entries) in list(self._nodes.items()):
            if node == self.node or now - heard < self.ttl:
                continue
            # This node's copy may be stale (it was cut off): only the bucket says "dead".
            try:
                entry = await self._read(node)
            except Exception:
                return  # NATS away: sweep later
            if entry is not None and entry.value:
                self._take(entry)
                continue
            self._nodes.pop(node, None)
            await self._on_dead(entries)


def _is_entries(data: Any) -> bool:
    """A node's entries: ``{endpoint: {provider: info}}``, all strings."""
    return isinstance(data, dict) and all(
        isinstance(providers, dict)
        and all(isinstance(p, str) and isinstance(i, str) for p, i in providers.items())
        for providers in data.values()
    )


def _info(encoded: str) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return b""
