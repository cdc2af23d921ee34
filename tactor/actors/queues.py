"""Named distributed FIFO queues: :class:`AsyncQueue`, made by :meth:`ActorSystem.queue`.

A queue is shared by every node of a transport (every system on the same
``memory://NAME`` hub, or on the same Redis and prefix) and is named like an
endpoint. Its API is :class:`queue.Queue`'s, awaited: ``put``/``get`` with
``block`` and ``timeout``, ``put_nowait``/``get_nowait``, ``qsize``,
``empty``, ``full``, ``task_done`` and ``join``; it raises the standard
:class:`queue.Empty` and :class:`queue.Full`.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue as stdlib_queue
from typing import TYPE_CHECKING, Generic, TypeVar

from ..codecs import type_name
from ..errors import ConfigError, DecodeError, PayloadTooLarge, TactorError, UnreadableItem
from ..transports import Transport
from ..transports.waiting_room import WaitingRoom
from .schema import _NAME

if TYPE_CHECKING:
    from .system import ActorSystem

__all__ = ["AsyncQueue", "check_queue_name"]

T = TypeVar("T")

#: Asking a full queue again (put) or polling unfinished tasks (join): first, longest pause.
_POLL_FIRST = 0.002
_POLL_CAP = 0.05


def check_queue_name(name: str) -> str:
    """Return ``name`` if it is a valid queue name (letters, digits, ``_ . -``)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"queue name {name!r} must be letters, digits, _ . -")
    return name


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and timeout < 0:
        raise ConfigError(f"timeout={timeout!r}: expected a number of seconds >= 0, or None")


def queue_waiting_room() -> WaitingRoom:
    """A system's putters waiting for room in full queues, a line per queue."""
    return WaitingRoom(first=_POLL_FIRST, cap=_POLL_CAP)


class _Poll:
    """Growing pauses between polls."""

    def __init__(self) -> None:
        self.delay = _POLL_FIRST

    async def wait(self) -> None:
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, _POLL_CAP)


class AsyncQueue(Generic[T]):
    """A named FIFO queue shared by every node of the system's transport.

    Made by :meth:`ActorSystem.queue`; the API mirrors :class:`queue.Queue`
    with every method awaited (``put_nowait``/``get_nowait`` too: they may
    talk to Redis).

    - Each item is taken by exactly one ``get``, on any node or process.
      On Redis an item is popped from the list, so it is gone once taken: if
      the taker dies before handling it, it is lost (processing is
      at-most-once). Cancelling a waiting ``get`` loses nothing.
    - Items are encoded with the system's codec. With ``item_type`` each item
      is encoded and decoded as that type (a dataclass, ``list[int]``, …), and
      ``put`` refuses one that ``get`` could not read back (``EncodeError``).
      Without one, each item is encoded by its runtime type (containers —
      ``dict`` with ``str`` keys, ``list``, ``tuple``, ``set`` — element by
      element) and ``get`` returns the decoded JSON data: a dataclass put
      comes back as a ``dict``, a tuple or a set as a ``list``.
    - ``maxsize`` > 0 bounds the queue: ``put`` waits while it holds
      ``maxsize`` items (a system's waiting putters ask again in turn, one at a
      time while it stays full). The bound is checked by each putter's handle:
      give every handle of one queue the same ``maxsize``.
    - ``task_done``/``join`` count unfinished tasks across all nodes: every
      accepted ``put`` adds one, every ``task_done`` removes one.
    - A queue is shared state, not a node's: it outlives the systems that use
      it (on Redis, until deleted; on memory, while its hub lives). Closing a
      system leaves its queues; :meth:`delete` removes one.
    """

    def __init__(
        self,
        system: ActorSystem,
        name: str,
        item_type: type[T] | None = None,
        *,
        maxsize: int = 0,
    ) -> None:
        self.system = system
        self.name = check_queue_name(name)
        self.item_type = item_type
        self.maxsize = maxsize
        if item_type is not None:
            system.codec.json_schema(item_type)  # SchemaError now for a type it cannot send

    def __repr__(self) -> str:
        kind = "Any" if self.item_type is None else type_name(self.item_type)
        return f"<AsyncQueue {self.name!r} of {kind} maxsize={self.maxsize}>"

    # -- encoding --------------------------------------------------------------

    def _encode(self, item: T) -> bytes:
        codec = self.system.codec
        if self.item_type is not None:
            data = codec.to_wire(item, self.item_type)
            # read as get will read it: refused here rather than lost there
            what = f"the item for queue {self.name!r} does not fit {type_name(self.item_type)}"
            codec.check_wire(data, self.item_type, what)
        else:
            data = codec.to_wire_any(item)
        payload = codec.dumps(data)
        if len(payload) > self.system.max_payload:
            raise PayloadTooLarge(
                f"the item for queue {self.name!r} is {len(payload)} bytes, "
                f"over max_payload={self.system.max_payload}"
            )
        return payload

    async def _decode(self, payload: bytes) -> T:
        codec = self.system.codec
        try:
            data = codec.loads(payload)
            if self.item_type is None:
                result: T = data
            else:
                result = codec.from_wire(data, self.item_type)
        except DecodeError as exc:
            # The item is consumed: count its task done so join() does not wait for it.
            with contextlib.suppress(ValueError, TactorError):  # the error says more
                await self._transport().queue_task_done(self.name)
            kind = "JSON" if self.item_type is None else type_name(self.item_type)
            message = f"queue {self.name!r}: the item taken is not {kind} (its bytes: .payload)"
            raise UnreadableItem(message, exc.errors or (str(exc),), payload=payload) from None
        return result

    def _transport(self) -> Transport:
        self.system._check_running()
        return self.system.transport

    # -- the queue.Queue API ---------------------------------------------------

    async def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        """Put ``item`` at the tail.

        With a bounded queue that is full: ``block=False`` raises
        :class:`queue.Full` at once; ``block=True`` waits for room, for ever
        (``timeout=None``) or up to ``timeout`` seconds, then raises
        :class:`queue.Full`. Raises ``EncodeError`` for an item that does not
        fit ``item_type`` and ``PayloadTooLarge`` past the system's ``max_payload``.
        """
        if block:
            _check_timeout(timeout)
        payload = self._encode(item)

        async def attempt() -> bool | None:
            return await self._transport().queue_put(self.name, payload, self.maxsize) or None

        if not block:
            if not await attempt():
                raise stdlib_queue.Full
            return
        # Full: wait in line with this system's other putters to the queue (see
        # waiting_room.py): one asks again after a pause, the rest wait behind it.
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        try:
            await self.system._queue_room.send(self.name, attempt, deadline)
        except TimeoutError:
            raise stdlib_queue.Full from None

    async def put_nowait(self, item: T) -> None:
        """Put ``item`` if there is room at once, else raise :class:`queue.Full`."""
        await self.put(item, block=False)

    async def get(self, block: bool = True, timeout: float | None = None) -> T:
        """Remove and return the oldest item.

        ``block=False`` raises :class:`queue.Empty` at once if there is none;
        ``block=True`` waits for one, for ever (``timeout=None``) or up to
        ``timeout`` seconds, then raises :class:`queue.Empty`.

        An item that cannot be decoded as ``item_type`` raises
        :class:`tactor.UnreadableItem` (a ``DecodeError``) holding its bytes; that item
        is out of the queue all the same and its task is counted done.
        """
        if block:
            _check_timeout(timeout)
        wait = timeout if block else 0.0
        payload = await self._transport().queue_get(self.name, wait)
        if payload is None:
            raise stdlib_queue.Empty
        return await self._decode(payload)

    async def get_nowait(self) -> T:
        """Remove and return the oldest item if there is one, else raise :class:`queue.Empty`."""
        return await self.get(block=False)

    async def qsize(self) -> int:
        """How many items the queue holds now (on every node)."""
        return await self._transport().queue_size(self.name)

    async def empty(self) -> bool:
        """Whether the queue holds no item now."""
        return await self.qsize() == 0

    async def full(self) -> bool:
        """Whether a bounded queue holds ``maxsize`` items now (never for an unbounded one)."""
        return 0 < self.maxsize <= await self.qsize()

    async def task_done(self) -> None:
        """Mark one task (an item got earlier, on any node) done.

        Raises ``ValueError`` if called more times than items were put.
        """
        await self._transport().queue_task_done(self.name)

    async def unfinished(self) -> int:
        """How many items were put and not yet marked done, across all nodes."""
        return await self._transport().queue_unfinished(self.name)

    async def join(self) -> None:
        """Wait until every item put (by any node) has been marked done with ``task_done``.

        Polls the unfinished count, at a few milliseconds at first and every
        50 ms at most after that.
        """
        poll = _Poll()
        while await self.unfinished() > 0:
            await poll.wait()

    async def delete(self) -> None:
        """Remove the queue: its items and its unfinished count (on every node).

        Getters waiting on it keep waiting for items put afterwards.
        """
        await self._transport().queue_delete(self.name)
