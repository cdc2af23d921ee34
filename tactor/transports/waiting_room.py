"""Senders waiting for room in a full mailbox of a networked transport (or a full queue).

Redis and NATS bound a mailbox on the server and refuse a message when it is full;
the sender has to ask again later (so does a ``put`` to a bounded queue, on every
transport). Asked by every waiting sender on its own, that is a storm: a thousand
tells waiting for room, each asking ten times a second, are ten thousand refused
requests a second that the server (and the consumers that would make the room) pay
for. A :class:`WaitingRoom` keeps one line per full mailbox instead:

- one sender in the line *probes*: it asks again after a back-off (5 ms, doubling
  to 100 ms), the others wait behind it in the order they came (two asks in flight
  at once may still pass each other on their way);
- a send that finds room lets the next in line go at once, and every eighth one
  lets two go: the senders in flight grow by an eighth a round trip while there is
  room, and the line empties at the consumers' pace;
- one refused again goes back to the front of the line, or probes when nobody does.

So while a mailbox stays full its line is refused about once per probe (at most 200
times a second) and once for every eight messages that get in, however many wait.
A sender whose deadline passes (given to :meth:`WaitingRoom.send`, or its task
cancelled) leaves the line; a turn it was given passes on. A mailbox with nobody
waiting has no line: a send is one request.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["WaitingRoom"]

T = TypeVar("T")

#: A send that finds room lets the next in line go, and every ``_GROW``-th one more.
_GROW = 8


class _Line:
    """The senders waiting for room in one mailbox."""

    __slots__ = ("probing", "sent", "waiting")

    def __init__(self) -> None:
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.probing = False
        self.sent = 0  # sends that found room since the line formed

    def room_found(self) -> None:
        self.sent += 1
        self.let_go(2 if self.sent % _GROW == 0 else 1)

    def let_go(self, count: int) -> None:
        while count and self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                count -= 1

    async def wait_turn(self, deadline: float | None, *, front: bool = False) -> None:
        """Wait until let go; :class:`TimeoutError` at ``deadline`` (loop time)."""
        turn = asyncio.get_running_loop().create_future()
        if front:
            self.waiting.appendleft(turn)
        else:
            self.waiting.append(turn)
        try:
            async with asyncio.timeout_at(deadline):
                await turn
        except BaseException:
            if not turn.done():
                turn.cancel()
            if turn in self.waiting:
                self.waiting.remove(turn)
            raise

    @property
    def idle(self) -> bool:
        return not self.probing and not self.waiting


class WaitingRoom:
    """The lines of senders waiting for room, one per full mailbox (see the module)."""

    __slots__ = ("cap", "first", "lines", "refused")

    def __init__(self, first: float = 0.005, cap: float = 0.1) -> None:
        self.first, self.cap = first, cap
        self.lines: dict[str, _Line] = {}
        self.refused = 0  # asks the server refused for a full mailbox, all mailboxes

    async def send(
        self,
        mailbox: str,
        attempt: Callable[[], Awaitable[T | None]],
        deadline: float | None = None,
    ) -> T:
        """``attempt()``'s result, asking again while it returns ``None`` (full).

        ``attempt`` sends once: it returns what the send gave, ``None`` when the
        mailbox was full, or raises. With a ``deadline`` (loop time), raises
        :class:`TimeoutError` once it passed with the mailbox still full; the wait
        ends there, an attempt in flight is never cut short (what the server took is
        never reported as refused). Without one, the caller's cancellation ends it.
        """
        loop = asyncio.get_running_loop()
        probing, delay = False, self.first
        try:
            line = self.lines.get(mailbox)
            if line is not None:  # others wait for room already: behind them
                await line.wait_turn(deadline)
            while True:
                result = await attempt()
                line = self.lines.get(mailbox)
                if result is not None:
                    if line is not None:
                        if probing:
                            line.probing = False
                        line.room_found()
                    return result
                self.refused += 1
                if deadline is not None and loop.time() >= deadline:
                    raise TimeoutError
                if line is None:
                    line = self.lines[mailbox] = _Line()
                if line.probing and not probing:
                    await line.wait_turn(deadline, front=True)
                    continue
                # The one probing: the only one asking while the mailbox is full.
                line.probing = probing = True
                if deadline is None:
                    await asyncio.sleep(delay)
                else:  # the last ask is at the deadline
                    await asyncio.sleep(max(0.0, min(delay, deadline - loop.time())))
                delay = min(delay * 2, self.cap)
        except BaseException:
            # Leaving (a deadline, an error): the turn passes on, so that the line
            # never waits for one who is gone.
            line = self.lines.get(mailbox)
            if line is not None:
                if probing:
                    line.probing = False
                if not line.probing:
                    line.let_go(1)
            raise
        finally:
            line = self.lines.get(mailbox)
            if line is not None and line.idle:
                del self.lines[mailbox]
