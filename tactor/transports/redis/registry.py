"""The registry on Redis: the registry verbs of :class:`~tactor.transports.redis.RedisTransport`.

The providers of endpoint ``E`` are a sorted set ``P:reg:E`` scored by each
one's expiry (server time), which the node's heartbeat pushes on; what each
registered with (:class:`~tactor.transports.base.ProviderEntry.info`) is in
the hash ``P:pi:E``. A provider that stops cleanly leaves both; one that was
killed drops out of the set at its expiry, and its info goes at the next
listing (:data:`~tactor.transports.redis.scripts.REGISTRY`) or with the hash,
which expires once no node beats for it. After a Redis restart without
persistence the heartbeats register the providers again, without their infos.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ..base import ProviderEntry
from .connection import LOST, text, translated

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from .heartbeat import Heartbeat

__all__ = ["RedisRegistry"]


class RedisRegistry:
    """The transport's registry verbs (a mixin: the transport provides the attributes below)."""

    scripts: dict[str, Any]
    _registered: set[tuple[str, str]]
    _heartbeat: Heartbeat | None

    if TYPE_CHECKING:

        @property
        def redis(self) -> aioredis.Redis: ...

        def key(self, kind: str, name: str | None = None) -> str: ...

        def mailbox_key(self, mailbox: str) -> str: ...

        async def keep_alive(self, key: str, member: str) -> None: ...

        async def forget(self, key: str, member: str) -> None: ...

        async def live_members(self, key: str, members: Iterable[str] = ()) -> list[str]: ...

    async def register(self, endpoint: str, provider: str, info: bytes = b"") -> None:
        await self.keep_alive(self.key("reg", endpoint), provider)  # the set first (REGISTRY)
        self._registered.add((endpoint, provider))
        infos = self.key("pi", endpoint)
        assert self._heartbeat is not None
        self._heartbeat.own(infos)  # if every node dies, the infos expire too
        with translated(f"register {provider}"):
            await self.redis.hset(infos, provider, info)

    async def unregister(self, endpoint: str, provider: str) -> None:
        self._registered.discard((endpoint, provider))
        await self.forget(self.key("reg", endpoint), provider)
        with contextlib.suppress(*LOST, RedisError):
            await self.redis.hdel(self.key("pi", endpoint), provider)

    async def providers(self, endpoint: str) -> list[str]:
        with translated(f"list providers of {endpoint}"):
            return await self.live_members(self.key("reg", endpoint))

    async def provider_entries(self, endpoint: str) -> list[ProviderEntry]:
        keys = [self.key("reg", endpoint), self.key("pi", endpoint)]
        with translated(f"list providers of {endpoint}"):
            found = await self.scripts["registry"](keys=keys)
        pairs = zip(found[::2], found[1::2], strict=True)
        return sorted((ProviderEntry(text(p), _raw(i)) for p, i in pairs), key=_by_provider)

    async def endpoints(self) -> list[str]:
        start = len(self.key("reg", ""))
        with translated("list endpoints"):
            keys = [text(k) async for k in self.redis.scan_iter(self.key("reg", "*"), count=500)]
            live = [k[start:] for k in keys if await self.live_members(k)]
        return sorted(live)

    async def mailbox_depth(self, mailbox: str) -> int:
        # Acknowledged entries are deleted (the ACK script): the stream holds only what is
        # waiting or taken and not yet acknowledged.
        with translated(f"measure {mailbox}"):
            depth: int = await self.redis.xlen(self.mailbox_key(mailbox))
        return depth


def _by_provider(entry: ProviderEntry) -> str:
    return entry.provider


def _raw(value: Any) -> bytes:
    return value if isinstance(value, bytes) else text(value).encode()
