"""Dead letters on a JetStream stream of their own: one subject per mailbox, ids are sequences.

A letter is the message ``{"r": reason, "a": attempts, "t": time}\\n`` + payload,
published on ``P.dl.MAILBOX`` of the stream ``P_dl`` (limits retention: kept
until replayed, discarded or dropped as the oldest beyond ``keep``). Its id is
its stream sequence, never given out twice. The stream lives on the server,
not in a node: letters outlive every tactor process.
"""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING, Any

import orjson

from ...errors import TransportError
from ..consumer import DeadLetterEntry
from .connection import NOT_FOUND, ApiError, api

if TYPE_CHECKING:
    from nats.aio.client import Client

    from .names import Names

__all__ = ["NatsDeadLetters"]


def _letter(reason: str, attempts: int, payload: bytes) -> bytes:
    return orjson.dumps({"r": reason, "a": attempts, "t": time.time()}) + b"\n" + payload


def _entry(message: dict[str, Any]) -> DeadLetterEntry:
    data = base64.b64decode(message.get("data", ""))
    meta, _, payload = data.partition(b"\n")
    fields = orjson.loads(meta)
    return DeadLetterEntry(str(message["seq"]), payload, int(fields["a"]), fields["r"], fields["t"])


class NatsDeadLetters:
    """The dead-letter verbs of :class:`~tactor.transports.nats.NatsTransport`."""

    names: Names

    if TYPE_CHECKING:

        @property
        def nc(self) -> Client: ...

        async def publish_to_stream(
            self, subject: str, payload: bytes, attempted: int = 0
        ) -> int: ...

    async def add_dead_letter(
        self, into: str, payload: bytes, reason: str, attempts: int, keep: int
    ) -> int:
        """Keep ``payload`` as a dead letter of ``into``; how many old ones were dropped."""
        subject = self.names.dead_letters(into)
        await self.publish_to_stream(subject, _letter(reason, attempts, payload))
        if keep <= 0:  # keep all
            return 0
        purged = await api(
            self.nc, f"STREAM.PURGE.{self.names.dead}", {"filter": subject, "keep": keep}
        )
        return int(purged.get("purged", 0))

    async def _get(self, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            answer = await api(self.nc, f"STREAM.MSG.GET.{self.names.dead}", body)
        except ApiError as exc:
            if exc.code in NOT_FOUND:
                return None
            raise
        message: dict[str, Any] = answer["message"]
        return message

    async def dead_letters(self, mailbox: str) -> list[DeadLetterEntry]:
        subject = self.names.dead_letters(mailbox)
        found: list[DeadLetterEntry] = []
        seq = 1
        while (message := await self._get({"seq": seq, "next_by_subj": subject})) is not None:
            found.append(_entry(message))
            seq = int(message["seq"]) + 1
        return found

    async def _take(self, mailbox: str, letter: str) -> DeadLetterEntry | None:
        """Remove letter ``letter`` of ``mailbox`` and return it; None if there is none."""
        if not letter.isdigit():
            return None
        message = await self._get({"seq": int(letter)})
        if message is None or message.get("subject") != self.names.dead_letters(mailbox):
            return None
        try:
            await api(self.nc, f"STREAM.MSG.DELETE.{self.names.dead}", {"seq": int(letter)})
        except ApiError as exc:
            if exc.code in NOT_FOUND:
                return None  # taken by someone else a moment ago
            raise
        return _entry(message)

    async def replay_dead_letter(self, mailbox: str, letter: str) -> bool:
        """Into a subject of the mailbox's own (see :meth:`Names.replayed`): never refused
        for room, as a replay on the other transports is not."""
        entry = await self._take(mailbox, letter)
        if entry is None:
            return False
        try:
            await self.publish_to_stream(self.names.replayed(mailbox, letter), entry.payload)
        except TransportError as exc:  # NATS away: the letter stays, as a new one
            await self.add_dead_letter(mailbox, entry.payload, entry.reason, entry.attempts, 0)
            raise TransportError(
                f"replay of dead letter {letter} into {mailbox!r} failed ({exc}); "
                "it is kept among the dead letters under a new id"
            ) from None
        return True

    async def discard_dead_letter(self, mailbox: str, letter: str) -> bool:
        return await self._take(mailbox, letter) is not None
