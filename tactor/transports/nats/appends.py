"""Appends to JetStream streams, each answered on the node's one subscription for them.

An append is a publish whose reply subject is ``PREFIX.N`` (``N`` counts up);
the stream answers there with what stored it (the ``PubAck``) or an error. A
read of a key's last message (:meth:`Appends.key_present`, the registry's
check after a delivery) is asked and answered the same way.
One subscription takes every answer and completes the waiting append's future:
no inbox token, timer or wait of its own per append (a request through
nats-py has all three, which a call paid on its path). Appends are answered in
about the order they were sent, so the one waiting longest is first in line:
:meth:`Appends.expire` (at each append, and at the transport's heartbeat)
fails those waiting longer than :data:`PATIENCE`, as a request's timeout would.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from typing import TYPE_CHECKING, Any

import orjson
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from ...errors import TransportClosed
from .connection import NOT_FOUND, ApiError, answer
from .direct import subscribe_direct

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

__all__ = ["PATIENCE", "Appends"]

#: How long an append waits for the stream's answer (seconds), as a request did.
PATIENCE = 5.0
_NO_RESPONDERS = "503"  # the status the server answers with when no stream takes the subject
_OPERATION = b"KV-Operation"  # the header of a deleted or purged key's marker


class Appends:
    """The appends of one connection that wait for their stream's answer."""

    def __init__(self) -> None:
        self._prefix = ""
        self._ids = itertools.count()
        #: reply subject -> (when it gives up, its future), oldest first
        self._waiting: dict[str, tuple[float, asyncio.Future[Msg]]] = {}
        self._sub: Subscription | None = None

    async def open(self, nc: Client) -> None:
        self._prefix = nc.new_inbox()
        self._sub = await subscribe_direct(nc, f"{self._prefix}.*", self._on_answer)

    def _on_answer(self, msg: Msg) -> None:
        waiting = self._waiting.pop(msg.subject, None)
        if waiting is not None and not waiting[1].done():
            waiting[1].set_result(msg)

    async def append(
        self, nc: Client, subject: str, payload: bytes, headers: dict[str, str] | None
    ) -> dict[str, Any]:
        """Publish ``payload`` on ``subject`` and return the stream's answer.

        Raises :class:`ApiError` with the stream's refusal, nats-py's
        ``NoRespondersError`` when no stream takes the subject and its
        ``TimeoutError`` when no answer came within :data:`PATIENCE`.
        """
        self.expire()
        reply = f"{self._prefix}.{next(self._ids)}"
        future: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()
        self._waiting[reply] = (time.monotonic() + PATIENCE, future)
        try:
            await nc.publish(subject, payload, reply=reply, headers=headers)
            msg = await future
        finally:
            self._waiting.pop(reply, None)
        if msg.headers and msg.headers.get("Status") == _NO_RESPONDERS:
            raise NoRespondersError
        return answer(msg.data, subject)

    async def key_present(self, nc: Client, bucket: str, key: str) -> bool:
        """Whether ``key`` of the KV ``bucket`` has a value now (not deleted nor purged):
        the stream's last message on the key's subject, read as nats-py's ``KeyValue.get``
        reads it, without a request inbox, timer and task of its own."""
        body = orjson.dumps({"last_by_subj": f"$KV.{bucket}.{key}"})
        try:
            found = await self.append(nc, f"$JS.API.STREAM.MSG.GET.KV_{bucket}", body, None)
        except ApiError as exc:
            if exc.code in NOT_FOUND:  # no message on the subject (or no bucket)
                return False
            raise
        headers = found.get("message", {}).get("hdrs")
        return not headers or _OPERATION not in base64.b64decode(headers)

    def expire(self) -> None:
        """Fail the appends that waited longer than :data:`PATIENCE` for an answer."""
        now = time.monotonic()
        oldest = next(iter(self._waiting.values()), None)
        if oldest is None or oldest[0] > now:
            return
        for reply, (until, future) in list(self._waiting.items()):
            if until > now:
                return  # the rest were sent later
            del self._waiting[reply]
            if not future.done():
                future.set_exception(NatsTimeoutError())

    def close(self) -> None:
        """Fail every waiting append: the connection is closing."""
        waiting, self._waiting = self._waiting, {}
        for _, future in waiting.values():
            if not future.done():
                future.set_exception(TransportClosed("the NATS transport is closed"))
