"""The registry on Redis: the registry verbs of :class:`~tactor.transports.redis.RedisTransport`.

An endpoint's registry is two keys: ``P:reg:ENDPOINT``, a sorted set of the nodes
serving it scored by their expiry (server time), renewed by each node's heartbeat —
one entry per node, whatever its provider count; and ``P:who:ENDPOINT``, a hash
provider -> node written once at spawn (and again by the heartbeat if Redis lost it).
A provider is live while its node is.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ...errors import TransportClosed
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

    async def register(self, endpoint: str, provider: str) -> None:
        """One entry per provider (in a hash, written once); liveness is the node's, kept
        by one heartbeat entry per endpoint the node serves, not per provider."""
        nodes, who = self._registry(endpoint)
        assert self._heartbeat is not None
        self._heartbeat.add(nodes, self.node)
        self._heartbeat.own(nodes)  # if every node dies, the keys expire too
        self._heartbeat.keep(who, provider, self.node)  # written again if Redis lost it
        self._heartbeat.needs(nodes, who)  # and before the node is live again
        self._registered.setdefault(endpoint, set()).add(provider)
        args = (int(self.ttl * 1000), self.node, provider, self.private_lifetime)
        with translated("register", provider):  # batched: a node may spawn thousands at once
            await self.pipeliner.execute(
                "EVALSHA", self.scripts["register"].sha, 2, nodes, who, *args
            )

    async def unregister(self, endpoint: str, provider: str) -> None:
        nodes, who = self._registry(endpoint)
        local = self._registered.get(endpoint, set())
        local.discard(provider)
        last = not local
        if self._heartbeat is not None:
            self._heartbeat.unkeep(who, provider)
            if last:
                self._heartbeat.discard(nodes, self.node)
        if last:
            self._registered.pop(endpoint, None)
        with contextlib.suppress(*LOST, RedisError, TransportClosed):
            await self.pipeliner.execute("HDEL", who, provider)
            if last:
                await self.pipeliner.execute("ZREM", nodes, self.node)

    async def providers(self, endpoint: str) -> list[str]:
        with translated(f"list providers of {endpoint}"):
            found = await self.scripts["providers"](keys=list(self._registry(endpoint)))
        return sorted(text(name) for name in found)
