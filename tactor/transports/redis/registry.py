"""The registry on Redis: the registry verbs of :class:`~tactor.transports.redis.RedisTransport`.

An endpoint's registry is two keys: ``P:reg:ENDPOINT``, a sorted set of the nodes
serving it scored by their expiry (server time), renewed by each node's heartbeat —
one entry per node, whatever its provider count; and ``P:who:ENDPOINT``, a hash
provider -> node written once at spawn (and again by the heartbeat if Redis lost it).
A provider is live while its node is.

Beside them, for the operating verbs: what each provider registered with
(:attr:`~tactor.transports.endpoints.ProviderEntry.info`) is in the hash
``P:pi:ENDPOINT``, written at spawn (lost with a Redis restart without
persistence: the providers are then listed without it); the endpoints that have
providers are the sorted set ``P:eps``, kept alive by the heartbeats like the
registry (so listing them needs no ``SCAN``, which a restricted ACL user lacks).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ...errors import TransportClosed
from ..endpoints import ProviderEntry
from .connection import LOST, text, translated

if TYPE_CHECKING:
    from .heartbeat import Heartbeat
    from .pipeliner import Pipeliner

__all__ = ["RedisRegistry"]


class RedisRegistry:
    """The transport's registry verbs (a mixin: the transport provides the attributes below)."""

    scripts: dict[str, Any]
    node: str
    ttl: float
    private_lifetime: int
    _heartbeat: Heartbeat | None
    _registered: dict[str, set[str]]

    if TYPE_CHECKING:

        @property
        def pipeliner(self) -> Pipeliner: ...

        def key(self, kind: str, name: str | None = None) -> str: ...

    def _registry(self, endpoint: str) -> tuple[str, str]:
        """The keys of an endpoint's registry: its live nodes, and its providers' nodes."""
        return self.key("reg", endpoint), self.key("who", endpoint)

    def _up(self, endpoint: str) -> str:
        """The key that exists while the endpoint has a live node (see ``_UP`` in scripts)."""
        return self.key("up", endpoint)

    async def register(self, endpoint: str, provider: str, info: bytes = b"") -> None:
        """One entry per provider (in a hash, written once); liveness is the node's, kept
        by one heartbeat entry per endpoint the node serves, not per provider."""
        nodes, who = self._registry(endpoint)
        infos, endpoints = self.key("pi", endpoint), self.key("eps")
        assert self._heartbeat is not None
        self._heartbeat.add(nodes, self.node)
        self._heartbeat.add(endpoints, endpoint)
        for key in (nodes, infos, endpoints):
            self._heartbeat.own(key)  # if every node dies, the keys expire too
        self._heartbeat.keep(who, provider, self.node)  # written again if Redis lost it
        self._heartbeat.needs(nodes, who)  # and before the node is live again
        self._heartbeat.up(nodes, self._up(endpoint))
        self._registered.setdefault(endpoint, set()).add(provider)
        keys = (nodes, who, infos, endpoints, self._up(endpoint))
        args = (int(self.ttl * 1000), self.node, provider, self.private_lifetime, info, endpoint)
        with translated("register", provider):  # batched: a node may spawn thousands at once
            await self.pipeliner.execute(
                "EVALSHA", self.scripts["register"].sha, len(keys), *keys, *args
            )

    async def unregister(self, endpoint: str, provider: str) -> None:
        nodes, who = self._registry(endpoint)
        local = self._registered.get(endpoint, set())
        local.discard(provider)
        last = not local
        endpoints = self.key("eps")
        if self._heartbeat is not None:
            self._heartbeat.unkeep(who, provider)
            if last:
                self._heartbeat.discard(nodes, self.node)
                self._heartbeat.discard(endpoints, endpoint)
        if last:
            self._registered.pop(endpoint, None)
        with contextlib.suppress(*LOST, RedisError, TransportClosed):
            if last:  # the node first: whoever no longer sees the provider sees no node either
                sha = self.scripts["leave"].sha
                await self.pipeliner.execute(
                    "EVALSHA", sha, 2, nodes, self._up(endpoint), self.node
                )
            await self.pipeliner.execute("HDEL", who, provider)
            await self.pipeliner.execute("HDEL", self.key("pi", endpoint), provider)
            if last:
                sha = self.scripts["drop_endpoint"].sha
                await self.pipeliner.execute("EVALSHA", sha, 2, nodes, endpoints, endpoint)

    async def providers(self, endpoint: str) -> list[str]:
        with translated(f"list providers of {endpoint}"):
            found = await self.scripts["providers"](keys=list(self._registry(endpoint)))
        return sorted(text(name) for name in found)

    async def provider_entries(self, endpoint: str) -> list[ProviderEntry]:
        keys = [*self._registry(endpoint), self.key("pi", endpoint)]
        with translated(f"list providers of {endpoint}"):
            found = await self.scripts["registry"](keys=keys)
        pairs = zip(found[::2], found[1::2], strict=True)
        entries = (ProviderEntry(text(p), i if isinstance(i, bytes) else b"") for p, i in pairs)
        return sorted(entries, key=lambda entry: entry.provider)

    async def endpoints(self) -> list[str]:
        with translated("list endpoints"):
            found = await self.scripts["endpoints"](
                keys=[self.key("eps")], args=[self.key("reg", "")]
            )
        return sorted(text(endpoint) for endpoint in found)
