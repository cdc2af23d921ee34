"""Deliveries that need a live provider: checked before the publish and again after it.

On Redis one script checks the registry and appends (for a broadcast: to every live
provider), so a delivery to a provider that is leaving is either in its mailbox before it
left (taken by it, or dropped with its private mailbox) or refused with ``NoProvider``
(left out of a broadcast). NATS has no such step across a KV bucket and a stream, so the
check is made twice around the publish:

- before, against the node's watched copy of the registry (read afresh where the copy
  finds none), as a fast refusal;
- after, against the registry as it is now: for a provider of this node its own entries,
  for those of other nodes their keys and their nodes' beats read at once. A provider
  still listed there was listed when the message was stored: the message is in its
  mailbox before it left, as on Redis. A delivery to the endpoint alone is checked against
  the copy (read afresh where it finds none): no round trip on the path of every call, so
  the copy may lag, and a message that gets in as the last provider leaves waits in the
  endpoint's mailbox for the next one (as one accepted just before does on Redis).
- Where the provider (or every provider of the endpoint) is gone by then, the message is
  withdrawn by its stream sequence unless a consumer was handed it: withdrawn, nobody
  took it (``NoProvider``, or left out of a broadcast); handed out or gone (acknowledged,
  or purged with the private mailbox), it was taken. Nothing is left in a mailbox that
  nobody reads, and a broadcast does not wait for an answer that cannot come.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ...errors import NoProvider
from ..endpoints import no_provider_message, provider_mailbox
from .connection import FULL, NOT_DELETED, NOT_FOUND, ApiError, api

if TYPE_CHECKING:
    from nats.aio.client import Client

    from .names import Names
    from .registry import Registry

__all__ = ["CheckedDeliveries"]


class CheckedDeliveries:
    """The checked ``deliver`` of the NATS transport (a mixin: the transport provides the
    attributes below)."""

    names: Names
    registry: Registry

    if TYPE_CHECKING:

        @property
        def nc(self) -> Client: ...

        async def append(self, mailbox: str, payload: bytes) -> int: ...

        async def publish_to_stream(
            self, subject: str, payload: bytes, attempted: int = 0
        ) -> int: ...

    async def deliver_checked(
        self, mailbox: str, payload: bytes, endpoint: str, provider: str | None
    ) -> None:
        """Append ``payload`` to ``mailbox`` if ``provider`` (or, without one, any provider)
        of ``endpoint`` is live; else raise :class:`NoProvider`, leaving nothing behind."""
        registry, afresh = self.registry, self._serves_afresh
        # The copy first (no coroutine on a call's path), read afresh where it finds none.
        if not (registry.serves(endpoint, provider) or await afresh(endpoint, provider)):
            raise NoProvider(no_provider_message(endpoint, provider))
        seq = await self.append(mailbox, payload)
        if provider is None:
            still = registry.serves(endpoint) or await afresh(endpoint, None)
        else:
            still = provider in await self.registry.still_listed(endpoint, [provider])
        if not still and await self._withdraw(mailbox, seq):
            raise NoProvider(no_provider_message(endpoint, provider))

    async def deliver_to_providers(
        self, endpoint: str, payload: bytes
    ) -> tuple[list[str], list[str]]:
        """One publish per live provider's private mailbox, concurrently; then the check
        after (see the module's docstring): a provider gone by then is left out."""
        self.nc  # noqa: B018 - raises TransportClosed
        providers = self.registry.live(endpoint)

        async def one(provider: str) -> int:
            mailbox = self.names.mailbox(provider_mailbox(provider))
            try:
                return await self.publish_to_stream(mailbox, payload)
            except ApiError as exc:
                if exc.code != FULL:
                    raise
                return 0

        seqs = dict(zip(providers, await asyncio.gather(*map(one, providers)), strict=True))
        listed = await self.registry.still_listed(endpoint, [p for p in providers if seqs[p]])
        for provider in [p for p in providers if seqs[p] and p not in listed]:
            if await self._withdraw(provider_mailbox(provider), seqs[provider]):
                del seqs[provider]  # nobody took it: as if it had not been live
        reached = [p for p in providers if seqs.get(p)]
        return reached, [p for p in providers if seqs.get(p) == 0]

    async def _serves_afresh(self, endpoint: str, provider: str | None) -> bool:
        """:meth:`Registry.serves` once the endpoint's entries were read afresh (the copy
        may lag behind a registration)."""
        await self.registry.refresh(endpoint)
        return self.registry.serves(endpoint, provider)

    async def _withdraw(self, mailbox: str, seq: int) -> bool:
        """Remove message ``seq`` of ``mailbox`` unless a consumer was handed it; True if
        removed (nobody took it), False if it was handed out or is gone already."""
        stream = self.names.mailboxes
        durable = self.names.durable("mb", mailbox)
        try:
            info = await api(self.nc, f"CONSUMER.INFO.{stream}.{durable}")
        except ApiError as exc:
            if exc.code not in NOT_FOUND:
                raise
        else:
            if int(info.get("delivered", {}).get("stream_seq", 0)) >= seq:
                return False  # handed to a provider: it handles it or puts it back
        try:
            await api(self.nc, f"STREAM.MSG.DELETE.{stream}", {"seq": seq, "no_erase": True})
        except ApiError as exc:
            if exc.code not in (*NOT_FOUND, NOT_DELETED):
                raise
            return False
        return True
