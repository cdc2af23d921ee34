"""A node's reply inbox: a core NATS subject (``P.in.NAME``), at-most-once, no stream."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from ..inbox import Inbox, InboxHandler, InboxLostHandler
from .connection import translated
from .direct import subscribe_direct

if TYPE_CHECKING:
    from nats.aio.client import Client

__all__ = ["NatsInbox"]


class NatsInbox(Inbox):
    """Each payload published on the subject goes straight to the handler."""

    def __init__(self, on_lost: InboxLostHandler, owner: set[NatsInbox]) -> None:
        self.on_lost = on_lost  # called by the transport when its connection drops
        self._owner = owner
        self._sub: Any = None

    @classmethod
    async def open(
        cls,
        nc: Client,
        subject: str,
        on_payload: InboxHandler,
        on_lost: InboxLostHandler,
        owner: set[NatsInbox],
    ) -> NatsInbox:
        inbox = cls(on_lost, owner)

        def handle(msg: Any) -> None:
            on_payload(msg.data)

        with translated("open inbox", subject):
            inbox._sub = await subscribe_direct(nc, subject, handle)
            await nc.flush()  # subscribed at the server before a reply can be sent
        owner.add(inbox)
        return inbox

    async def close(self) -> None:
        self._owner.discard(self)
        if self._sub is not None:
            with contextlib.suppress(Exception):  # a closed connection: nothing to undo
                await self._sub.unsubscribe()
            self._sub = None
