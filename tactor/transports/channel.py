"""A framed duplex channel between a parent process and a child, over a socket.

Each frame is a header (a short JSON list whose first item names the kind of
frame) and zero or more opaque payloads, length-prefixed::

    u32 size of the rest | u32 header size | header (JSON) | (u32 size | payload)*

Payloads travel as the raw bytes the transport seam already moves: nothing is
pickled, nothing is re-encoded. A :class:`Channel` is an asyncio protocol: it
reads into a buffer of its own, dispatches each incoming frame to the handler
registered for its kind as soon as its bytes are in (no reader task, no
hand-off), and tells its close handlers when the other end is gone (EOF: the
other process exited or died).

Frames leave together: what is sent in one turn of the event loop is written
at its end, in one write, or at once by a sender about to wait (for an answer,
for work, or with a reply someone waits for). A child's reply to a call is one
frame with the acknowledgement of its message and the ask for the next delivery.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from ..errors import TransportClosed

__all__ = ["Channel", "FrameHandler", "settle"]

log = logging.getLogger(__name__)

#: Called with a frame's header and payloads. It must not block.
FrameHandler = Callable[[list[Any], list[bytes]], None]

T = TypeVar("T")

_SIZE = struct.Struct("!I")
_SIZES = struct.Struct("!II")
#: The read buffer's size; it grows for a larger frame and shrinks back after it.
_CHUNK = 1 << 16
#: Read into a new buffer when less than this is left at the end of the current one.
_ROOM = 1 << 12


def encode_frame(header: list[Any], payloads: tuple[bytes, ...]) -> bytes:
    head = orjson.dumps(header)
    parts = [b"", head]
    size = 4 + len(head)
    for payload in payloads:
        parts += (_SIZE.pack(len(payload)), payload)
        size += 4 + len(payload)
    parts[0] = _SIZES.pack(size, len(head))
    return b"".join(parts)  # one copy of each payload


def decode_frame(
    data: bytes | bytearray, start: int = 0, end: int | None = None
) -> tuple[list[Any], list[bytes]]:
    """The header and payloads of the frame in ``data[start:end]`` (its bytes after the
    leading size); ValueError (or struct.error) if they cannot be read."""
    end = len(data) if end is None else end
    at = start + 4 + _SIZE.unpack_from(data, start)[0]
    header = orjson.loads(data[start + 4 : at])
    if not (type(header) is list and header and type(header[0]) is str):
        raise ValueError(f"a frame's header is not a list that starts with its kind: {header!r}")
    payloads: list[bytes] = []
    while at < end:
        size = _SIZE.unpack_from(data, at)[0]
        at += 4
        payloads.append(bytes(data[at : at + size]))
        at += size
    return header, payloads


def settle(future: asyncio.Future[T], value: T) -> None:
    """Resolve ``future`` with ``value`` unless it is done already (an answer counts once)."""
    if not future.done():
        future.set_result(value)


class Channel(asyncio.BufferedProtocol):
    """One end of a parent-child channel; make it with :meth:`open` on a connected socket.

    Frames are dispatched once :meth:`run` runs (register the handlers first).
    """

    def __init__(self) -> None:
        self.handlers: dict[str, FrameHandler] = {}
        self.on_close: list[Callable[[], None]] = []
        self.closed = asyncio.Event()
        self._closed = False  # closed.is_set(), read on every frame
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._inbound = bytearray(_CHUNK)
        self._start = 0  # the first byte of _inbound not dispatched yet
        self._end = 0  # the end of what was read into _inbound
        self._wanted = 4  # the size of the frame at _start, once its size was read
        self._outbound: list[bytes] = []
        self._turn: asyncio.TimerHandle | None = None  # writes this turn's frames at its end
        self._writable: asyncio.Future[None] | None = None  # set while writing is paused

    @classmethod
    async def open(cls, sock: socket.socket) -> Channel:
        loop = asyncio.get_running_loop()
        _, channel = await loop.create_unix_connection(cls, sock=sock)
        return channel

    def send(self, header: list[Any], *payloads: bytes, flush: bool = False) -> None:
        """Queue one frame for the other end; raises TransportClosed once the channel is.

        Frames sent in one turn of the event loop are written together, at its end,
        or at once with ``flush=True`` (or :meth:`flush`): a sender that waits next,
        for an answer or for work, has nothing to add to them.
        """
        if self._closed:
            raise TransportClosed("the channel to the other process is closed")
        self._outbound.append(encode_frame(header, payloads))
        if flush:
            self.flush()
        elif self._turn is None:
            # A timer due now rather than call_soon: once flushed and cancelled, it is
            # dropped before the loop next polls, instead of costing it an extra turn.
            self._turn = self._loop.call_at(self._loop.time(), self._flush_turn)

    def flush(self) -> None:
        """Write the frames queued so far, now."""
        if self._turn is not None:
            self._turn.cancel()
            self._turn = None
        frames, self._outbound = self._outbound, []
        if frames and self._transport is not None and not self._transport.is_closing():
            self._transport.write(frames[0] if len(frames) == 1 else b"".join(frames))

    def _flush_turn(self) -> None:
        self._turn = None
        self.flush()

    async def drain(self) -> None:
        """Write what is queued, then wait while the socket's buffer is over its high-water
        mark (push-back)."""
        self.flush()
        while self._writable is not None and not self.closed.is_set():
            await asyncio.shield(self._writable)

    async def run(self) -> None:
        """Dispatch frames until the other end goes away; close the channel when it ends
        (cancelled too)."""
        try:
            if self._transport is not None and not self.closed.is_set():
                self._transport.resume_reading()
            await self.closed.wait()
        finally:
            self.close()

    def close(self) -> None:
        """Close this end (the other sees EOF once what was sent is written) and tell the
        close handlers, once."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        self.closed.set()
        if self._transport is not None:
            self._transport.close()
        self._wake_writers()
        for callback in self.on_close:
            try:
                callback()
            except Exception:
                log.exception("channel: a close handler failed")

    # -- the protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.pause_reading()  # until run(): the handlers are registered by then

    def get_buffer(self, sizehint: int) -> memoryview:
        """Where the next read goes: after what was read, in a new buffer when the frame in
        progress would not fit or little room is left (what is in use is never resized)."""
        buffer, start, end = self._inbound, self._start, self._end
        if start == end and len(buffer) > _CHUNK:
            self._inbound = bytearray(_CHUNK)  # a large frame was read: give its room back
            self._start = self._end = 0
        elif len(buffer) - end < _ROOM or start + self._wanted > len(buffer):
            pending = end - start
            self._inbound = fresh = bytearray(max(_CHUNK, self._wanted + _ROOM))
            fresh[:pending] = buffer[start:end]
            self._start, self._end = 0, pending
        return memoryview(self._inbound)[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        buffer, at = self._inbound, self._start
        end = self._end = self._end + nbytes
        while end - at >= 4 and not self._closed:
            size = 4 + _SIZE.unpack_from(buffer, at)[0]
            if end - at < size:
                self._start, self._wanted = at, size  # the rest is still on its way
                return
            self._dispatch(buffer, at + 4, at + size)
            at += size
        self._wanted = 4
        if at == end:
            self._start = self._end = 0  # all that was read was dispatched: start over
        else:
            self._start = at

    def _dispatch(self, buffer: bytearray, start: int, end: int) -> None:
        """Run the handler of the frame in ``buffer[start:end]``."""
        try:
            header, payloads = decode_frame(buffer, start, end)
        except (ValueError, struct.error) as exc:
            log.error("channel: an unreadable frame arrived (%s); closing the channel", exc)
            self.close()
            return
        handler = self.handlers.get(header[0])
        if handler is None:
            log.error("channel: a frame of unknown kind %r was dropped", header[0])
            return
        try:
            handler(header, payloads)
        except Exception:
            log.exception("channel: handling a %r frame failed", header[0])

    def eof_received(self) -> bool:
        return False  # the other process closed its end, exited or died: close ours

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        self._wake_writers()

    def _wake_writers(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)
