"""The registry on Redis: the registry verbs of :class:`~tactor.transports.redis.RedisTransport`.

The providers of endpoint ``E`` are a sorted set ``P:reg:E`` scored by each
one's expiry (server time), which the node's heartbeat pushes on; what each
registered with (:class:`~tactor.transports.base.ProviderEntry.info`) is in
the hash ``P:pi:E``; the endpoints that have providers are the sorted set
``P:eps``, kept alive the same way (so listing them needs no ``SCAN``, which a
restricted ACL user does not have). A provider that stops cleanly removes its
entries (the endpoint's too, with its last provider); one that was killed
drops out at its expiry, and its info goes at the next listing
(:data:`~tactor.transports.redis.scripts.REGISTRY`) or with the hash, which
expires once no node beats for it. After a Redis restart without persistence
the heartbeats register the providers again, without their infos.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError, ResponseError

from ..base import ProviderEntry
from .connection import LOST, commands, text, translated

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from .heartbeat import Heartbeat

__all__ = ["RedisRegistry"]

log = logging.getLogger(__name__)


class RedisRegistry:
    """The transport's registry verbs (a mixin: the transport provides the attributes below)."""

    scripts: dict[str, Any]
    _registered: set[tuple[str, str]]
    _heartbeat: Heartbeat | None

    if TYPE_CHECKING:

        @property
        def redis(self) -> aioredis.Redis: ...

        def key(self, kind: str, name: str | None = None) -> str: ...

        async def keep_alive(self, key: str, member: str) -> None: ...

        async def forget(self, key: str, member: str) -> None: ...

        async def live_members(self, key: str, members: Iterable[str] = ()) -> list[str]: ...

    async def register(self, endpoint: str, provider: str, info: bytes = b"") -> None:
        await self.keep_alive(self.key("reg", endpoint), provider)  # first (see REGISTRY)
        self._registered.add((endpoint, provider))
        await self.keep_alive(self.key("eps"), endpoint)
        infos = self.key("pi", endpoint)
        assert self._heartbeat is not None
        self._heartbeat.own(infos)  # if every node dies, the infos expire too
        with translated(f"register {provider}"):
            try:
                await commands(self.redis).hset(infos, provider, info)
            except ResponseError as exc:  # e.g. an ACL without +@hash: it serves all the same
                log.warning("%s is registered without its node, host and pid: %s", provider, exc)

    async def unregister(self, endpoint: str, provider: str) -> None:
        self._registered.discard((endpoint, provider))
        await self.forget(self.key("reg", endpoint), provider)
        with contextlib.suppress(*LOST, RedisError):
            await commands(self.redis).hdel(self.key("pi", endpoint), provider)
            if not any(known == endpoint for known, _ in self._registered):
                keys = [self.key("reg", endpoint), self.key("eps")]
                if self._heartbeat is not None:
                    self._heartbeat.discard(keys[1], endpoint)
                await self.scripts["drop_endpoint"](keys=keys, args=[endpoint])

    async def providers(self, endpoint: str) -> list[str]:
        with translated(f"list providers of {endpoint}"):
            return await self.live_members(self.key("reg", endpoint))

    async def provider_entries(self, endpoint: str) -> list[ProviderEntry]:
        keys = [self.key("reg", endpoint), self.key("pi", endpoint)]
        with translated(f"list providers of {endpoint}"):
            try:
                found = await self.scripts["registry"](keys=keys)
            except ResponseError:  # no hash commands allowed (an ACL): without the infos
                found = [x for p in await self.live_members(keys[0]) for x in (p, b"")]
        pairs = zip(found[::2], found[1::2], strict=True)
        return sorted((ProviderEntry(text(p), _raw(i)) for p, i in pairs), key=_by_provider)

    async def endpoints(self) -> list[str]:
        with translated("list endpoints"):
            listed = await self.live_members(self.key("eps"))
            return [e for e in listed if await self.live_members(self.key("reg", e))]


def _by_provider(entry: ProviderEntry) -> str:
    return entry.provider


def _raw(value: Any) -> bytes:
    return value if isinstance(value, bytes) else text(value).encode()
