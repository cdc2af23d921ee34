"""A node's private inbox: :class:`Inbox` and the handlers given to ``Transport.open_inbox``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from ..errors import TransportError

__all__ = ["Inbox", "InboxHandler", "InboxLostHandler"]

#: Called with each payload posted to an inbox. It must not block.
InboxHandler = Callable[[bytes], None]
#: Called when the transport lost its connection and posted payloads may be lost.
InboxLostHandler = Callable[[TransportError], None]


class Inbox(ABC):
    """An open private inbox: its payloads go to the handler given to ``open_inbox``."""

    @abstractmethod
    async def close(self) -> None:
        """Stop receiving and drop the inbox with anything left in it."""
