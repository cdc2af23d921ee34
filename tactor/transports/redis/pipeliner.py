"""Automatic pipelining: commands issued while a batch is on the wire go together as the next.

Every call, reply and broadcast is one short command. Sent one by one, each
costs a round trip and, on redis-py's asyncio client, ~60–120 µs of CPU; sent
as one pipeline they cost ~11–15 µs each. A :class:`Pipeliner` owns one task
that takes whatever commands are queued, writes them in one go on one
connection and hands each caller its own reply. An idle pipeliner writes a
command at once (no loop turn before it is on the wire); while a batch is on
the wire, the commands issued meanwhile wait and go together as the next.

Commands keep their order (per connection, Redis runs them in the order
written), so what one sender delivers stays in order. A caller that stopped
waiting before its command was written (cancelled, timed out) is skipped: an
abandoned delivery is not sent behind its caller's back.

Commands nobody waits for (:meth:`Pipeliner.send`: replies to callers) go
without a reply (``CLIENT REPLY SKIP``): an answer would wake the process just
to be thrown away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from ...errors import TransportClosed
from .connection import described
from .wire import HeldConnection, quietly

__all__ = ["Pipeliner"]

log = logging.getLogger(__name__)

MAX_BATCH = 512  # commands per round trip, at most

_Command = tuple[tuple[Any, ...], asyncio.Future[Any] | None]  # None: sent without a reply
_Waiting = tuple[tuple[Any, ...], asyncio.Future[Any]]


class Pipeliner:
    """Sends queued commands in batches on one connection at a time, in order."""

    def __init__(
        self, client: aioredis.Redis, reload_scripts: Callable[[], Awaitable[None]]
    ) -> None:
        self._connection = HeldConnection(client)
        self._reload_scripts = reload_scripts
        self._queue: list[_Command] = []
        self._written: list[_Waiting] = []  # written at once by execute(); replies not read yet
        self._idle = False  # the task waits for work: the next command may be written at once
        self._wakeup: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="tactor-pipeliner")

    async def close(self) -> None:
        """Send what is queued, then stop."""
        self._closed = True
        task, self._task = self._task, None
        if task is None:
            return
        if self._queue and not task.done():
            self._wake()
            done = asyncio.get_running_loop().create_future()
            self._queue.append((("PING",), done))
            await asyncio.wait([done], timeout=2.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await self._connection.close()
        for _, future in self._queue:
            if future is not None and not future.done():
                future.set_exception(TransportClosed("the Redis transport was closed"))
        self._queue.clear()

    def execute(self, *args: Any) -> asyncio.Future[Any]:
        """Queue a command; the future gets its reply, or the error Redis or the connection gave."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._closed or self._task is None:
            future.set_exception(TransportClosed("the Redis transport is closed"))
            return future
        # Written at once only when nothing else is waiting to go: order is kept.
        idle = self._idle and not self._written and not self._queue
        if idle and self._connection.write_now([args]):
            self._written.append((args, future))  # idle: on the wire now, not a loop turn later
        else:
            self._queue.append((args, future))
        self._wake()
        return future

    def send(self, what: str, *commands: tuple[Any, ...], quiet: bool = True) -> None:
        """Send commands nobody waits for, in order and in one write: at most once.

        ``quiet``: without a reply, so their errors are unseen (a batch that
        fails to go out is logged); a script sent so should go by EVAL, not
        EVALSHA, or a lost script would go unnoticed. Otherwise answered, and a
        failure is logged (``what`` says what it was).
        """
        if not quiet:
            for args in commands:
                self.execute(*args).add_done_callback(lambda f: _log_failure(f, what))
            return
        if self._closed or self._task is None:
            log.warning("Redis transport closed: a command sent without a reply was dropped")
            return
        # No reply to wait for: written at once even while replies are due (not while a
        # batch is being written, and never ahead of commands queued before it).
        if self._idle and not self._queue:
            packed = [part for args in commands for part in quietly(args)]
            if self._connection.write_now(packed):
                return
        self._queue.extend((args, None) for args in commands)
        self._wake()

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue and not self._written:
                self._idle = True
                self._wakeup = loop.create_future()
                try:
                    await self._wakeup
                finally:
                    self._idle = False
                self._wakeup = None
            written, self._written = self._written, []
            batch = self._queue[: MAX_BATCH - len(written)]
            del self._queue[: len(batch)]
            batch = [(args, f) for args, f in batch if f is None or not f.done()]
            if written or batch:
                await self._flush(batch, written=written, retry_scripts=True)

    async def _flush(
        self, batch: Sequence[_Command], *, written: list[_Waiting], retry_scripts: bool
    ) -> None:
        """Write ``batch`` (after ``written``, already on the wire); hand out every reply."""
        commands: list[tuple[Any, ...]] = []
        waiting = list(written)
        for args, future in batch:
            if future is None:
                commands.extend(quietly(args))
            else:
                commands.append(args)
                waiting.append((args, future))
        try:
            replies = await self._connection.execute_many(commands, written=len(written))
        except Exception as exc:  # the connection failed: every command of the batch learns it
            for _, future in waiting:
                if not future.done():
                    future.set_exception(exc)
            if len(waiting) < len(written) + len(batch):
                log.warning(
                    "commands sent without a reply (replies to callers) lost: %s: %s",
                    type(exc).__name__,
                    described(exc),
                )
            return
        missing: list[_Waiting] = []
        for (args, future), reply in zip(waiting, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, NoScriptError) and retry_scripts:
                missing.append((args, future))  # Redis restarted and lost its scripts
            elif isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)
        if missing:
            try:
                await self._reload_scripts()
            except Exception as exc:
                for _, future in missing:
                    future.set_exception(exc)
                return
            await self._flush(missing, written=[], retry_scripts=False)


def _log_failure(future: asyncio.Future[Any], what: str) -> None:
    if not future.cancelled() and (exc := future.exception()) is not None:
        log.warning("%s failed: %s: %s", what, type(exc).__name__, described(exc))
