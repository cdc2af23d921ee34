"""Dead letters on Redis: the dead-letter verbs of :class:`~tactor.transports.redis.RedisTransport`.

The dead letters of mailbox ``NAME`` are a stream ``P:dl:NAME`` beside its
mailbox ``P:mb:NAME``; each letter is an entry with the payload ``p``, the
attempts ``a`` and the reason ``r``; its id (Redis's, from the server's clock)
says when it was added. Moving a delivery there acknowledges it in the same
script (:data:`~tactor.transports.redis.scripts.acks.DEAD_LETTER`), and a replay is
one script too. Only replay and discard remove letters: they outlive every tactor
process, and a Redis restart only with persistence. The key stays once used, even
empty: a new stream would give out the ids of letters already gone again.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from ..consumer import DeadLetterEntry
from .connection import text, translated
from .consumer import GROUP

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["RedisDeadLetters"]

_ENTRY_ID = re.compile(r"^\d+-\d+$")


class RedisDeadLetters:
    """The transport's dead-letter verbs (a mixin: the transport provides the attributes below)."""

    scripts: dict[str, Any]

    if TYPE_CHECKING:

        @property
        def redis(self) -> aioredis.Redis: ...

        def key(self, kind: str, name: str | None = None) -> str: ...

        def mailbox_key(self, mailbox: str) -> str: ...

    def dead_letter_key(self, mailbox: str) -> str:
        return self.key("dl", mailbox)

    async def set_aside(
        self, key: str, group: str, entry_id: str, payload: bytes, attempts: int, reason: str,
        into: str, keep: int,
    ) -> int:  # fmt: skip
        """Acknowledge entry ``entry_id`` of stream ``key`` and add it to ``into``'s dead
        letters, keeping ``keep`` of them; return how many old letters were dropped."""
        keys = [key, self.dead_letter_key(into)]
        with translated("move to the dead letters of", into):
            _, dropped = await self.scripts["dead_letter"](
                keys=keys, args=[group, entry_id, payload, attempts, reason, keep]
            )
        return int(dropped)

    async def mailbox_depth(self, mailbox: str) -> int:
        """Entries not yet taken: the stream holds those not yet acknowledged (acknowledged
        ones are deleted, see scripts.ACK), the group's pending list those taken."""
        key = self.mailbox_key(mailbox)
        with translated("count the messages of", mailbox):
            pending = await _pending(self.redis, key)
            return max(0, int(await self.redis.xlen(key)) - pending)

    async def dead_letters(self, mailbox: str) -> list[DeadLetterEntry]:
        with translated("list the dead letters of", mailbox):
            entries: Any = await self.redis.xrange(self.dead_letter_key(mailbox))
        return [_entry(entry_id, fields) for entry_id, fields in entries]

    async def replay_dead_letter(self, mailbox: str, letter: str) -> bool:
        if not _ENTRY_ID.match(letter):
            return False
        keys = [self.dead_letter_key(mailbox), self.mailbox_key(mailbox)]
        with translated("replay a dead letter of", mailbox):
            return bool(await self.scripts["replay"](keys=keys, args=[letter]))

    async def discard_dead_letter(self, mailbox: str, letter: str) -> bool:
        if not _ENTRY_ID.match(letter):
            return False
        with translated("discard a dead letter of", mailbox):
            return bool(await self.redis.xdel(self.dead_letter_key(mailbox), letter))


async def _pending(redis: aioredis.Redis, key: str) -> int:
    """How many entries of stream ``key`` the consumers hold (0 before the group exists)."""
    try:
        summary: Any = await redis.xpending(key, GROUP)
    except ResponseError as exc:
        if "NOGROUP" in str(exc):
            return 0
        raise
    return int(summary["pending"])


def _entry(entry_id: Any, fields: Any) -> DeadLetterEntry:
    ident = text(entry_id)
    return DeadLetterEntry(
        id=ident,
        payload=fields.get(b"p", b""),
        attempts=int(fields.get(b"a", b"0")),
        reason=fields.get(b"r", b"").decode("utf-8", "replace"),
        at=int(ident.partition("-")[0]) / 1000,
    )
