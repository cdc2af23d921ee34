"""A framed duplex channel between a parent process and a child, over a socket.

Each frame is a header (a short JSON list whose first item names the kind of
frame) and zero or more opaque payloads, length-prefixed::

    u32 size of the rest | u32 header size | header (JSON) | (u32 size | payload)*

Payloads travel as the raw bytes the transport seam already moves: nothing is
pickled, nothing is re-encoded. A :class:`Channel` dispatches each incoming
frame to the handler registered for its kind, and tells its close handlers
when the other end is gone (EOF: the other process exited or died).
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

log = logging.getLogger("tactor")

#: Called with a frame's header and payloads. It must not block.
FrameHandler = Callable[[list[Any], list[bytes]], None]

T = TypeVar("T")

_SIZE = struct.Struct("!I")
_SIZES = struct.Struct("!II")


def encode_frame(header: list[Any], payloads: tuple[bytes, ...]) -> bytes:
    head = orjson.dumps(header)
    parts = [b""]
    for payload in payloads:
        parts += (_SIZE.pack(len(payload)), payload)
    body = b"".join(parts)
    return _SIZES.pack(4 + len(head) + len(body), len(head)) + head + body


def decode_frame(frame: bytes) -> tuple[list[Any], list[bytes]]:
    (head_size,) = _SIZE.unpack_from(frame, 0)
    header: list[Any] = orjson.loads(frame[4 : 4 + head_size])
    payloads: list[bytes] = []
    at = 4 + head_size
    while at < len(frame):
        (size,) = _SIZE.unpack_from(frame, at)
        payloads.append(frame[at + 4 : at + 4 + size])
        at += 4 + size
    return header, payloads


def settle(future: asyncio.Future[T], value: T) -> None:
    """Resolve ``future`` with ``value`` unless it is done already (an answer counts once)."""
    if not future.done():
        future.set_result(value)


class Channel:
    """One end of a parent-child channel; make it with :meth:`open` on a connected socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.handlers: dict[str, FrameHandler] = {}
        self.on_close: list[Callable[[], None]] = []
        self.closed = asyncio.Event()

    @classmethod
    async def open(cls, sock: socket.socket) -> Channel:
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=1 << 24)
        return cls(reader, writer)

    def send(self, header: list[Any], *payloads: bytes) -> None:
        """Queue one frame for the other end; raises TransportClosed once the channel is."""
        if self.closed.is_set() or self._writer.is_closing():
            raise TransportClosed("the channel to the other process is closed")
        self._writer.write(encode_frame(header, payloads))

    async def drain(self) -> None:
        """Wait while the socket's buffer is over its high-water mark (push-back)."""
        if not self.closed.is_set():
            try:
                await self._writer.drain()
            except ConnectionError:
                self.close()

    async def run(self) -> None:
        """Read and dispatch frames until the other end goes away, then close."""
        try:
            while True:
                size = _SIZE.unpack(await self._reader.readexactly(4))[0]
                header, payloads = decode_frame(await self._reader.readexactly(size))
                handler = self.handlers.get(header[0])
                if handler is None:
                    log.error("channel: a frame of unknown kind %r was dropped", header[0])
                    continue
                try:
                    handler(header, payloads)
                except Exception:
                    log.exception("channel: handling a %r frame failed", header[0])
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # EOF: the other process closed its end, exited or died
        finally:
            self.close()

    def close(self) -> None:
        """Close this end (the other sees EOF) and tell the close handlers, once."""
        if self.closed.is_set():
            return
        self.closed.set()
        self._writer.close()
        for callback in self.on_close:
            try:
                callback()
            except Exception:
                log.exception("channel: a close handler failed")
